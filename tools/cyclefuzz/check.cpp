// cyclefuzz check: random traces against the chosen collectors with every check, until one fails;
// then the failure, minimized, written to a file and printed with the seed that reproduces it.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>

#include "runners/random_check.h"
#include "reports/report.h"
#include "tools/cyclefuzz/collector_choice.h"
#include "tools/cyclefuzz/commands.h"
#include "tools/cyclefuzz/progress.h"

namespace cyclefuzz::cli {

namespace {

struct CheckCommand {
  CollectorChoice choice;
  std::uint64_t seed = 1;
  std::size_t runs = 1000;
  bool runs_given = false;  // --runs was given (else --seconds alone runs until the time is up)
  std::size_t max_ops = 200;
  Distribution distribution;
  double seconds = 0;
  double minimize_seconds = 300;
  std::string output_dir = "check-failures";
  std::vector<std::string> known;  // traces (or folders of them) whose failures are known
  bool keep_going = false;
};

std::string thresholds_flag(const CollectorOptions& o) {
  const CollectorOptions defaults;
  if (std::equal(std::begin(o.thresholds), std::end(o.thresholds), defaults.thresholds)) return "";
  return " --thresholds " + std::to_string(o.thresholds[0]) + "," +
         std::to_string(o.thresholds[1]) + "," + std::to_string(o.thresholds[2]);
}

/// The failures of the known traces on the chosen collectors, or nullopt (said on stderr) when
/// a known trace is bad input.
std::optional<std::vector<KnownFailure>> load_known(const CheckCommand& c,
                                                    const RandomCheckOptions& options) {
  std::vector<Trace> traces;
  try {
    traces = load_traces(c.known);
  } catch (const std::exception& e) {
    std::cerr << "cyclefuzz check: " << e.what() << "\n";
    return std::nullopt;
  }
  if (traces.empty() && !c.known.empty()) {
    std::cerr << "cyclefuzz check: no .trace files in the paths given to --known\n";
    return std::nullopt;
  }
  std::vector<KnownFailure> known =
      known_failures(traces, options.collectors, options.collector_options);
  if (!traces.empty()) {
    std::cerr << "cyclefuzz check: " << known.size() << " known failures in " << traces.size()
              << " known traces" << (known.empty() ? " (they pass on these collectors)" : "")
              << "\n";
  }
  return known;
}

/// Writes a finding's minimal trace to the output folder, prints it with the commands that go on
/// from it, and returns nothing: the file is the finding.
void report_finding(const CheckCommand& c, const RandomCheckOptions& options,
                    const RandomCheckFinding& finding) {
  const std::string what = describe(finding.outcome) + " on " + finding.collector;
  std::filesystem::create_directories(c.output_dir);
  std::string stem = finding.collector + "-seed" + std::to_string(c.seed) + "-run" +
                     std::to_string(finding.run);
  for (char& ch : stem) {
    if (ch == ':' || ch == '/' || ch == ' ') ch = '-';
  }
  const std::filesystem::path file = std::filesystem::path(c.output_dir) / (stem + ".trace");
  const std::string cut_short = "; minimizing stopped after " +
                                duration_text(c.minimize_seconds) + ": maybe not minimal";
  const std::string text =
      "# " + what + "\n# found by cyclefuzz check --seed " + std::to_string(c.seed) +
      " (run " + std::to_string(finding.run + 1) + ": cyclefuzz gen --seed " +
      std::to_string(finding.trace_seed) + " --ops " + std::to_string(finding.ops) +
      max_build_flag(c.distribution) + "), minimized from " + std::to_string(finding.ops) +
      " to " + std::to_string(finding.minimal.ops.size()) + " ops" +
      (finding.minimized_fully ? "" : cut_short) + "\n# signature: " +
      describe(finding.signature) + "\n" + to_text(finding.minimal);
  std::ofstream(file) << text;

  std::cerr << finding.crash_report;
  std::cout << "found " << what << " after " << finding.run + 1 << " traces (seed " << c.seed
            << ")\n  " << describe(finding.signature) << "\n"
            << (finding.minimized_fully ? "minimal" : "smaller") << " trace ("
            << finding.minimal.ops.size() << " ops" << (finding.minimized_fully ? "" : cut_short)
            << "), written to " << file.string() << ":\n";
  for (const Op& op : finding.minimal.ops) std::cout << "  " << show(op, finding.minimal) << "\n";
  // The collector that failed, chosen as it was (a plug-in by its file); none when only the
  // collectors together fail (they disagree), and then the replay takes them all.
  const auto failed = std::find_if(options.collectors.begin(), options.collectors.end(),
                                   [&](const auto& e) { return e.name == finding.collector; });
  const bool one = failed != options.collectors.end();
  std::string selection;
  for (const CollectorEntry& e : options.collectors) {
    if (!one || &e == &*failed) selection += (selection.empty() ? "" : " ") + selection_flags(e);
  }
  if (one && finding.outcome.kind == Outcome::Kind::Violation) {
    // Replay it here to print the readable report (a crash cannot be replayed in-process).
    Trace minimal = finding.minimal;
    minimal.source = file.string();
    Session session({*failed}, options.collector_options);
    session.run(minimal);
    for (const Violation& v : session.violations()) print_violation(std::cout, minimal, session, v);
  }
  if (one) {  // (explain draws a crash too: as the heap just before the op that crashed.)
    const auto draw = [&](ExplainAs as) {
      return explain_command(file.string(), *failed, options.collector_options, as);
    };
    std::cout << "draw it:   " << draw(ExplainAs::Svg) << "\n"
              << "step through it: " << draw(ExplainAs::Html) << "\n";
  }
  std::string known;
  for (const std::string& path : c.known) known += " --known " + path;
  std::cout << "replay:    cyclefuzz replay " << file.string() << " " << selection
            << thresholds_flag(options.collector_options) << "\n"
            << "reproduce: cyclefuzz check " << selection << " --seed "
            << c.seed << " --runs " << finding.run + 1 << " --max-ops " << c.max_ops
            << max_build_flag(c.distribution) << thresholds_flag(options.collector_options)
            << known << "\n"
            << "keep it:   cyclefuzz promote " << file.string()
            << " --name NAME --caught \"" << what << " (found by cyclefuzz check)\"\n";
}

int check(const CheckCommand& c) {
  RandomCheckOptions options;
  try {
    options.collectors = c.choice.collectors();
  } catch (const std::exception& e) {
    std::cerr << "cyclefuzz check: " << e.what() << "\n";
    return kBadInput;
  }
  options.collector_options = c.choice.options();
  options.seed = c.seed;
  options.max_ops = c.max_ops;
  options.distribution = c.distribution;
  options.seconds = c.seconds;
  options.minimize_seconds = c.minimize_seconds;
  options.keep_going = c.keep_going;
  // With only a time budget (no --runs, or --runs 0), run until it is spent.
  options.runs = c.seconds > 0 && (!c.runs_given || c.runs == 0) ? SIZE_MAX : c.runs;
  const std::optional<std::vector<KnownFailure>> known = load_known(c, options);
  if (!known) return kBadInput;
  options.known = *known;

  std::string names;
  for (const auto& e : options.collectors) names += (names.empty() ? "" : ", ") + e.name;
  const bool unlimited = options.runs == SIZE_MAX;
  std::cerr << "cyclefuzz check: " << names << "; seed " << c.seed << ", "
            << (unlimited ? "" : "up to " + std::to_string(options.runs) + " ")
            << "traces of up to " << c.max_ops << " ops" << max_build_flag(c.distribution)
            << (c.seconds > 0 ? (unlimited ? " for " : ", for at most ") + duration_text(c.seconds)
                              : "")
            << "\n";

  Progress progress("traces", {.runs = options.runs == SIZE_MAX ? 0 : options.runs,
                               .time = std::chrono::duration_cast<Progress::Clock::duration>(
                                   std::chrono::duration<double>(c.seconds))});
  std::size_t done = 0;
  const RandomCheckResult result = random_check(
      options,
      [&](const RandomCheckFinding& finding) {
        progress.clear();
        report_finding(c, options, finding);
      },
      [&](std::size_t runs) {
        progress.advance(runs - done, 0);
        done = runs;
      });
  progress.clear();
  if (result.new_findings == 0) {
    std::cout << "no " << (options.known.empty() ? "" : "new ") << "violation in " << result.runs
              << " traces (seed " << c.seed << ")\n";
  } else if (c.keep_going) {
    const bool one = result.new_findings == 1;
    std::cout << result.new_findings << (one ? " new finding" : " new findings") << " in "
              << result.runs << " traces (seed " << c.seed << "), each written to "
              << c.output_dir << "\n";
  }
  for (std::size_t k = 0; k < options.known.size(); ++k) {
    if (result.known_met[k] == 0) continue;
    std::cout << "known, met in " << result.known_met[k]
              << (result.known_met[k] == 1 ? " trace: " : " traces: ")
              << describe(options.known[k].signature) << " (" << options.known[k].source << ")\n";
  }
  return result.new_findings == 0 ? kPass : kViolation;
}

}  // namespace

Subcommand add_check(CLI::App& app) {
  auto c = std::make_shared<CheckCommand>();
  CLI::App* sub = app.add_subcommand(
      "check",
      "Run random traces (biased to build and abandon cycles) on the collectors with every "
      "check until one fails in a way not --known; write the minimized failure to a file and "
      "print it with the seed that reproduces it. Exit 0 none found, 1 found, 2 bad input.");
  c->choice.add_options(*sub);
  CLI::Option* runs = sub->add_option("--runs", c->runs,
                                      "Traces to run (with --seconds and no --runs, or --runs 0: "
                                      "until the time is up)")
                          ->capture_default_str();
  sub->add_option("--seed", c->seed, "Seed of the whole run")->capture_default_str();
  sub->add_option("--max-ops", c->max_ops, "Longest trace; lengths grow to it over 100 runs")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}));
  add_max_build_option(sub, c->distribution);
  sub->add_option("--seconds", c->seconds,
                  "Stop after this many seconds (alone: run traces until then)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--minimize-seconds", c->minimize_seconds,
                  "Minimizing a finding stops after this long, with the smallest trace so far")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("-o,--output-dir", c->output_dir, "Where the minimized failure is written")
      ->capture_default_str();
  sub->add_option("--known", c->known,
                  "A trace (or a folder of them, such as corpus/findings) whose failure is known: "
                  "a trace failing the same way (the same signature) is counted, and the run goes "
                  "on (repeat for several)");
  sub->add_flag("--keep-going", c->keep_going,
                "Go on after a new finding too, writing each new one once (exit 1 if any)");
  return {sub, [c, runs] {
            c->runs_given = runs->count() > 0;
            return check(*c);
          }};
}

Subcommand add_collectors(CLI::App& app) {
  auto mutants = std::make_shared<bool>(false);
  CLI::App* sub = app.add_subcommand(
      "collectors", "List the collectors --collector accepts: the built-in ones, and mutants");
  sub->add_flag("--mutants", *mutants, "List only the mutants (deliberately broken collectors)");
  return {sub, [mutants] {
            for (const CollectorEntry& e : collector_catalogue()) {
              const bool is_mutant = e.name.rfind("mutant:", 0) == 0;
              if (*mutants && !is_mutant) continue;
              std::cout << e.name << (e.in_default_set ? "  (default)" : "") << "\n    "
                        << e.summary << "\n";
            }
            return kPass;
          }};
}

}  // namespace cyclefuzz::cli
