// The properties every collector must have, one GoogleTest case each, run with RapidCheck on
// every collector they apply to. RC_PARAMS (seed, max_success, max_size) controls a run; CTest
// fixes the seed (see CMakeLists.txt), and the README shows a long campaign.
#include <gtest/gtest.h>

#include <map>

#include "collectors/generational/generational.h"
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
    const Op again = Op::collect();
    trace.ops.push_back(again);
    session.step(again);
    const auto& freed = session.frees_per_op(0).back();
    return freed.empty() ? "" : "a second full collection freed " + name_of(trace, freed[0]);
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

// ---- generational: an object's generation never decreases --------------------------------------

class GenerationObserver final : public Observer {
 public:
  std::string after(Session& session, Trace& trace, const Op&) override {
    const Collector& collector = session.collector(0);
    ObjectView view;
    for (ObjectId x = 0; x < session.oracle().object_count(); ++x) {
      if (!session.holds(0, x)) continue;
      collector.inspect(x, view);
      if (x >= generation_.size()) generation_.resize(x + 1, 0);
      if (view.generation < generation_[x]) {
        return name_of(trace, x) + " went from generation " + std::to_string(generation_[x]) +
               " to " + std::to_string(view.generation);
      }
      generation_[x] = view.generation;
    }
    return "";
  }

 private:
  std::vector<int> generation_;
};

// ---- generational: collect(k) frees the garbage of generations 0..k that nothing older holds ----

class PartialCollectionObserver final : public Observer {
 public:
  void before(const Session& session, const Op& op) override {
    expected_.clear();
    const Collector& collector = session.collector(0);
    if (op.kind != OpKind::Collect || collector.capabilities().is_full_collection(op.generation)) {
      return;
    }
    const Oracle& oracle = session.oracle();
    std::vector<int> generation(oracle.object_count(), -1);
    const auto garbage = [&](ObjectId x) {
      return session.holds(0, x) && !oracle.reachable_from_roots(x);
    };
    std::vector<ObjectId> young, old;
    ObjectView view;
    for (ObjectId x = 0; x < oracle.object_count(); ++x) {
      if (!garbage(x)) continue;
      collector.inspect(x, view);
      (view.generation <= op.generation ? young : old).push_back(x);
    }
    std::vector<std::uint8_t> held(oracle.object_count(), 0);
    for (ObjectId x : oracle.descendants(old, garbage)) held[x] = 1;
    for (ObjectId x : young) {
      if (!held[x]) expected_.push_back(x);
    }
  }

  std::string after(Session& session, Trace& trace, const Op&) override {
    if (session.retired(0)) return "";
    for (ObjectId x : expected_) {
      if (session.holds(0, x)) {
        return "a partial collection kept " + name_of(trace, x) +
               ", garbage of a collected generation that nothing older holds";
      }
    }
    return "";
  }

 private:
  std::vector<ObjectId> expected_;
};

// ---- generational: automatic collection exactly when the counts pass the thresholds -----------
//
// An independent model of CPython's rules: generation 0's count goes up with each allocation and
// down with each free; a collection of generation g zeroes the counts of 0..g and adds one to
// g + 1's; an allocation that takes count 0 past its threshold collects the oldest generation
// whose count is past its threshold, except that a full collection waits until the objects
// promoted into the oldest generation since the last full one are a quarter of its survivors.

class ThresholdObserver final : public Observer {
 public:
  void before(const Session& session, const Op&) override {
    collections_ = session.collector(0).collections();
    generation_before_.assign(session.oracle().object_count() + 1, -1);
    ObjectView view;
    for (ObjectId x = 0; x < session.oracle().object_count(); ++x) {
      if (!session.holds(0, x)) continue;
      session.collector(0).inspect(x, view);
      generation_before_[x] = view.generation;
    }
  }

  std::string after(Session& session, Trace&, const Op& op) override {
    if (session.retired(0)) return "";
    const auto* gc = dynamic_cast<const Generational*>(&session.collector(0));
    const CollectorOptions options = property_collector_options();
    const std::uint32_t* t = options.thresholds;
    const std::uint64_t ran = session.collector(0).collections() - collections_;
    int collected = -1;
    if (op.kind == OpKind::New) {
      ++count_[0];
      if (t[0] > 0 && count_[0] > t[0]) {
        for (int g = 2; g >= 0 && collected < 0; --g) {
          if (count_[g] <= t[g]) continue;
          if (g == 2 && pending_ < total_ / 4) continue;
          collected = g;
        }
      }
      if (ran != (collected >= 0 ? 1u : 0u)) {
        return "allocation count " + std::to_string(count_[0]) + " (threshold " +
               std::to_string(t[0]) + ") should " + (collected >= 0 ? "" : "not ") +
               "have started a collection, and " + std::to_string(ran) + " ran";
      }
    } else if (op.kind == OpKind::Collect) {
      collected = std::min(op.generation, 2);
    } else {
      const std::size_t freed = session.frees_per_op(0).back().size();
      count_[0] = count_[0] > freed ? count_[0] - freed : 0;
    }
    if (collected >= 0) {
      if (collected < 2) ++count_[collected + 1];
      for (int g = 0; g <= collected; ++g) count_[g] = 0;
      account_promotions(session, collected);
    }
    const auto& actual = gc->get_count();
    if (actual[0] != count_[0] || actual[1] != count_[1] || actual[2] != count_[2]) {
      return "gc.get_count() is (" + std::to_string(actual[0]) + ", " +
             std::to_string(actual[1]) + ", " + std::to_string(actual[2]) +
             "), the model expects (" + std::to_string(count_[0]) + ", " +
             std::to_string(count_[1]) + ", " + std::to_string(count_[2]) + ")";
    }
    return "";
  }

 private:
  // The long-lived bookkeeping, from what the collection did to the generations.
  void account_promotions(const Session& session, int collected) {
    ObjectView view;
    std::size_t promoted = 0, oldest = 0;
    for (ObjectId x = 0; x < session.oracle().object_count(); ++x) {
      if (!session.holds(0, x)) continue;
      session.collector(0).inspect(x, view);
      oldest += view.generation == 2;
      promoted += view.generation == 2 && generation_before_[x] >= 0 && generation_before_[x] < 2;
    }
    if (collected == 1) pending_ += promoted;
    if (collected == 2) {
      pending_ = 0;
      total_ = oldest;
    }
  }

  std::uint64_t count_[3] = {0, 0, 0};
  std::size_t pending_ = 0, total_ = 0;
  std::uint64_t collections_ = 0;
  std::vector<int> generation_before_;
};

template <class T>
std::function<std::unique_ptr<Observer>()> observe() {
  return [] { return std::make_unique<T>(); };
}

bool always(const Collector&) { return true; }
bool counts_references(const Collector& c) { return c.capabilities().reference_counting; }
bool has_generations(const Collector& c) { return c.capabilities().generations > 1; }
bool is_cpython_model(const Collector& c) { return dynamic_cast<const Generational*>(&c); }

/// The built-in collectors a property applies to.
std::vector<std::string> applicable(bool (*applies)(const Collector&)) {
  struct Ignore : FreeListener {
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
CYCLEFUZZ_PROPERTY(GenerationNeverDecreases, has_generations, 0, observe<GenerationObserver>());
CYCLEFUZZ_PROPERTY(PartialCollectionFreesUnheldYoungGarbage, has_generations, 0,
                   observe<PartialCollectionObserver>());
CYCLEFUZZ_PROPERTY(AutomaticCollectionExactlyAtThresholds, is_cpython_model, 0,
                   observe<ThresholdObserver>());

}  // namespace
}  // namespace cyclefuzz::properties
