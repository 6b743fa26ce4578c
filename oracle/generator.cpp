#include "oracle/generator.h"

#include <array>

namespace cyclefuzz {

namespace {

/// How far back `recent_reachable` looks, and how many objects it keeps.
constexpr std::size_t kRecentWindow = 64;
constexpr std::size_t kRecentObjects = 8;

/// Up to kRecentObjects reachable objects among the kRecentWindow newest ones, newest first.
std::vector<ObjectId> recent_reachable(const Oracle& heap) {
  std::vector<ObjectId> recent;
  const std::size_t n = heap.object_count();
  for (std::size_t back = 1; back <= std::min(n, kRecentWindow); ++back) {
    const auto id = static_cast<ObjectId>(n - back);
    if (heap.reachable_from_roots(id)) {
      recent.push_back(id);
      if (recent.size() == kRecentObjects) break;
    }
  }
  return recent;
}

/// A reachable object: three times in four one of the most recent. Pre: one exists.
ObjectId pick_reachable(const Oracle& heap, Choices& choices) {
  if (choices.choose(4) != 3) {
    const std::vector<ObjectId> recent = recent_reachable(heap);
    if (!recent.empty()) return recent[choices.choose(recent.size())];
  }
  const std::vector<ObjectId>& all = heap.reachable_objects();
  return all[choices.choose(all.size())];
}

/// An object holding an external reference: mostly a recent one. Pre: one exists.
ObjectId pick_rooted(const Oracle& heap, Choices& choices) {
  if (choices.choose(4) != 3) {
    std::vector<ObjectId> recent = recent_reachable(heap);
    std::erase_if(recent, [&](ObjectId x) { return heap.external_references(x) == 0; });
    if (!recent.empty()) return recent[choices.choose(recent.size())];
  }
  const std::vector<ObjectId>& rooted = heap.rooted_objects();
  return rooted[choices.choose(rooted.size())];
}

Op random_link(const Oracle& heap, Choices& choices) {
  const ObjectId to = pick_reachable(heap, choices);
  if (choices.choose(3) == 2) {  // close a two-cycle: link back from one of `to`'s referents
    const std::vector<ObjectId> referents = heap.referents(to);
    if (!referents.empty()) return Op::link(referents[choices.choose(referents.size())], to);
  }
  return Op::link(pick_reachable(heap, choices), to);
}

std::optional<Op> random_unlink(const Oracle& heap, Choices& choices) {
  for (int attempt = 0; attempt < 4; ++attempt) {
    const ObjectId from = pick_reachable(heap, choices);
    const std::vector<ObjectId> referents = heap.referents(from);
    if (!referents.empty()) return Op::unlink(from, referents[choices.choose(referents.size())]);
  }
  return std::nullopt;
}

}  // namespace

Op random_op(const Oracle& heap, Choices& choices) {
  const auto next_new = Op::make_new(static_cast<ObjectId>(heap.object_count()));
  if (heap.reachable_count() == 0) {
    return choices.choose(8) == 7 ? Op::collect() : next_new;
  }
  // Weights out of 100, simplest first (choice 0 is where shrinking goes).
  enum Kind { New, Link, Unroot, Unlink, Root, Collect };
  static constexpr std::array<std::size_t, 6> kWeights = {22, 30, 22, 12, 4, 10};
  std::size_t roll = choices.choose(100);
  std::size_t kind = 0;
  while (roll >= kWeights[kind]) roll -= kWeights[kind++];

  switch (kind) {
    case New:
      return next_new;
    case Link:
      return random_link(heap, choices);
    case Unroot:
      return Op::unroot(pick_rooted(heap, choices));
    case Unlink:
      if (auto op = random_unlink(heap, choices)) return *op;
      return Op::root(pick_reachable(heap, choices));
    case Root:
      return Op::root(pick_reachable(heap, choices));
    default: {
      static constexpr std::array<int, 4> kGenerations = {kOldestGeneration, kOldestGeneration, 0,
                                                          1};
      return Op::collect(kGenerations[choices.choose(kGenerations.size())]);
    }
  }
}

Trace generate_trace(std::uint64_t seed, std::size_t ops) {
  Trace trace;
  trace.source = "<gen seed " + std::to_string(seed) + ">";
  SeededChoices choices(seed);
  Oracle heap;
  for (std::size_t i = 0; i < ops; ++i) {
    const Op op = random_op(heap, choices);
    heap.apply(op);
    trace.ops.push_back(op);
  }
  return trace;
}

}  // namespace cyclefuzz
