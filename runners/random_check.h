// Random checking: generated traces (the shared distribution, runners/generator.h) against
// collectors with every check, until one fails; then the failing trace, minimized. The engine of
// `cyclefuzz check`.
//
// Traces run in batches in a forked child, so a collector that crashes (a segfault, a sanitizer
// report) is a finding like any other, and a plug-in cannot take the run down with it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

#include "collectors/registry.h"
#include "runners/generator.h"
#include "runners/isolated_run.h"
#include "language/trace.h"

namespace cyclefuzz {

/// A failure met before, and the trace it was met in (a file of `check --known`).
struct KnownFailure {
  Signature signature;
  std::string source;
};

/// The failures of `traces` (each run alone, in a child) on each of `collectors`.
std::vector<KnownFailure> known_failures(const std::vector<Trace>& traces,
                                         const std::vector<CollectorEntry>& collectors,
                                         const CollectorOptions& options);
/// Where `signature` is in `known`, or known.size().
std::size_t find_known(const std::vector<KnownFailure>& known, const Signature& signature);

struct RandomCheckOptions {
  std::vector<CollectorEntry> collectors;
  CollectorOptions collector_options;
  std::uint64_t seed = 1;
  std::size_t runs = 1000;     // at most this many traces...
  double seconds = 0;          // ...or until this much time has passed (0: no limit)
  std::size_t max_ops = 200;   // trace lengths grow from a few ops to this over the first 100 runs
  Distribution distribution;   // what the traces are drawn from (`--max-build`)
  double minimize_seconds = 300;  // minimizing a finding stops after this long
  /// Failures already known (signature_of the traces of `check --known`): a trace that fails
  /// only so is counted, and the run goes on.
  std::vector<KnownFailure> known;
  bool keep_going = false;  // go on after a new finding too (each new signature is found once)
};

struct RandomCheckFinding {
  std::size_t run = 0;             // which run failed (0-based)
  std::uint64_t trace_seed = 0;    // cyclefuzz gen --seed trace_seed --ops ops gives its trace
  std::size_t ops = 0;
  std::string collector;           // the collector that failed
  Outcome outcome;                 // how
  Signature signature;             // and where (a disagreement: the collectors together)
  std::string crash_report;        // a crash: what the child said on stderr (a sanitizer's report)
  Trace minimal;                   // the trace, minimized for that outcome on that collector
  bool minimized_fully = true;     // false: minimizing ran out of time (smaller, maybe not minimal)
};

/// The seed and length of run i (what `cyclefuzz gen` needs to reproduce it).
std::uint64_t trace_seed(std::uint64_t seed, std::size_t run);
std::size_t trace_length(std::uint64_t seed, std::size_t run, std::size_t max_ops);

/// What a run met.
struct RandomCheckResult {
  std::size_t runs = 0;                      // traces run
  std::size_t new_findings = 0;              // handed to `on_finding`
  std::vector<std::size_t> known_met;        // per RandomCheckOptions::known: traces failing so
};

/// Runs until a new finding (with keep_going: past it), the run budget or the time budget. Each
/// new finding is handed to `on_finding` once minimized; `progress(runs_done)` is called as
/// batches finish.
RandomCheckResult random_check(const RandomCheckOptions& options,
                               const std::function<void(const RandomCheckFinding&)>& on_finding,
                               const std::function<void(std::size_t)>& progress = {});

}  // namespace cyclefuzz
