// cyclefuzz replay FILE|DIR...: runs traces on collectors and reports every violation.
#include <iostream>
#include <memory>

#include "tools/cyclefuzz/progress.h"
#include "runners/isolated_run.h"
#include "reports/report.h"
#include "tools/cyclefuzz/collector_choice.h"
#include "tools/cyclefuzz/commands.h"

namespace cyclefuzz::cli {

namespace {

struct ReplayOptions {
  std::vector<std::string> paths;
  CollectorChoice choice;
  bool json = false;
  bool check_invariants = false;
  bool invariants_every_op = false;
  std::size_t max_objects = TraceLimits{}.max_objects;
};

/// A collector that crashed in its child: where, and the trace up to there.
void print_crash(std::ostream& out, const Trace& trace, const std::string& collector,
                 const IsolatedReplay& run) {
  const std::size_t at = run.ops_started == 0 ? 0 : run.ops_started - 1;
  out << trace.source << ": " << trace.ops.size() << " ops: " << collector << " "
      << describe(run.outcome) << "\n  " << collector << ": " << describe(run.outcome)
      << (run.ops_started == 0 ? std::string(" before the first op")
                               : " during " + where(trace, at))
      << "\n  the trace up to it:\n";
  for (std::size_t i = 0; i < run.ops_started && i < trace.ops.size(); ++i) {
    out << "    " << show(trace.ops[i], trace) << "\n";
  }
}

/// Adds a child's report of the same trace to this trace's report.
void merge_report(nlohmann::json& report, const nlohmann::json& child) {
  if (report.is_null()) {
    report = child;
    return;
  }
  for (const auto& c : child["collectors"]) report["collectors"].push_back(c);
  for (const auto& v : child["violations"]) report["violations"].push_back(v);
}

/// Adds a crash to this trace's report: the collector's verdict is "crash".
void merge_crash(nlohmann::json& report, const Trace& trace, const std::string& collector,
                 const IsolatedReplay& run) {
  nlohmann::json crashed = {{"file", trace.source},
                            {"ops", trace.ops.size()},
                            {"ops_run", run.ops_started},
                            {"collectors", {{{"name", collector}, {"verdict", "crash"}}}},
                            {"violations", nlohmann::json::array()},
                            {"crash", {{"collector", collector},
                                       {"op", run.ops_started},
                                       {"how", describe(run.outcome)}}}};
  merge_report(report, crashed);
  if (!report.contains("crash")) report["crash"] = crashed["crash"];
}

int replay(const ReplayOptions& o) {
  std::vector<CollectorEntry> collectors;
  std::vector<Trace> traces;
  try {
    collectors = o.choice.collectors();
    TraceLimits limits;
    limits.max_objects = o.max_objects;
    // Every trace is checked whole before anything runs.
    traces = load_traces(o.paths, limits);
  } catch (const std::exception& e) {
    std::cerr << "cyclefuzz replay: " << e.what() << "\n";
    return kBadInput;
  }
  if (traces.empty()) {
    std::cerr << "cyclefuzz replay: no .trace files in the given paths\n";
    return kBadInput;
  }

  CheckOptions checks;
  checks.check_invariants = kCheckedBuild || o.check_invariants || o.invariants_every_op;
  checks.invariants_every_op = o.invariants_every_op;
  checks.walk_every_collection = kCheckedBuild || o.invariants_every_op;
  checks.record_frees = o.json;
  VerdictTable table;
  nlohmann::json reports = nlohmann::json::array();
  bool failed = false;
  Progress progress("traces", {.runs = traces.size()});
  for (const Trace& trace : traces) {
    std::size_t found = 0;
    nlohmann::json report;
    // Every collector runs in a child process (runners/isolated_run.h).
    for (const auto& [group, run] :
         replay_in_children(trace, collectors, o.choice.options(), checks)) {
      progress.clear();  // the report must not be written into the progress line
      if (run.outcome.kind == Outcome::Kind::Crash) {
        ++found;
        table.add(group[0].name, "crash");
        print_crash(std::cout, trace, group[0].name, run);
        if (o.json) merge_crash(report, trace, group[0].name, run);
        continue;
      }
      // (A disagreement between collectors is a violation of neither alone.)
      found += run.outcome.kind != Outcome::Kind::Pass;
      for (std::size_t i = 0; i < group.size(); ++i) table.add(group[i].name, run.verdicts[i]);
      if (o.json) {
        merge_report(report, nlohmann::json::parse(run.json));
      } else {
        std::cout << run.text;
      }
    }
    if (o.json) reports.push_back(std::move(report));
    failed = failed || found > 0;
    progress.advance(1, found);
  }
  progress.clear();
  if (o.json) {
    std::cout << report_document(std::move(reports)).dump(2) << "\n";
  } else {
    std::cout << "\n";
    table.print(std::cout);
  }
  return failed ? kViolation : kPass;
}

}  // namespace

Subcommand add_replay(CLI::App& app) {
  auto options = std::make_shared<ReplayOptions>();
  CLI::App* sub = app.add_subcommand(
      "replay",
      "Run traces on every selected collector, checking each against the oracle after every "
      "operation. Exit 0 all pass, 1 a violation, 2 bad input.");
  sub->add_option("paths", options->paths, "Trace files, or directories searched for *.trace")
      ->required();
  options->choice.add_options(*sub);
  sub->add_flag("--json", options->json,
                "Print the JSON report (schema in docs/json-report.md) instead of text; it also lists "
                "each collector's frees at each operation");
  sub->add_flag("--check-invariants", options->check_invariants,
                "Check each collector's own invariants after every operation: its whole heap "
                "after collections, else the objects the operation touched (always on in "
                "checked builds)");
  sub->add_flag("--invariants-every-op", options->invariants_every_op,
                "Walk each collector's whole heap for its invariants after every operation, "
                "and every record after every collection (slow on long traces)");
  sub->add_option("--max-objects", options->max_objects, "Refuse traces with more objects")
      ->capture_default_str();
  return {sub, [options] { return replay(*options); }};
}

}  // namespace cyclefuzz::cli
