#include "runners/child_process.h"

#include <alloca.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

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

/// The child's whole life. noexcept, so that an exception out of `body` ends the child here (by
/// std::terminate: an abort) instead of unwinding into a catch in the parent's code, which the
/// child would then go on running as if it were the parent.
[[noreturn]] void live_as_child(const ChildBody& body, int fd,
                                std::atomic<std::uint64_t>& progress) noexcept {
  const std::size_t in_use =
      stack_in_use(static_cast<const char*>(__builtin_frame_address(0)));
  if (in_use < kChildStackStart) {
    volatile char* pad = static_cast<char*>(alloca(kChildStackStart - in_use));
    pad[0] = 0;  // (used, so that it stays)
  }
  std::_Exit(body(ChildPipe(fd, progress)));
}

/// A counter in memory that a forked child shares with its parent (a lock-free atomic works
/// across processes).
class SharedCounter {
 public:
  explicit SharedCounter(std::string_view what) {
    void* at = mmap(nullptr, sizeof(Counter), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                    -1, 0);
    if (at == MAP_FAILED) throw failure("cannot map memory to share with", what, errno);
    counter_ = new (at) Counter(0);
  }
  SharedCounter(const SharedCounter&) = delete;
  SharedCounter& operator=(const SharedCounter&) = delete;
  ~SharedCounter() { munmap(counter_, sizeof(Counter)); }
  std::atomic<std::uint64_t>& get() { return *counter_; }

 private:
  using Counter = std::atomic<std::uint64_t>;
  static_assert(Counter::is_always_lock_free);
  Counter* counter_;
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

}  // namespace

void ChildPipe::send(char tag, std::uint64_t value, std::string_view payload) const {
  const std::uint64_t size = payload.size();
  std::string message(kHeaderSize, '\0');
  message[0] = tag;
  std::memcpy(message.data() + 1, &value, sizeof value);
  std::memcpy(message.data() + 1 + sizeof value, &size, sizeof size);
  message.append(payload);
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
  SharedCounter progress(what);
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
    live_as_child(body, fds[1], progress.get());
  }
  // Read until the child's end closes (it has exited), so that it never blocks on a full pipe.
  close(fds[1]);
  ChildMessage message;
  while (receive(fds[0], message)) {
    if (on_message) on_message(std::move(message));
  }
  close(fds[0]);
  ChildEnd end = wait_for(child, what);
  end.progress = progress.get().load(std::memory_order_relaxed);
  return end;
}

}  // namespace cyclefuzz
