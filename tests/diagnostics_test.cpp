// Diagnostics: the heap pictures of known violations (planted in a correct collector), the
// command that draws a violation, the JSON of one violation, and the progress line.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <csignal>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string_view>

#include "collectors/mark_sweep/mark_sweep.h"
#include "collectors/trial_deletion/trial_deletion.h"
#include "reports/explanation.h"
#include "reports/step_through.h"
#include "reports/heap_picture.h"
#include "tools/cyclefuzz/progress.h"
#include "reports/report.h"
#include "tests/test_support.h"

namespace cyclefuzz {
namespace {

/// Lies a correct collector is made to tell, so that each kind of picture has a known answer.
struct Lies {
  std::optional<ObjectId> free_at_collect{};  // reports this object freed at every collect
  bool never_collect = false;                 // collect frees nothing
  /// inspect(first) shows one of its references to `second` as a reference to `third`.
  std::optional<std::array<ObjectId, 3>> misdirect{};
  bool count_one_more = false;  // inspect shows every count one too high
  bool abort_on_unroot = false;  // the collector crashes at the first unroot
  bool abort_on_inspect_after_collect = false;  // asked about anything after a collect, it crashes
};

class Lying : public Collector {
 public:
  Lying(CollectorHost& listener, std::unique_ptr<Collector> inner, Lies lies)
      : Collector(listener), inner_(std::move(inner)), lies_(lies) {}
  const Capabilities& capabilities() const override { return inner_->capabilities(); }
  void allocate(ObjectId id) override { inner_->allocate(id); }
  void link(ObjectId from, ObjectId to) override { inner_->link(from, to); }
  void unlink(ObjectId from, ObjectId to) override { inner_->unlink(from, to); }
  void root(ObjectId id) override { inner_->root(id); }
  void unroot(ObjectId id) override {
    if (lies_.abort_on_unroot) std::abort();
    inner_->unroot(id);
  }
  void freeze() override { inner_->freeze(); }
  void unfreeze() override { inner_->unfreeze(); }
  void set_finalizer(ObjectId id) override { inner_->set_finalizer(id); }
  void weak_ref(WeakId w, ObjectId target, bool callback) override {
    inner_->weak_ref(w, target, callback);
  }
  std::optional<ObjectId> deref(WeakId w) const override { return inner_->deref(w); }
  std::size_t collect(int generation) override {
    if (lies_.never_collect) return 0;
    collected_ = true;
    const std::size_t freed = inner_->collect(generation);
    if (lies_.free_at_collect) report_free(*lies_.free_at_collect);
    return freed;
  }
  void inspect(ObjectId id, ObjectView& view) const override {
    if (lies_.abort_on_inspect_after_collect && collected_) std::abort();
    inspected.push_back(id);
    inner_->inspect(id, view);
    if (lies_.misdirect && (*lies_.misdirect)[0] == id) {
      const auto it =
          std::find(view.references.begin(), view.references.end(), (*lies_.misdirect)[1]);
      if (it != view.references.end()) *it = (*lies_.misdirect)[2];
    }
    if (lies_.count_one_more) ++view.count;
  }
  std::uint64_t collections() const override { return inner_->collections(); }
  void check_invariants() const override { inner_->check_invariants(); }

  mutable std::vector<ObjectId> inspected;  // every object it was asked about, in order

 private:
  std::unique_ptr<Collector> inner_;
  Lies lies_;
  bool collected_ = false;
};

template <class Inner>
CollectorEntry lying(Lies lies) {
  return {"lying", "",
          [lies](CollectorHost& l, const CollectorOptions&) -> std::unique_ptr<Collector> {
            return std::make_unique<Lying>(l, std::make_unique<Inner>(l), lies);
          },
          false};
}

/// A session run to its end, with the trace it ran.
struct Replayed {
  Trace trace;
  std::unique_ptr<Session> session;
};

Replayed replay(const std::string& text, const CollectorEntry& collector) {
  Replayed r{parse_trace(text, "t.trace"), nullptr};
  r.session =
      std::make_unique<Session>(std::vector<CollectorEntry>{collector}, CollectorOptions{},
                                CheckOptions{.check_invariants = true, .record_frees = true});
  r.session->run(r.trace);
  return r;
}

std::string dot_of(const HeapPicture& picture) {
  std::ostringstream out;
  write_dot(out, picture);
  return out.str();
}

/// The DOT statement for a node or an edge (`o2`, `o0->o1`): its line; empty when absent.
std::string statement(const std::string& dot, const std::string& subject) {
  std::istringstream lines(dot);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(subject, 0) == 0 && line.size() > subject.size() &&
        std::string_view(" [;").find(line[subject.size()]) != std::string_view::npos) {
      return line;
    }
  }
  return "";
}

std::size_t occurrences(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

// r -> a -> b, with only r rooted; the collector frees b at the collect, as well as the garbage
// object g, which it frees rightly.
const char* kChain =
    "new r\nnew a\nnew b\nlink r a\nlink a b\nunroot a\nunroot b\nnew g\nunroot g\ncollect\n";

TEST(HeapPicture, PrematureFreeIsRedWithThePathThatReachesItHighlighted) {
  const Replayed r = replay(kChain, lying<MarkSweep>({.free_at_collect = 2}));
  ASSERT_EQ(r.session->first_violation(0)->kind, ViolationKind::PrematureFree);
  const std::string dot = dot_of(picture_heap(*r.session, 0, r.trace));

  EXPECT_NE(statement(dot, "o2").find("fillcolor=red"), std::string::npos) << dot;  // b
  EXPECT_NE(statement(dot, "o2").find("bold"), std::string::npos) << dot;
  EXPECT_EQ(occurrences(dot, "fillcolor=red"), 1u) << dot;
  for (const char* node : {"o0", "o1"}) {  // r and a are live
    EXPECT_NE(statement(dot, node).find("fillcolor=white"), std::string::npos) << dot;
  }
  EXPECT_NE(statement(dot, "o3").find("fillcolor=lightgrey"), std::string::npos) << dot;  // g
  // The path: r's external reference, r -> a, a -> b.
  for (const char* edge : {"r0->o0", "o0->o1", "o1->o2"}) {
    EXPECT_NE(statement(dot, edge).find("color=red"), std::string::npos) << edge << "\n" << dot;
  }
  EXPECT_EQ(occurrences(dot, "[color=red"), 3u) << dot;  // edges, not the node's fillcolor
  EXPECT_NE(statement(dot, "r0").find("doublecircle"), std::string::npos) << dot;
  EXPECT_EQ(statement(dot, "r1"), "") << "a has no external reference left\n" << dot;
  EXPECT_NE(dot.find("b freed while still reachable: root r -> r -> a -> b"), std::string::npos)
      << dot;
}

TEST(HeapPicture, LeakIsOrangeWithTheCycleThatHoldsIt) {
  // a <-> b is garbage after the unroots, and c, which b refers to, is still rooted.
  const Replayed r = replay(
      "new a\nnew b\nnew c\nlink a b\nlink b a\nlink b c\nunroot a\nunroot b\n"
      "collect\n",
      lying<MarkSweep>({.never_collect = true}));
  ASSERT_EQ(r.session->violations().size(), 2u);  // a wrong count, and the leak that explains it
  EXPECT_EQ(r.session->violations()[1].kind, ViolationKind::Leak);
  const std::string dot = dot_of(picture_heap(*r.session, 0, r.trace));

  for (const char* node : {"o0", "o1"}) {
    EXPECT_NE(statement(dot, node).find("fillcolor=orange"), std::string::npos) << dot;
  }
  for (const char* edge : {"o0->o1", "o1->o0"}) {
    EXPECT_NE(statement(dot, edge).find("color=orange"), std::string::npos) << edge << "\n" << dot;
  }
  // c is live and does not hold the cycle: it is cut from the picture.
  EXPECT_EQ(statement(dot, "o2"), "") << dot;
  EXPECT_NE(dot.find("held by the cycle"), std::string::npos) << dot;
}

TEST(HeapPicture, BookkeepingDiffShowsAMissingReferenceDashedAndAnInventedOneDoubled) {
  // The collector's view of a shows its reference to b as one to c.
  const Replayed r = replay("new a\nnew b\nnew c\nlink a b\n",
                            lying<TrialDeletion>({.misdirect = std::array<ObjectId, 3>{0, 1, 2}}));
  ASSERT_EQ(r.session->first_violation(0)->kind, ViolationKind::WrongBookkeeping);
  const std::string dot = dot_of(picture_heap(*r.session, 0, r.trace));

  EXPECT_NE(statement(dot, "o0->o1").find("style=dashed"), std::string::npos) << dot;
  EXPECT_NE(statement(dot, "o0->o2").find("color=\"blue:invis:blue\""), std::string::npos) << dot;
  EXPECT_NE(statement(dot, "o0").find("bold"), std::string::npos) << dot;
  EXPECT_NE(dot.find("dashed: a reference the collector's view lacks"), std::string::npos) << dot;
}

TEST(HeapPicture, WrongCountShowsBesideTheRightOne) {
  const Replayed r = replay("new a\n", lying<TrialDeletion>({.count_one_more = true}));
  ASSERT_EQ(r.session->first_violation(0)->kind, ViolationKind::WrongBookkeeping);
  const std::string dot = dot_of(picture_heap(*r.session, 0, r.trace));
  EXPECT_NE(statement(dot, "o0").find("label=\"a\\nrc 2 (oracle 1)\\n\""), std::string::npos) << dot;
}

TEST(HeapPicture, BigHeapIsCutToTheNeighbourhoodOfTheViolation) {
  // A rooted chain of 200 objects; the collector frees its last one.
  std::string text = "new o0\n";
  for (int i = 1; i < 200; ++i) {
    text += "new o" + std::to_string(i) + "\nlink o" + std::to_string(i - 1) + " o" +
            std::to_string(i) + "\nunroot o" + std::to_string(i) + "\n";
  }
  text += "collect\n";
  const Replayed r = replay(text, lying<MarkSweep>({.free_at_collect = 199}));
  const HeapPicture picture = picture_heap(*r.session, 0, r.trace, 20);
  EXPECT_EQ(picture.objects_shown, 20u);
  EXPECT_EQ(picture.objects_relevant, 200u);
  const std::string dot = dot_of(picture);
  EXPECT_NE(statement(dot, "o199").find("fillcolor=red"), std::string::npos) << dot;
  EXPECT_NE(statement(dot, "o180").find("fillcolor=white"), std::string::npos) << dot;
  EXPECT_EQ(statement(dot, "o179"), "") << "the 20 nearest the violation are kept\n" << dot;
  EXPECT_NE(dot.find("cut to the neighbourhood of the violation: 20 of 200 objects shown"),
            std::string::npos)
      << dot;
}

TEST(HeapPicture, WithoutAViolationShowsTheWholeHeapPlainly) {
  const Replayed r = replay(kChain, *find_collector("trial-deletion"));
  ASSERT_TRUE(r.session->violations().empty());
  const HeapPicture picture = picture_heap(*r.session, 0, r.trace);
  EXPECT_EQ(picture.objects_shown, 4u);
  const std::string dot = dot_of(picture);
  EXPECT_EQ(dot.find("fillcolor=red"), std::string::npos) << dot;
  EXPECT_EQ(dot.find("fillcolor=orange"), std::string::npos) << dot;
  EXPECT_NE(dot.find("no violation"), std::string::npos) << dot;
  EXPECT_NE(statement(dot, "o2").find("label=\"b\\nrc 1\\n\""), std::string::npos) << dot;
}

TEST(HeapPicture, AFreeWhileTheListReachesItIsRedWithThePathFromTheList) {
  // a's finalizer resurrects it into the program's list; a -> b, so the list keeps b too. The
  // collector frees b anyway.
  const Replayed r = replay("new a\nfinalizer a resurrect\nnew b\nlink a b\nunroot b\nunroot a\n"
                            "collect\n",
                            lying<MarkSweep>({.free_at_collect = 1}));
  ASSERT_EQ(r.session->first_violation(0)->kind, ViolationKind::PrematureFree);
  const std::string dot = dot_of(picture_heap(*r.session, 0, r.trace));
  EXPECT_NE(statement(dot, "o1").find("fillcolor=red"), std::string::npos) << dot;   // b
  EXPECT_NE(statement(dot, "o0").find("fillcolor=white"), std::string::npos) << dot;  // a: live
  EXPECT_NE(statement(dot, "list").find("shape=box"), std::string::npos) << dot;
  for (const char* edge : {"list->o0", "o0->o1"}) {
    EXPECT_NE(statement(dot, edge).find("color=red"), std::string::npos) << edge << "\n" << dot;
  }
  EXPECT_NE(dot.find("list -> a -> b"), std::string::npos) << dot;
}

TEST(HeapPicture, FrozenObjectsAndWeakReferencesAreDrawn) {
  const Replayed r = replay("new a\nnew b\nweak w a callback\nfreeze\nnew c\n",
                            lying<MarkSweep>({}));
  ASSERT_TRUE(r.session->violations().empty());
  const std::string dot = dot_of(picture_heap(*r.session, 0, r.trace));
  for (const char* frozen : {"o0", "o1"}) {
    EXPECT_NE(statement(dot, frozen).find("color=blue"), std::string::npos) << dot;
  }
  EXPECT_EQ(statement(dot, "o2").find("color=blue"), std::string::npos) << dot;
  EXPECT_NE(statement(dot, "w0").find("diamond"), std::string::npos) << dot;
  EXPECT_NE(statement(dot, "w0").find("callback"), std::string::npos) << dot;
  EXPECT_NE(statement(dot, "w0->o0").find("odiamond"), std::string::npos) << dot;
}

TEST(HeapPicture, AnObjectThatRefersToAFreedOneIsNotAskedAbout) {
  // b is freed while a, which the collector still holds, refers to it: a's record may lead into
  // freed memory, so the picture reads nothing of a from the collector.
  const Replayed r = replay(kChain, lying<MarkSweep>({.free_at_collect = 2}));
  const auto& collector = dynamic_cast<const Lying&>(r.session->collector(0));
  collector.inspected.clear();
  const std::string dot = dot_of(picture_heap(*r.session, 0, r.trace));
  EXPECT_EQ(std::count(collector.inspected.begin(), collector.inspected.end(), 1u), 0) << dot;
  EXPECT_GT(std::count(collector.inspected.begin(), collector.inspected.end(), 0u), 0) << dot;
  EXPECT_NE(statement(dot, "o1->o2").find("style=dotted"), std::string::npos) << dot;
  EXPECT_NE(dot.find("not read from the collector"), std::string::npos) << dot;
}

TEST(HeapPicture, AMapWhoseKeyWasFreedTooSoonIsNotAskedAbout) {
  // b's finalizer resurrects a, whose entry for b keeps b; the mutant frees b, the key, and keeps
  // a's entry, its record leading into freed memory: the picture reads nothing of a (under
  // AddressSanitizer, reading it would end the test). Once freed, b is kept by nothing (the
  // entry goes with its key), yet b is red, on the path the caption names. (Found by bench/soak:
  // explain crashed drawing it.)
  const Replayed r = replay("new a\nnew b\nentry b b a\nfinalizer b resurrect a\nentry a b b\n"
                            "unroot a\nunroot b\ncollect 0\n",
                            *find_collector("mutant:resurrected-children-freed"));
  ASSERT_EQ(r.session->first_violation(0)->kind, ViolationKind::PrematureFree);
  const std::string dot = dot_of(picture_heap(*r.session, 0, r.trace));
  EXPECT_NE(statement(dot, "o1").find("fillcolor=red"), std::string::npos) << dot;    // b
  EXPECT_NE(statement(dot, "o0").find("fillcolor=white"), std::string::npos) << dot;  // a: live
  EXPECT_NE(statement(dot, "o0->o1").find("style=dotted"), std::string::npos) << dot;
  for (const char* edge : {"list->o0", "o0->o1", "o1->o0"}) {
    EXPECT_NE(statement(dot, edge).find("color="), std::string::npos) << edge << "\n" << dot;
  }
  EXPECT_NE(statement(dot, "o1->o0").find("color=red"), std::string::npos) << dot;
  EXPECT_NE(dot.find("b -> a -> b"), std::string::npos) << dot;
}

TEST(Explain, DrawsACrashAsTheHeapJustBeforeTheOpThatCrashed) {
  const Trace trace = parse_trace("new a\nnew b\nlink a b\nunroot b\n", "t.trace");
  ExplainRequest request;
  request.trace = &trace;
  request.collectors = {*find_collector("mark-sweep"), lying<MarkSweep>({.abort_on_unroot = true})};
  const Explanation one = explain_isolated(request);
  EXPECT_TRUE(one.violation);
  EXPECT_EQ(one.collector, "lying");
  ASSERT_EQ(one.frames.size(), 1u);
  EXPECT_TRUE(one.frames[0].crash);
  EXPECT_EQ(one.frames[0].ops, 3u);
  EXPECT_EQ(one.frames[0].caption.at(1),
            "lying: crash (signal " + std::to_string(SIGABRT) + ") during op 4 (line 4: unroot b)");
  EXPECT_NE(one.frames[0].dot.find("the heap just before that op"), std::string::npos);

  request.every_op = true;  // as --html draws it: a frame after every op before the crash
  const Explanation steps = explain_isolated(request);
  ASSERT_EQ(steps.frames.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(steps.frames[i].ops, i + 1);
  EXPECT_FALSE(steps.frames[1].crash);
  EXPECT_TRUE(steps.frames[2].crash);
}

TEST(Explain, DrawsWithoutAskingACollectorThatCrashesWhenAsked) {
  // It frees b, which a refers to, and then crashes when asked about its heap: a record of the
  // collector's may lead into freed memory where no guard of the picture foresaw it. The frame is
  // drawn again without asking, and the frames before it as before.
  const Trace trace = parse_trace(kChain, "t.trace");
  ExplainRequest request;
  request.trace = &trace;
  request.collectors = {
      lying<MarkSweep>({.free_at_collect = 2, .abort_on_inspect_after_collect = true})};
  for (const bool every_op : {false, true}) {
    request.every_op = every_op;
    const Explanation e = explain_isolated(request);
    EXPECT_TRUE(e.violation);
    ASSERT_EQ(e.frames.size(), every_op ? trace.ops.size() : 1u);
    EXPECT_TRUE(e.frames.back().violation);
    EXPECT_FALSE(e.frames.back().crash);
    EXPECT_NE(e.frames.back().dot.find("nothing read from the collector"), std::string::npos)
        << e.frames.back().dot;
    EXPECT_NE(e.frames.back().dot.find("fillcolor=red"), std::string::npos);  // b, premature
    EXPECT_EQ(e.frames.front().dot.find("nothing read") == std::string::npos, every_op);
  }
}

TEST(Explain, StepsThroughAViolationOpByOp) {
  const Trace trace = parse_trace(kChain, "t.trace");
  ExplainRequest request;
  request.trace = &trace;
  request.collectors = {lying<MarkSweep>({.free_at_collect = 2})};
  request.every_op = true;
  const Explanation e = explain_isolated(request);
  ASSERT_EQ(e.frames.size(), trace.ops.size());  // the violation is at the last op
  EXPECT_TRUE(e.frames.back().violation);
  EXPECT_EQ(e.frames.back().freed, (std::vector<std::string>{"g", "b"}));  // as reported
  EXPECT_FALSE(e.frames.front().violation);
  const std::string page = step_through_page(trace, e, std::vector<std::string>(10, "<svg/>"));
  EXPECT_NE(page.find("data-steps=\"10\""), std::string::npos);
  EXPECT_EQ(occurrences(page, "data-violation="), 1u);
  EXPECT_EQ(page.find("http"), std::string::npos) << "nothing loaded from the network";
}

TEST(ExplainCommand, NamesTheFileTheCollectorAndSettingsThatDiffer) {
  const CollectorEntry& generational = *find_collector("generational");
  EXPECT_EQ(explain_command("corpus/x.trace", generational, {}),
            "cyclefuzz explain corpus/x.trace --collector generational --svg "
            "x-generational.svg");
  CollectorOptions small;
  small.thresholds[0] = 5;
  small.thresholds[1] = 3;
  small.thresholds[2] = 2;
  EXPECT_EQ(explain_command("my dir/it's.trace", generational, small),
            "cyclefuzz explain 'my dir/it'\\''s.trace' --collector generational "
            "--thresholds 5,3,2 --svg it_s-generational.svg");
  EXPECT_EQ(explain_command("-x.trace", *find_collector("mark-sweep"), {}),
            "cyclefuzz explain ./-x.trace --collector mark-sweep --svg -x-mark-sweep.svg");
  // A plug-in is chosen by its file, not its name (replay refuses --collector plugin:NAME).
  CollectorEntry plugin = *find_collector("mark-sweep");
  plugin.name = "plugin:rc";
  plugin.plugin_path = "build/my rc.so";
  EXPECT_EQ(explain_command("x.trace", plugin, {}, ExplainAs::Html),
            "cyclefuzz explain x.trace --plugin 'build/my rc.so' --html x-plugin_rc.html");
}

TEST(ExplainCommand, IsPrintedBesideEachViolationOfAReplay) {
  const Replayed r = replay(kChain, lying<MarkSweep>({.free_at_collect = 2}));
  std::ostringstream out;
  print_trace_result(out, r.trace, *r.session);
  EXPECT_EQ(occurrences(out.str(),
                        "  draw it: cyclefuzz explain t.trace --collector lying --svg "
                        "t-lying.svg\n"),
            1u)
      << out.str();
}

TEST(ExplainCommand, IsAbsentForATraceWithoutAFile) {
  Trace trace = parse_trace(kChain, "t.trace");
  trace.lines.clear();  // as a generated trace
  Session session({lying<MarkSweep>({.free_at_collect = 2})}, {});
  session.run(trace);
  EXPECT_FALSE(explain_command(trace, session, session.violations().front()));
}

TEST(JsonReport, OneViolationCarriesItsExplainCommand) {
  const Replayed r = replay(kChain, lying<MarkSweep>({.free_at_collect = 2}));
  const nlohmann::json j = violation_report(r.trace, *r.session, r.session->violations().front());
  EXPECT_EQ(j["kind"], "premature-free");
  EXPECT_EQ(j["op"], 10);
  EXPECT_EQ(j["line"], 10);
  EXPECT_EQ(j["objects"], nlohmann::json::array({"b"}));
  EXPECT_EQ(j["path"], nlohmann::json::array({"r", "a", "b"}));
  EXPECT_EQ(j["explain"], "cyclefuzz explain t.trace --collector lying --svg t-lying.svg");
  const nlohmann::json document = report_document(nlohmann::json::array());
  EXPECT_EQ(document["version"], kReportVersion);
}

using namespace std::chrono_literals;

TEST(Progress, DurationsReadAsPeopleWriteThem) {
  EXPECT_EQ(duration_text(30), "30 s");
  EXPECT_EQ(duration_text(0.5), "0.5 s");
  EXPECT_EQ(duration_text(120), "2 min");
  EXPECT_EQ(duration_text(125), "2 min 5 s");
  EXPECT_EQ(duration_text(5400), "1 h 30 min");
  EXPECT_EQ(duration_text(3600), "1 h");
}

TEST(Progress, LineShowsRunsRateFindingsAndTimeLeft) {
  EXPECT_EQ(progress_line("traces", {.runs = 40}, 12, 1, 2s),
            "12/40 traces  6.0/s  1 finding  0:05 left");
  EXPECT_EQ(progress_line("runs", {.time = 90s}, 1000, 2, 10s),
            "1000 runs  100/s  2 findings  1:20 left");
  EXPECT_EQ(progress_line("runs", {}, 7, 0, 0s), "7 runs  0 findings");
  EXPECT_EQ(progress_line("runs", {.runs = 100, .time = 2h}, 1, 0, 3700s),
            "1/100 runs  0.0/s  0 findings  58:20 left");
}

TEST(Progress, DrawsInPlaceAndErasesItselfWhenDone) {
  std::ostringstream terminal;
  {
    Progress progress("traces", {.runs = 3}, &terminal, 0s, 0s);
    progress.advance(1, 0);
    progress.advance(1, 1);
  }
  const std::string out = terminal.str();
  EXPECT_EQ(out.rfind("\r\033[K1/3 traces", 0), 0u) << out;
  EXPECT_NE(out.find("\r\033[K2/3 traces"), std::string::npos) << out;
  EXPECT_NE(out.find("1 finding"), std::string::npos) << out;
  EXPECT_EQ(out.substr(out.size() - 4), "\r\033[K") << "erased at the end";
}

TEST(Progress, StaysQuietUntilTheDelayHasPassed) {
  std::ostringstream terminal;
  Progress progress("traces", {.runs = 3}, &terminal, 1h, 0s);
  progress.advance(1, 0);
  progress.clear();
  EXPECT_EQ(terminal.str(), "");
  EXPECT_EQ(progress.runs(), 1u);
}

}  // namespace
}  // namespace cyclefuzz
