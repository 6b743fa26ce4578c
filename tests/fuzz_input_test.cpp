// Between bytes and traces: every input decodes to a valid trace, the decoder is stable, and
// encoding any valid trace then decoding it gives the same ops.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "checker/session.h"
#include "runners/fuzz_input.h"
#include "tests/test_support.h"

namespace cyclefuzz {
namespace {

TEST(FuzzInput, EncodingThenDecodingGivesTheSameOps) {
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    const Trace trace = generate_trace(seed, 20 + seed * 3);
    EXPECT_EQ(decode_fuzz_input(encode_fuzz_input(trace)).ops, trace.ops) << "seed " << seed;
  }
}

TEST(FuzzInput, RoundTripsUnderTheDistributionItWasDrawnFrom) {
  // A larger --max-build reads more octaves: its inputs mean other traces under the default.
  const Distribution large{.max_build = 20'000};
  std::size_t past_the_default = 0, differ = 0;
  for (std::uint64_t seed = 0; seed < 100; ++seed) {
    const Trace trace = generate_trace(seed, 300, large);
    for (const Op& op : trace.ops) past_the_default += op.kind == OpKind::Build && op.size > 1000;
    const std::vector<std::uint8_t> bytes = encode_fuzz_input(trace, large);
    EXPECT_EQ(decode_fuzz_input(bytes, large).ops, trace.ops) << "seed " << seed;
    differ += decode_fuzz_input(bytes).ops != trace.ops;
  }
  EXPECT_GT(past_the_default, 5u);
  EXPECT_GT(differ, 50u);
}

TEST(FuzzInput, ATraceMayStartWithABuild) {
  // (A build makes its objects as `new` does: it needs nothing reachable before it.)
  const Trace trace = parse_trace("build o0 ring 40\nunroot o0\ncollect\n", "test");
  EXPECT_EQ(decode_fuzz_input(encode_fuzz_input(trace)).ops, trace.ops);
}

TEST(FuzzInput, EveryCorpusTraceRoundTrips) {
  for (const auto& file : expand_trace_paths({(testing::source_dir() / "corpus").string()})) {
    const Trace trace = load_trace(file);
    EXPECT_EQ(decode_fuzz_input(encode_fuzz_input(trace)).ops, trace.ops) << file;
  }
}

TEST(FuzzInput, AnyBytesDecodeToAValidTrace) {
  std::mt19937 random(5);
  for (int i = 0; i < 300; ++i) {
    std::vector<std::uint8_t> bytes(random() % 2000);
    for (auto& b : bytes) b = static_cast<std::uint8_t>(random());
    const Trace trace = decode_fuzz_input(bytes);
    EXPECT_NO_THROW(check_trace(trace));
    EXPECT_LE(trace.ops.size(), bytes.size()) << "every op reads at least one byte";
    EXPECT_EQ(decode_fuzz_input(encode_fuzz_input(trace)).ops, trace.ops);
  }
}

// fuzz_collectors decodes against its session's oracle, whose lanes add their finalizers'
// references and entries to the graph: a finding must still decode, with `cyclefuzz decode`, to
// the trace that was run. A collector that is retired ends the run, and the trace, early.
TEST(FuzzInput, DecodingAgainstASessionsOracleGivesTheSameOps) {
  std::mt19937 random(11);
  std::size_t stopped_early = 0, with_programs_references = 0;
  for (int i = 0; i < 300; ++i) {
    std::vector<std::uint8_t> bytes(random() % 1600);
    for (auto& b : bytes) b = static_cast<std::uint8_t>(random());
    const Trace alone = decode_fuzz_input(bytes);
    const std::vector<std::string> collectors =
        i % 3 == 0 ? std::vector<std::string>{"mutant:finalizer-run-twice"}
                   : testing::builtin_collector_names();
    Session session(testing::entries(collectors), {});
    const Trace along = decode_fuzz_input(bytes, {}, session.oracle(), [&session](const Op& op) {
      session.step(op);
      return !session.done();
    });
    ASSERT_LE(along.ops.size(), alone.ops.size()) << "input " << i;
    EXPECT_TRUE(std::equal(along.ops.begin(), along.ops.end(), alone.ops.begin()))
        << "input " << i;
    if (along.ops.size() < alone.ops.size()) {
      ++stopped_early;
      EXPECT_TRUE(session.done()) << "input " << i;
    }
    const Oracle::Graph& graph = session.oracle().graph();
    const auto [begin, end] = boost::edges(graph);
    with_programs_references += std::any_of(begin, end, [&graph](const auto& e) {
      return graph[e].owner != kMutatorView;
    });
  }
  EXPECT_GT(stopped_early, 0u);
  EXPECT_GT(with_programs_references, 50u) << "inputs whose finalizers made references";
}

TEST(FuzzInput, ChangingOneByteKeepsTheOpsBeforeIt) {
  std::mt19937 random(9);
  std::vector<std::uint8_t> bytes(600);
  for (auto& b : bytes) b = static_cast<std::uint8_t>(random());
  const Trace original = decode_fuzz_input(bytes);
  bytes[300] ^= 0x5a;
  const Trace changed = decode_fuzz_input(bytes);
  // The ops decoded entirely from the first 300 bytes are untouched.
  std::size_t same = 0;
  while (same < original.ops.size() && same < changed.ops.size() &&
         original.ops[same] == changed.ops[same]) {
    ++same;
  }
  EXPECT_GT(same, 50u);
  EXPECT_TRUE(decode_fuzz_input({}).ops.empty());
}

}  // namespace
}  // namespace cyclefuzz
