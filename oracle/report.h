// What a run says: readable reports for people, JSON for machines.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "oracle/checker.h"
#include "oracle/trace.h"

namespace cyclefuzz {

/// "op 5 (line 7: unroot a)": where in the trace a violation was found.
std::string where(const Trace& trace, std::size_t op_index);

/// One violation, readably: the kind, where, the objects, the path or cycle that explains it.
void print_violation(std::ostream& out, const Trace& trace, const Session& session,
                     const Violation& violation);

/// One line per trace ("file: N ops: pass" or which collectors failed), then each violation.
void print_trace_result(std::ostream& out, const Trace& trace, const Session& session);

/// The collector x verdict table over all traces of a replay.
class VerdictTable {
 public:
  void add(const Session& session);
  void print(std::ostream& out) const;

 private:
  struct Row {
    std::size_t traces = 0, passed = 0;
    std::map<std::string, std::size_t> failures;  // by kind
  };
  std::vector<std::string> order_;
  std::map<std::string, Row> rows_;
};

/// The JSON report of one trace's run (schema in the README, "JSON report").
nlohmann::json trace_report(const Trace& trace, const Session& session, bool with_frees);

}  // namespace cyclefuzz
