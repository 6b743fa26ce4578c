// Random valid ops: the one distribution behind `cyclefuzz gen`, the fuzz decoder and the
// property generators.
//
// Every op is chosen from the heap as the oracle sees it, so only objects the mutator can reach
// are touched and every sequence is a valid trace. The randomness comes from a `Choices` source:
// a seeded generator for `cyclefuzz gen`, the fuzzer's bytes for the fuzz targets, RapidCheck for
// the properties (which then shrinks each choice towards 0, the simplest option).
//
// The distribution is biased towards what breaks cycle collectors (docs/fuzzing.md):
//   * objects are mostly chosen among the few most recently allocated reachable ones, so links
//     between them close small cycles quickly;
//   * a quarter of the links point back at an object that already refers to the source: a
//     two-cycle on purpose; a quarter hang the newest object off a recent one that only
//     references keep alive, so reachable chains grow deep;
//   * unroot is as common as new, and mostly drops the last external reference of a recent
//     object: cycles are built, then abandoned;
//   * collections are 8 ops in 127, half of them partial; one op in a hundred sets the
//     automatic collection thresholds, mostly to small values that short traces reach; freeze,
//     unfreeze, disable and enable one in a hundred each;
//   * 8 ops in 127 give an object a finalizer, whose program takes one more step two times in
//     three (up to kMaxSteps): a resurrect, a new, a link or a collect, each as likely, naming
//     the object itself, what it reaches or what the program allocated - so that collections
//     meet resurrection, allocation under the collector and re-entrancy often; weak
//     references and derefs 3 in 127 each, half of the weak references with a callback (a
//     program of its own, drawn as a finalizer's from what it allocates), half
//     held by an object (mostly a recent one: often garbage with its target) instead of the
//     mutator, derefs only of those the mutator still reaches;
//     `release` 2 in 127, so that resurrected objects turn into garbage again;
//   * `entry` 8 in 127: half of them pick map, key and value as a link's ends are (mostly recent
//     objects, so values that refer back to their key come often), half a rooted map, a key that
//     only references keep alive (another entry's value, an older root's referent) and the newest
//     object as the value - marking reaches such a key after its map, so the value lives only if
//     the entry waits for it; `unentry` 2 in 127, of any entry whose map and key are reachable;
//   * a new object is a list 16 times in 27, else a record (3), an acyclic object, a dict or a
//     set (2 each), a cell or a tuple (with its items); an op that an object's kind forbids becomes
//     the link the other way, or a `root` of it;
//   * `build` 1 in 127: a chain, ring, tree, fan, clique or star of 2 to Distribution::max_build
//     objects (1,000 unless asked for more), the size log-uniform, which the ops that follow (on
//     the newest objects) abandon, hang off live data, cut or close: bugs that need size need it;
//   * no `new` nor `build` while kMaxReachable (256) objects are reachable, so that a long
//     trace's live heap stays bounded (by kMaxReachable plus one build).
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>

#include "language/op.h"
#include "oracle/oracle.h"
#include "language/trace.h"

namespace cyclefuzz {

/// A source of choices for the generators.
class Choices {
 public:
  virtual ~Choices() = default;
  /// A number in [0, n), n >= 1. 0 is always the simplest option.
  virtual std::size_t choose(std::size_t n) = 0;
};

/// Choices from a seeded pseudo-random generator: the same seed gives the same choices.
class SeededChoices final : public Choices {
 public:
  explicit SeededChoices(std::uint64_t seed) : random_(seed) {}
  std::size_t choose(std::size_t n) override {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(random_);
  }

 private:
  std::mt19937_64 random_;
};

/// No `new` nor `build` while this many objects are reachable (a build may go past it, once).
/// About one object in ten ops stays reachable, so traces of up to about 2,500 ops never meet the
/// cap but through builds (those of `cyclefuzz check`, the fuzzers and the properties are
/// shorter); longer ones keep a bounded live heap, so that every collection (and its checks)
/// costs about the same however long the trace is. (Large heaps are the
/// shape benchmarks' and tests/deep_heap_test.cpp's business.)
constexpr std::size_t kMaxReachable = 256;

/// What a user may change of the distribution.
struct Distribution {
  /// The largest structure a `build` makes (a clique: at most 32). Sizes are log-uniform from 2
  /// up to it: each octave is as likely, so most builds stay small and a long run still meets
  /// the largest. A build costs its size in every collector and check: 1,000 by default, which
  /// costs `check` 1.7 times what builds to 127 did (past it the cost grows with the size: 4.3x
  /// at 4,096, 8.2x at 10^4 - docs/fuzzing.md), and more on request (`--max-build`,
  /// CYCLEFUZZ_MAX_BUILD), for bugs that need more: a recursive free that overflows the stack at
  /// some thousands of objects, a count kept in 16 bits.
  std::uint32_t max_build = 1'000;
  friend bool operator==(const Distribution&, const Distribution&) = default;
};

/// A valid op for the current heap.
Op random_op(const Oracle& heap, Choices& choices, const Distribution& distribution = {});

/// One answer to a `choose(n)`.
struct Choice {
  std::size_t value;
  std::size_t n;
};

/// The choices that make random_op produce `op` (a valid op) in this heap: random_op run
/// backwards, so that any valid trace can be turned into the choices (and so the fuzzer bytes)
/// that produce it.
std::vector<Choice> choices_for(const Oracle& heap, const Op& op,
                                const Distribution& distribution = {});

/// A valid trace of `ops` ops; the same for the same seed.
Trace generate_trace(std::uint64_t seed, std::size_t ops, const Distribution& distribution = {});

}  // namespace cyclefuzz
