// The checker catches what it claims to: each check is shown firing on a collector with a planted
// fault, and staying quiet on the correct one it wraps.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <functional>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "collectors/generational/generational.h"
#include "collectors/mark_sweep/mark_sweep.h"
#include "collectors/trial_deletion/trial_deletion.h"
#include "reports/report.h"
#include "tests/test_support.h"

namespace cyclefuzz {
namespace {

enum class Fault {
  None,
  FreeReachableOnLink,   // reports a free of the link target, which is reachable
  FreeTargetOnUnlink,    // reports a free of the unlink target
  NeverCollect,          // collect does nothing
  CountOneMore,          // collect returns one more than it freed
  CountOneLess,          // collect returns one less than it freed (never below 0)
  CountZero,             // collect returns 0, as Lua's collectgarbage does
  FreeReferentAtUnroot,  // at `unroot x`, reports a free of the first object x refers to
  ExtraReference,        // inspect shows one more reference than there is
  ExtraReferenceAfterCollect,  // after a collect, inspect shows it for every object
  CountWrong,            // inspect shows a count one too high
  InvariantFails,        // check_invariants always throws
  FreeTwice,             // reports every free twice
  IgnoresFreeze,         // freeze does nothing: collections free frozen garbage
  IgnoresFinalizers,     // set_finalizer does nothing: objects that have one are freed without it
  IgnoresWeakReferences,      // weak_ref does nothing, deref finds nothing: nothing is cleared
  ClearsWeakAfterFinalizers,  // reports weak-reference clears (and callbacks) only after the next
                              // finalizer has run (or just before the next free)
  DropsWeakCallbacks,         // reports weak-reference clears, never their callbacks
  ClearsWeakAtCollect,        // at the end of each collect, reports every weak reference taken
                              // before it cleared, reachable targets' too (as LuaJIT does for
                              // userdata it once finalized)
  IgnoresThresholds,          // set_thresholds does nothing: the defaults stay
  DropsEntriesAsSet,          // reports each map entry dropped as soon as it is set
  DemotesAtYoungCollect,      // after a `collect 0`, inspect shows the oldest generation's
                              // objects one generation younger
};

using Promise = std::function<void(Capabilities&)>;

/// A correct collector with one planted fault, and capabilities that `promise` adjusts. It stands
/// between the inner collector and the session: it is the inner collector's host, and passes on
/// what it reports (frees, finalizers, weak references), with the lies the fault adds.
class Faulty : public Collector, public CollectorHost {
 public:
  using Make = std::function<std::unique_ptr<Collector>(CollectorHost&)>;

  Faulty(CollectorHost& session, const Make& make, Fault fault, const Promise& promise)
      : Collector(session), inner_(make(*this)), fault_(fault),
        capabilities_(inner_->capabilities()) {
    if (promise) promise(capabilities_);
  }
  const Capabilities& capabilities() const override { return capabilities_; }
  void allocate(ObjectId id) override { inner_->allocate(id); }
  void link(ObjectId from, ObjectId to) override {
    inner_->link(from, to);
    if (fault_ == Fault::FreeReachableOnLink) report_free(to);
  }
  void unlink(ObjectId from, ObjectId to) override {
    inner_->unlink(from, to);
    if (fault_ == Fault::FreeTargetOnUnlink) report_free(to);
  }
  void root(ObjectId id) override { inner_->root(id); }
  void unroot(ObjectId id) override {
    inner_->unroot(id);
    if (fault_ == Fault::FreeReferentAtUnroot) {
      ObjectView view;
      inner_->inspect(id, view);
      if (!view.references.empty()) report_free(view.references.front());
    }
  }
  std::size_t collect(int generation) override {
    if (fault_ == Fault::NeverCollect) return 0;
    const std::vector<WeakId> taken_before = std::exchange(taken_, {});
    const std::size_t found = inner_->collect(generation);
    collected_ = true;
    young_collected_ = young_collected_ || generation == 0;
    pass_on_weak_events();
    if (fault_ == Fault::ClearsWeakAtCollect) {
      for (WeakId w : taken_before) report_weak_cleared(w);
    }
    switch (fault_) {
      case Fault::CountOneMore:
        return found + 1;
      case Fault::CountOneLess:
        return found == 0 ? 0 : found - 1;
      case Fault::CountZero:
        return 0;
      default:
        return found;
    }
  }
  void set_thresholds(const std::array<std::uint32_t, 3>& thresholds) override {
    if (fault_ != Fault::IgnoresThresholds) inner_->set_thresholds(thresholds);
  }
  void freeze() override {
    if (fault_ != Fault::IgnoresFreeze) inner_->freeze();
  }
  void unfreeze() override { inner_->unfreeze(); }
  void set_automatic_collection(bool enabled) override {
    inner_->set_automatic_collection(enabled);
  }
  void set_finalizer(ObjectId id) override {
    if (fault_ != Fault::IgnoresFinalizers) inner_->set_finalizer(id);
  }
  void weak_ref(WeakId w, ObjectId target, bool callback) override {
    if (fault_ != Fault::IgnoresWeakReferences) inner_->weak_ref(w, target, callback);
    taken_.push_back(w);
  }
  void set_entry(ObjectId map, ObjectId key, ObjectId value) override {
    inner_->set_entry(map, key, value);
    if (fault_ == Fault::DropsEntriesAsSet) report_entry_dropped(map, key);
  }
  void remove_entry(ObjectId map, ObjectId key) override { inner_->remove_entry(map, key); }
  std::optional<ObjectId> deref(WeakId w) const override {
    if (fault_ == Fault::IgnoresWeakReferences) return std::nullopt;
    return inner_->deref(w);
  }
  void inspect(ObjectId id, ObjectView& view) const override {
    inner_->inspect(id, view);
    if (fault_ == Fault::ExtraReference ||
        (fault_ == Fault::ExtraReferenceAfterCollect && collected_)) {
      view.references.push_back(id);
    }
    if (fault_ == Fault::CountWrong) ++view.count;
    if (fault_ == Fault::DemotesAtYoungCollect && young_collected_ && view.generation == 2) {
      view.generation = 1;
    }
  }
  std::uint64_t collections() const override { return inner_->collections(); }
  void check_invariants() const override {
    if (fault_ == Fault::InvariantFails) throw BrokenInvariant("planted");
    inner_->check_invariants();
  }
  std::optional<GcStatistics> statistics() const override { return inner_->statistics(); }

  // ---- what the inner collector reports -------------------------------------------------------
  void freed(ObjectId id) override {
    pass_on_weak_events();
    report_free(id);
    if (fault_ == Fault::FreeTwice) report_free(id);
  }
  void finalize(ObjectId id) override {
    run_finalizer(id);
    pass_on_weak_events();
  }
  void weak_cleared(WeakId w) override { weak_event(w, false); }
  void weak_callback(WeakId w) override { weak_event(w, true); }
  void entry_dropped(ObjectId map, ObjectId key) override { report_entry_dropped(map, key); }

 private:
  void weak_event(WeakId w, bool callback) {
    if (callback && fault_ == Fault::DropsWeakCallbacks) return;
    held_back_.emplace_back(w, callback);
    if (fault_ != Fault::ClearsWeakAfterFinalizers) pass_on_weak_events();
  }
  void pass_on_weak_events() {
    for (const auto& [w, callback] : held_back_) {
      if (callback) {
        report_weak_callback(w);
      } else {
        report_weak_cleared(w);
      }
    }
    held_back_.clear();
  }

  std::unique_ptr<Collector> inner_;
  Fault fault_;
  Capabilities capabilities_;
  std::vector<std::pair<WeakId, bool>> held_back_;  // weak-reference events not passed on yet
  std::vector<WeakId> taken_;  // ClearsWeakAtCollect: taken since the last collect began
  bool collected_ = false;     // ExtraReferenceAfterCollect: a collect has run
  bool young_collected_ = false;  // DemotesAtYoungCollect: a `collect 0` has run
};

/// A built-in collector `Inner`, wrapped with `fault` and capabilities adjusted by `promise`.
template <class Inner>
CollectorEntry wrapped(const char* name, const Promise& promise, Fault fault) {
  return {name, "",
          [=](CollectorHost& session, const CollectorOptions& o) -> std::unique_ptr<Collector> {
            const auto make = [&o](CollectorHost& host) -> std::unique_ptr<Collector> {
              using Options = const CollectorOptions&;
              if constexpr (std::is_constructible_v<Inner, CollectorHost&, Options>) {
                return std::make_unique<Inner>(host, o);
              } else {
                return std::make_unique<Inner>(host);
              }
            };
            return std::make_unique<Faulty>(session, make, fault, promise);
          },
          false};
}

template <class Inner>
CollectorEntry faulty(Fault fault) {
  return wrapped<Inner>("faulty", {}, fault);
}

/// A collector with a planted fault whose capabilities `promise` adjusts.
template <class Inner>
CollectorEntry promising(const Promise& promise, Fault fault) {
  return wrapped<Inner>("promising", promise, fault);
}

/// A collector with a planted fault that promises `collect_count` about what collect returns.
template <class Inner>
CollectorEntry promising(CollectCount collect_count, Fault fault) {
  return promising<Inner>([=](Capabilities& c) { c.collect_count = collect_count; }, fault);
}

/// Runs `text` on the given collectors and returns the session's violations.
std::vector<Violation> violations(const std::string& text, std::vector<CollectorEntry> collectors) {
  const Trace trace = parse_trace(text, "t.trace");
  Session session(collectors, {}, {.check_invariants = true, .record_frees = false});
  session.run(trace);
  return session.violations();
}

bool has(const std::vector<Violation>& vs, ViolationKind kind) {
  return std::any_of(vs.begin(), vs.end(), [&](const Violation& v) { return v.kind == kind; });
}

const char* kTwoCycle = "new a\nnew b\nlink a b\nlink b a\nunroot a\nunroot b\ncollect\n";

TEST(Checker, QuietOnCorrectCollectors) {
  EXPECT_TRUE(violations(kTwoCycle, {faulty<MarkSweep>(Fault::None)}).empty());
  EXPECT_TRUE(violations(kTwoCycle, {faulty<TrialDeletion>(Fault::None)}).empty());
}

TEST(Checker, ReportsPrematureFreeWithThePathThatReachesTheObject) {
  const Trace trace = parse_trace("new a\nnew b\nlink a b\n", "t.trace");
  Session session({faulty<MarkSweep>(Fault::FreeReachableOnLink)}, {});
  session.run(trace);
  ASSERT_EQ(session.violations().size(), 1u);
  const Violation& v = session.violations()[0];
  EXPECT_EQ(v.kind, ViolationKind::PrematureFree);
  EXPECT_EQ(v.op_index, 2u);
  EXPECT_EQ(v.objects, std::vector<ObjectId>{1});
  EXPECT_EQ(v.path, std::vector<ObjectId>{1});  // b is itself rooted
  std::ostringstream out;
  print_violation(out, trace, session, v);
  EXPECT_EQ(out.str(),
            "faulty: premature free after op 3 (line 3: link a b)\n"
            "  b freed while still reachable: root b -> b\n");
}

TEST(Checker, ReportsAFreeWhileHeldGarbageStillRefersToTheObject) {
  // c becomes unreachable at the unlink, but the garbage g, which the collector still holds,
  // refers to it: freeing c leaves g with a dangling reference.
  const Trace trace = parse_trace(
      "new a\nnew c\nlink a c\nunroot c\nnew g\nlink g c\nlink g g\nunroot g\nunlink a c\n",
      "t.trace");
  Session session({faulty<TrialDeletion>(Fault::FreeTargetOnUnlink)}, {});
  session.run(trace);
  ASSERT_EQ(session.violations().size(), 1u);
  const Violation& v = session.violations()[0];
  EXPECT_EQ(v.kind, ViolationKind::PrematureFree);
  EXPECT_EQ(v.op_index, 8u);
  EXPECT_EQ(v.path, (std::vector<ObjectId>{2, 1}));
  std::ostringstream out;
  print_violation(out, trace, session, v);
  EXPECT_NE(out.str().find("c freed while garbage it still holds refers to it: g -> c"),
            std::string::npos)
      << out.str();
}

TEST(Checker, ReportsLeakWithTheCycleThatHoldsIt) {
  const auto vs = violations(kTwoCycle, {faulty<MarkSweep>(Fault::NeverCollect)});
  ASSERT_TRUE(has(vs, ViolationKind::Leak));
  const Violation& leak = *std::find_if(vs.begin(), vs.end(),
                                        [](const auto& v) { return v.kind == ViolationKind::Leak; });
  EXPECT_EQ(leak.objects, (std::vector<ObjectId>{0, 1}));
  EXPECT_EQ(leak.cycle.size(), 3u);
  EXPECT_EQ(leak.cycle.front(), leak.cycle.back());
}

TEST(Checker, ReportsCollectCountThatDiffersFromTheFrees) {
  const auto vs = violations(kTwoCycle, {faulty<MarkSweep>(Fault::CountOneMore)});
  ASSERT_EQ(vs.size(), 1u);
  EXPECT_EQ(vs[0].kind, ViolationKind::WrongCount);
  EXPECT_EQ(vs[0].detail, "collect returned 3 but freed 2 objects");
}

// Capabilities::collect_count decides how much of the count check applies, and exactly that.
TEST(Checker, ChecksCollectCountsOnlyAsFarAsTheCollectorPromises) {
  // A collector whose collect returns 0 while freeing a two-cycle.
  EXPECT_TRUE(has(violations(kTwoCycle, {promising<MarkSweep>(CollectCount::Freed, Fault::CountZero)}),
                  ViolationKind::WrongCount));
  EXPECT_TRUE(has(violations(kTwoCycle, {promising<MarkSweep>(CollectCount::FoundInGenerations,
                                                              Fault::CountZero)}),
                  ViolationKind::WrongCount))
      << "a full collection must count everything it freed";
  EXPECT_TRUE(
      violations(kTwoCycle, {promising<MarkSweep>(CollectCount::None, Fault::CountZero)}).empty());
  EXPECT_TRUE(
      violations(kTwoCycle, {promising<MarkSweep>(CollectCount::None, Fault::CountOneMore)}).empty());

  // A young collection that frees the two-cycle: counting fewer than it freed is what
  // FoundInGenerations allows, counting more is not.
  const char* young = "new a\nnew b\nlink a b\nlink b a\nunroot a\nunroot b\ncollect 0\n";
  EXPECT_TRUE(violations(young, {promising<Generational>(CollectCount::FoundInGenerations,
                                                         Fault::CountOneLess)})
                  .empty());
  EXPECT_TRUE(has(violations(young, {promising<Generational>(CollectCount::FoundInGenerations,
                                                             Fault::CountOneMore)}),
                  ViolationKind::WrongCount));
  EXPECT_TRUE(has(violations(young, {promising<Generational>(CollectCount::Freed,
                                                             Fault::CountOneLess)}),
                  ViolationKind::WrongCount));
  const auto vs = violations(young, {promising<Generational>(CollectCount::FoundInGenerations,
                                                             Fault::CountOneMore)});
  ASSERT_EQ(vs.size(), 1u);
  EXPECT_EQ(vs[0].detail, "collect returned 3 but freed only 2 objects");
}

// Capabilities::free_is_finalization lifts the dangling-reference part of the premature-free check,
// and only that part.
TEST(Checker, LetsAFinalizingCollectorFreeWhatOtherGarbageStillRefersTo) {
  // a -> b, both dropped: at `unroot a` the fault reports b freed while garbage a refers to it.
  const char* cycle = "new a\nnew b\nlink a b\nunroot b\nunroot a\n";
  const auto dangling = violations(cycle, {faulty<MarkSweep>(Fault::FreeReferentAtUnroot)});
  ASSERT_EQ(dangling.size(), 1u);
  EXPECT_EQ(dangling[0].kind, ViolationKind::PrematureFree);
  EXPECT_EQ(dangling[0].detail, "freed while garbage it still holds refers to it");
  const auto finalizing = [](Capabilities& c) { c.free_is_finalization = true; };
  EXPECT_TRUE(
      violations(cycle, {promising<MarkSweep>(finalizing, Fault::FreeReferentAtUnroot)}).empty());
  EXPECT_TRUE(has(violations("new a\nnew b\nlink a b\n",
                             {promising<MarkSweep>(finalizing, Fault::FreeReachableOnLink)}),
                  ViolationKind::PrematureFree));
}

TEST(Checker, ReportsWrongReferencesAndWrongCounts) {
  EXPECT_TRUE(has(violations("new a\n", {faulty<MarkSweep>(Fault::ExtraReference)}),
                  ViolationKind::WrongBookkeeping));
  const auto vs = violations("new a\nnew b\nlink a b\n", {faulty<TrialDeletion>(Fault::CountWrong)});
  ASSERT_EQ(vs.size(), 1u);
  EXPECT_EQ(vs[0].kind, ViolationKind::WrongBookkeeping);
  EXPECT_EQ(vs[0].detail, "its count is 2, expected 1");
}

TEST(Checker, ReportsBrokenInvariants) {
  const auto vs = violations("new a\n", {faulty<MarkSweep>(Fault::InvariantFails)});
  ASSERT_EQ(vs.size(), 1u);
  EXPECT_EQ(vs[0].kind, ViolationKind::BrokenInvariant);
  EXPECT_EQ(vs[0].detail, "planted");
}

/// Mark-sweep that records how the session asked for its invariants: a walk of the whole heap,
/// or at which objects.
class RecordsInvariantChecks : public MarkSweep {
 public:
  using MarkSweep::MarkSweep;
  void check_invariants() const override {
    asked.push_back("walk");
    MarkSweep::check_invariants();
  }
  void check_invariants_of(std::span<const ObjectId> objects) const override {
    std::string at = "at";
    for (ObjectId x : objects) at += " " + std::to_string(x);
    asked.push_back(at);
    MarkSweep::check_invariants_of(objects);
  }
  mutable std::vector<std::string> asked;
};

std::vector<std::string> invariant_checks(const std::string& text, CheckOptions checks) {
  const CollectorEntry recording{
      "recording", "",
      [](CollectorHost& host, const CollectorOptions&) -> std::unique_ptr<Collector> {
        return std::make_unique<RecordsInvariantChecks>(host);
      },
      false};
  Session session({recording}, {}, checks);
  session.run(parse_trace(text, "t.trace"));
  EXPECT_TRUE(session.violations().empty());
  return dynamic_cast<const RecordsInvariantChecks&>(session.collector(0)).asked;
}

// Between collections an op's invariants are checked at what it touched, and the whole heap is
// walked once the ops since the last walk outnumber the objects held (here after `link a b`, the
// fourth op with three objects); a collection always ends with a walk.
TEST(Checker, ChecksInvariantsAtWhatAnOpTouchedAndWalksAfterCollections) {
  const std::string text = "new a\nnew b\nnew c\nlink a b\nunroot b\ncollect\n";
  EXPECT_EQ(invariant_checks(text, {.check_invariants = true}),
            (std::vector<std::string>{"at 0", "at 1", "at 2", "walk", "at 1", "walk"}));
  EXPECT_EQ(invariant_checks(text, {.check_invariants = true, .invariants_every_op = true}),
            std::vector<std::string>(6, "walk"));
  EXPECT_TRUE(invariant_checks(text, {.check_invariants = false}).empty());
}

// With walks put off (the fast build's default), a collection on a heap of more than eight
// objects per op since the last walk is checked at what it touched, and the run's end walks what
// was put off; a small heap is still walked at every collection (the test above, unchanged).
TEST(Checker, PutsOffTheWalksOfABigHeapToTheirShareOfOpsAndTheEnd) {
  const std::string text = "build o0 chain 100\ncollect\ncollect\n";
  const auto after_the_build = [&](CheckOptions checks) {
    std::vector<std::string> asked = invariant_checks(text, checks);
    return std::vector<std::string>(asked.begin() + 1, asked.end());
  };
  EXPECT_EQ(after_the_build({.check_invariants = true, .walk_every_collection = true}),
            (std::vector<std::string>{"walk", "walk"}));
  EXPECT_EQ(after_the_build({.check_invariants = true, .walk_every_collection = false}),
            (std::vector<std::string>{"at", "at", "walk"}));
  const std::string small = "new a\nnew b\nnew c\nlink a b\nunroot b\ncollect\n";
  EXPECT_EQ(invariant_checks(small, {.check_invariants = true, .walk_every_collection = false}),
            (std::vector<std::string>{"at 0", "at 1", "at 2", "walk", "at 1", "walk"}));
}

// What a put-off walk finds is still found, at the run's last op; the checked build finds it at
// the collection.
TEST(Checker, FindsWhatAPutOffWalkFindsAtTheEnd) {
  const Trace trace = parse_trace("build o0 chain 100\ncollect\ncollect\n", "t.trace");
  for (const bool every_collection : {true, false}) {
    Session session({faulty<MarkSweep>(Fault::ExtraReferenceAfterCollect)}, {},
                    {.check_invariants = false, .walk_every_collection = every_collection});
    session.run(trace);
    ASSERT_EQ(session.violations().size(), 1u);
    EXPECT_EQ(session.violations()[0].kind, ViolationKind::WrongBookkeeping);
    EXPECT_EQ(session.violations()[0].op_index, every_collection ? 1u : 2u);
  }
}

// A young collection looks at the young generations only when the walks are put off: an old
// object it moved is found by the next walk, here the one at the end.
TEST(Checker, FindsAnOldObjectAYoungCollectionMovedAtThePutOffWalk) {
  const Trace trace = parse_trace("build o0 chain 100\ncollect\ncollect 0\nnew x\n", "t.trace");
  for (const bool every_collection : {true, false}) {
    Session session({faulty<Generational>(Fault::DemotesAtYoungCollect)}, {},
                    {.check_invariants = false, .walk_every_collection = every_collection});
    session.run(trace);
    ASSERT_EQ(session.violations().size(), 1u);
    EXPECT_EQ(session.violations()[0].kind, ViolationKind::WrongGeneration);
    EXPECT_EQ(session.violations()[0].op_index, every_collection ? 2u : 3u);
  }
}

TEST(Checker, ReportsDoubleFree) {
  EXPECT_TRUE(has(violations("new a\nunroot a\n", {faulty<TrialDeletion>(Fault::FreeTwice)}),
                  ViolationKind::DoubleFree));
}

TEST(Checker, ReportsDisagreementBetweenCollectors) {
  const auto vs = violations(kTwoCycle, {*find_collector("mark-sweep"),
                                         faulty<MarkSweep>(Fault::NeverCollect)});
  ASSERT_TRUE(has(vs, ViolationKind::Disagreement));
}

// ---- each capability switches its check ------------------------------------------------------
//
// One trace and one collector behaviour per row, run twice: with the capabilities `fires` gives,
// the check finds the planted fault after `line` (each trace has one op per line); with those
// `quiet` gives, the same behaviour passes. (A capability may also add a demand: a collector that
// clears weak references or runs finalizers without declaring them is caught for it.)
// collect_count and free_is_finalization are shown above, in
// ChecksCollectCountsOnlyAsFarAsTheCollectorPromises and
// LetsAFinalizingCollectorFreeWhatOtherGarbageStillRefersTo.

struct CapabilityCase {
  const char* capability;  // and what the planted fault does
  CollectorEntry (*wrap)(const Promise&, Fault);
  Fault fault;
  Promise fires, quiet;
  const char* trace;
  ViolationKind kind;
  std::size_t line;
};

/// "wrong bookkeeping after line 3: its count is 2, expected 1", one line per violation.
std::string summary(const std::vector<Violation>& vs) {
  std::ostringstream out;
  for (const Violation& v : vs) {
    out << describe(v.kind) << " after line " << v.op_index + 1 << ": " << v.detail << "\n";
  }
  return out.str();
}

template <class Field, class Value>
Promise set(Field Capabilities::*field, Value value) {
  return [=](Capabilities& c) { c.*field = value; };
}

/// The mutant that runs a rescued object's finalizer again, with capabilities `promise` adjusts.
CollectorEntry finalizer_run_twice(const Promise& promise, Fault fault) {
  const CollectorEntry mutant = *find_collector("mutant:finalizer-run-twice");
  return {"promising", "",
          [=](CollectorHost& session, const CollectorOptions& o) -> std::unique_ptr<Collector> {
            const auto make = [&](CollectorHost& host) { return mutant.make(host, o); };
            return std::make_unique<Faulty>(session, make, fault, promise);
          },
          false};
}

const CapabilityCase kCapabilityCases[] = {
    {"reference_counting: mark-sweep frees b only at a collection", promising<MarkSweep>,
     Fault::None, set(&Capabilities::reference_counting, true),
     set(&Capabilities::reference_counting, false),
     "new a\nnew b\nlink a b\nunroot b\nunroot a\n", ViolationKind::LateFree, 5},
    {"generations: mark-sweep keeps everything in generation 0", promising<MarkSweep>,
     Fault::None, set(&Capabilities::generations, 3), set(&Capabilities::generations, 1),
     "new a\ncollect 0\n", ViolationKind::WrongGeneration, 2},
    {"young_collections_are_steps: mark-sweep keeps everything in generation 0",
     promising<MarkSweep>, Fault::None, set(&Capabilities::generations, 3),
     [](Capabilities& c) {
       c.generations = 3;
       c.young_collections_are_steps = true;
     },
     "new a\ncollect 0\n", ViolationKind::WrongGeneration, 2},
    {"count None: inspect shows a count one too high", promising<MarkSweep>, Fault::CountWrong,
     set(&Capabilities::count, CountMeaning::External),
     set(&Capabilities::count, CountMeaning::None), "new a\n", ViolationKind::WrongBookkeeping,
     1},
    {"count References, not External: mark-sweep counts only external references",
     promising<MarkSweep>, Fault::None, set(&Capabilities::count, CountMeaning::References),
     set(&Capabilities::count, CountMeaning::External), "new a\nnew b\nlink a b\n",
     ViolationKind::WrongBookkeeping, 3},
    {"inspectable: inspect shows one reference too many", promising<MarkSweep>,
     Fault::ExtraReference, set(&Capabilities::inspectable, true),
     set(&Capabilities::inspectable, false), "new a\n", ViolationKind::WrongBookkeeping, 1},
    {"freezes: freeze does nothing", promising<MarkSweep>, Fault::IgnoresFreeze,
     set(&Capabilities::freezes, true), set(&Capabilities::freezes, false),
     "new a\nlink a a\nunroot a\nfreeze\ncollect\n", ViolationKind::FrozenCollected, 5},
    {"finalizers: a is freed without its finalizer", promising<MarkSweep>,
     Fault::IgnoresFinalizers, set(&Capabilities::finalizers, true),
     set(&Capabilities::finalizers, false), "new a\nfinalizer a\nunroot a\ncollect\n",
     ViolationKind::WrongFinalization, 4},
    {"finalizers, undeclared: mark-sweep runs a finalizer it was not given", promising<MarkSweep>,
     Fault::None, set(&Capabilities::finalizers, false), set(&Capabilities::finalizers, true),
     "new a\nfinalizer a\nunroot a\ncollect\n", ViolationKind::WrongFinalization, 4},
    {"finalizers_may_run_again: a's finalizer runs again once a is garbage again",
     finalizer_run_twice, Fault::None, set(&Capabilities::finalizers_may_run_again, false),
     set(&Capabilities::finalizers_may_run_again, true),
     "new a\nlink a a\nfinalizer a resurrect\nunroot a\ncollect\nrelease\ncollect\n",
     ViolationKind::WrongFinalization, 7},
    {"weak_references: a is freed with w still pointing to it", promising<MarkSweep>,
     Fault::IgnoresWeakReferences, set(&Capabilities::weak_references, true),
     set(&Capabilities::weak_references, false), "new a\nweak w a\nunroot a\ncollect\n",
     ViolationKind::WrongWeakReference, 4},
    {"weak_references, undeclared: mark-sweep clears a weak reference it was not given",
     promising<MarkSweep>, Fault::None, set(&Capabilities::weak_references, false),
     set(&Capabilities::weak_references, true), "new a\nweak w a\nunroot a\ncollect\n",
     ViolationKind::WrongWeakReference, 4},
    {"weak_references_cleared_before_finalizers: w is cleared after a's finalizer ran",
     promising<MarkSweep>, Fault::ClearsWeakAfterFinalizers,
     set(&Capabilities::weak_references_cleared_before_finalizers, true),
     set(&Capabilities::weak_references_cleared_before_finalizers, false),
     "new a\nfinalizer a\nweak w a\nunroot a\ncollect\n", ViolationKind::WrongWeakReference, 5},
    {"weak_reference_callbacks: w is cleared, its callback never runs", promising<MarkSweep>,
     Fault::DropsWeakCallbacks, set(&Capabilities::weak_reference_callbacks, true),
     set(&Capabilities::weak_reference_callbacks, false),
     "new a\nweak w a callback\nunroot a\ncollect\n", ViolationKind::WrongWeakReference, 4},
    {"weak_references_of_garbage_outlive_finalizers: w, held by garbage h, is cleared after a's "
     "finalizer ran", promising<MarkSweep>, Fault::ClearsWeakAfterFinalizers,
     set(&Capabilities::weak_references_of_garbage_outlive_finalizers, false),
     set(&Capabilities::weak_references_of_garbage_outlive_finalizers, true),
     "new a\nnew h\nlink h a\nfinalizer a\nweak w a in h\nunroot a\nunroot h\ncollect\n",
     ViolationKind::WrongWeakReference, 8},
    {"finalizers_of_an_earlier_cycle_run_first: w is cleared after a's finalizer, none before",
     promising<MarkSweep>, Fault::ClearsWeakAfterFinalizers,
     set(&Capabilities::finalizers_of_an_earlier_cycle_run_first, false),
     set(&Capabilities::finalizers_of_an_earlier_cycle_run_first, true),
     "new a\nfinalizer a\nweak w a\nunroot a\ncollect\n", ViolationKind::WrongWeakReference, 5},
    {"finalizers_of_an_earlier_cycle_run_first: w to a, which a's finalizer resurrects, stays",
     promising<MarkSweep>, Fault::IgnoresWeakReferences,
     set(&Capabilities::finalizers_of_an_earlier_cycle_run_first, false),
     set(&Capabilities::finalizers_of_an_earlier_cycle_run_first, true),
     "new a\nweak w a\nfinalizer a resurrect\nunroot a\ncollect\n",
     ViolationKind::WrongWeakReference, 5},
    {"weak_references_cleared_once_finalized: w to b, which a's finalizer kept, is cleared",
     promising<MarkSweep>, Fault::ClearsWeakAtCollect,
     set(&Capabilities::weak_references_cleared_once_finalized, false),
     set(&Capabilities::weak_references_cleared_once_finalized, true),
     "new a\nnew b\nlink a b\nfinalizer a weak w b in a resurrect\nunroot b\nunroot a\ncollect\n"
     "collect\n",
     ViolationKind::WrongWeakReference, 8},
    {"weak_reference_callbacks, undeclared: mark-sweep runs a callback",
     promising<MarkSweep>, Fault::None, set(&Capabilities::weak_reference_callbacks, false),
     set(&Capabilities::weak_reference_callbacks, true),
     "new a\nweak w a callback\nunroot a\ncollect\n", ViolationKind::WrongWeakReference, 4},
    {"map_entries StrongValues, not Ephemerons: mark-sweep lets the value go with its key",
     promising<MarkSweep>, Fault::None, set(&Capabilities::map_entries, MapEntries::StrongValues),
     set(&Capabilities::map_entries, MapEntries::Ephemerons),
     "new m\nnew k\nnew v\nlink v k\nentry m k v\nunroot v\nunroot k\ncollect\n",
     ViolationKind::PrematureFree, 8},
    {"cpython_thresholds: the threshold op is ignored", promising<Generational>,
     Fault::IgnoresThresholds, set(&Capabilities::cpython_thresholds, true),
     set(&Capabilities::cpython_thresholds, false), "threshold 1 1 1\nnew a\nnew b\n",
     ViolationKind::WrongAutomaticCollection, 3},
    {"automatic_collection, undeclared: generational collects young garbage on its own",
     promising<Generational>, Fault::None, set(&Capabilities::automatic_collection, false),
     set(&Capabilities::automatic_collection, true), "threshold 1 1 1\nnew a\nnew b\n",
     ViolationKind::WrongAutomaticCollection, 3},
};

TEST(Checker, EachCapabilitySwitchesItsCheck) {
  for (const CapabilityCase& c : kCapabilityCases) {
    SCOPED_TRACE(c.capability);
    const auto fired = violations(c.trace, {c.wrap(c.fires, c.fault)});
    if (fired.empty()) {
      ADD_FAILURE() << "no violation; expected " << describe(c.kind) << " after line " << c.line;
    } else {
      EXPECT_EQ(describe(fired[0].kind), std::string(describe(c.kind))) << summary(fired);
      EXPECT_EQ(fired[0].op_index + 1, c.line) << summary(fired);
    }
    const auto quiet = violations(c.trace, {c.wrap(c.quiet, c.fault)});
    EXPECT_TRUE(quiet.empty()) << "with the capability switched: " << summary(quiet);
  }
}

// weak_references_cleared_once_finalized lets go only of what a finalizer kept: a weak reference
// to an object no finalizer ever kept is still never cleared while the program reaches it.
// A map that drops its entries as it clears its keys' weak references
// (MapEntries::StrongValuesUntilKeyCleared) must not drop one whose key the program reaches; one
// whose map does not drop entries must report no drop at all.
TEST(Checker, ReportsAMapEntryDroppedWhileItsKeyIsReachable) {
  const char* trace = "new m\nnew k\nnew v\nentry m k v\n";
  const auto dropping = violations(
      trace, {promising<MarkSweep>(set(&Capabilities::map_entries,
                                       MapEntries::StrongValuesUntilKeyCleared),
                                   Fault::DropsEntriesAsSet)});
  ASSERT_FALSE(dropping.empty());
  EXPECT_EQ(dropping[0].kind, ViolationKind::WrongWeakReference) << summary(dropping);
  EXPECT_EQ(dropping[0].op_index + 1, 4u);
  EXPECT_NE(dropping[0].detail.find("could still reach"), std::string::npos) << summary(dropping);
  const auto ephemerons = violations(trace, {faulty<MarkSweep>(Fault::DropsEntriesAsSet)});
  ASSERT_FALSE(ephemerons.empty());
  EXPECT_NE(ephemerons[0].detail.find("whose entries go only with their keys"), std::string::npos)
      << summary(ephemerons);
}

TEST(Checker, WeakReferencesClearedOnceFinalizedCoverOnlyWhatFinalizersKept) {
  const Promise once_finalized = set(&Capabilities::weak_references_cleared_once_finalized, true);
  const auto fired =
      violations("new a\nnew b\nfinalizer a resurrect\nunroot a\nweak w b\ncollect\n",
                 {promising<MarkSweep>(once_finalized, Fault::ClearsWeakAtCollect)});
  ASSERT_FALSE(fired.empty());
  EXPECT_EQ(describe(fired[0].kind), std::string(describe(ViolationKind::WrongWeakReference)));
  EXPECT_EQ(fired[0].op_index + 1, 6u) << summary(fired);
}

TEST(Checker, RetiresACollectorAfterItsFirstViolation) {
  const Trace trace = parse_trace("new a\nnew b\nlink a b\nlink b a\nunroot a\n", "t.trace");
  Session session({faulty<MarkSweep>(Fault::FreeReachableOnLink), *find_collector("mark-sweep")},
                  {});
  session.run(trace);
  EXPECT_TRUE(session.retired(0));
  EXPECT_FALSE(session.retired(1));
  EXPECT_EQ(session.violations().size(), 1u);
}

}  // namespace
}  // namespace cyclefuzz
