#include "properties/property_run.h"

#include <rapidcheck.h>
#include <rapidcheck/state.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "reports/report.h"
#include "properties/heap_model.h"

namespace cyclefuzz::properties {

namespace {

/// The collector every property compares agreement against: the simplest correct one.
constexpr const char* kBaseline = "mark-sweep";
constexpr const char* kSecondBaseline = "trial-deletion";

std::string& counterexample_text() {
  static std::string text;
  return text;
}

std::string as_comments(const std::string& text) {
  std::string out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out += "# " + line + "\n";
  return out;
}

std::string file_safe(std::string name) {
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') c = '-';
  }
  return name;
}

}  // namespace

CollectorOptions property_collector_options() {
  CollectorOptions options;
  options.thresholds[0] = 9;
  options.thresholds[1] = 4;
  options.thresholds[2] = 3;
  return options;
}

PropertyRun::PropertyRun(const Property& property, const CollectorEntry& collector)
    : property_(property), collector_(collector.name) {
  std::vector<CollectorEntry> lanes(static_cast<std::size_t>(property.copies), collector);
  if (property.with_baseline) {
    const char* baseline = collector.name == kBaseline ? kSecondBaseline : kBaseline;
    lanes.push_back(*find_collector(baseline));
  }
  CheckOptions checks;
  checks.check_invariants = false;  // a property fails only on its own kind of violation
  checks.record_frees = true;
  checks.walk_every_collection = true;  // a property fails at its op
  checks.reported = property.reported;
  session_ = std::make_unique<Session>(lanes, property_collector_options(), checks);
  if (property.observer) observer_ = property.observer();
  trace_.source = property.name + " on " + collector.name;
}

void PropertyRun::step(const Op& op, const Op& labeled) {
  if (op.kind == OpKind::New || op.kind == OpKind::Build) {
    trace_.names.push_back(label_name(labeled.a));
    for (std::uint32_t k = 1; k < objects_made(op); ++k) {
      trace_.names.push_back(Names::member(label_name(labeled.a), k));
    }
  }
  for (const Step& step : labeled.steps) {
    if (step.kind == StepKind::New) trace_.names.push_back(label_name(step.a));
  }
  trace_.ops.push_back(op);
  if (observer_) observer_->before(*session_, op);
  session_->step(op);
  if (!session_->violations().empty()) {
    const Violation& v = session_->violations().front();
    fail(std::string(describe(v.kind)) + " on " + session_->collector_name(v.collector));
  }
  if (observer_) {
    const std::string what = observer_->after(*session_, trace_, op);
    if (!what.empty()) fail(what);
  }
}

// Every failing case of a property is written out; RapidCheck's last failing case is its minimal
// one, so the file and last_counterexample() end up holding the shrunk trace.
void PropertyRun::fail(const std::string& what) {
  std::ostringstream report;
  print_trace_result(report, trace_, *session_);
  std::string text = "# " + property_.name + " fails on " + collector_ + ": " + what + "\n" +
                     "# found by the property tests (properties/); replay with\n" +
                     "#   cyclefuzz replay THIS_FILE --collector " + collector_ + "\n" +
                     to_text(trace_) + "# what the checker said:\n" + as_comments(report.str());
  counterexample_text() = text;
  const std::filesystem::path dir = "counterexamples";
  std::filesystem::create_directories(dir);
  const auto file = dir / (file_safe(property_.name + "-" + collector_) + ".trace");
  std::ofstream(file) << text;
  RC_LOG() << "\nMinimal counterexample (also in " << std::filesystem::absolute(file).string()
           << "; save it into corpus/regressions/ with a first comment saying what it caught):\n"
           << text;
  RC_FAIL(what);
}

bool check_property(const Property& property, const CollectorEntry& collector, int budget) {
  const auto body = [&] {
    PropertyRun run(property, collector);
    rc::state::check(HeapModel{}, run, rc::state::gen::execOneOfWithArgs<HeapCommand>());
  };
  const std::string description = property.name + " on " + collector.name;
  if (budget == 1) return rc::check(description, body);
  // rc::check with the configured parameters but more cases (RapidCheck's own steps).
  rc::detail::TestParams params = rc::detail::configuration().testParams;
  params.maxSuccess *= budget;
  std::cerr << "\n- " << description << " (" << params.maxSuccess << " cases)\n";
  const rc::detail::TestResult result =
      rc::detail::checkProperty(rc::detail::toProperty(body), {description, description}, params);
  rc::detail::printResultMessage(result, std::cerr);
  std::cerr << "\n";
  return result.is<rc::detail::SuccessResult>();
}

const std::string& last_counterexample() { return counterexample_text(); }

}  // namespace cyclefuzz::properties
