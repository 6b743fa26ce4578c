// Running a collector in a child process, so that a collector that crashes (a segfault, an abort,
// a sanitizer report) becomes an outcome to report, not the end of the report.
#pragma once

#include <string>

#include "collectors/registry.h"
#include "checker/session.h"
#include "language/trace.h"

namespace cyclefuzz {

/// What one collector did with one trace.
struct Outcome {
  enum class Kind { Pass, Violation, Crash };
  Kind kind = Kind::Pass;
  ViolationKind violation = ViolationKind::PrematureFree;  // when kind == Violation
  int status = 0;  // when kind == Crash: the signal, or the exit status a sanitizer chose

  friend bool operator==(const Outcome&, const Outcome&) = default;
};

/// "pass", "premature free", "crash (signal 11)", ...
std::string describe(const Outcome& outcome);

/// Runs `trace` on `collector` alone, in a forked child, with all checks (and the checked
/// build's invariants): the first violation, or the crash, or a pass.
Outcome run_isolated(const Trace& trace, const CollectorEntry& collector,
                     const CollectorOptions& options);

/// A replay of one trace on some collectors together in a child process, as `cyclefuzz replay`
/// reports it.
struct IsolatedReplay {
  Outcome outcome;  // the first violation of any of them, or the child's crash, or a pass
  std::size_t ops_started = 0;        // for a crash: it crashed during op ops_started - 1
  std::string text;                   // the text report (print_trace_result), unless it crashed
  std::string json;                   // the JSON report (trace_report), unless it crashed
  std::vector<std::string> verdicts;  // each collector's ("pass", "leak", ...), unless it crashed
};

/// Replays `trace` on `collectors` in one session (so they are also compared with each other) in
/// a forked child that reports each op before running it, so that a crash is pinned to the op
/// that caused it (and, with one collector, to the collector).
IsolatedReplay replay_isolated(const Trace& trace, const std::vector<CollectorEntry>& collectors,
                               const CollectorOptions& options, const CheckOptions& checks);

/// One child of `replay_in_children`: the collectors it ran, and what came of it.
struct ChildReplay {
  std::vector<CollectorEntry> collectors;
  IsolatedReplay run;
};

/// Replays `trace` as `cyclefuzz replay` does, every collector in a child process, so that one
/// that crashes is reported, not the end of the report: the collectors that are not `isolated`
/// together (so that they are also compared with each other), each isolated one alone; if the
/// shared child crashes, each of its collectors again alone, to say which crashed. Every result
/// is a child that ended with its reports, or the crash of one collector alone.
std::vector<ChildReplay> replay_in_children(const Trace& trace,
                                            const std::vector<CollectorEntry>& collectors,
                                            const CollectorOptions& options,
                                            const CheckOptions& checks);

}  // namespace cyclefuzz
