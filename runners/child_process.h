// Running a piece of work in a forked child process, so that a collector that crashes (a
// segfault, an abort, a sanitizer report) ends the child, not the run that reports it. The child
// can tell its parent things as it goes: how far it got (which op or run it is about to start), in
// memory the two share, since it says so at every op and a message each time would cost a system
// call and a wake-up of the parent; and its reports, over a pipe. How far it got when it died is
// what pins a crash down.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace cyclefuzz {

/// One message from a child: a tag saying what it is, a number, and maybe some bytes.
struct ChildMessage {
  char tag = 0;
  std::uint64_t value = 0;
  std::string payload;
};

/// The child's end of the pipe to its parent, and of the memory they share.
class ChildPipe {
 public:
  ChildPipe(int fd, std::atomic<std::uint64_t>& progress) : fd_(fd), progress_(progress) {}
  /// Sends a whole message, or ends the child with status 2 if the parent is gone (nobody is
  /// left to hear what it would find).
  void send(char tag, std::uint64_t value, std::string_view payload = {}) const;
  /// How far it got (ChildEnd::progress): a store to shared memory, no system call.
  void progress(std::uint64_t value) const { progress_.store(value, std::memory_order_relaxed); }

 private:
  int fd_;
  std::atomic<std::uint64_t>& progress_;
};

/// How a child ended.
struct ChildEnd {
  int signal = 0;       // the signal that killed it, or 0 if it exited
  int exit_status = 0;  // when signal == 0
  std::uint64_t progress = 0;  // the last ChildPipe::progress, or 0
  bool returned = false;  // whether the body returned (a crash ends the child before it can)

  bool exited_cleanly() const { return signal == 0 && exit_status == 0; }
};

/// A file that a child's stderr can go to, for its parent to read after it ended: what a
/// sanitizer said of a crash, without it on the terminal of a run that knows that crash.
class CapturedStderr {
 public:
  CapturedStderr();  // throws std::runtime_error if there is no file to be had
  CapturedStderr(const CapturedStderr&) = delete;
  CapturedStderr& operator=(const CapturedStderr&) = delete;
  ~CapturedStderr();
  /// In the child: its stderr goes to the file from now on.
  void redirect() const;
  /// In the parent: all that went to the file.
  std::string text() const;

 private:
  int fd_;
};

using ChildBody = std::function<int(const ChildPipe&)>;
using MessageHandler = std::function<void(ChildMessage)>;

/// Forks a child that runs `body`, which returns the child's exit status, and ends the child with
/// std::_Exit (no atexit handlers or static destructors: they are the parent's). An exception out
/// of `body` terminates the child (an abort), so it can never unwind into the parent's code.
/// Meanwhile the parent hands each whole message the child sends to `on_message`, in order (a
/// message cut short by the child's death is dropped), then waits for the child and says how it
/// ended. `what` names the work in errors: throws std::runtime_error if there is no pipe, no fork
/// or no child to wait for.
ChildEnd run_in_child(std::string_view what, const ChildBody& body,
                      const MessageHandler& on_message = {});

/// A child that answers its parent's requests, one at a time, for work that costs less than a
/// fork: a sanitized cyclefuzz's fork and exit cost some 20 ms, mostly in copying the pages the
/// child writes (the sanitizer's records of where memory was allocated among them), where a small
/// trace's run takes a millisecond or two. The child runs `serve` on each request, in order, and sends back what
/// it returns; it exits when the parent closes its end (the destructor), or dies when `serve`
/// crashes it. Its body starts as run_in_child's does (the same stack below it), and its stdout
/// and stderr are the parent's: `serve` redirects them if it must.
class ServingChild {
 public:
  using Serve = std::function<std::string(std::string_view request)>;
  /// Forks the child; throws std::runtime_error, naming `what`, if there is no socket, pipe or
  /// fork.
  ServingChild(std::string_view what, Serve serve);
  ServingChild(const ServingChild&) = delete;
  ServingChild& operator=(const ServingChild&) = delete;
  ~ServingChild();  // ends the child, and waits for it
  /// What `serve` returned for `request`, or nullopt when the child died before it answered
  /// (it crashed); from then on, nullopt at once.
  std::optional<std::string> ask(std::string_view request);

 private:
  void end();
  std::string what_;
  int pid_ = -1;
  int requests_ = -1;  // to the child
  int answers_ = -1;   // from it
};

}  // namespace cyclefuzz
