#include "oracle/isolated_run.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <stdexcept>

namespace cyclefuzz {

namespace {

// A child exits with kViolationBase + kind for a violation and 0 for a pass; anything else
// (a signal, a sanitizer's exit status) is a crash.
constexpr int kViolationBase = 40;

}  // namespace

std::string describe(const Outcome& outcome) {
  switch (outcome.kind) {
    case Outcome::Kind::Pass:
      return "pass";
    case Outcome::Kind::Violation:
      return describe(outcome.violation);
    case Outcome::Kind::Crash:
      return "crash (" + std::string(outcome.status < 0 ? "signal " : "exit status ") +
             std::to_string(outcome.status < 0 ? -outcome.status : outcome.status) + ")";
  }
  return "?";
}

Outcome run_isolated(const Trace& trace, const CollectorEntry& collector,
                     const CollectorOptions& options) {
  const pid_t child = fork();
  if (child < 0) throw std::runtime_error("cannot fork to run a collector in isolation");
  if (child == 0) {
    int code = 0;
    {
      Session session({collector}, options);
      session.run(trace);
      if (const Violation* v = session.first_violation(0)) {
        code = kViolationBase + static_cast<int>(v->kind);
      }
    }
    std::_Exit(code);  // no atexit handlers: the parent owns the process's exit
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) throw std::runtime_error("lost the child process running a collector");
  }
  if (WIFSIGNALED(status)) return {Outcome::Kind::Crash, {}, -WTERMSIG(status)};
  const int code = WEXITSTATUS(status);
  if (code == 0) return {};
  if (code >= kViolationBase && code < kViolationBase + kViolationKinds) {
    return {Outcome::Kind::Violation, static_cast<ViolationKind>(code - kViolationBase), 0};
  }
  return {Outcome::Kind::Crash, {}, code};
}

}  // namespace cyclefuzz
