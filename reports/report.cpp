#include "reports/report.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <iomanip>

namespace cyclefuzz {

namespace {

constexpr std::size_t kObjectsShown = 10;

std::string join(const std::vector<ObjectId>& objects, const Names& names, const char* between,
                 std::size_t limit = SIZE_MAX) {
  std::string out;
  for (std::size_t i = 0; i < objects.size() && i < limit; ++i) {
    if (i > 0) out += between;
    out += names[objects[i]];
  }
  if (objects.size() > limit) {
    out += " and " + std::to_string(objects.size() - limit) + " more";
  }
  return out;
}

std::vector<std::string> named(const std::vector<ObjectId>& objects, const Names& names) {
  std::vector<std::string> out;
  out.reserve(objects.size());
  for (ObjectId x : objects) out.push_back(names[x]);
  return out;
}

/// `text` as one word for a POSIX shell: as it is when nothing in it is special, else quoted.
std::string shell_quoted(const std::string& text) {
  const bool plain = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           (c != '\0' && std::strchr("_-./=:,+@%", c) != nullptr);
  });
  if (plain) return text;
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

}  // namespace

std::string where(const Trace& trace, std::size_t op_index) {
  std::string text = "op " + std::to_string(op_index + 1) + " (";
  if (const std::uint32_t line = trace.line_of(op_index)) {
    text += "line " + std::to_string(line) + ": ";
  }
  return text + show(trace.ops[op_index], trace) + ")";
}

void print_violation(std::ostream& out, const Trace& trace, const Session& session,
                     const Violation& v) {
  const Names& names = trace.names;
  const std::string& collector = session.collector_name(v.collector);
  if (v.kind == ViolationKind::Disagreement) {
    out << collector << " and " << session.collector_name(v.other) << " disagree after "
        << where(trace, v.op_index) << ":\n  " << join(v.objects, names, ", ", kObjectsShown)
        << " " << v.detail << "\n";
    return;
  }
  out << collector << ": " << describe(v.kind) << " after " << where(trace, v.op_index) << "\n";
  switch (v.kind) {
    case ViolationKind::PrematureFree:
      out << "  " << join(v.objects, names, ", ", kObjectsShown) << " " << v.detail;
      if (!v.path.empty()) {
        const std::string start = v.detail == kFreedWhileReachable ? "root " + names[v.path.front()] + " -> "
                                  : v.detail == kFreedWhileListed  ? "list -> "
                                                                   : "";
        out << ": " << start << join(v.path, names, " -> ");
      }
      out << "\n";
      break;
    case ViolationKind::Leak:
      out << "  " << join(v.objects, names, ", ", kObjectsShown) << " " << v.detail;
      if (!v.cycle.empty()) {
        out << "; held by the cycle " << join(v.cycle, names, " -> ");
        if (v.path.size() > 1) out << " through " << join(v.path, names, " -> ");
      } else {
        out << "; no cycle holds " << names[v.objects.front()];
      }
      out << "\n";
      break;
    default:
      out << "  ";
      if (!v.objects.empty()) out << join(v.objects, names, ", ", kObjectsShown) << ": ";
      out << v.detail;
      for (WeakId w : v.weak) out << " (weak reference " << trace.weak_names[w] << ")";
      out << "\n";
      break;
  }
}

std::string selection_flags(const CollectorEntry& collector) {
  return collector.plugin_path.empty() ? "--collector " + shell_quoted(collector.name)
                                       : "--plugin " + shell_quoted(collector.plugin_path);
}

std::string explain_command(const std::string& trace_file, const CollectorEntry& collector,
                            const CollectorOptions& options, ExplainAs as) {
  std::string picture = std::filesystem::path(trace_file).stem().string() + "-" + collector.name;
  // The picture's name is made safe to type; only the trace's own name is quoted.
  for (char& c : picture) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '_';
  }
  // A file name that starts with '-' would read as an option.
  const std::string file = trace_file.starts_with('-') ? "./" + trace_file : trace_file;
  std::string command =
      "cyclefuzz explain " + shell_quoted(file) + " " + selection_flags(collector);
  const CollectorOptions defaults;
  if (!std::equal(std::begin(options.thresholds), std::end(options.thresholds),
                  std::begin(defaults.thresholds))) {
    command += " --thresholds " + std::to_string(options.thresholds[0]) + "," +
               std::to_string(options.thresholds[1]) + "," +
               std::to_string(options.thresholds[2]);
  }
  return command + (as == ExplainAs::Svg ? " --svg " + picture + ".svg"
                                         : " --html " + picture + ".html");
}

std::optional<std::string> explain_command(const Trace& trace, const Session& session,
                                           const Violation& violation, ExplainAs as) {
  if (trace.lines.empty()) return std::nullopt;
  return explain_command(trace.source, session.collector_entry(violation.collector),
                         session.collector_options(), as);
}

void print_trace_result(std::ostream& out, const Trace& trace, const Session& session) {
  out << trace.source << ": " << trace.ops.size() << " ops: ";
  std::vector<std::string> failed;
  for (std::size_t i = 0; i < session.collector_count(); ++i) {
    if (const Violation* v = session.first_violation(i)) {
      failed.push_back(session.collector_name(i) + " " + describe(v->kind));
    }
  }
  if (session.violations().empty()) {
    out << "pass\n";
    return;
  }
  if (failed.empty()) failed.push_back("collectors disagree");
  for (std::size_t i = 0; i < failed.size(); ++i) out << (i ? ", " : "") << failed[i];
  out << "\n";
  std::optional<std::string> last_command;
  for (const Violation& v : session.violations()) {
    out << "  ";
    print_violation(out, trace, session, v);
    // Several violations at one op draw the same picture: name its command once.
    const auto command = explain_command(trace, session, v);
    if (command && command != last_command) {
      out << "  draw it: " << *command << "\n"
          << "  step through it: " << *explain_command(trace, session, v, ExplainAs::Html)
          << "\n";
    }
    last_command = command;
  }
}

std::string verdict(const Session& session, std::size_t i) {
  const Violation* v = session.first_violation(i);
  return v ? describe(v->kind) : "pass";
}


void VerdictTable::add(const std::string& collector, const std::string& verdict) {
  if (rows_.count(collector) == 0) order_.push_back(collector);
  Row& row = rows_[collector];
  ++row.traces;
  if (verdict == "pass") {
    ++row.passed;
  } else {
    ++row.failures[verdict];
  }
}

void VerdictTable::print(std::ostream& out) const {
  std::size_t width = 9;
  for (const std::string& name : order_) width = std::max(width, name.size());
  out << std::left << std::setw(static_cast<int>(width + 2)) << "collector" << std::right
      << std::setw(7) << "traces" << std::setw(7) << "pass" << "  verdict\n";
  for (const std::string& name : order_) {
    const Row& row = rows_.at(name);
    out << std::left << std::setw(static_cast<int>(width + 2)) << name << std::right
        << std::setw(7) << row.traces << std::setw(7) << row.passed << "  ";
    if (row.failures.empty()) {
      out << "pass";
    } else {
      bool first = true;
      for (const auto& [kind, count] : row.failures) {
        out << (first ? "" : ", ") << kind << " x" << count;
        first = false;
      }
    }
    out << "\n";
  }
}

nlohmann::json trace_report(const Trace& trace, const Session& session, bool with_frees) {
  using nlohmann::json;
  const Names& names = trace.names;
  json collectors = json::array();
  for (std::size_t i = 0; i < session.collector_count(); ++i) {
    const Violation* v = session.first_violation(i);
    json c = {{"name", session.collector_name(i)}, {"verdict", v ? slug(v->kind) : "pass"}};
    if (with_frees) {
      json frees = json::array();
      for (const auto& op_frees : session.frees_per_op(i)) frees.push_back(named(op_frees, names));
      c["frees"] = std::move(frees);
    }
    collectors.push_back(std::move(c));
  }
  json violations = json::array();
  for (const Violation& v : session.violations()) {
    violations.push_back(violation_report(trace, session, v));
  }
  return {{"file", trace.source},
          {"ops", trace.ops.size()},
          {"ops_run", session.ops_run()},
          {"collectors", std::move(collectors)},
          {"violations", std::move(violations)}};
}

nlohmann::json violation_report(const Trace& trace, const Session& session, const Violation& v) {
  using nlohmann::json;
  const Names& names = trace.names;
  json j = {{"kind", slug(v.kind)},
            {"collector", session.collector_name(v.collector)},
            {"op", v.op_index + 1},
            {"operation", show(trace.ops[v.op_index], trace)},
            {"objects", named(v.objects, names)},
            {"path", named(v.path, names)},
            {"cycle", named(v.cycle, names)},
            {"detail", v.detail}};
  j["weak_references"] = json::array();
  for (WeakId w : v.weak) j["weak_references"].push_back(trace.weak_names[w]);
  j["line"] = trace.line_of(v.op_index) ? json(trace.line_of(v.op_index)) : json(nullptr);
  j["other"] = v.kind == ViolationKind::Disagreement ? json(session.collector_name(v.other))
                                                     : json(nullptr);
  const auto command = explain_command(trace, session, v);
  j["explain"] = command ? json(*command) : json(nullptr);
  const auto html = explain_command(trace, session, v, ExplainAs::Html);
  j["explain_html"] = html ? json(*html) : json(nullptr);
  return j;
}

nlohmann::json report_document(nlohmann::json trace_reports) {
  return {{"version", kReportVersion}, {"traces", std::move(trace_reports)}};
}

}  // namespace cyclefuzz
