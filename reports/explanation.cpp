#include "reports/explanation.h"

#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "reports/report.h"
#include "runners/child_process.h"

namespace cyclefuzz {

namespace {

using nlohmann::json;

// What the child tells: how many ops it has started (its progress), that it begins a frame (after
// how many ops), each frame it drew, and which collector broke a rule first (its index + 1; 0 for
// none).
constexpr char kPainting = 'P';
constexpr char kFrame = 'F';
constexpr char kBroken = 'B';

json to_json(const Frame& f) {
  return {{"ops", f.ops},         {"dot", f.dot},       {"caption", f.caption},
          {"freed", f.freed},     {"violation", f.violation}, {"crash", f.crash}};
}

Frame from_json(const json& j) {
  Frame f;
  f.ops = j.at("ops").get<std::size_t>();
  f.dot = j.at("dot").get<std::string>();
  f.caption = j.at("caption").get<std::vector<std::string>>();
  f.freed = j.at("freed").get<std::vector<std::string>>();
  f.violation = j.at("violation").get<bool>();
  f.crash = j.at("crash").get<bool>();
  return f;
}

std::optional<std::size_t> first_broken(const Session& session) {
  for (std::size_t i = 0; i < session.collector_count(); ++i) {
    if (session.first_violation(i) != nullptr) return i;
  }
  return std::nullopt;
}

/// Collector i's heap after the session's last op. `crash`, when given, replaces what the caption
/// says about the op: the collector crashed during the next one.
Frame paint(const Session& session, std::size_t i, const ExplainRequest& r,
            const std::optional<std::string>& crash, bool ask_collector) {
  HeapPicture picture = picture_heap(session, i, *r.trace, r.limit, ask_collector);
  Frame f;
  f.ops = session.ops_run();
  if (crash) {
    picture.caption.erase(picture.caption.begin() + 1);  // "the heap after ...; no violation"
    picture.caption.insert(picture.caption.begin() + 1,
                           {*crash, "the heap just before that op"});
    f.crash = true;
  }
  const Violation* v = session.first_violation(i);
  f.violation = v != nullptr && v->op_index + 1 == session.ops_run();
  if (f.ops > 0) {
    for (ObjectId x : session.frees_per_op(i).back()) f.freed.push_back(r.trace->names[x]);
  }
  std::ostringstream dot;
  write_dot(dot, picture);
  f.dot = dot.str();
  f.caption = std::move(picture.caption);
  return f;
}

/// What to draw in a run: nothing (a probe), the last op's heap of the first collector to break
/// a rule (else the first), or collector `drawn`'s heap after every op or after the last.
struct Drawing {
  enum class Mode { Nothing, Last, EveryOp } mode = Mode::Nothing;
  std::optional<std::size_t> drawn;   // the collector; for Last without it, the first broken
  std::optional<std::string> crash;   // the last frame's crash caption
  /// Frames after this many ops read nothing from the collector: asking it crashed.
  std::optional<std::size_t> unasked_from;
  bool asks_after(std::size_t ops) const { return !unasked_from || ops < *unasked_from; }
};

struct Run {
  std::vector<Frame> frames;
  std::optional<std::size_t> broken;
  std::size_t ops_started = 0;  // if it crashed: during op ops_started - 1 (0-based)
  std::optional<std::size_t> painting;  // it began a frame after this many ops and sent none
  ChildEnd end;
};

/// Runs the first `ops` ops on `collectors` in a child, stopping after the first violation, and
/// draws as `drawing` says.
Run run(const ExplainRequest& r, const std::vector<CollectorEntry>& collectors, std::size_t ops,
        const Drawing& drawing) {
  const auto body = [&](const ChildPipe& parent) {
    CheckOptions checks;
    checks.check_invariants = kCheckedBuild || r.check_invariants;
    checks.record_frees = true;  // the picture shows what the op freed
    checks.walk_every_collection = true;  // a fault is drawn at its op
    Session session(collectors, r.options, checks);
    const auto send_frame = [&](std::size_t i, const std::optional<std::string>& crash) {
      const std::size_t done = session.ops_run();
      parent.send(kPainting, done);
      parent.send(kFrame, 0, to_json(paint(session, i, r, crash, drawing.asks_after(done))).dump());
    };
    std::optional<std::size_t> broken;
    for (std::size_t k = 0; k < ops && !broken; ++k) {
      parent.progress(k + 1);
      session.step(r.trace->ops[k]);
      broken = first_broken(session);
      const bool last = k + 1 == ops || broken;
      if (drawing.mode == Drawing::Mode::EveryOp) {
        send_frame(*drawing.drawn, last ? drawing.crash : std::nullopt);
      }
    }
    if (drawing.mode == Drawing::Mode::Last || (drawing.mode == Drawing::Mode::EveryOp && ops == 0)) {
      send_frame(drawing.drawn.value_or(broken.value_or(0)), drawing.crash);
    }
    parent.send(kBroken, broken ? *broken + 1 : 0);
    return 0;
  };
  Run result;
  const auto receive = [&](ChildMessage m) {
    if (m.tag == kPainting) {
      result.painting = m.value;
    } else if (m.tag == kFrame) {
      result.frames.push_back(from_json(json::parse(m.payload)));
      result.painting.reset();
    } else if (m.tag == kBroken && m.value > 0) {
      result.broken = m.value - 1;
    }
  };
  result.end = run_in_child("explain", body, receive);
  result.ops_started = result.end.progress;
  return result;
}

/// As run, but when asking a collector about the heap it broke crashes a frame (its records may
/// lead into memory it freed, which no guard of the picture's foresaw), the run again in a
/// second child, that frame and those after it drawn without asking.
Run run_drawing(const ExplainRequest& r, const std::vector<CollectorEntry>& collectors,
                std::size_t ops, Drawing drawing) {
  Run result = run(r, collectors, ops, drawing);
  if (result.end.exited_cleanly() || !result.painting) return result;
  drawing.unasked_from = *result.painting;
  return run(r, collectors, ops, drawing);
}

std::string crash_text(const ChildEnd& end) {
  return end.signal != 0 ? "crash (signal " + std::to_string(end.signal) + ")"
                         : "crash (exit status " + std::to_string(end.exit_status) + ")";
}

}  // namespace

Explanation explain_isolated(const ExplainRequest& r) {
  const Trace& trace = *r.trace;
  const std::size_t last = r.at > 0 ? r.at : trace.ops.size();
  // First every collector together, as every other front end runs them: who breaks a rule first,
  // or crashes, and where. (Drawing the last op's heap comes with it when that is all it takes.)
  const Drawing::Mode first_mode = r.every_op ? Drawing::Mode::Nothing : Drawing::Mode::Last;
  Run first = run_drawing(r, r.collectors, last, {first_mode});
  Explanation out;
  if (first.end.exited_cleanly()) {
    const std::size_t drawn = first.broken.value_or(0);
    out.collector = r.collectors[drawn].name;
    out.violation = first.broken.has_value();
    if (first.broken && first.ops_started < last) out.stopped = first.ops_started;
    if (!r.every_op) {
      out.frames = std::move(first.frames);
      return out;
    }
    Run drawing = run_drawing(r, r.collectors, first.ops_started, {Drawing::Mode::EveryOp, drawn});
    if (!drawing.end.exited_cleanly()) throw std::runtime_error("the replay to draw it crashed");
    out.frames = std::move(drawing.frames);
    return out;
  }

  // A crash during op k: which collector, alone, crashes there; then its heap before op k, with
  // every collector run as before (they all survived the ops before it).
  const std::size_t k = first.ops_started - 1;
  std::optional<std::size_t> crasher;
  ChildEnd how;
  for (std::size_t i = 0; i < r.collectors.size() && !crasher; ++i) {
    const Run alone = run(r, {r.collectors[i]}, k + 1, {});
    if (!alone.end.exited_cleanly()) {
      crasher = i;
      how = alone.end;
    }
  }
  if (!crasher) {
    throw std::runtime_error("the collectors crash during " + where(trace, k) +
                             " together, but none does alone");
  }
  out.collector = r.collectors[*crasher].name;
  out.violation = true;
  if (k + 1 < last) out.stopped = k + 1;
  const std::string crash = out.collector + ": " + crash_text(how) + " during " + where(trace, k);
  const Drawing::Mode mode = r.every_op ? Drawing::Mode::EveryOp : Drawing::Mode::Last;
  Run drawing = run_drawing(r, r.collectors, k, {mode, crasher, crash});
  if (!drawing.end.exited_cleanly()) {
    throw std::runtime_error("the ops before the crash did not replay: " + out.collector +
                             " crashed before " + where(trace, k) + " the second time");
  }
  out.frames = std::move(drawing.frames);
  return out;
}

}  // namespace cyclefuzz
