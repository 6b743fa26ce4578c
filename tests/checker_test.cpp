// The checker catches what it claims to: each check is shown firing on a collector with a planted
// fault, and staying quiet on the correct one it wraps.
#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <type_traits>

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
  ClaimCounting,         // claims reference counting without doing it
  ExtraReference,        // inspect shows one more reference than there is
  CountWrong,            // inspect shows a count one too high
  InvariantFails,        // check_invariants always throws
  FreeTwice,             // reports every free twice
};

/// A correct collector with one planted fault. The inner collector reports its frees straight to
/// the session; the wrapper adds lies on top.
class Faulty : public Collector {
 public:
  Faulty(CollectorHost& listener, std::unique_ptr<Collector> inner, Fault fault,
         std::function<void(Capabilities&)> promise = {})
      : Collector(listener), inner_(std::move(inner)), fault_(fault),
        capabilities_(inner_->capabilities()) {
    if (fault == Fault::ClaimCounting) capabilities_.reference_counting = true;
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
    const std::size_t found = inner_->collect(generation);
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
  void inspect(ObjectId id, ObjectView& view) const override {
    inner_->inspect(id, view);
    if (fault_ == Fault::ExtraReference) view.references.push_back(id);
    if (fault_ == Fault::CountWrong) ++view.count;
  }
  std::uint64_t collections() const override { return inner_->collections(); }
  void check_invariants() const override {
    if (fault_ == Fault::InvariantFails) throw BrokenInvariant("planted");
    inner_->check_invariants();
  }
  std::optional<GcStatistics> statistics() const override { return inner_->statistics(); }

 private:
  std::unique_ptr<Collector> inner_;
  Fault fault_;
  Capabilities capabilities_;
};

/// Forwards frees to the session, twice for Fault::FreeTwice.
class Doubling : public CollectorHost {
 public:
  explicit Doubling(CollectorHost& to) : to_(to) {}
  void freed(ObjectId id) override {
    to_.freed(id);
    to_.freed(id);
  }

 private:
  CollectorHost& to_;
};

template <class Inner>
CollectorEntry faulty(Fault fault) {
  return {"faulty", "", [fault](CollectorHost& l, const CollectorOptions&) -> std::unique_ptr<Collector> {
            if (fault == Fault::FreeTwice) {
              // The doubling listener must outlive the collector: keep it inside a holder.
              struct Holder : Faulty {
                Holder(CollectorHost& l, std::unique_ptr<Doubling> d)
                    : Faulty(l, std::make_unique<Inner>(*d), Fault::None), doubling(std::move(d)) {}
                std::unique_ptr<Doubling> doubling;
              };
              auto d = std::make_unique<Doubling>(l);
              return std::make_unique<Holder>(l, std::move(d));
            }
            return std::make_unique<Faulty>(l, std::make_unique<Inner>(l), fault);
          },
          false};
}

/// A collector with a planted fault whose capabilities `promise` adjusts.
template <class Inner>
CollectorEntry promising(std::function<void(Capabilities&)> promise, Fault fault) {
  return {"promising", "",
          [=](CollectorHost& l, const CollectorOptions& o) -> std::unique_ptr<Collector> {
            std::unique_ptr<Collector> inner;
            if constexpr (std::is_constructible_v<Inner, CollectorHost&, const CollectorOptions&>) {
              inner = std::make_unique<Inner>(l, o);
            } else {
              inner = std::make_unique<Inner>(l);
            }
            return std::make_unique<Faulty>(l, std::move(inner), fault, promise);
          },
          false};
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

TEST(Checker, ReportsLateFreeForAReferenceCounterThatWaits) {
  const auto vs =
      violations("new a\nnew b\nlink a b\nunroot b\nunroot a\n", {faulty<MarkSweep>(Fault::ClaimCounting)});
  ASSERT_EQ(vs.size(), 1u);
  EXPECT_EQ(vs[0].kind, ViolationKind::LateFree);
  EXPECT_EQ(vs[0].op_index, 4u);
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

TEST(Checker, ReportsDoubleFree) {
  EXPECT_TRUE(has(violations("new a\nunroot a\n", {faulty<TrialDeletion>(Fault::FreeTwice)}),
                  ViolationKind::DoubleFree));
}

TEST(Checker, ReportsDisagreementBetweenCollectors) {
  const auto vs = violations(kTwoCycle, {*find_collector("mark-sweep"),
                                         faulty<MarkSweep>(Fault::NeverCollect)});
  ASSERT_TRUE(has(vs, ViolationKind::Disagreement));
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
