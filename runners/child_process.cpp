#include "runners/child_process.h"

#include <alloca.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

// The sanitizers' runtime's, when cyclefuzz is built with one; null otherwise.
extern "C" [[gnu::weak]] void __sanitizer_symbolize_pc(void* pc, const char* format, char* out,
                                                       std::size_t size);

namespace cyclefuzz {

namespace {

// On the pipe a message is its tag, its value, its payload's size, then the payload: the parent
// needs the size before the bytes, whatever the tag.
constexpr std::size_t kHeaderSize = 1 + 2 * sizeof(std::uint64_t);

/// "<doing> <what>: <the system's reason>", as in "cannot fork to run a batch of traces: ...".
std::runtime_error failure(const std::string& doing, std::string_view what, int error) {
  return std::runtime_error(doing + " " + std::string(what) + ": " + std::strerror(error));
}

/// Whether all of `size` bytes at `at` went through `io` (::read or ::write) on `fd` before the
/// end of the pipe or an error (a signal on the way is no reason to stop).
template <typename Io, typename Byte>
bool transfer_all(Io io, int fd, Byte* at, std::size_t size) {
  while (size > 0) {
    const ssize_t n = io(fd, at, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    at += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

/// A message as it goes down a pipe.
std::string framed(char tag, std::uint64_t value, std::string_view payload) {
  const std::uint64_t size = payload.size();
  std::string message(kHeaderSize, '\0');
  message[0] = tag;
  std::memcpy(message.data() + 1, &value, sizeof value);
  std::memcpy(message.data() + 1 + sizeof value, &size, sizeof size);
  message.append(payload);
  return message;
}

/// The next whole message on `fd`, or false at the end of the pipe or a message cut short.
bool receive(int fd, ChildMessage& message) {
  char header[kHeaderSize];
  if (!transfer_all(::read, fd, header, sizeof header)) return false;
  std::uint64_t size = 0;
  message.tag = header[0];
  std::memcpy(&message.value, header + 1, sizeof message.value);
  std::memcpy(&size, header + 1 + sizeof message.value, sizeof size);
  message.payload.assign(size, '\0');
  return transfer_all(::read, fd, message.payload.data(), message.payload.size());
}

/// How far below the top of its stack a child's body starts, in every front end alike. A crash
/// that depends on how much stack is left (a recursion that overflows it, as the recursive frees
/// of PHP and Nim's ORC do) then comes at about the same depth whether `check`, `minimize`,
/// `replay` or `explain` runs the trace: each forks from a stack of its own depth, and a trace
/// minimized to the edge in one passed in another (measured with a recursive free of 2 KB
/// frames: some 100 objects apart; now within a few).
constexpr std::size_t kChildStackStart = 256 * 1024;

/// How much of the calling thread's stack is in use at `here`.
std::size_t stack_in_use(const char* here) {
  pthread_attr_t attributes;
  void* low = nullptr;
  std::size_t size = 0;
  if (pthread_getattr_np(pthread_self(), &attributes) != 0) return 0;
  pthread_attr_getstack(&attributes, &low, &size);
  pthread_attr_destroy(&attributes);
  return static_cast<std::size_t>(static_cast<const char*>(low) + size - here);
}

/// What a child tells its parent through memory rather than the pipe: how far it got, at every
/// op (a message each time would cost a system call and a wake-up of the parent), and whether
/// its body returned, which a crash (a signal, a sanitizer's report, an abort) never lets it do.
struct SharedWithChild {
  std::atomic<std::uint64_t> progress{0};
  std::atomic<bool> returned{false};
};

/// The child's whole life. noexcept, so that an exception out of `body` ends the child here (by
/// std::terminate: an abort) instead of unwinding into a catch in the parent's code, which the
/// child would then go on running as if it were the parent.
[[noreturn]] void live_as_child(const ChildBody& body, int fd, SharedWithChild& shared) noexcept {
  const std::size_t in_use =
      stack_in_use(static_cast<const char*>(__builtin_frame_address(0)));
  if (in_use < kChildStackStart) {
    volatile char* pad = static_cast<char*>(alloca(kChildStackStart - in_use));
    pad[0] = 0;  // (used, so that it stays)
  }
  const int status = body(ChildPipe(fd, shared.progress));
  shared.returned.store(true, std::memory_order_relaxed);
  std::_Exit(status);
}

/// Memory that a forked child shares with its parent (a lock-free atomic works across processes).
class SharedMemory {
 public:
  explicit SharedMemory(std::string_view what) {
    void* at = mmap(nullptr, sizeof(SharedWithChild), PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (at == MAP_FAILED) throw failure("cannot map memory to share with", what, errno);
    shared_ = new (at) SharedWithChild;
  }
  SharedMemory(const SharedMemory&) = delete;
  SharedMemory& operator=(const SharedMemory&) = delete;
  ~SharedMemory() { munmap(shared_, sizeof(SharedWithChild)); }
  SharedWithChild& get() { return *shared_; }

 private:
  static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
  static_assert(std::atomic<bool>::is_always_lock_free);
  SharedWithChild* shared_;
};

/// How `child` ended, waiting for it.
ChildEnd wait_for(pid_t child, std::string_view what) {
  int status = 0;
  while (waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) throw failure("lost the child process running", what, errno);
  }
  if (WIFSIGNALED(status)) return {.signal = WTERMSIG(status)};
  return {.exit_status = WEXITSTATUS(status)};
}

/// Readies this process's symbolizer, once: what a sanitizer asks for the function and line of
/// each address in a report (clang's runtime: an llvm-symbolizer process; gcc's: libbacktrace,
/// here). The children forked after it inherit it, the process's pipes or the debug information
/// already read, so that a crashing child does not read cyclefuzz's anew: 0.35 s a crash in
/// clang's build, 0.7 s a stack overflow's in gcc's, most of a minimization's time when every
/// candidate crashes. Called after a first crash, since a crash is what asks; without a sanitizer
/// it does nothing. Children share a symbolizer process safely: they run one at a time, each reads
/// every answer it asked for before it exits (only a kill in mid-question could leave one for the
/// next child, which would then name a wrong function: a signature that does not match, never a
/// fault), and the parent, which waits for them, asks nothing meanwhile.
void share_symbolizer_with_children() {
  static bool shared = false;
  if (shared || __sanitizer_symbolize_pc == nullptr) return;
  shared = true;
  char name[256];
  __sanitizer_symbolize_pc(__builtin_return_address(0), "%f", name, sizeof name);
}

}  // namespace

void ChildPipe::send(char tag, std::uint64_t value, std::string_view payload) const {
  const std::string message = framed(tag, value, payload);
  if (!transfer_all(::write, fd_, message.data(), message.size())) std::_Exit(2);
}

CapturedStderr::CapturedStderr() : fd_(memfd_create("cyclefuzz-child-stderr", 0)) {
  if (fd_ < 0) throw failure("cannot make a file for", "a child's stderr", errno);
}

CapturedStderr::~CapturedStderr() { close(fd_); }

void CapturedStderr::redirect() const { dup2(fd_, STDERR_FILENO); }

std::string CapturedStderr::text() const {
  std::string text;
  char buffer[4096];
  for (off_t at = 0;;) {
    const ssize_t n = pread(fd_, buffer, sizeof buffer, at);
    if (n <= 0) return text;
    text.append(buffer, static_cast<std::size_t>(n));
    at += n;
  }
}

ChildEnd run_in_child(std::string_view what, const ChildBody& body,
                      const MessageHandler& on_message) {
  SharedMemory shared(what);
  int fds[2];
  if (pipe(fds) != 0) throw failure("cannot create a pipe to run", what, errno);
  const pid_t child = fork();
  if (child < 0) {
    const int error = errno;  // before close() can change it
    close(fds[0]);
    close(fds[1]);
    throw failure("cannot fork to run", what, error);
  }
  if (child == 0) {
    close(fds[0]);
    live_as_child(body, fds[1], shared.get());
  }
  // Read until the child's end closes (it has exited), so that it never blocks on a full pipe.
  close(fds[1]);
  ChildMessage message;
  while (receive(fds[0], message)) {
    if (on_message) on_message(std::move(message));
  }
  close(fds[0]);
  ChildEnd end = wait_for(child, what);
  end.progress = shared.get().progress.load(std::memory_order_relaxed);
  end.returned = shared.get().returned.load(std::memory_order_relaxed);
  if (!end.returned) share_symbolizer_with_children();
  return end;
}

// ================================================================================================
// A serving child
// ================================================================================================

namespace {

constexpr char kRequest = 'Q';
constexpr char kAnswer = 'A';

/// Sends on a socket whose reader may be gone (a child that crashed): an error, not a SIGPIPE.
ssize_t send_quietly(int fd, const char* bytes, std::size_t size) {
  return ::send(fd, bytes, size, MSG_NOSIGNAL);
}

}  // namespace

ServingChild::ServingChild(std::string_view what, Serve serve) : what_(what) {
  int requests[2];  // a socket, for send_quietly
  int answers[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, requests) != 0) {
    throw failure("cannot create a socket to serve", what, errno);
  }
  if (pipe2(answers, O_CLOEXEC) != 0) {
    const int error = errno;
    close(requests[0]);
    close(requests[1]);
    throw failure("cannot create a pipe to serve", what, error);
  }
  pid_ = fork();
  if (pid_ < 0) {
    const int error = errno;
    for (int fd : {requests[0], requests[1], answers[0], answers[1]}) close(fd);
    throw failure("cannot fork to serve", what, error);
  }
  if (pid_ == 0) {
    close(requests[0]);
    close(answers[0]);
    const int from_parent = requests[1];
    SharedWithChild unshared;  // (nothing for the parent to read there: its answers say it all)
    live_as_child(
        [&](const ChildPipe& parent) {
          ChildMessage request;
          while (receive(from_parent, request)) parent.send(kAnswer, 0, serve(request.payload));
          return 0;  // the parent is done with it
        },
        answers[1], unshared);
  }
  close(requests[1]);
  close(answers[1]);
  requests_ = requests[0];
  answers_ = answers[0];
}

ServingChild::~ServingChild() { end(); }

std::optional<std::string> ServingChild::ask(std::string_view request) {
  if (pid_ < 0) return std::nullopt;
  const std::string message = framed(kRequest, 0, request);
  ChildMessage answer;
  if (transfer_all(send_quietly, requests_, message.data(), message.size()) &&
      receive(answers_, answer)) {
    return std::move(answer.payload);
  }
  end();
  return std::nullopt;
}

void ServingChild::end() {
  if (pid_ < 0) return;
  close(requests_);  // (its end of the stream: a child waiting for a request exits)
  close(answers_);
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) share_symbolizer_with_children();
}

}  // namespace cyclefuzz
