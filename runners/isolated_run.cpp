#include "runners/isolated_run.h"

#include <sstream>

#include "reports/report.h"
#include "runners/child_process.h"

namespace cyclefuzz {

namespace {

constexpr std::string_view kWork = "a collector in isolation";

// A child exits with kViolationBase + kind for a violation and 0 for a pass; anything else
// (a signal, a sanitizer's exit status) is a crash.
constexpr int kViolationBase = 40;

// What a replaying child tells its parent: how many ops it has started, before each (its
// progress), so that a crash is pinned to the last; then its reports, which only the child can
// write (the session is its own).
constexpr char kTextReport = 'T';
constexpr char kJsonReport = 'J';
constexpr char kVerdict = 'V';

/// How a child ended, as an Outcome (a crash by a signal is a negative status).
Outcome outcome_of(const ChildEnd& end) {
  if (end.signal != 0) return {Outcome::Kind::Crash, {}, -end.signal};
  const int code = end.exit_status;
  if (code == 0) return {};
  if (code >= kViolationBase && code < kViolationBase + kViolationKinds) {
    return {Outcome::Kind::Violation, static_cast<ViolationKind>(code - kViolationBase), 0};
  }
  return {Outcome::Kind::Crash, {}, code};
}

int exit_code(const Session& session) {
  if (session.violations().empty()) return 0;
  return kViolationBase + static_cast<int>(session.violations().front().kind);
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
  return outcome_of(run_in_child(kWork, [&](const ChildPipe&) {
    Session session({collector}, options);
    session.run(trace);
    return exit_code(session);
  }));
}

IsolatedReplay replay_isolated(const Trace& trace, const std::vector<CollectorEntry>& collectors,
                               const CollectorOptions& options, const CheckOptions& checks) {
  const auto replay = [&](const ChildPipe& parent) {
    Session session(collectors, options, checks);
    const auto running = [&session] {
      for (std::size_t i = 0; i < session.collector_count(); ++i) {
        if (!session.retired(i)) return true;
      }
      return false;
    };
    for (std::size_t i = 0; i < trace.ops.size() && running(); ++i) {
      parent.progress(i + 1);
      session.step(trace.ops[i]);
    }
    session.finish();
    std::ostringstream text;
    print_trace_result(text, trace, session);
    parent.send(kTextReport, 0, text.str());
    parent.send(kJsonReport, 0, trace_report(trace, session, checks.record_frees).dump());
    for (std::size_t i = 0; i < session.collector_count(); ++i) {
      parent.send(kVerdict, i, verdict(session, i));
    }
    return exit_code(session);
  };
  IsolatedReplay result;
  const auto receive = [&](ChildMessage message) {
    switch (message.tag) {
      case kTextReport:
        result.text = std::move(message.payload);
        break;
      case kJsonReport:
        result.json = std::move(message.payload);
        break;
      case kVerdict:
        result.verdicts.push_back(std::move(message.payload));
        break;
    }
  };
  const ChildEnd end = run_in_child(kWork, replay, receive);
  result.outcome = outcome_of(end);
  result.ops_started = end.progress;
  return result;
}

std::vector<ChildReplay> replay_in_children(const Trace& trace,
                                            const std::vector<CollectorEntry>& collectors,
                                            const CollectorOptions& options,
                                            const CheckOptions& checks) {
  std::vector<std::vector<CollectorEntry>> groups(1);
  for (const CollectorEntry& c : collectors) {
    if (c.isolated) {
      groups.push_back({c});
    } else {
      groups.front().push_back(c);
    }
  }
  std::vector<ChildReplay> results;
  for (std::size_t g = 0; g < groups.size(); ++g) {
    std::vector<CollectorEntry> group = groups[g];  // (groups may grow below)
    if (group.empty()) continue;
    IsolatedReplay run = replay_isolated(trace, group, options, checks);
    if (run.outcome.kind == Outcome::Kind::Crash && group.size() > 1) {
      for (const CollectorEntry& c : group) groups.push_back({c});
      continue;
    }
    results.push_back({std::move(group), std::move(run)});
  }
  return results;
}

}  // namespace cyclefuzz
