// cyclefuzz minimize: the smallest trace that still fails the same way (the same signature:
// runners/isolated_run.h) on the same collector. Every candidate runs in a child process, so a
// collector that crashes is as easy to minimize as one that breaks a rule.
#include <fstream>
#include <iostream>
#include <memory>

#include "runners/isolated_run.h"
#include "runners/minimize.h"
#include "runners/random_check.h"
#include "tools/cyclefuzz/collector_choice.h"
#include "tools/cyclefuzz/commands.h"
#include "tools/cyclefuzz/progress.h"

namespace cyclefuzz::cli {

namespace {

struct MinimizeOptions {
  std::string trace;
  std::string output;
  double seconds = 600;
  CollectorChoice choice;
  std::vector<std::string> known;  // traces whose failures are known: those are not minimized
};

int minimize(const MinimizeOptions& o) {
  Trace trace;
  std::vector<CollectorEntry> collectors;
  std::vector<Trace> known_traces;
  try {
    trace = load_trace(o.trace);
    collectors = o.choice.collectors();
    known_traces = load_traces(o.known);
  } catch (const std::exception& e) {
    std::cerr << "cyclefuzz minimize: " << e.what() << "\n";
    return kBadInput;
  }
  const CollectorOptions options = o.choice.options();
  // The target: the first collector (in the order given) that fails, and how.
  const CollectorEntry* failing = nullptr;
  Signature target;
  for (const CollectorEntry& c : collectors) {
    target = signature_of(trace, c, options);
    if (target.outcome.kind != Outcome::Kind::Pass) {
      failing = &c;
      break;
    }
  }
  if (failing == nullptr) {
    std::cerr << "cyclefuzz minimize: " << o.trace
              << ": every selected collector passes; nothing to minimize\n";
    return kBadInput;
  }
  const std::vector<KnownFailure> known = known_failures(known_traces, {*failing}, options);
  if (const std::size_t k = find_known(known, target); k < known.size()) {
    std::cout << "known: " << describe(target) << " (" << known[k].source << ")\n";
    return kKnown;
  }
  std::cerr << "minimizing " << trace.ops.size() << " ops: " << describe(target) << "\n";
  std::size_t tried = 0;
  MinimizeBudget budget(o.seconds);
  const Trace minimal = minimize_failure(trace, *failing, options, target, budget, &tried);
  const std::string stopped =
      budget.ran_out() ? "; stopped after " + duration_text(o.seconds) + ": maybe not minimal" : "";
  const std::string text = "# " + describe(target.outcome) + " on " + failing->name +
                           ": minimized from " + o.trace + " (" +
                           std::to_string(trace.ops.size()) + " ops to " +
                           std::to_string(minimal.ops.size()) + ", " + std::to_string(tried) +
                           " runs" + stopped + ")\n# signature: " + describe(target) + "\n" +
                           to_text(minimal);
  if (o.output.empty()) {
    std::cout << text;
  } else if (!(std::ofstream(o.output) << text)) {
    std::cerr << "cyclefuzz minimize: cannot write " << o.output << "\n";
    return kBadInput;
  }
  std::cerr << (budget.ran_out() ? "smaller trace (time is up: maybe not minimal): "
                                 : "minimal trace: ")
            << minimal.ops.size() << " ops\n";
  return kViolation;
}

}  // namespace

Subcommand add_minimize(CLI::App& app) {
  auto options = std::make_shared<MinimizeOptions>();
  CLI::App* sub = app.add_subcommand(
      "minimize",
      "Shrink a failing trace to a minimal one that fails the same way (the same signature) on "
      "the same collector, by delta debugging over operations; always a valid trace. Exit 1 when "
      "it produced one, 2 when the trace does not fail, 3 when it fails as a --known trace does.");
  sub->add_option("trace", options->trace, "A trace that fails on some collector")->required();
  sub->add_option("-o,--output", options->output, "Write the minimal trace here (else stdout)");
  sub->add_option("--seconds", options->seconds,
                  "Stop after this long with the smallest trace found so far (default 600)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--known", options->known,
                  "A trace (or a folder of them) whose failure is known: a trace failing the same "
                  "way is not minimized (exit 3; repeat for several)");
  options->choice.add_options(*sub);
  return {sub, [options] { return minimize(*options); }};
}

}  // namespace cyclefuzz::cli
