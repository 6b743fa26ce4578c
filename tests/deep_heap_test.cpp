// Very deep heaps: freeing or marking a chain or ring of a million objects must not overflow the
// stack, in any collector, nor checking them, in the oracle, the checker and its reports.
#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>

#include "checker/session.h"
#include "oracle/oracle.h"
#include "tests/test_support.h"

namespace cyclefuzz {
namespace {

constexpr ObjectId kLength = 1'000'000;

class DeepHeap : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    collector_ = find_collector(GetParam())->make(listener_, {});
  }
  /// o0 -> o1 -> ... -> o(n-1), only o0 rooted; with `ring`, also o(n-1) -> o0.
  void build(bool ring) {
    for (ObjectId x = 0; x < kLength; ++x) collector_->allocate(x);
    for (ObjectId x = 0; x + 1 < kLength; ++x) collector_->link(x, x + 1);
    if (ring) collector_->link(kLength - 1, 0);
    // Drop the external references from the end, so the chain stays reachable throughout.
    for (ObjectId x = kLength - 1; x > 0; --x) collector_->unroot(x);
  }
  bool counts_references() const { return collector_->capabilities().reference_counting; }

  testing::RecordingListener listener_;
  std::unique_ptr<Collector> collector_;
};

TEST_P(DeepHeap, MarksALiveChainOfAMillion) {
  build(false);
  const std::size_t freed_before = listener_.frees.size();
  EXPECT_EQ(collector_->collect(kOldestGeneration), 0u);
  EXPECT_EQ(listener_.frees.size(), freed_before);
}

TEST_P(DeepHeap, FreesADeadChainOfAMillion) {
  build(false);
  collector_->unroot(0);
  if (!counts_references()) {
    EXPECT_EQ(collector_->collect(kOldestGeneration), kLength);
  }
  EXPECT_EQ(listener_.frees.size(), kLength);
}

TEST_P(DeepHeap, FreesADeadRingOfAMillion) {
  build(true);
  collector_->unroot(0);
  const std::size_t freed_before = listener_.frees.size();
  EXPECT_EQ(collector_->collect(kOldestGeneration), kLength - freed_before);
  EXPECT_EQ(listener_.frees.size(), kLength);
}

INSTANTIATE_TEST_SUITE_P(Builtin, DeepHeap,
                         ::testing::ValuesIn(testing::builtin_collector_names()),
                         testing::collector_test_name);

/// The ops that build o0 -> o1 -> ... -> o(n-1) (with `ring`, also o(n-1) -> o0), only o0 rooted.
std::vector<Op> deep_heap(bool ring) {
  std::vector<Op> ops;
  for (ObjectId x = 0; x < kLength; ++x) ops.push_back(Op::make_new(x));
  for (ObjectId x = 0; x + 1 < kLength; ++x) ops.push_back(Op::link(x, x + 1));
  if (ring) ops.push_back(Op::link(kLength - 1, 0));
  for (ObjectId x = kLength - 1; x > 0; --x) ops.push_back(Op::unroot(x));
  return ops;
}

TEST(DeepOracle, FindsThePathDownAChainOfAMillion) {
  Oracle oracle;
  for (const Op& op : deep_heap(false)) oracle.apply(op);
  EXPECT_EQ(oracle.path_from_roots(kLength - 1).size(), kLength);
  oracle.apply(Op::unroot(0));
  EXPECT_EQ(oracle.newly_unreachable().size(), kLength);
}

TEST(DeepOracle, FindsTheRingOfAMillionThatHoldsAnObject) {
  Oracle oracle;
  for (const Op& op : deep_heap(true)) oracle.apply(op);
  oracle.apply(Op::unroot(0));
  const auto holder = oracle.cycle_holding(kLength / 2, [](ObjectId) { return true; });
  EXPECT_EQ(holder.cycle.size(), kLength + 1);  // the first object repeated at the end
}

// Every check after every op (but check_invariants(), which walks the heap after each one), and
// no automatic collection (after each, the checks walk the heap).
TEST(DeepOracle, ChecksEveryCollectorOnAChainOfAMillion) {
  CollectorOptions options;
  std::fill(std::begin(options.thresholds), std::end(options.thresholds), 0);
  Session session(testing::entries(testing::builtin_collector_names()), options,
                  CheckOptions{.check_invariants = false});
  for (const Op& op : deep_heap(false)) session.step(op);
  session.step(Op::collect());
  session.step(Op::unroot(0));
  session.step(Op::collect());
  EXPECT_TRUE(session.violations().empty());
}

}  // namespace
}  // namespace cyclefuzz
