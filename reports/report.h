// What a run says: readable reports for people, JSON for machines.
#pragma once

#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "checker/session.h"
#include "language/trace.h"

namespace cyclefuzz {

/// "op 5 (line 7: unroot a)": where in the trace a violation was found.
std::string where(const Trace& trace, std::size_t op_index);

/// One violation, readably: the kind, where, the objects, the path or cycle that explains it.
void print_violation(std::ostream& out, const Trace& trace, const Session& session,
                     const Violation& violation);

/// One line per trace ("file: N ops: pass" or which collectors failed), then each violation.
void print_trace_result(std::ostream& out, const Trace& trace, const Session& session);

/// The collector x verdict table over all traces of a replay.
/// Collector i's verdict on the session's trace: "pass", or the kind of its first violation.
std::string verdict(const Session& session, std::size_t i);

class VerdictTable {
 public:
  /// One collector's verdict on one trace ("pass", or what went wrong).
  void add(const std::string& collector, const std::string& verdict);
  void print(std::ostream& out) const;

 private:
  struct Row {
    std::size_t traces = 0, passed = 0;
    std::map<std::string, std::size_t> failures;  // by kind
  };
  std::vector<std::string> order_;
  std::map<std::string, Row> rows_;
};

/// The command-line words that choose a collector: `--collector NAME`, or `--plugin PATH` for
/// a plug-in, quoted for a shell.
std::string selection_flags(const CollectorEntry& collector);

/// How `cyclefuzz explain` shows a violation: a picture, or a page that steps through the trace.
enum class ExplainAs { Svg, Html };

/// The command that draws a collector's heap at its first violation in a trace file, e.g.
/// `cyclefuzz explain t.trace --collector generational --svg t-generational.svg` (or `--html
/// t-generational.html`); it carries the collector settings that differ from the defaults, so the
/// picture shows the same run.
std::string explain_command(const std::string& trace_file, const CollectorEntry& collector,
                            const CollectorOptions& options, ExplainAs as = ExplainAs::Svg);

/// The command that draws `violation`, or nothing when the trace was not read from a file (a
/// generated trace has no file to name: save it first).
std::optional<std::string> explain_command(const Trace& trace, const Session& session,
                                           const Violation& violation,
                                           ExplainAs as = ExplainAs::Svg);

// ---- JSON: the one schema for replay, check and fuzz findings (docs/json-report.md) ----------

/// The schema's version: it goes up when a field is removed or changes meaning; new fields may
/// appear without a new version, so readers should ignore fields they do not know.
inline constexpr int kReportVersion = 1;

/// One violation as a JSON object.
nlohmann::json violation_report(const Trace& trace, const Session& session,
                                const Violation& violation);

/// The JSON report of one trace's run.
nlohmann::json trace_report(const Trace& trace, const Session& session, bool with_frees);

/// The whole document: the schema version and the reports of each trace.
nlohmann::json report_document(nlohmann::json trace_reports);

}  // namespace cyclefuzz
