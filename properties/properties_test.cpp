// The properties every collector must have, one GoogleTest case each, run with RapidCheck on
// every collector they apply to. RC_PARAMS (seed, max_success, max_size) controls a run; CTest
// fixes the seed (see CMakeLists.txt), and docs/properties.md shows a long campaign.
#include <gtest/gtest.h>

#include "checker/lane.h"
#include "properties/property_run.h"

namespace cyclefuzz::properties {
namespace {

using K = ViolationKind;

std::string name_of(const Trace& trace, ObjectId x) { return trace.names[x]; }

// ---- a second full collection frees nothing ----------------------------------------------------

class SecondCollectionObserver final : public Observer {
 public:
  std::string after(Session& session, Trace& trace, const Op& op) override {
    if (op.kind != OpKind::Collect ||
        !session.collector(0).capabilities().is_full_collection(op.generation) ||
        session.retired(0)) {
      return "";
    }
    // (What its finalizers allocated or linked under it may wait for the next one: lane.h.)
    std::vector<ObjectId> may_go;
    for (ObjectId x = 0; x < session.oracle().object_count(); ++x) {
      if (session.lane(0).fresh(x)) may_go.push_back(x);
    }
    const Op again = Op::collect();
    trace.ops.push_back(again);
    session.step(again);
    for (ObjectId x : session.frees_per_op(0).back()) {
      if (std::find(may_go.begin(), may_go.end(), x) == may_go.end()) {
        return "a second full collection freed " + name_of(trace, x);
      }
    }
    return "";
  }
};

// ---- the same trace gives the same frees in the same order --------------------------------------

class DeterminismObserver final : public Observer {
 public:
  std::string after(Session& session, Trace&, const Op&) override {
    if (session.retired(0) || session.retired(1)) return "";
    return session.frees_per_op(0).back() == session.frees_per_op(1).back()
               ? ""
               : "two runs of the same trace freed different objects, or in another order";
  }
};

template <class T>
std::function<std::unique_ptr<Observer>()> observe() {
  return [] { return std::make_unique<T>(); };
}

bool always(const Collector&) { return true; }
bool counts_references(const Collector& c) { return c.capabilities().reference_counting; }
bool has_generations(const Collector& c) { return c.capabilities().generations > 1; }
bool follows_cpython_thresholds(const Collector& c) {
  return c.capabilities().cpython_thresholds;
}
bool freezes(const Collector& c) { return c.capabilities().freezes; }
bool keeps_statistics(const Collector& c) { return c.statistics().has_value(); }
bool runs_finalizers(const Collector& c) { return c.capabilities().finalizers; }
bool keeps_weak_references(const Collector& c) { return c.capabilities().weak_references; }

/// The built-in collectors a property applies to.
std::vector<std::string> applicable(bool (*applies)(const Collector&)) {
  struct Ignore : CollectorHost {
    void freed(ObjectId) override {}
  } ignore;
  std::vector<std::string> names;
  for (const std::string& name : default_collector_names()) {
    if (applies(*find_collector(name)->make(ignore, {}))) names.push_back(name);
  }
  return names;
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  std::erase(name, '-');
  return name;
}

// One GoogleTest suite per property, instantiated for every built-in collector it applies to:
// Collectors/NoPrematureFreeAfterAnyOp.Holds/trialdeletion and so on.
#define CYCLEFUZZ_PROPERTY(NAME, APPLIES, ...)                                               \
  class NAME : public ::testing::TestWithParam<std::string> {};                            \
  TEST_P(NAME, Holds) {                                                                    \
    const Property property{#NAME, __VA_ARGS__};                                           \
    EXPECT_TRUE(check_property(property, *find_collector(GetParam())));                    \
  }                                                                                        \
  INSTANTIATE_TEST_SUITE_P(Collectors, NAME, ::testing::ValuesIn(applicable(APPLIES)), test_name)

CYCLEFUZZ_PROPERTY(NoPrematureFreeAfterAnyOp, always, CheckOptions::only(K::PrematureFree));
CYCLEFUZZ_PROPERTY(NoLeakAfterFullCollection, always, CheckOptions::only(K::Leak));
CYCLEFUZZ_PROPERTY(CollectCountIsExact, always, CheckOptions::only(K::WrongCount));
CYCLEFUZZ_PROPERTY(NoLateFreeWithReferenceCounting, counts_references,
                   CheckOptions::only(K::LateFree));
CYCLEFUZZ_PROPERTY(LiveSetsAgreeAfterFullCollection, always, CheckOptions::only(K::Disagreement),
                   nullptr, 1, true);
CYCLEFUZZ_PROPERTY(BookkeepingMatchesTheOracle, always, CheckOptions::only(K::WrongBookkeeping));
CYCLEFUZZ_PROPERTY(SecondFullCollectionFreesNothing, always, 0,
                   observe<SecondCollectionObserver>());
CYCLEFUZZ_PROPERTY(SameTraceSameFreesInSameOrder, always, 0, observe<DeterminismObserver>(), 2);
CYCLEFUZZ_PROPERTY(GenerationsChangeOnlyByPromotion, has_generations,
                   CheckOptions::only(K::WrongGeneration));
CYCLEFUZZ_PROPERTY(PartialCollectionFreesUnheldYoungGarbage, has_generations,
                   CheckOptions::only(K::MissedGarbage));
CYCLEFUZZ_PROPERTY(AutomaticCollectionExactlyAtThresholds, follows_cpython_thresholds,
                   CheckOptions::only(K::WrongAutomaticCollection));
CYCLEFUZZ_PROPERTY(FrozenObjectsAreNeverCollected, freezes,
                   CheckOptions::only(K::FrozenCollected));
CYCLEFUZZ_PROPERTY(GcStatisticsMatchWhatCollectionsDid, keeps_statistics,
                   CheckOptions::only(K::WrongStatistics));
CYCLEFUZZ_PROPERTY(FinalizersRunOnceAndOnlyForUnreachableObjects, runs_finalizers,
                   CheckOptions::only(K::WrongFinalization));
CYCLEFUZZ_PROPERTY(WeakReferencesAreClearedExactlyWhenTheirTargetsAreFreed,
                   keeps_weak_references, CheckOptions::only(K::WrongWeakReference));

}  // namespace
}  // namespace cyclefuzz::properties
