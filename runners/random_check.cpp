#include "runners/random_check.h"

#include "checker/session.h"
#include "runners/child_process.h"
#include "runners/generator.h"
#include "runners/minimize.h"

namespace cyclefuzz {

namespace {

constexpr std::size_t kBatch = 50;
constexpr int kFoundOne = 3;  // a child's exit status when a trace of its batch failed

std::uint64_t splitmix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

Trace trace_of(const RandomCheckOptions& o, std::size_t run) {
  return generate_trace(trace_seed(o.seed, run), trace_length(o.seed, run, o.max_ops),
                        o.distribution);
}

/// Runs [first, last) in a child; returns the run that failed or crashed, if one did.
std::optional<std::size_t> run_batch(const RandomCheckOptions& o, std::size_t first,
                                     std::size_t last) {
  const auto runs = [&](const ChildPipe& parent) {
    for (std::size_t run = first; run < last; ++run) {
      parent.progress(run + 1);  // (so that if it crashes the parent knows which run did)
      Session session(o.collectors, o.collector_options);
      session.run(trace_of(o, run));
      if (!session.violations().empty()) return kFoundOne;
    }
    return 0;
  };
  const ChildEnd end = run_in_child("a batch of traces", runs);
  if (end.exited_cleanly()) return std::nullopt;
  return end.progress == 0 ? first : static_cast<std::size_t>(end.progress - 1);
}

}  // namespace

std::uint64_t trace_seed(std::uint64_t seed, std::size_t run) {
  return splitmix(seed * 0x100000001b3ull + run);
}

std::size_t trace_length(std::uint64_t seed, std::size_t run, std::size_t max_ops) {
  const std::size_t size = std::min(max_ops, 10 + run * max_ops / 100);
  return 1 + splitmix(trace_seed(seed, run)) % std::max<std::size_t>(size, 1);
}

std::optional<RandomCheckFinding> random_check(const RandomCheckOptions& o,
                                               const std::function<void(std::size_t)>& progress) {
  const auto start = std::chrono::steady_clock::now();
  const auto out_of_time = [&] {
    return o.seconds > 0 &&
           std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() >=
               o.seconds;
  };
  for (std::size_t first = 0; first < o.runs && !out_of_time(); first += kBatch) {
    const std::size_t last = std::min(o.runs, first + kBatch);
    const std::optional<std::size_t> failed = run_batch(o, first, last);
    if (progress) progress(failed ? *failed : last);
    if (!failed) continue;

    // Which collector failed, and how; then the smallest trace that fails the same way.
    RandomCheckFinding finding;
    finding.run = *failed;
    finding.trace_seed = trace_seed(o.seed, *failed);
    finding.ops = trace_length(o.seed, *failed, o.max_ops);
    const Trace trace = trace_of(o, *failed);
    for (const CollectorEntry& c : o.collectors) {
      const Outcome outcome = run_isolated(trace, c, o.collector_options);
      if (outcome.kind == Outcome::Kind::Pass) continue;
      finding.collector = c.name;
      finding.outcome = outcome;
      MinimizeBudget budget(o.minimize_seconds);
      finding.minimal = minimize_trace(
          trace,
          [&](const Trace& candidate) {
            return run_isolated(candidate, c, o.collector_options) == outcome;
          },
          budget);
      finding.minimized_fully = !budget.ran_out();
      return finding;
    }
    // Only the collectors together fail: a disagreement between them. Keep the whole trace.
    finding.collector = "(the collectors together)";
    finding.outcome = {Outcome::Kind::Violation, ViolationKind::Disagreement, 0};
    finding.minimal = trace;
    return finding;
  }
  return std::nullopt;
}

}  // namespace cyclefuzz
