// cyclefuzz replay FILE|DIR...: runs traces on collectors and reports every violation.
#include <iostream>
#include <memory>

#include "tools/cyclefuzz/progress.h"
#include "oracle/report.h"
#include "tools/cyclefuzz/collector_choice.h"
#include "tools/cyclefuzz/commands.h"

namespace cyclefuzz::cli {

namespace {

struct ReplayOptions {
  std::vector<std::string> paths;
  CollectorChoice choice;
  bool json = false;
  bool check_invariants = false;
  std::size_t max_objects = TraceLimits{}.max_objects;
};

int replay(const ReplayOptions& o) {
  std::vector<CollectorEntry> collectors;
  std::vector<Trace> traces;
  try {
    collectors = o.choice.collectors();
    TraceLimits limits;
    limits.max_objects = o.max_objects;
    // Every trace is checked whole before anything runs.
    for (const auto& path : expand_trace_paths(o.paths)) traces.push_back(load_trace(path, limits));
  } catch (const std::exception& e) {
    std::cerr << "cyclefuzz replay: " << e.what() << "\n";
    return kBadInput;
  }
  if (traces.empty()) {
    std::cerr << "cyclefuzz replay: no .trace files in the given paths\n";
    return kBadInput;
  }

  CheckOptions checks;
  checks.check_invariants = kCheckedBuild || o.check_invariants;
  checks.record_frees = o.json;
  VerdictTable table;
  nlohmann::json reports = nlohmann::json::array();
  bool failed = false;
  Progress progress("traces", {.runs = traces.size()});
  for (const Trace& trace : traces) {
    Session session(collectors, o.choice.options(), checks);
    session.run(trace);
    failed = failed || !session.violations().empty();
    progress.clear();  // the report must not be written into the progress line
    if (o.json) {
      reports.push_back(trace_report(trace, session, true));
    } else {
      print_trace_result(std::cout, trace, session);
    }
    table.add(session);
    progress.advance(1, session.violations().size());
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
                "Print the JSON report (schema in the README) instead of text; it also lists "
                "each collector's frees at each operation");
  sub->add_flag("--check-invariants", options->check_invariants,
                "Run each collector's check_invariants() after every operation (always on in "
                "checked builds)");
  sub->add_option("--max-objects", options->max_objects, "Refuse traces with more objects")
      ->capture_default_str();
  return {sub, [options] { return replay(*options); }};
}

}  // namespace cyclefuzz::cli
