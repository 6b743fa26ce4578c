#include "runners/random_check.h"

#include <algorithm>

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
  // (Its stderr is dropped: what a sanitizer says of a crash comes again with its signature.)
  const CapturedStderr dropped;
  const auto runs = [&](const ChildPipe& parent) {
    dropped.redirect();
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

std::vector<KnownFailure> known_failures(const std::vector<Trace>& traces,
                                         const std::vector<CollectorEntry>& collectors,
                                         const CollectorOptions& options) {
  std::vector<KnownFailure> known;
  for (const Trace& trace : traces) {
    for (const CollectorEntry& c : collectors) {
      Signature s = signature_of(trace, c, options);
      if (s.outcome.kind != Outcome::Kind::Pass) known.push_back({std::move(s), trace.source});
    }
  }
  return known;
}

std::size_t find_known(const std::vector<KnownFailure>& known, const Signature& signature) {
  return static_cast<std::size_t>(
      std::find_if(known.begin(), known.end(),
                   [&](const KnownFailure& k) { return k.signature == signature; }) -
      known.begin());
}

RandomCheckResult random_check(const RandomCheckOptions& o,
                               const std::function<void(const RandomCheckFinding&)>& on_finding,
                               const std::function<void(std::size_t)>& progress) {
  const auto start = std::chrono::steady_clock::now();
  const auto out_of_time = [&] {
    return o.seconds > 0 &&
           std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() >=
               o.seconds;
  };
  RandomCheckResult result;
  result.known_met.assign(o.known.size(), 0);
  std::vector<Signature> found;  // the new ones so far: with keep_going, each is reported once
  // Whether a failure of run `run` is new (then it is reported); a known one is counted.
  const auto is_new = [&](const Signature& s) {
    if (const std::size_t k = find_known(o.known, s); k < o.known.size()) {
      ++result.known_met[k];
      return false;
    }
    if (std::find(found.begin(), found.end(), s) != found.end()) return false;
    found.push_back(s);
    return true;
  };
  const auto hand_over = [&](const RandomCheckFinding& finding) {
    ++result.new_findings;
    if (on_finding) on_finding(finding);
  };

  while (result.runs < o.runs && !out_of_time()) {
    const std::size_t last = std::min(o.runs, result.runs + kBatch);
    const std::optional<std::size_t> failed = run_batch(o, result.runs, last);
    result.runs = failed ? *failed + 1 : last;
    if (progress) progress(result.runs);
    if (!failed) continue;

    // Which collectors fail alone, and how; each new failure, minimized: the smallest trace that
    // fails the same way, so that minimizing cannot slip from a new bug to a known one.
    const std::size_t findings_before = result.new_findings;
    RandomCheckFinding finding;
    finding.run = *failed;
    finding.trace_seed = trace_seed(o.seed, *failed);
    finding.ops = trace_length(o.seed, *failed, o.max_ops);
    const Trace trace = trace_of(o, *failed);
    bool failed_alone = false;
    for (const CollectorEntry& c : o.collectors) {
      std::string report;
      const Signature signature = signature_of(trace, c, o.collector_options, &report);
      if (signature.outcome.kind == Outcome::Kind::Pass) continue;
      failed_alone = true;
      if (!is_new(signature)) continue;
      finding.collector = c.name;
      finding.outcome = signature.outcome;
      finding.signature = signature;
      finding.crash_report = std::move(report);
      MinimizeBudget budget(o.minimize_seconds);
      finding.minimal = minimize_failure(trace, c, o.collector_options, signature, budget);
      finding.minimized_fully = !budget.ran_out();
      hand_over(finding);
    }
    if (!failed_alone) {
      // Only the collectors together fail: a disagreement between them. Keep the whole trace.
      finding.collector = "(the collectors together)";
      finding.outcome = {Outcome::Kind::Violation, ViolationKind::Disagreement, 0};
      finding.signature = {finding.collector, finding.outcome, "", ""};
      finding.minimal = trace;
      if (is_new(finding.signature)) hand_over(finding);
    }
    if (result.new_findings > findings_before && !o.keep_going) break;
  }
  return result;
}

}  // namespace cyclefuzz
