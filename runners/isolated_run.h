// Running a collector in a child process, so that a collector that crashes (a segfault, an abort,
// a sanitizer report) becomes an outcome to report, not the end of the report.
#pragma once

#include <string>
#include <string_view>

#include "collectors/registry.h"
#include "checker/session.h"
#include "language/trace.h"
#include "runners/minimize.h"

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

/// How a trace fails on one collector, in enough detail that two traces failing the same way are
/// one finding, and two failing in different places are two, though the outcomes are the same
/// (on a runtime, every leak is a leak). What the signatures of two different bugs share, they
/// share in every run, so a known one can be told from a new one without minimizing either.
struct Signature {
  std::string collector;
  Outcome outcome;
  /// A crash that no sanitizer described: the keyword of the op it came during ("unroot", ...).
  /// Else "": a sanitizer's frames tell more (one bug may crash during any op that frees), and a
  /// walk finds a bookkeeping fault at whichever op it comes.
  std::string op;
  /// A violation: its detail, every number as '#' (ids and counts differ from trace to trace);
  /// not the kinds of its objects (a runtime's bug in its collector meets every kind): what the
  /// collector got wrong, not where the trace met it. A crash: what the sanitizer said it was,
  /// with the first frames of its stack ("SEGV in PyObject_ClearWeakRefs < ..."), or "" when
  /// nothing was said (a build without sanitizers).
  std::string where;

  friend bool operator==(const Signature&, const Signature&) = default;
};

/// "late free on cpython: unreachable, held by no garbage cycle, and still alive", "crash
/// (exit status 1) on cpython: SEGV in PyObject_ClearWeakRefs < ...", "crash (signal 11) during
/// `unroot` on cpython".
std::string describe(const Signature& signature);

/// The signature of a violation of `collector`'s with this detail.
Signature violation_signature(std::string collector, ViolationKind kind, std::string_view detail);

/// The signature of `trace` on `collector` alone (its outcome Pass if it passes), in a forked
/// child that walks every collection (the first violation is then the same in every build).
/// The child's stderr is kept from the terminal; for a crash, `report` gets it.
Signature signature_of(const Trace& trace, const CollectorEntry& collector,
                       const CollectorOptions& options, std::string* report = nullptr);

/// The smallest trace that fails as `trace` does (`target`, its signature on `collector`):
/// minimize_trace, each candidate's signature taken in a child; `runs` counts them. A stack
/// overflow's minimal trace then has its builds doubled where it still overflows (grow_builds),
/// so that it overflows in the other builds and front ends too: a chain minimized to 455 objects
/// by gcc's build passed in clang's.
Trace minimize_failure(const Trace& trace, const CollectorEntry& collector,
                       const CollectorOptions& options, const Signature& target,
                       MinimizeBudget& budget, std::size_t* runs = nullptr);

/// What a sanitizer's report on `text` says for a Signature's `where`: its kind ("SEGV",
/// "heap-use-after-free", "runtime error: ...") and its first frames outside the sanitizer's
/// runtime (a stack overflow: the function that recurs most); "" when `text` has no report.
std::string crash_site(std::string_view text);

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
