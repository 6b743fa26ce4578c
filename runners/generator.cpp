#include "runners/generator.h"

#include <algorithm>
#include <array>
#include <boost/container/static_vector.hpp>
#include <stdexcept>

namespace cyclefuzz {

namespace {

/// How far back `recent_reachable` looks, and how many objects it keeps.
constexpr std::size_t kRecentWindow = 64;
constexpr std::size_t kRecentObjects = 8;

// The first decision: which kind of op, by weight out of 127, simplest first (choice 0 is where
// shrinking goes). The rows' order is the order of that choice's values: choices_for() answers it
// from the same table, and fuzzer inputs and seeds mean what they mean through it, so a new kind
// goes at the end. With nothing reachable only the ops that name no object are possible; `deref`
// needs a weak reference, `unentry` an entry whose map and key are reachable.
struct Weighted {
  OpKind kind;
  std::size_t weight;
};
constexpr Weighted kKinds[] = {
    {OpKind::New, 22},      {OpKind::Link, 28},      {OpKind::Unroot, 20},  {OpKind::Unlink, 12},
    {OpKind::Root, 4},      {OpKind::Collect, 8},    {OpKind::Threshold, 2}, {OpKind::Freeze, 1},
    {OpKind::Unfreeze, 1},  {OpKind::Disable, 1},    {OpKind::Enable, 1},   {OpKind::Finalizer, 8},
    {OpKind::Weak, 3},      {OpKind::Deref, 3},      {OpKind::Release, 2},   {OpKind::Entry, 8},
    {OpKind::Unentry, 2},   {OpKind::Build, 1},
};
constexpr std::size_t kKindCount = std::size(kKinds);
static_assert(kKindCount == static_cast<std::size_t>(OpKind::Build) + 1,
              "a row for every OpKind");
using Weights = std::array<std::size_t, kKindCount>;
// A finalizer's program: before each step, whether there is one more (1, 2) or not (0), up to
// kMaxSteps; each step a resurrect (0), a new (1), a link (2), a collect (3), an unlink (4), a
// deref (5), a release (6), a finalizer (7), a weak reference (8), an entry (9) or an unentry
// (10). What a step names is one of `usable`: what the object reaches (itself first), then what
// the program allocated. A link starts at the newest object the program allocated, or the object
// itself if none (0), or at any usable one (1); an unlink at the object itself (0) or any usable
// one (1), and drops one of its references (those it has now, and those the program's earlier
// links gave it); a deref takes one of the weak references that usable objects hold; a finalizer
// goes to one of the objects the program allocated that has none; a weak reference has a usable
// target, a callback (1) or not (0), and a usable holder; an entry is in a map chosen as a link's
// source, for a usable key and value; an unentry drops one of the entries usable maps have (those
// of the heap, and those the program's earlier entries made). A step with nothing to take, or
// that what an object is forbids, is left out.
constexpr std::size_t kMoreSteps = 3;
constexpr std::size_t kUsable = 64;
constexpr std::array<StepKind, 11> kDrawnStepKinds = {
    StepKind::Resurrect, StepKind::New,     StepKind::Link,      StepKind::Collect,
    StepKind::Unlink,    StepKind::Deref,   StepKind::Release,   StepKind::Finalizer,
    StepKind::Weak,      StepKind::Entry,   StepKind::Unentry};
constexpr std::size_t kLinkSources = 2;
// Which object: three times in four (0..2) a recent one, else (3) any.
constexpr std::size_t kRecency = 4;
constexpr std::size_t kAnyObject = 3;
// How a link is chosen: between any two reachable objects (0, 1); back from one of the target's
// referents, closing a two-cycle (2); or from a recent object that only references keep alive
// to the newest object, so that reachable chains grow deep (3).
// A build: a shape (chain, ring, tree, fan, clique or star, each as likely) and a size drawn
// log-uniformly: a power of two 2^e (0 < e <= octaves(max_build), each as likely) plus less than
// as much again, at most max_build (a clique, kMaxGeneratedClique: its references grow with the
// square). A build is drawn only while the live heap is under kMaxReachable, and then as large
// as drawn: sizes from 2 to thousands, as bugs that need size (a mark stack or a buffer that
// gives up, a count that overflows, a recursion that does) need them; most builds stay small.
constexpr std::size_t kShapeCount = 6;
constexpr std::uint32_t kMaxGeneratedClique = 32;
constexpr std::size_t kLinkModes = 4;
constexpr std::size_t kClosesCycle = 2;
constexpr std::size_t kDeepens = 3;
// How an entry is chosen: map, key and value among any reachable objects (0); or (1) a rooted
// map, a key that only references keep alive (another entry's value, or an older root's referent)
// and the newest object as the value, which the mutator may drop next: marking may reach such a
// key after the map, and the value lives only if the entry waits for it (the fixpoint that a
// single pass over the entries misses).
constexpr std::size_t kEntryModes = 2;
constexpr std::size_t kKeyHeldByReferences = 1;
// What a new object is, by weight (the rows' order is the choice's): mostly a list; a
// tuple takes one more item two times in three while anything is reachable (up to kMaxItems),
// each chosen as any object is.
struct WeightedKind {
  ObjectKind kind;
  std::size_t weight;
};
constexpr WeightedKind kKindWeights[] = {
    {ObjectKind::List, 16}, {ObjectKind::Record, 3}, {ObjectKind::Dict, 2},
    {ObjectKind::Cell, 1},  {ObjectKind::Tuple, 1},  {ObjectKind::Acyclic, 2},
    {ObjectKind::Set, 2},
};
constexpr std::size_t kKindWeightTotal = [] {
  std::size_t total = 0;
  for (const WeightedKind& k : kKindWeights) total += k.weight;
  return total;
}();
constexpr std::size_t kMoreItems = 3;
// Who holds a weak reference: the mutator (0) or (1) an object, chosen as any object is: then the
// weak reference goes with it, and often dies in the same garbage as its target.
constexpr std::size_t kWeakHolders = 2;
constexpr std::size_t kHeldByAnObject = 1;
// Which generation a collection collects: half full, half partial.
constexpr std::array<int, 4> kGenerations = {kOldestGeneration, kOldestGeneration, 0, 1};
// Thresholds: three times in four small ones, so that short traces reach every automatic
// collection; else (3) any value.
constexpr std::size_t kThresholdModes = 4;
constexpr std::size_t kExactThresholds = 3;
constexpr std::array<std::size_t, 3> kSmallThresholds = {8, 3, 3};  // 1..8, 1..3, 1..3

/// Whether the mutator can name m's entry for k: m and k are reachable, and the entry is there.
bool live_entry(const Oracle& heap, ObjectId map, ObjectId key) {
  return heap.reachable_from_roots(map) && heap.reachable_from_roots(key) &&
         heap.entry_value(map, key).has_value();
}

/// Whether `unentry` is possible: some map has a live entry. (Oracle::keys lists only the keys
/// the mutator reaches, so this costs the live heap at most, before every op. std::any_of, not
/// std::ranges: clang 14, which builds the fuzzers, cannot compile libstdc++ 12's ranges.)
bool has_live_entry(const Oracle& heap) {
  const std::vector<ObjectId>& keys = heap.keys();
  return std::any_of(keys.begin(), keys.end(), [&](ObjectId key) {
    const std::vector<ObjectId>& maps = heap.maps_keyed_by(key);
    return std::any_of(maps.begin(), maps.end(),
                       [&](ObjectId map) { return live_entry(heap, map, key); });
  });
}

Weights weights_for(const Oracle& heap) {
  const bool nothing_reachable = heap.reachable_count() == 0;
  Weights weights{};
  for (std::size_t k = 0; k < kKindCount; ++k) {
    const OpKind kind = kKinds[k].kind;
    const bool names_a_reachable_object =
        info(kind).objects > 0 && kind != OpKind::New && kind != OpKind::Build;
    const bool possible = !(nothing_reachable && names_a_reachable_object) &&
                          !((kind == OpKind::New || kind == OpKind::Build) &&
                            heap.reachable_count() >= kMaxReachable) &&
                          !(kind == OpKind::Deref && heap.derefable_weak().empty()) &&
                          !(kind == OpKind::Unentry && !has_live_entry(heap));
    weights[k] = possible ? kKinds[k].weight : 0;
  }
  return weights;
}

std::size_t total(const Weights& weights) {
  std::size_t sum = 0;
  for (std::size_t w : weights) sum += w;
  return sum;
}

OpKind pick_kind(const Oracle& heap, Choices& choices) {
  const Weights weights = weights_for(heap);
  std::size_t roll = choices.choose(total(weights));
  std::size_t k = 0;
  while (roll >= weights[k]) roll -= weights[k++];
  return kKinds[k].kind;
}

/// At most kRecentObjects objects, without allocating: they are picked on every op.
using RecentObjects = boost::container::static_vector<ObjectId, kRecentObjects>;

/// Up to kRecentObjects reachable objects among the kRecentWindow newest ones, newest first.
RecentObjects recent_reachable(const Oracle& heap) {
  RecentObjects recent;
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

/// A reachable object: mostly one of the most recent. Pre: one exists.
ObjectId pick_reachable(const Oracle& heap, Choices& choices) {
  if (choices.choose(kRecency) != kAnyObject) {
    const RecentObjects recent = recent_reachable(heap);
    if (!recent.empty()) return recent[choices.choose(recent.size())];
  }
  const std::vector<ObjectId>& all = heap.reachable_objects();
  return all[choices.choose(all.size())];
}

/// An object holding an external reference: mostly a recent one. Pre: one exists.
ObjectId pick_rooted(const Oracle& heap, Choices& choices) {
  if (choices.choose(kRecency) != kAnyObject) {
    RecentObjects recent = recent_reachable(heap);
    recent.erase(std::remove_if(recent.begin(), recent.end(),
                                [&](ObjectId x) { return heap.external_references(x) == 0; }),
                 recent.end());
    if (!recent.empty()) return recent[choices.choose(recent.size())];
  }
  const std::vector<ObjectId>& rooted = heap.rooted_objects();
  return rooted[choices.choose(rooted.size())];
}

/// The targets of `from`'s references, one per reference, its map entries left out: what
/// `unlink` can drop (an entry's value may be unreachable, once its key is).
std::vector<ObjectId> plain_referents(const Oracle& heap, ObjectId from) {
  std::vector<ObjectId> out;
  for (auto [e, end] = boost::out_edges(from, heap.graph()); e != end; ++e) {
    if (heap.graph()[*e].key == Oracle::kNoKey) {
      out.push_back(static_cast<ObjectId>(boost::target(*e, heap.graph())));
    }
  }
  return out;
}

/// Those of `recent` that only references keep alive (no external reference).
RecentObjects held_by_references(const RecentObjects& recent, const Oracle& heap) {
  RecentObjects held;
  for (ObjectId x : recent) {
    if (heap.external_references(x) == 0) held.push_back(x);
  }
  return held;
}

/// One of the plain referents of `from`, or nothing if it has none.
std::optional<ObjectId> pick_referent(const Oracle& heap, ObjectId from, Choices& choices) {
  const std::vector<ObjectId> referents = plain_referents(heap, from);
  if (referents.empty()) return std::nullopt;
  return referents[choices.choose(referents.size())];
}

/// The keys of a reachable map's live entries, in the order the entries were made.
std::vector<ObjectId> live_keys(const Oracle& heap, ObjectId map) {
  std::vector<ObjectId> keys;
  heap.for_each_entry(map, [&](ObjectId key, ObjectId) {
    if (heap.reachable_from_roots(key)) keys.push_back(key);
  });
  return keys;
}

/// Whether a reachable object has a live entry.
bool has_live_key(const Oracle& heap, ObjectId map) {
  bool live = false;
  heap.for_each_entry(map, [&](ObjectId key, ObjectId) {
    live = live || heap.reachable_from_roots(key);
  });
  return live;
}

/// The maps with a live entry, in the order of heap.reachable_objects().
std::vector<ObjectId> maps_with_live_entries(const Oracle& heap) {
  std::vector<ObjectId> maps;
  for (ObjectId x : heap.reachable_objects()) {
    if (has_live_key(heap, x)) maps.push_back(x);
  }
  return maps;
}

/// The newest object as the value, a recent key that only references keep alive, and a recent
/// rooted map other than the value; nothing if no recent object is held only by references.
std::optional<Op> entry_with_held_key(const Oracle& heap, Choices& choices) {
  const RecentObjects recent = recent_reachable(heap);
  const RecentObjects held = held_by_references(recent, heap);
  if (held.empty()) return std::nullopt;
  const ObjectId value = recent.front();
  RecentObjects rooted;
  for (ObjectId x : recent) {
    if (x != value && heap.external_references(x) > 0) rooted.push_back(x);
  }
  const ObjectId map =
      rooted.empty() ? pick_rooted(heap, choices) : rooted[choices.choose(rooted.size())];
  return Op::entry(map, held[choices.choose(held.size())], value);
}

/// Map, key and value picked as a link's ends are (among recent objects, values that refer back
/// to their key come by themselves), or as entry_with_held_key picks them.
Op random_entry(const Oracle& heap, Choices& choices) {
  if (choices.choose(kEntryModes) == kKeyHeldByReferences) {
    if (auto op = entry_with_held_key(heap, choices)) return *op;
  }
  const ObjectId map = pick_reachable(heap, choices);
  const ObjectId key = pick_reachable(heap, choices);
  return Op::entry(map, key, pick_reachable(heap, choices));
}

/// Drops a live entry. Pre: one exists (weights_for).
Op random_unentry(const Oracle& heap, Choices& choices) {
  const std::vector<ObjectId> maps = maps_with_live_entries(heap);
  const ObjectId map = maps[choices.choose(maps.size())];
  const std::vector<ObjectId> keys = live_keys(heap, map);
  return Op::unentry(map, keys[choices.choose(keys.size())]);
}

Op random_link(const Oracle& heap, Choices& choices) {
  const std::size_t mode = choices.choose(kLinkModes);
  if (mode == kClosesCycle) {
    const ObjectId to = pick_reachable(heap, choices);
    if (const auto from = pick_referent(heap, to, choices)) return Op::link(*from, to);
    return Op::link(pick_reachable(heap, choices), to);
  }
  if (mode == kDeepens) {
    const RecentObjects recent = recent_reachable(heap);
    const RecentObjects held = held_by_references(recent, heap);
    if (!held.empty()) return Op::link(held[choices.choose(held.size())], recent.front());
  }
  const ObjectId to = pick_reachable(heap, choices);
  return Op::link(pick_reachable(heap, choices), to);
}

Op random_threshold(Choices& choices) {
  std::array<std::uint32_t, 3> t{};
  const bool exact = choices.choose(kThresholdModes) == kExactThresholds;
  for (std::size_t g = 0; g < 3; ++g) {
    t[g] = exact ? static_cast<std::uint32_t>(choices.choose(kMaxThreshold + 1))
                 : 1 + static_cast<std::uint32_t>(choices.choose(kSmallThresholds[g]));
  }
  return Op::threshold(t[0], t[1], t[2]);
}

std::optional<Op> random_unlink(const Oracle& heap, Choices& choices) {
  for (int attempt = 0; attempt < 4; ++attempt) {
    const ObjectId from = pick_reachable(heap, choices);
    if (const auto to = pick_referent(heap, from, choices)) return Op::unlink(from, *to);
  }
  return std::nullopt;
}

/// What a finalizer's program can name as it is written, step by step: the objects it can use,
/// the references it can drop, the weak references it can dereference.
class ProgramSoFar {
 public:
  /// A finalizer's for a: it can use what a reaches (the kUsable nearest: a structure below a
  /// adds no more). A callback's: only what it allocates.
  ProgramSoFar(const Oracle& heap, std::optional<ObjectId> a)
      : usable(a ? heap.reached_through(*a, kUsable) : std::vector<ObjectId>{}), heap_(heap) {}

  /// Records a step written.
  void add(const Step& step) {
    if (step.kind == StepKind::Entry) entries_.emplace_back(step.a, step.b);
    if (step.kind == StepKind::New) without_finalizer.push_back(step.a);
    if (step.kind == StepKind::New) usable.push_back(step.a);
    if (step.kind == StepKind::Link) links_.emplace_back(step.a, step.b);
    if (step.kind == StepKind::Finalizer) {
      without_finalizer.erase(
          std::find(without_finalizer.begin(), without_finalizer.end(), step.a));
    }
  }
  /// from's references: those the heap has, then those the program's links gave it.
  std::vector<ObjectId> referents(ObjectId from) const {
    std::vector<ObjectId> out;
    if (from < heap_.object_count()) out = plain_referents(heap_, from);
    for (const auto& [f, t] : links_) {
      if (f == from) out.push_back(t);
    }
    return out;
  }
  /// The entries usable maps have for usable keys, as (map, key): the heap's, then the
  /// program's (repeats and dropped ones included: an unentry of what is not there is skipped
  /// when it runs).
  std::vector<std::pair<ObjectId, ObjectId>> entries() const {
    std::vector<std::pair<ObjectId, ObjectId>> out;
    for (ObjectId m : usable) {
      if (m >= heap_.object_count()) continue;
      heap_.for_each_entry(m, [&](ObjectId k, ObjectId) {
        if (std::find(usable.begin(), usable.end(), k) != usable.end()) out.emplace_back(m, k);
      });
    }
    out.insert(out.end(), entries_.begin(), entries_.end());
    return out;
  }
  /// The weak references that usable objects hold, in their order.
  std::vector<WeakId> weak_references() const {
    std::vector<WeakId> out;
    for (ObjectId x : usable) {
      if (x >= heap_.object_count()) continue;
      const std::vector<WeakId>& held = heap_.weak_references_held_by(x);
      out.insert(out.end(), held.begin(), held.end());
    }
    return out;
  }

  std::vector<ObjectId> usable;  // the object first
  std::vector<ObjectId> without_finalizer;  // what it allocated and gave no finalizer, in order

 private:
  const Oracle& heap_;
  std::vector<std::pair<ObjectId, ObjectId>> links_;
  std::vector<std::pair<ObjectId, ObjectId>> entries_;
};

/// Whether a program may add (`link`) or drop references from x: it links only from lists,
/// records and dicts (and what it allocates), and never changes a tuple.
bool program_may_change(const Oracle& heap, ObjectId x, StepKind step) {
  if (x >= heap.object_count()) return true;
  const ObjectKind kind = heap.kind_of(x);
  if (step == StepKind::Unlink) return kind != ObjectKind::Tuple;
  return kind == ObjectKind::List || kind == ObjectKind::Record || kind == ObjectKind::Dict;
}

/// A new object of a random kind; a tuple with its items.
Op random_new(const Oracle& heap, Choices& choices) {
  std::size_t roll = choices.choose(kKindWeightTotal);
  std::size_t k = 0;
  while (roll >= kKindWeights[k].weight) roll -= kKindWeights[k++].weight;
  Op op = Op::make_new(static_cast<ObjectId>(heap.object_count()), kKindWeights[k].kind);
  if (op.object_kind != ObjectKind::Tuple || heap.reachable_count() == 0) return op;
  while (op.items.size() < kMaxItems && choices.choose(kMoreItems) != 0) {
    op.items.push_back(pick_reachable(heap, choices));
  }
  return op;
}

/// Random steps for op's program: a finalizer's for `self`, or (no self) a weak reference's
/// callback's, which has only what it allocates to use (a step with nothing to name is left out).
void add_random_steps(const Oracle& heap, Choices& choices, Op& op, std::optional<ObjectId> self) {
  ProgramSoFar program(heap, self);
  const std::vector<ObjectId>& usable = program.usable;
  const auto any_usable = [&] { return usable[choices.choose(usable.size())]; };
  while (op.steps.size() < kMaxSteps && choices.choose(kMoreSteps) != 0) {
    std::optional<Step> step;
    const StepKind kind = kDrawnStepKinds[choices.choose(kDrawnStepKinds.size())];
    if (usable.empty() && kind != StepKind::New && kind != StepKind::Collect) continue;
    // (A callback's usable objects are all its own: then the newest is the last of them.)
    const ObjectId newest =
        !usable.empty() && usable.back() >= heap.object_count() ? usable.back() : self.value_or(0);
    switch (kind) {
      case StepKind::Resurrect:
        step = Step::resurrect(any_usable());
        break;
      case StepKind::New:
        step = Step::make_new(static_cast<ObjectId>(heap.object_count() + allocated_by(op).size()));
        break;
      case StepKind::Link: {
        const ObjectId from = choices.choose(kLinkSources) == 0 ? newest : any_usable();
        const ObjectId to = any_usable();
        if (program_may_change(heap, from, StepKind::Link)) step = Step::link(from, to);
        break;
      }
      case StepKind::Collect:
        step = Step::collect();
        break;
      case StepKind::Unlink: {
        const ObjectId from =
            choices.choose(kLinkSources) == 0 ? self.value_or(newest) : any_usable();
        const std::vector<ObjectId> referents = program.referents(from);
        if (referents.empty()) break;
        const ObjectId to = referents[choices.choose(referents.size())];
        if (program_may_change(heap, from, StepKind::Unlink)) step = Step::unlink(from, to);
        break;
      }
      case StepKind::Deref: {
        const std::vector<WeakId> weak = program.weak_references();
        if (!weak.empty()) step = Step::deref(weak[choices.choose(weak.size())]);
        break;
      }
      case StepKind::Release:
        step = Step::release(any_usable());
        break;
      case StepKind::Finalizer: {
        const std::vector<ObjectId>& allocated = program.without_finalizer;
        if (!allocated.empty()) step = Step::finalizer(allocated[choices.choose(allocated.size())]);
        break;
      }
      case StepKind::Weak: {
        const ObjectId target = any_usable();
        const bool callback = choices.choose(2) == 1;
        const ObjectId holder = any_usable();
        const auto instance = [&](ObjectId x) {
          return x >= heap.object_count() || heap.is_instance(x);
        };
        const auto w = static_cast<WeakId>(heap.weak_count() + weak_references_taken(op));
        if (instance(target) && instance(holder)) {
          step = Step::weak_ref_in(w, target, callback, holder);
        }
        break;
      }
      case StepKind::Entry: {
        const ObjectId map = choices.choose(kLinkSources) == 0 ? newest : any_usable();
        const ObjectId key = any_usable();
        const ObjectId value = any_usable();
        const bool instance = key >= heap.object_count() || heap.is_instance(key);
        if (instance && program_may_change(heap, map, StepKind::Link)) {
          step = Step::entry(map, key, value);
        }
        break;
      }
      case StepKind::Unentry: {
        const auto entries = program.entries();
        if (entries.empty()) break;
        const auto [map, key] = entries[choices.choose(entries.size())];
        step = Step::unentry(map, key);
        break;
      }
    }
    if (!step) continue;
    op.steps.push_back(*step);
    program.add(*step);
  }
}

/// A finalizer for a reachable object that has none and may have one (else, a `root` of it).
Op random_finalizer(const Oracle& heap, Choices& choices) {
  const ObjectId a = pick_reachable(heap, choices);
  if (heap.has_finalizer(a) || !heap.is_instance(a)) return Op::root(a);
  Op op = Op::finalizer(a);
  add_random_steps(heap, choices, op, a);
  return op;
}

/// The position of `x` in `list`. Pre: it is there.
std::size_t position(const std::vector<ObjectId>& list, ObjectId x) {
  return static_cast<std::size_t>(std::find(list.begin(), list.end(), x) - list.begin());
}

/// How many octaves a build's size is drawn from: 2^e <= max_build for e = 1 .. octaves.
std::size_t octaves(const Distribution& distribution) {
  std::size_t e = 1;
  while ((std::size_t{2} << e) <= distribution.max_build) ++e;
  return e;
}

/// The largest build of this shape the generator draws.
std::uint32_t most_generated(Shape shape, const Distribution& distribution) {
  return shape == Shape::Clique ? std::min(kMaxGeneratedClique, distribution.max_build)
                                : distribution.max_build;
}

/// A build of a random shape and size.
Op random_build(const Oracle& heap, Choices& choices, const Distribution& distribution) {
  const auto shape = static_cast<Shape>(choices.choose(kShapeCount));
  const std::size_t octave = std::size_t{1} << (1 + choices.choose(octaves(distribution)));
  const std::size_t size = octave + choices.choose(octave);
  return Op::build(static_cast<ObjectId>(heap.object_count()), shape,
                   static_cast<std::uint32_t>(
                       std::min<std::size_t>(size, most_generated(shape, distribution))));
}

Op random_op_of_any_kind(const Oracle& heap, Choices& choices, const Distribution& distribution) {
  switch (pick_kind(heap, choices)) {
    case OpKind::Build:
      return random_build(heap, choices, distribution);
    case OpKind::New:
      return random_new(heap, choices);
    case OpKind::Link:
      return random_link(heap, choices);
    case OpKind::Unroot:
      return Op::unroot(pick_rooted(heap, choices));
    case OpKind::Unlink:
      if (auto op = random_unlink(heap, choices)) return *op;
      return Op::root(pick_reachable(heap, choices));
    case OpKind::Root:
      return Op::root(pick_reachable(heap, choices));
    case OpKind::Collect:
      return Op::collect(kGenerations[choices.choose(kGenerations.size())]);
    case OpKind::Threshold:
      return random_threshold(choices);
    case OpKind::Freeze:
      return Op{OpKind::Freeze};
    case OpKind::Unfreeze:
      return Op{OpKind::Unfreeze};
    case OpKind::Disable:
      return Op{OpKind::Disable};
    case OpKind::Enable:
      return Op{OpKind::Enable};
    case OpKind::Finalizer:
      return random_finalizer(heap, choices);
    case OpKind::Weak: {
      const ObjectId a = pick_reachable(heap, choices);
      const auto w = static_cast<WeakId>(heap.weak_count());
      const bool callback = choices.choose(2) == 1;
      Op op = Op::weak_ref(w, a, callback);
      if (callback) add_random_steps(heap, choices, op, std::nullopt);
      if (choices.choose(kWeakHolders) == kHeldByAnObject) {
        op.held = true;
        op.b = pick_reachable(heap, choices);
      }
      if (!heap.is_instance(op.a)) return Op::root(op.a);
      if (op.held && !heap.is_instance(op.b)) return Op::root(op.b);
      return op;
    }
    case OpKind::Deref: {
      const std::vector<WeakId>& derefable = heap.derefable_weak();
      return Op::deref(derefable[choices.choose(derefable.size())]);
    }
    case OpKind::Release:
      return Op{OpKind::Release};
    case OpKind::Entry:
      return random_entry(heap, choices);
    case OpKind::Unentry:
      return random_unentry(heap, choices);
  }
  return Op::collect();
}

}  // namespace

// An op that what an object is forbids (a link from a tuple, a full cell or an acyclic object, or
// to what a set already holds; an unlink from a tuple; an entry in a tuple, a cell, an acyclic
// object or a set, or keyed by a tuple or an acyclic object) becomes the link the other way if
// that one is allowed (it closes the same cycles), else a `root` of its first object, so that
// every sequence stays valid.
Op random_op(const Oracle& heap, Choices& choices, const Distribution& distribution) {
  Op op = random_op_of_any_kind(heap, choices, distribution);
  const bool kind_matters =
      op.kind == OpKind::Link || op.kind == OpKind::Unlink || op.kind == OpKind::Entry;
  if (!kind_matters || !heap.refuse(op)) return op;
  if (op.kind == OpKind::Link && !heap.refuse(Op::link(op.b, op.a))) return Op::link(op.b, op.a);
  return Op::root(op.a);
}

// random_op's decisions, answered backwards: every object is named through the "any object" path,
// whose list holds every candidate.
std::vector<Choice> choices_for(const Oracle& heap, const Op& op,
                                const Distribution& distribution) {
  const auto weights = weights_for(heap);
  const std::size_t kind = static_cast<std::size_t>(
      std::find_if(std::begin(kKinds), std::end(kKinds),
                   [&](const Weighted& k) { return k.kind == op.kind; }) -
      std::begin(kKinds));
  if (kind == kKindCount || weights[kind] == 0) {
    throw std::invalid_argument(std::string("the generator never draws `") + info(op.kind).keyword +
                                "` here" +
                                (heap.reachable_count() == 0 ? " (nothing is reachable yet)" : ""));
  }
  std::size_t roll = 0;
  for (std::size_t k = 0; k < kind; ++k) roll += weights[k];
  std::vector<Choice> out{{roll, total(weights)}};
  const auto any_reachable = [&](ObjectId x) {
    out.push_back({kAnyObject, kRecency});
    out.push_back({position(heap.reachable_objects(), x), heap.reachable_objects().size()});
  };
  switch (op.kind) {
    case OpKind::New: {
      std::size_t roll = 0;
      for (const WeightedKind& k : kKindWeights) {
        if (k.kind == op.object_kind) break;
        roll += k.weight;
      }
      out.push_back({roll, kKindWeightTotal});
      if (op.object_kind != ObjectKind::Tuple || heap.reachable_count() == 0) break;
      for (ObjectId item : op.items) {
        out.push_back({1, kMoreItems});
        any_reachable(item);
      }
      if (op.items.size() < kMaxItems) out.push_back({0, kMoreItems});
      break;
    }
    case OpKind::Link:
      out.push_back({0, kLinkModes});
      any_reachable(op.b);
      any_reachable(op.a);
      break;
    case OpKind::Unroot:
      out.push_back({kAnyObject, kRecency});
      out.push_back({position(heap.rooted_objects(), op.a), heap.rooted_objects().size()});
      break;
    case OpKind::Unlink: {
      any_reachable(op.a);
      const std::vector<ObjectId> referents = plain_referents(heap, op.a);
      out.push_back({position(referents, op.b), referents.size()});
      break;
    }
    case OpKind::Root:
      any_reachable(op.a);
      break;
    case OpKind::Collect:
      out.push_back({static_cast<std::size_t>(
                         std::find(kGenerations.begin(), kGenerations.end(), op.generation) -
                         kGenerations.begin()),
                     kGenerations.size()});
      break;
    case OpKind::Threshold:
      out.push_back({kExactThresholds, kThresholdModes});
      for (std::uint32_t t : op.thresholds) out.push_back({t, kMaxThreshold + 1});
      break;
    case OpKind::Finalizer:
    case OpKind::Weak: {
      any_reachable(op.a);
      if (op.kind == OpKind::Weak) {
        out.push_back({op.option ? 1u : 0u, 2});
        if (!op.option) {
          out.push_back({op.held ? kHeldByAnObject : 0, kWeakHolders});
          if (op.held) any_reachable(op.b);
          break;
        }
      }
      ProgramSoFar program(heap, op.kind == OpKind::Finalizer ? std::optional(op.a) : std::nullopt);
      const std::vector<ObjectId>& usable = program.usable;
      const auto index_of = [&](ObjectId x) { return Choice{position(usable, x), usable.size()}; };
      for (const Step& step : op.steps) {
        out.push_back({1, kMoreSteps});
        out.push_back({static_cast<std::size_t>(
                           std::find(kDrawnStepKinds.begin(), kDrawnStepKinds.end(), step.kind) -
                           kDrawnStepKinds.begin()),
                       kDrawnStepKinds.size()});
        if (step.kind == StepKind::Resurrect || step.kind == StepKind::Release) {
          out.push_back(index_of(step.a));
        }
        if (step.kind == StepKind::Finalizer) {
          out.push_back({position(program.without_finalizer, step.a),
                         program.without_finalizer.size()});
        }
        if (step.kind == StepKind::Weak) {
          out.push_back(index_of(step.a));
          out.push_back({step.callback ? 1u : 0u, 2});
          out.push_back(index_of(step.b));
        }
        if (step.kind == StepKind::Entry) {
          out.push_back({1, kLinkSources});
          out.push_back(index_of(step.a));
          out.push_back(index_of(step.b));
          out.push_back(index_of(step.c));
        }
        if (step.kind == StepKind::Unentry) {
          const auto entries = program.entries();
          const auto at = std::find(entries.begin(), entries.end(), std::pair(step.a, step.b));
          out.push_back({static_cast<std::size_t>(at - entries.begin()), entries.size()});
        }
        if (step.kind == StepKind::Link || step.kind == StepKind::Unlink) {
          out.push_back({1, kLinkSources});
          out.push_back(index_of(step.a));
        }
        if (step.kind == StepKind::Link) out.push_back(index_of(step.b));
        if (step.kind == StepKind::Unlink) {
          const std::vector<ObjectId> referents = program.referents(step.a);
          out.push_back({position(referents, step.b), referents.size()});
        }
        if (step.kind == StepKind::Deref) {
          const std::vector<WeakId> weak = program.weak_references();
          out.push_back({static_cast<std::size_t>(
                             std::find(weak.begin(), weak.end(), step.weak) - weak.begin()),
                         weak.size()});
        }
        program.add(step);
      }
      if (op.steps.size() < kMaxSteps) out.push_back({0, kMoreSteps});
      if (op.kind == OpKind::Weak) {
        out.push_back({op.held ? kHeldByAnObject : 0, kWeakHolders});
        if (op.held) any_reachable(op.b);
      }
      break;
    }
    case OpKind::Deref:
      out.push_back({heap.derefable_index(op.weak), heap.derefable_weak().size()});
      break;
    case OpKind::Entry:
      out.push_back({0, kEntryModes});
      any_reachable(op.a);
      any_reachable(op.b);
      any_reachable(op.c);
      break;
    case OpKind::Unentry: {
      const std::vector<ObjectId> maps = maps_with_live_entries(heap);
      out.push_back({position(maps, op.a), maps.size()});
      const std::vector<ObjectId> keys = live_keys(heap, op.a);
      out.push_back({position(keys, op.b), keys.size()});
      break;
    }
    case OpKind::Build: {  // (a size past the generator's cap is answered as the cap)
      out.push_back({static_cast<std::size_t>(op.shape), kShapeCount});
      const std::size_t size = std::min(op.size, most_generated(op.shape, distribution));
      std::size_t e = 1;
      while (e < octaves(distribution) && (std::size_t{2} << e) <= size) ++e;
      out.push_back({e - 1, octaves(distribution)});
      out.push_back({size - (std::size_t{1} << e), std::size_t{1} << e});
      break;
    }
    case OpKind::Freeze:
    case OpKind::Unfreeze:
    case OpKind::Disable:
    case OpKind::Enable:
    case OpKind::Release:
      break;
  }
  return out;
}

Trace generate_trace(std::uint64_t seed, std::size_t ops, const Distribution& distribution) {
  Trace trace;
  trace.source = "<gen seed " + std::to_string(seed) + ">";
  SeededChoices choices(seed);
  Oracle heap;
  for (std::size_t i = 0; i < ops; ++i) {
    const Op op = random_op(heap, choices, distribution);
    heap.apply(op);
    trace.push_unnamed(op);
  }
  return trace;
}

}  // namespace cyclefuzz
