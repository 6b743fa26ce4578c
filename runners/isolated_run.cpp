#include "runners/isolated_run.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <sstream>
#include <stdexcept>

#include "reports/report.h"

namespace cyclefuzz {

namespace {

// A child exits with kViolationBase + kind for a violation and 0 for a pass; anything else
// (a signal, a sanitizer's exit status) is a crash.
constexpr int kViolationBase = 40;

/// Waits for a child and turns how it ended into an Outcome.
Outcome wait_for(pid_t child) {
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

int exit_code(const Session& session) {
  const Violation* v = session.first_violation(0);
  return v == nullptr ? 0 : kViolationBase + static_cast<int>(v->kind);
}

bool write_all(int fd, const void* data, std::size_t size) {
  const char* at = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = write(fd, at, size);
    if (n <= 0) return false;
    at += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

bool read_all(int fd, void* data, std::size_t size) {
  char* at = static_cast<char*>(data);
  while (size > 0) {
    const ssize_t n = read(fd, at, size);
    if (n <= 0) return false;
    at += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// A child's messages on its one pipe: a tag, a 64-bit value, and for 'T' (text report) and 'J'
// (JSON report) that many bytes. 'P' carries the index of the op about to run.
void send(int fd, char tag, std::uint64_t value, const std::string& payload = {}) {
  if (!write_all(fd, &tag, 1) || !write_all(fd, &value, sizeof value) ||
      !write_all(fd, payload.data(), payload.size())) {
    std::_Exit(2);
  }
}

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
      code = exit_code(session);
    }
    std::_Exit(code);  // no atexit handlers: the parent owns the process's exit
  }
  return wait_for(child);
}

IsolatedReplay replay_isolated(const Trace& trace, const CollectorEntry& collector,
                               const CollectorOptions& options, const CheckOptions& checks) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("cannot create a pipe");
  const pid_t child = fork();
  if (child < 0) throw std::runtime_error("cannot fork to run a collector in isolation");
  if (child == 0) {
    close(fds[0]);
    int code = 0;
    {
      Session session({collector}, options, checks);
      for (std::size_t i = 0; i < trace.ops.size() && !session.retired(0); ++i) {
        send(fds[1], 'P', i);
        session.step(trace.ops[i]);
      }
      std::ostringstream text;
      print_trace_result(text, trace, session);
      const std::string json = trace_report(trace, session, checks.record_frees).dump();
      send(fds[1], 'T', text.str().size(), text.str());
      send(fds[1], 'J', json.size(), json);
      code = exit_code(session);
    }
    std::_Exit(code);
  }
  close(fds[1]);
  IsolatedReplay result;
  char tag = 0;
  std::uint64_t value = 0;
  while (read_all(fds[0], &tag, 1) && read_all(fds[0], &value, sizeof value)) {
    if (tag == 'P') {
      result.ops_started = value + 1;
      continue;
    }
    std::string payload(value, '\0');
    if (!read_all(fds[0], payload.data(), payload.size())) break;
    (tag == 'T' ? result.text : result.json) = std::move(payload);
  }
  close(fds[0]);
  result.outcome = wait_for(child);
  return result;
}

}  // namespace cyclefuzz
