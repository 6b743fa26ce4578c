// The op-level mutator of fuzzer inputs: every mutation gives a valid input within the size
// asked, edits whole ops where it says it does, and a drawn op decodes to exactly that op.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <set>

#include "runners/fuzz_input.h"
#include "runners/op_mutator.h"

namespace cyclefuzz {
namespace {

using Bytes = std::vector<std::uint8_t>;
using Ops = std::vector<Op>;

/// A byte mutator standing in for libFuzzer's: flips one byte.
std::size_t flip_a_byte(std::uint8_t* data, std::size_t size, std::size_t) {
  if (size > 0) data[size / 2] ^= 0x35;
  return size;
}

/// Ops that mean the same in any heap: on an empty heap, their choices do not depend on what
/// came before, so an edit of their bytes is exactly the same edit of the ops.
Ops heap_free_ops() {
  return {Op::collect(0),  Op::collect(1), Op::threshold(3, 2, 1), Op{OpKind::Freeze},
          Op::collect(),   Op{OpKind::Enable}, Op{OpKind::Disable}, Op::threshold(7, 1, 2),
          Op{OpKind::Unfreeze}, Op::collect(0), Op{OpKind::Release}, Op::collect(1)};
}

Bytes encoded(const Ops& ops) {
  Trace trace;
  for (const Op& op : ops) trace.push_unnamed(op);
  return encode_fuzz_input(trace);
}

Ops decoded(const Bytes& bytes) { return decode_fuzz_input(bytes).ops; }

Ops concat(std::initializer_list<Ops> parts) {
  Ops out;
  for (const Ops& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

Ops slice(const Ops& ops, std::size_t first, std::size_t last) {
  return Ops(ops.begin() + static_cast<std::ptrdiff_t>(first),
             ops.begin() + static_cast<std::ptrdiff_t>(last));
}

/// Whether `result` is `ops` with one block [first, last) repeated `times` more times in place
/// (times 0: unchanged), for some block and times >= `at_least`.
bool repeats_a_block(const Ops& ops, const Ops& result, std::size_t at_least) {
  for (std::size_t first = 0; first < ops.size(); ++first) {
    for (std::size_t last = first + 1; last <= ops.size(); ++last) {
      const std::size_t length = last - first;
      if ((result.size() - ops.size()) % length != 0) continue;
      const std::size_t times = (result.size() - ops.size()) / length;
      if (times < at_least) continue;
      Ops expected = slice(ops, 0, last);
      for (std::size_t t = 0; t < times; ++t) {
        expected.insert(expected.end(), ops.begin() + static_cast<std::ptrdiff_t>(first),
                        ops.begin() + static_cast<std::ptrdiff_t>(last));
      }
      expected.insert(expected.end(), ops.begin() + static_cast<std::ptrdiff_t>(last), ops.end());
      if (expected == result) return true;
    }
  }
  return false;
}

TEST(OpMutator, EveryMutationGivesAValidInputWithinTheSize) {
  std::array<std::size_t, kOpMutations> made{};
  for (std::uint32_t seed = 0; seed < 400; ++seed) {
    Bytes input = encode_fuzz_input(generate_trace(seed, seed % 60));
    const std::size_t max_size = input.size() + seed % 300;
    OpMutator mutator(seed, flip_a_byte);
    const OpMutation mutation = mutator.mutate(input, max_size);
    ++made[static_cast<std::size_t>(mutation)];
    EXPECT_LE(input.size(), max_size) << name(mutation) << ", seed " << seed;
    EXPECT_NO_THROW(check_trace(decode_fuzz_input(input))) << name(mutation);
  }
  for (std::size_t m = 0; m < kOpMutations; ++m) {
    EXPECT_GT(made[m], 0u) << name(static_cast<OpMutation>(m)) << " never made";
  }
}

TEST(OpMutator, EraseDuplicateAndRepeatEditWholeOps) {
  const Ops ops = heap_free_ops();
  for (std::uint32_t seed = 0; seed < 60; ++seed) {
    OpMutator mutator(seed, flip_a_byte);
    Bytes erased = encoded(ops);
    ASSERT_TRUE(mutator.try_mutation(OpMutation::Erase, erased, 4096));
    const Ops left = decoded(erased);
    bool cut = false;
    for (std::size_t first = 0; first < ops.size() && !cut; ++first) {
      cut = concat({slice(ops, 0, first), slice(ops, first + ops.size() - left.size(),
                                                ops.size())}) == left;
    }
    EXPECT_TRUE(cut && left.size() < ops.size()) << "erase, seed " << seed;

    Bytes repeated = encoded(ops);
    ASSERT_TRUE(mutator.try_mutation(OpMutation::Repeat, repeated, 2000));
    EXPECT_TRUE(repeats_a_block(ops, decoded(repeated), 2)) << "repeat, seed " << seed;

    Bytes duplicated = encoded(ops);
    ASSERT_TRUE(mutator.try_mutation(OpMutation::Duplicate, duplicated, 4096));
    const Ops result = decoded(duplicated);
    ASSERT_GT(result.size(), ops.size());
    // Some block of `ops` was put at some op boundary.
    bool found = false;
    const std::size_t length = result.size() - ops.size();
    for (std::size_t at = 0; at <= ops.size() && !found; ++at) {
      const Ops block = slice(result, at, at + length);
      found = concat({slice(ops, 0, at), block, slice(ops, at, ops.size())}) == result &&
              std::search(ops.begin(), ops.end(), block.begin(), block.end()) != ops.end();
    }
    EXPECT_TRUE(found) << "duplicate, seed " << seed;
  }
}

TEST(OpMutator, RepeatStaysWithinTheSizeAndDeclinesWhenNothingFits) {
  const Bytes input = encoded(heap_free_ops());
  OpMutator mutator(1, flip_a_byte);
  Bytes full = input;
  EXPECT_FALSE(mutator.try_mutation(OpMutation::Repeat, full, input.size()));
  EXPECT_EQ(full, input);
  for (std::uint32_t seed = 0; seed < 50; ++seed) {
    Bytes grown = input;
    OpMutator(seed, flip_a_byte).try_mutation(OpMutation::Repeat, grown, input.size() + 10);
    EXPECT_LE(grown.size(), input.size() + 10);
  }
}

TEST(OpMutator, InsertAndReplaceDrawOneWholeOpForTheHeapThere) {
  const Ops ops = heap_free_ops();
  std::size_t exact = 0;
  for (std::uint32_t seed = 0; seed < 200; ++seed) {
    for (OpMutation mutation : {OpMutation::Insert, OpMutation::Replace}) {
      Bytes output = encoded(ops);
      ASSERT_TRUE(OpMutator(seed, flip_a_byte).try_mutation(mutation, output, 4096));
      const Ops after = decoded(output);
      std::size_t d = 0;
      while (d < ops.size() && d < after.size() && ops[d] == after[d]) ++d;
      if (d == ops.size() && after.size() == ops.size()) continue;  // replaced by its equal
      ASSERT_LT(d, after.size()) << name(mutation) << ", seed " << seed;
      // An op drawn on the empty heap that leaves it empty changes nothing after it: the
      // result is `ops` with exactly that op put in (or put in the place of op d).
      const std::set<OpKind> heap_free = {OpKind::Collect, OpKind::Threshold, OpKind::Freeze,
                                          OpKind::Unfreeze, OpKind::Enable, OpKind::Disable,
                                          OpKind::Release};
      if (!heap_free.contains(after[d].kind)) continue;
      const std::size_t rest = mutation == OpMutation::Insert ? d : d + 1;
      EXPECT_EQ(after, concat({slice(ops, 0, d), {after[d]}, slice(ops, rest, ops.size())}))
          << name(mutation) << ", seed " << seed;
      ++exact;
    }
  }
  EXPECT_GT(exact, 100u);
}

TEST(OpMutator, ResizeChangesOneBuildsSize) {
  Trace trace;
  trace.push_unnamed(Op::make_new(0));
  trace.push_unnamed(Op::build(1, Shape::Ring, 40));
  trace.push_unnamed(Op::link(0, 1));
  const Bytes input = encode_fuzz_input(trace);
  std::set<std::uint32_t> sizes;
  for (std::uint32_t seed = 0; seed < 40; ++seed) {
    Bytes output = input;
    ASSERT_TRUE(OpMutator(seed, flip_a_byte).try_mutation(OpMutation::Resize, output, 4096));
    const Ops after = decoded(output);
    ASSERT_EQ(after.size(), 3u);
    EXPECT_EQ(after[0], trace.ops[0]);
    EXPECT_EQ(after[1].kind, OpKind::Build);
    EXPECT_EQ(after[1].shape, Shape::Ring);
    EXPECT_EQ(after[2], trace.ops[2]);
    sizes.insert(after[1].size);
  }
  EXPECT_TRUE(sizes.contains(20)) << "halved";
  EXPECT_TRUE(sizes.contains(80)) << "doubled";
  EXPECT_GT(sizes.size(), 4u);

  Bytes no_build = encoded(heap_free_ops());
  EXPECT_FALSE(OpMutator(1, flip_a_byte).try_mutation(OpMutation::Resize, no_build, 4096));
}

TEST(OpMutator, CrossOverJoinsWholeOpsOfBothInputs) {
  const Ops ops = heap_free_ops();
  const Ops a = slice(ops, 0, 7);
  const Ops b = slice(ops, 5, 12);
  for (std::uint32_t seed = 0; seed < 60; ++seed) {
    const Ops result =
        decoded(OpMutator(seed, flip_a_byte).cross_over(encoded(a), encoded(b), 4096));
    bool found = false;
    for (std::size_t at = 0; at <= a.size() && !found; ++at) {
      for (std::size_t first = 0; first <= b.size() && !found; ++first) {
        found = result == concat({slice(a, 0, at), slice(b, first, b.size())});
        for (std::size_t last = first + 1; last <= b.size() && !found; ++last) {
          found = result ==
                  concat({slice(a, 0, at), slice(b, first, last), slice(a, at, a.size())});
        }
      }
    }
    EXPECT_TRUE(found) << "seed " << seed;
    EXPECT_LE(OpMutator(seed, flip_a_byte).cross_over(encoded(a), encoded(b), 5).size(), 5u);
  }
}

}  // namespace
}  // namespace cyclefuzz
