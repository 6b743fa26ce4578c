#include "runners/isolated_run.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <map>
#include <optional>
#include <sstream>

#include "reports/report.h"
#include "runners/child_process.h"

namespace cyclefuzz {

namespace {

constexpr std::string_view kWork = "a collector in isolation";

// A child exits with kViolationBase + kind for a violation and 0 for a pass; anything else
// (a signal, a sanitizer's exit status) is a crash.
constexpr int kViolationBase = 40;

// What a replaying child tells its parent: how many ops it has started, before each (its
// progress), so that a crash is pinned to the last; then its reports, which only the child can
// write (the session is its own).
constexpr char kTextReport = 'T';
constexpr char kJsonReport = 'J';
constexpr char kVerdict = 'V';
constexpr char kViolationDetail = 'D';  // a signature's child: its violation's detail

/// How a child ended, as an Outcome (a crash by a signal is a negative status).
Outcome outcome_of(const ChildEnd& end) {
  if (end.signal != 0) return {Outcome::Kind::Crash, {}, -end.signal};
  const int code = end.exit_status;
  if (code == 0) return {};
  if (code >= kViolationBase && code < kViolationBase + kViolationKinds) {
    return {Outcome::Kind::Violation, static_cast<ViolationKind>(code - kViolationBase), 0};
  }
  return {Outcome::Kind::Crash, {}, code};
}

/// A child's exit status for its first violation, if any.
int exit_code(const Violation* first) {
  return first == nullptr ? 0 : kViolationBase + static_cast<int>(first->kind);
}

}  // namespace

std::string describe(const Outcome& outcome) {
  switch (outcome.kind) {
    case Outcome::Kind::Pass:
      return "pass";
    case Outcome::Kind::Violation:
      return describe(outcome.violation);
    case Outcome::Kind::Crash:
      return "crash (" + std::string(outcome.status < 0 ? "signal " : "exit status ") +
             std::to_string(outcome.status < 0 ? -outcome.status : outcome.status) + ")";
  }
  return "?";
}

IsolatedReplay replay_isolated(const Trace& trace, const std::vector<CollectorEntry>& collectors,
                               const CollectorOptions& options, const CheckOptions& checks) {
  const auto replay = [&](const ChildPipe& parent) {
    Session session(collectors, options, checks);
    const auto running = [&session] {
      for (std::size_t i = 0; i < session.collector_count(); ++i) {
        if (!session.retired(i)) return true;
      }
      return false;
    };
    for (std::size_t i = 0; i < trace.ops.size() && running(); ++i) {
      parent.progress(i + 1);
      session.step(trace.ops[i]);
    }
    session.finish();
    std::ostringstream text;
    print_trace_result(text, trace, session);
    parent.send(kTextReport, 0, text.str());
    parent.send(kJsonReport, 0, trace_report(trace, session, checks.record_frees).dump());
    for (std::size_t i = 0; i < session.collector_count(); ++i) {
      parent.send(kVerdict, i, verdict(session, i));
    }
    return exit_code(session.violations().empty() ? nullptr : &session.violations().front());
  };
  IsolatedReplay result;
  const auto receive = [&](ChildMessage message) {
    switch (message.tag) {
      case kTextReport:
        result.text = std::move(message.payload);
        break;
      case kJsonReport:
        result.json = std::move(message.payload);
        break;
      case kVerdict:
        result.verdicts.push_back(std::move(message.payload));
        break;
    }
  };
  const ChildEnd end = run_in_child(kWork, replay, receive);
  result.outcome = outcome_of(end);
  result.ops_started = end.progress;
  return result;
}

// ================================================================================================
// Signatures
// ================================================================================================

namespace {

/// `text` with every run of digits as one '#'.
std::string without_numbers(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) {
      out += text[i];
    } else if (out.empty() || out.back() != '#') {
      out += '#';
    }
  }
  return out;
}

/// A frame of the sanitizer's own runtime (its interceptors, its report), which says nothing of
/// where the bug is.
bool sanitizer_frame(std::string_view frame) {
  for (std::string_view own : {"__asan", "__interceptor", "__sanitizer", "__ubsan", "__lsan",
                               "libasan", "libubsan", "libclang_rt"}) {
    if (frame.find(own) != std::string_view::npos) return true;
  }
  return false;
}

/// The function of a symbolized frame, from what follows its "in ": "NAME LOCATION", where the
/// name may have spaces ("(anonymous namespace)", template arguments) and parameters (clang's
/// reports), and the location is a source file ("../f.c:12:5") or a module ("(/lib/x.so+0x1f)",
/// maybe followed by "(BuildId: ...)"). Without its parameters and qualifiers: "a::f".
std::string_view function_of_frame(std::string_view frame) {
  frame = frame.substr(0, frame.find(" (BuildId:"));
  const std::size_t module = frame.rfind(" (");
  const std::size_t last_space = frame.rfind(' ');
  if (module != std::string_view::npos && frame.find("+0x", module) != std::string_view::npos) {
    frame = frame.substr(0, module);
  } else if (last_space != std::string_view::npos &&
             frame.find_first_of("/:", last_space) != std::string_view::npos) {
    frame = frame.substr(0, last_space);
  }
  for (std::string_view qualifier : {" const", " volatile", " &&", " &"}) {
    if (frame.ends_with(qualifier)) frame.remove_suffix(qualifier.size());
  }
  if (!frame.ends_with(')')) return frame;
  int depth = 0;  // (the parameters: from the '(' that matches the last ')')
  for (std::size_t i = frame.size(); i-- > 0;) {
    if (frame[i] == ')') ++depth;
    if (frame[i] == '(' && --depth == 0) return frame.substr(0, i);
  }
  return frame;
}

constexpr std::size_t kSiteFrames = 3;  // enough to tell the roads into a bug apart, no more

}  // namespace

std::string crash_site(std::string_view text) {
  // "==1==ERROR: AddressSanitizer: heap-use-after-free on address ...", or UBSan's
  // "collectors/x.cpp:12:5: runtime error: signed integer overflow: ...".
  const std::size_t error = text.find("Sanitizer: ");
  const std::size_t runtime_error = text.find(": runtime error: ");
  if (error == std::string_view::npos && runtime_error != std::string_view::npos) {
    const std::size_t line_start = text.rfind('\n', runtime_error) + 1;  // (npos + 1 is 0)
    std::string_view place = text.substr(line_start, runtime_error - line_start);  // file:12:5
    place = place.substr(0, place.rfind(':'));
    place.remove_prefix(std::min(place.size(), place.rfind('/') + 1));
    const std::size_t message = runtime_error + std::string_view(": runtime error: ").size();
    return "runtime error at " + std::string(place) + ": " +
           without_numbers(text.substr(message, text.find('\n', message) - message));
  }
  if (error == std::string_view::npos) return "";
  std::string_view rest = text.substr(error + 11);
  const std::string kind(rest.substr(0, std::min(rest.find(' '), rest.find('\n'))));
  // The frames of its first stack (the crash's; the free's and the allocation's may follow):
  // "    #3 0x7f12 in PyObject_ClearWeakRefs (/lib/...)", or without a symbol
  // "    #3 0x7f12  (/lib/x86_64-linux-gnu/libpython3.11.so.1.0+0x1f)".
  std::vector<std::string> frames;
  for (std::size_t at = rest.find('\n'); at != std::string_view::npos;
       at = rest.find('\n', at + 1)) {
    std::string_view line = rest.substr(at + 1, rest.find('\n', at + 1) - at - 1);
    line.remove_prefix(std::min(line.size(), line.find_first_not_of(' ')));
    if (line.empty() && !frames.empty()) break;
    if (line.size() < 2 || line[0] != '#' || line.find(" 0x") == std::string_view::npos) continue;
    line.remove_prefix(line.find(" 0x") + 3);
    line.remove_prefix(std::min(line.size(), line.find(' ')));
    line.remove_prefix(std::min(line.size(), line.find_first_not_of(' ')));
    std::string_view name;
    if (line.substr(0, 3) == "in ") {
      name = function_of_frame(line.substr(3));
    } else if (!line.empty() && line[0] == '(') {
      name = line.substr(1, line.find(')') - 1);
      name.remove_prefix(std::min(name.size(), name.rfind('/') + 1));
    }
    if (!name.empty() && !sanitizer_frame(name)) frames.emplace_back(name);
  }
  // A stack overflow's first frames are wherever the stack ran out, a callee of the recursion
  // one run and another the next: its site is the function that recurs most.
  if (kind == "stack-overflow" && !frames.empty()) {
    std::map<std::string_view, std::size_t> count;
    for (const std::string& f : frames) ++count[f];
    const auto most = std::max_element(frames.begin(), frames.end(), [&](auto& x, auto& y) {
      return count[x] < count[y];
    });
    return kind + " in " + *most;
  }
  std::string site = kind;
  for (std::size_t i = 0; i < std::min(frames.size(), kSiteFrames); ++i) {
    site += (i == 0 ? " in " : " < ") + frames[i];
  }
  return site;
}

std::string describe(const Signature& s) {
  std::string text = describe(s.outcome);
  switch (s.outcome.kind) {
    case Outcome::Kind::Pass:
      return text + " on " + s.collector;
    case Outcome::Kind::Violation:
      text += " on " + s.collector;
      break;
    case Outcome::Kind::Crash:
      text += (s.op.empty() ? "" : " during `" + s.op + "`") + " on " + s.collector;
      break;
  }
  return s.where.empty() ? text : text + ": " + s.where;
}

Signature violation_signature(std::string collector, ViolationKind kind,
                              std::string_view detail) {
  return {std::move(collector), {Outcome::Kind::Violation, kind, 0}, "", without_numbers(detail)};
}

namespace {

/// `collector` alone on `trace` as a signature sees it: walking every collection (its first
/// violation is then the same in every build), op by op until the collector is retired; its first
/// violation, if any. `before_op(i)` comes before op i.
std::optional<Violation> first_violation(const Trace& trace, const CollectorEntry& collector,
                                         const CollectorOptions& options,
                                         const std::function<void(std::size_t)>& before_op) {
  CheckOptions checks;
  checks.walk_every_collection = true;
  Session session({collector}, options, checks);
  for (std::size_t i = 0; i < trace.ops.size() && !session.retired(0); ++i) {
    before_op(i);
    session.step(trace.ops[i]);
  }
  session.finish();
  if (session.violations().empty()) return std::nullopt;
  return session.violations().front();
}

}  // namespace

Signature signature_of(const Trace& trace, const CollectorEntry& collector,
                       const CollectorOptions& options, std::string* report) {
  // The child's stderr goes to a file of the parent's: a sanitizer's report says where it crashed.
  const CapturedStderr captured;
  const auto run = [&](const ChildPipe& parent) {
    captured.redirect();
    const std::optional<Violation> violation =
        first_violation(trace, collector, options, [&](std::size_t i) { parent.progress(i + 1); });
    if (violation) parent.send(kViolationDetail, 0, violation->detail);
    return exit_code(violation ? &*violation : nullptr);
  };
  std::string detail;
  const ChildEnd end = run_in_child(kWork, run, [&](ChildMessage message) {
    detail = std::move(message.payload);
  });
  Signature s{collector.name, outcome_of(end)};
  if (s.outcome.kind == Outcome::Kind::Violation) {
    s = violation_signature(collector.name, s.outcome.violation, detail);
  } else if (s.outcome.kind == Outcome::Kind::Crash) {
    const std::string text = captured.text();
    s.where = crash_site(text);
    if (report != nullptr) *report = text;
    // (Only when the sanitizer said nothing: its frames tell more, and the same bug may crash
    // during any op that frees.)
    const std::size_t op = end.progress == 0 ? 0 : end.progress - 1;
    if (s.where.empty() && op < trace.ops.size()) s.op = keyword(trace.ops[op].kind);
  }
  return s;
}

namespace {

/// Whether candidate traces fail as `target`, a violation, does: each run as signature_of runs
/// it, but one after another in one child, which gets each as its text. A fork costs more than
/// most candidates' runs (ServingChild), and a violation's minimization never needs a candidate's
/// crash report: a crash fails otherwise, so a candidate that crashes the child is not
/// interesting, and the next starts a new child. A trace whose text does not parse back (a line
/// too long for the parser's limit) is run in a child of its own.
class FailsAsViolation {
 public:
  FailsAsViolation(const CollectorEntry& collector, const CollectorOptions& options,
                   const Signature& target)
      : collector_(collector), options_(options), target_(target) {}

  bool operator()(const Trace& candidate) {
    if (!child_) child_.emplace(kWork, [this](std::string_view text) { return serve(text); });
    const std::optional<std::string> answer = child_->ask(to_text(candidate));
    if (!answer) {
      child_.reset();
      return false;
    }
    if (*answer == kUnparsed) return signature_of(candidate, collector_, options_) == target_;
    if (*answer == kPassed) return false;
    const auto kind = static_cast<ViolationKind>((*answer)[1]);
    return violation_signature(collector_.name, kind, std::string_view(*answer).substr(2)) ==
           target_;
  }

 private:
  static constexpr std::string_view kPassed = "P";
  static constexpr std::string_view kUnparsed = "?";

  /// In the child: a candidate's first violation ('V', its kind as a char, its detail), or that
  /// it passed or did not parse.
  std::string serve(std::string_view text) {
    stderr_.redirect();  // (a crash's report: not the terminal's)
    Trace trace;
    try {
      trace = parse_trace(text, "a candidate");
    } catch (const InvalidTrace&) {
      return std::string(kUnparsed);
    }
    const std::optional<Violation> violation =
        first_violation(trace, collector_, options_, [](std::size_t) {});
    if (!violation) return std::string(kPassed);
    return std::string{'V', static_cast<char>(violation->kind)} + violation->detail;
  }

  const CollectorEntry& collector_;
  const CollectorOptions& options_;
  const Signature& target_;
  const CapturedStderr stderr_;
  std::optional<ServingChild> child_;
};

}  // namespace

Trace minimize_failure(const Trace& trace, const CollectorEntry& collector,
                       const CollectorOptions& options, const Signature& target,
                       MinimizeBudget& budget, std::size_t* runs) {
  const auto fails_so = [&](const Trace& candidate) {
    if (runs != nullptr) ++*runs;
    return signature_of(candidate, collector, options) == target;
  };
  if (target.outcome.kind == Outcome::Kind::Violation) {
    FailsAsViolation fails_as_target(collector, options, target);
    const Trace minimal = minimize_trace(
        trace,
        [&](const Trace& candidate) {
          if (runs != nullptr) ++*runs;
          return fails_as_target(candidate);
        },
        budget);
    // Confirmed in a child of its own, as every other front end runs it: a runtime keeps state
    // from one run to the next in a process (its interpreter), which may have made a difference.
    // Else it is minimized again, a child for each candidate.
    if (fails_so(minimal)) return minimal;
  }
  const Trace minimal = minimize_trace(trace, fails_so, budget);
  if (!target.where.starts_with("stack-overflow")) return minimal;
  return grow_builds(minimal, fails_so, budget);
}

std::vector<ChildReplay> replay_in_children(const Trace& trace,
                                            const std::vector<CollectorEntry>& collectors,
                                            const CollectorOptions& options,
                                            const CheckOptions& checks) {
  std::vector<std::vector<CollectorEntry>> groups(1);
  for (const CollectorEntry& c : collectors) {
    if (c.isolated) {
      groups.push_back({c});
    } else {
      groups.front().push_back(c);
    }
  }
  std::vector<ChildReplay> results;
  for (std::size_t g = 0; g < groups.size(); ++g) {
    std::vector<CollectorEntry> group = groups[g];  // (groups may grow below)
    if (group.empty()) continue;
    IsolatedReplay run = replay_isolated(trace, group, options, checks);
    if (run.outcome.kind == Outcome::Kind::Crash && group.size() > 1) {
      for (const CollectorEntry& c : group) groups.push_back({c});
      continue;
    }
    results.push_back({std::move(group), std::move(run)});
  }
  return results;
}

}  // namespace cyclefuzz
