// Each collector on the hand-written scenarios of corpus/scenarios, and all collectors against
// the oracle on generated traces.
#include <gtest/gtest.h>

#include <set>
#include <sstream>

#include "collectors/cell_census.h"
#include "collectors/generational/generational.h"
#include "runners/generator.h"
#include "reports/report.h"
#include "tests/test_support.h"

namespace cyclefuzz {
namespace {

using testing::builtin_collector_names;
using testing::entries;
using testing::names_of;
using testing::op_at_line;
using testing::RecordingListener;
using testing::scenario;

/// A trace's run on the given collectors, with frees recorded.
struct TraceRun {
  TraceRun(const Trace& t, const std::vector<std::string>& collectors, CollectorOptions options = {})
      : trace(t), session(entries(collectors), options, {.check_invariants = true,
                                                         .record_frees = true}) {
    session.run(trace);
  }
  /// Names freed by collector i at the op on `line`.
  std::vector<std::string> freed_at(std::size_t i, std::uint32_t line) const {
    return names_of(trace, session.frees_per_op(i)[op_at_line(trace, line)]);
  }
  std::string report() const {
    std::ostringstream out;
    print_trace_result(out, trace, session);
    return out.str();
  }
  Trace trace;
  Session session;
};

class EveryCollector : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryCollector, PassesEveryScenario) {
  for (const auto& file : expand_trace_paths({(testing::source_dir() / "corpus").string()})) {
    TraceRun run(load_trace(file), {GetParam()});
    EXPECT_TRUE(run.session.violations().empty()) << run.report();
  }
}

TEST_P(EveryCollector, FreesSelfLoopOnlyOnCollect) {
  TraceRun run(scenario("self-loop"), {GetParam()});
  EXPECT_TRUE(run.freed_at(0, 5).empty());
  EXPECT_EQ(run.freed_at(0, 6), std::vector<std::string>{"a"});
}

TEST_P(EveryCollector, FreesCycleHangingOffLiveDataOnlyAfterItIsCutLoose) {
  TraceRun run(scenario("cycle-off-live-data"), {GetParam()});
  EXPECT_TRUE(run.freed_at(0, 11).empty());
  EXPECT_TRUE(run.freed_at(0, 12).empty());
  auto freed = run.freed_at(0, 13);  // collect 0: full for collectors without generations
  const auto later = run.freed_at(0, 15);
  freed.insert(freed.end(), later.begin(), later.end());
  EXPECT_EQ(std::set<std::string>(freed.begin(), freed.end()), (std::set<std::string>{"a", "b"}));
}

TEST_P(EveryCollector, KeepsLiveDataHangingOffAFreedCycle) {
  TraceRun run(scenario("live-data-off-cycle"), {GetParam()});
  const auto freed = run.freed_at(0, 12);
  EXPECT_EQ(std::set<std::string>(freed.begin(), freed.end()), (std::set<std::string>{"a", "b"}));
  EXPECT_EQ(run.freed_at(0, 15), std::vector<std::string>{"kept"});
}

TEST_P(EveryCollector, FreesNestedCyclesTogether) {
  TraceRun run(scenario("nested-cycles"), {GetParam()});
  EXPECT_TRUE(run.freed_at(0, 20).empty());  // nothing is garbage yet
  const auto freed = run.freed_at(0, 25);
  EXPECT_EQ(freed.size(), GetParam() == "generational" ? 5u : 4u)
      << "generational keeps e in the oldest generation until the last full collection";
}

INSTANTIATE_TEST_SUITE_P(Builtin, EveryCollector, ::testing::ValuesIn(builtin_collector_names()),
                         testing::collector_test_name);

TEST(CellCensus, CountsReferencesToHeldCellsAndKnowsNoOther) {
  struct Cell {
    int id;
  };
  std::vector<Cell> cells{{0}, {1}, {2}, {3}};
  const Cell elsewhere{9};
  CellCensus<Cell> census;
  for (int round = 0; round < 2; ++round) {  // (a second census forgets the first)
    census.begin(round == 0 ? cells.size() : 1);  // (the second one grows)
    for (std::size_t i = cells.size(); i-- > 0;) census.add(&cells[i]);
    EXPECT_TRUE(census.count_reference_to(&cells[2]));
    EXPECT_TRUE(census.count_reference_to(&cells[2]));
    EXPECT_TRUE(census.count_reference_to(&cells[0]));
    EXPECT_FALSE(census.count_reference_to(&elsewhere));
    EXPECT_FALSE(census.holds(&elsewhere));
    EXPECT_EQ(*census.referrers(&cells[2]), 2u);
    EXPECT_EQ(*census.referrers(&cells[0]), 1u);
    EXPECT_EQ(*census.referrers(&cells[3]), 0u);
    EXPECT_EQ(census.referrers(&elsewhere), nullptr);
  }
}

TEST(TrialDeletion, FreesTwoCycleOnFullCollect) {
  TraceRun run(scenario("two-cycle"), {"trial-deletion"});
  EXPECT_TRUE(run.freed_at(0, 7).empty());
  const auto freed = run.freed_at(0, 8);
  EXPECT_EQ(std::set<std::string>(freed.begin(), freed.end()), (std::set<std::string>{"a", "b"}));
}

TEST(MarkSweep, FreesNothingOutsideCollect) {
  TraceRun run(scenario("cycle-broken-before-collection"), {"mark-sweep"});
  for (std::size_t op = 0; op + 1 < run.trace.ops.size(); ++op) {
    EXPECT_TRUE(run.session.frees_per_op(0)[op].empty()) << "op " << op;
  }
  EXPECT_EQ(run.session.frees_per_op(0).back().size(), 2u);
}

TEST(ReferenceCounting, FreesABrokenCycleWithoutCollecting) {
  for (const auto& name : testing::reference_counting_collector_names()) {
    TraceRun run(scenario("cycle-broken-before-collection"), {name});
    EXPECT_EQ(run.freed_at(0, 8), std::vector<std::string>{"b"}) << name;
    EXPECT_EQ(run.freed_at(0, 9), std::vector<std::string>{"a"}) << name;
  }
}

TEST(ReferenceCounting, UnlinkDropsExactlyOneOfSeveralReferences) {
  for (const auto& name : testing::reference_counting_collector_names()) {
    TraceRun run(scenario("multi-edges"), {name});
    EXPECT_TRUE(run.session.violations().empty()) << run.report();
    EXPECT_TRUE(run.freed_at(0, 9).empty()) << name;
  }
}

TEST(Generational, PartialCollectionLeavesTheOldestGeneration) {
  TraceRun run(scenario("nested-cycles"), {"generational"});
  EXPECT_TRUE(run.freed_at(0, 22).empty());  // collect 1: e is in generation 2
  EXPECT_EQ(run.freed_at(0, 25).size(), 5u);
}

TEST(Generational, PromotesSurvivorsOneGeneration) {
  RecordingListener listener;
  Generational gc(listener, {});
  gc.allocate(0);
  gc.link(0, 0);  // without a reference it would stop being tracked
  ObjectView view;
  gc.inspect(0, view);
  EXPECT_EQ(view.generation, 0);
  gc.collect(0);
  gc.inspect(0, view);
  EXPECT_EQ(view.generation, 1);
  gc.collect(1);
  gc.inspect(0, view);
  EXPECT_EQ(view.generation, 2);
  gc.collect(2);
  gc.inspect(0, view);
  EXPECT_EQ(view.generation, 2);
}

TEST(Generational, CollectsYoungGarbageAutomaticallyPastTheThreshold) {
  RecordingListener listener;
  CollectorOptions options;
  options.thresholds[0] = 4;
  Generational gc(listener, options);
  // Four self-looped garbage objects: counts_[0] reaches 4, not past the threshold.
  for (ObjectId x = 0; x < 4; ++x) {
    gc.allocate(x);
    gc.link(x, x);
    gc.unroot(x);
  }
  EXPECT_TRUE(listener.frees.empty());
  EXPECT_EQ(gc.statistics()->count[0], 4u);
  gc.allocate(4);  // the fifth allocation passes it: generation 0 is collected first
  EXPECT_EQ(listener.frees, (std::vector<ObjectId>{0, 1, 2, 3}));
  EXPECT_EQ(gc.collections(), 1u);
  EXPECT_EQ(gc.statistics()->count[1], 1u);
  gc.check_invariants();
}

TEST(Generational, HoldsBackFullCollectionsUntilAQuarterOfTheLongLivedArePending) {
  RecordingListener listener;
  CollectorOptions options;
  options.thresholds[0] = 1;
  options.thresholds[1] = 0;
  options.thresholds[2] = 0;
  Generational gc(listener, options);
  // 40 objects survive a full collection: the long-lived total is 40, so a full collection waits
  // until 10 objects have been promoted into the oldest generation since. (Each refers to itself:
  // an object without references would stop being tracked.)
  for (ObjectId x = 0; x < 40; ++x) {
    gc.allocate(x);
    gc.link(x, x);
  }
  gc.collect(2);
  bool held_back = false;
  std::size_t pending_at_full = 0;
  for (ObjectId next = 40; next < 200 && pending_at_full == 0; ++next) {
    if (next > 40) gc.link(next - 1, next - 1);
    std::size_t promoted = 0;  // objects promoted into generation 2 since the full collection
    ObjectView view;
    for (ObjectId x = 40; x < next; ++x) {
      gc.inspect(x, view);
      promoted += view.generation == 2;
    }
    const std::uint64_t count2 = gc.statistics()->count[2];
    gc.allocate(next);
    if (count2 > 0 && gc.statistics()->count[2] == 0) {
      pending_at_full = promoted;
    } else if (gc.statistics()->count[2] > 0) {
      held_back = true;  // generation 2's count is past its threshold of 0, yet no full collection
    }
  }
  EXPECT_TRUE(held_back);
  EXPECT_GE(pending_at_full, 10u);
  gc.check_invariants();
}

TEST(AllCollectors, AgreeWithTheOracleOnGeneratedTraces) {
  CollectorOptions small;  // small thresholds so automatic collection happens in short traces
  small.thresholds[0] = 7;
  small.thresholds[1] = 3;
  small.thresholds[2] = 2;
  for (std::uint64_t seed = 0; seed < 3000; ++seed) {
    const Trace trace = generate_trace(seed, 50 + seed % 250);
    Session session(entries(builtin_collector_names()), seed % 2 ? small : CollectorOptions{},
                    {.check_invariants = true, .record_frees = false});
    session.run(trace);
    if (!session.violations().empty()) {
      std::ostringstream out;
      print_trace_result(out, trace, session);
      FAIL() << "seed " << seed << "\n" << out.str() << to_text(trace);
    }
  }
}

}  // namespace
}  // namespace cyclefuzz
