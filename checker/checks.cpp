// The checks of one lane after one op, each in the terms of the lane's predicates
// (checker/lane.h), and the one differential check between lanes. Finalizers and weak references
// have their own file (finalization_checks.cpp); generations theirs (generation_checks.h).
#include <algorithm>
#include <exception>
#include <iterator>

#include "checker/lane.h"
#include "checker/session.h"

namespace cyclefuzz {

// ================================================================================================
// Frees
// ================================================================================================

// The frees of the current op, as they happened: of objects not alive (double free), or of
// objects the program still reaches or the collector's own garbage still refers to (premature
// free). Returns whether they were all sound.
bool Session::check_frees(Lane& lane) {
  if (!lane.bad_frees.empty()) {
    report(lane, Violation::of(ViolationKind::DoubleFree, lane.bad_frees,
                               "freed an object that was already freed or never allocated"));
  }

  // Premature free: an object freed while live, or while an object the collector still holds
  // (uncollected garbage) refers to it - a dangling reference inside the collector's own heap.
  // Cheap when nothing is wrong: the oracle keeps reachability up to date, and a freed object's
  // referrers are its in-edges.
  std::vector<ObjectId> premature;
  std::vector<ObjectId> path;
  std::string how;
  const auto found = [&](ObjectId x, std::vector<ObjectId> explanation, std::string why) {
    if (premature.empty()) {
      path = std::move(explanation);
      how = std::move(why);
    }
    premature.push_back(x);
  };
  for (const Lane::KeptKey& kept : lane.keys_kept_by_their_values) {
    found(kept.key, {kept.map, kept.value, kept.key}, kFreedKeyKeptByItsValue);
  }
  for (ObjectId x : lane.freed_now) {
    if (std::any_of(premature.begin(), premature.end(), [x](ObjectId y) { return y == x; })) {
      continue;
    }
    if (oracle_.reachable_from_roots(x)) {
      found(x, premature.empty() ? oracle_.path_from_roots(x) : std::vector<ObjectId>{},
            kFreedWhileReachable);
    } else if (lane.kept(x)) {
      const std::optional<ObjectId> map = lane.map_keeping(x);
      if (map) {
        found(x, {*map, x}, kFreedWhileMapped);
      } else {
        found(x, premature.empty() ? lane.path_from_list(x) : std::vector<ObjectId>{},
              kFreedWhileListed);
      }
    } else if (!lane.capabilities.free_is_finalization &&
               !lane.capabilities.frees_garbage_in_steps) {
      std::optional<ObjectId> holder;
      oracle_.for_each_referrer(x, lane.view(), [&](ObjectId referrer) {
        if (!holder && lane.holds(referrer)) holder = referrer;
      });
      if (holder) found(x, {*holder, x}, "freed while garbage it still holds refers to it");
    }
  }
  if (!premature.empty()) {
    report(lane, Violation::of(ViolationKind::PrematureFree, premature, how).along(path));
  }
  return premature.empty();
}

// A collection may not free a frozen object, but reference counting may, during it: when the
// garbage it clears held the last references to a frozen object. So a frozen object freed during
// a collection is a violation unless, among what the collector held before minus the unfrozen
// objects it freed, nothing - no cycle, no surviving object - still held it.
void Session::check_frozen_frees(Lane& lane) {
  std::vector<ObjectId> frozen_freed;
  for (ObjectId x : lane.freed_now) {
    if (lane.frozen.contains(x)) frozen_freed.push_back(x);
  }
  if (frozen_freed.empty()) return;
  std::vector<ObjectId> sorted_frozen_freed = frozen_freed;
  std::sort(sorted_frozen_freed.begin(), sorted_frozen_freed.end());
  const AlivePredicate held_after_clearing = [&](ObjectId x) {
    return lane.holds(x) ||
           std::binary_search(sorted_frozen_freed.begin(), sorted_frozen_freed.end(), x);
  };
  std::vector<ObjectId> may_go =
      oracle_.unheld_garbage(frozen_freed, held_after_clearing, lane.view());
  std::sort(may_go.begin(), may_go.end());
  std::vector<ObjectId> collected;
  for (ObjectId x : frozen_freed) {
    if (!std::binary_search(may_go.begin(), may_go.end(), x)) collected.push_back(x);
  }
  if (!collected.empty()) {
    report(lane, Violation::of(ViolationKind::FrozenCollected, collected,
                               "frozen, and freed by a collection while something it did not "
                               "free held it"));
  }
}

// Adds to the lane's kept_before what its frozen objects keep from collection, as a collection
// begins and again once it ended (its finalizers may have changed that). Only the garbage
// among them matters (every use asks "live, or may_keep?", and a collection leaves the mutator's
// references alone), and nothing the mutator reaches leads to garbage: so the search starts at
// frozen garbage and stops at the live heap.
void Session::keep_by_frozen(Lane& lane) const {
  const AlivePredicate held_garbage = [&](ObjectId y) {
    return lane.holds(y) && !oracle_.reachable_from_roots(y);
  };
  std::vector<ObjectId> frozen;
  for (ObjectId x : lane.frozen.members()) {
    if (held_garbage(x)) frozen.push_back(x);
  }
  // (What the list keeps is known as of the end of an op: the last one's as the collection
  // begins, this one's once it ended.)
  const auto listed = [&](ObjectId y) { return lane.kept(y); };
  for (ObjectId x : lane.reached_from(frozen, held_garbage, listed)) lane.kept_before.insert(x);
}

// ================================================================================================
// What is still alive
// ================================================================================================

// After a full collection the lane holds no object that must_be_freed.
void Session::check_leak(Lane& lane) {
  if (lane.alive <= oracle_.reachable_count()) return;
  std::vector<ObjectId> leaked;
  for (ObjectId x : lane.held_objects()) {
    if (lane.must_be_freed(x)) leaked.push_back(x);
  }
  if (leaked.empty()) return;
  const auto holder = oracle_.cycle_holding(
      leaked.front(), [&lane](ObjectId x) { return lane.garbage(x); }, lane.view());
  report(lane, Violation::of(ViolationKind::Leak, leaked, "still alive after a full collection")
                   .along(holder.path)
                   .around(holder.cycle));
}

// Reference counting: garbage that no garbage cycle holds is gone after the op. Only the objects
// this op made garbage, or whose referrers it freed, can have become freeable (and the objects
// finalizers allocated, which they dropped as they returned, and the list's released entries).
// A collector that keeps_finalized_a_cycle may keep what it finalized in the op, and what that
// reaches, until its next full collection (PHP keeps an object whose destructor its second pass
// ran, though no cycle holds it any more), when the leak check has it.
void Session::check_late_free(Lane& lane) {
  std::vector<ObjectId> candidates = oracle_.newly_unreachable();
  for (ObjectId x : lane.freed_now) {
    oracle_.for_each_referent(x, lane.view(), [&](ObjectId r) { candidates.push_back(r); });
    for (ObjectId map : oracle_.maps_keyed_by(x)) {  // the entries x was the key of are gone
      if (const std::optional<ObjectId> value = oracle_.entry_value(map, x, lane.view())) {
        candidates.push_back(*value);
      }
    }
  }
  for (ObjectId x : lane.released) {
    if (!oracle_.reachable_from_roots(x)) candidates.push_back(x);
  }
  candidates.insert(candidates.end(), lane.born_now.begin(), lane.born_now.end());
  for (std::size_t i = 1; i < lane.unlinked_now.size(); i += 2) {
    candidates.push_back(lane.unlinked_now[i]);
  }
  if (lane.capabilities.keeps_finalized_a_cycle) {
    std::erase_if(candidates, [&lane](ObjectId x) { return lane.kept_finalized(x); });
  }
  const std::vector<ObjectId> late = oracle_.unheld_garbage(
      candidates, [&lane](ObjectId x) { return lane.garbage(x); }, lane.view(),
      [&lane](ObjectId map) { return lane.holds(map) && lane.live(map); });
  if (!late.empty()) {
    report(lane, Violation::of(ViolationKind::LateFree, late,
                               "unreachable, held by no garbage cycle, and still alive"));
  }
}

// ================================================================================================
// What `collect` returned, and when collections ran
// ================================================================================================

// As far as Capabilities::collect_count promises a count.
void Session::check_count(Lane& lane, const OpFacts& facts) {
  const CollectCount promise = lane.capabilities.collect_count;
  if (!facts.collected || promise == CollectCount::None) return;
  const std::size_t collected = *facts.collected;
  // A count of what a partial collection found may fall short of its frees, never exceed them.
  // What a program (a finalizer's, a callback's) allocated during the collection and reference
  // counting freed again is no garbage the collection found: gc.collect() leaves it out. So is
  // garbage that reference counting freed when a finalizer dropped a reference (`unlink`,
  // `release`): CPython counts what is still unreachable after the finalizers ran; nor what a
  // map's entry kept until the collection dropped it (entry_dropped: CPython's WeakKeyDictionary
  // drops the entry of a garbage key in handle_weakrefs, after it counted its garbage); nor what
  // an entry a finalizer gave kept (CPython's garbage map that gets its first entry then makes a
  // new WeakKeyDictionary, outside the garbage, whose value is no garbage of the collection); nor
  // garbage that an object a program allocated refers to (young, outside the generations being
  // collected, it makes what it refers to look resurrected to handle_resurrected_objects).
  const bool born_refers = std::any_of(
      lane.linked_now.begin(), lane.linked_now.end(), [&lane](ObjectId x) {
        return std::find(lane.born_now.begin(), lane.born_now.end(), x) != lane.born_now.end();
      });
  const bool changed_by_programs = !lane.unlinked_now.empty() || !lane.released.empty() ||
                                   lane.entries_dropped_now > 0 || lane.entries_set_now > 0 ||
                                   born_refers;
  const bool exact =
      promise == CollectCount::Freed ||
      (promise == CollectCount::FoundInGenerations && facts.full && !changed_by_programs);
  const std::size_t freed = facts.freed_by_collector;
  // Nor are frozen objects that reference counting freed with the garbage, nor what they alone
  // kept: the permanent generation is older than any collected.
  std::size_t uncounted = 0;
  if (promise == CollectCount::FoundInGenerations &&
      (!lane.born_now.empty() || lane.frozen_count > 0)) {
    for (std::size_t i = 0; i < freed; ++i) {
      const ObjectId x = lane.freed_now[i];
      uncounted += lane.frozen.contains(x) || lane.kept_before.contains(x) ||
                   std::find(lane.born_now.begin(), lane.born_now.end(), x) != lane.born_now.end();
    }
  }
  const bool too_many = collected > freed;
  const bool too_few = exact && collected + uncounted < freed;
  std::string detail;
  if (too_many || too_few) {
    detail = "collect returned " + std::to_string(collected) + " but freed " +
             (exact ? "" : "only ") + std::to_string(freed) + " objects";
  } else if (exact && facts.full && lane.frozen_count == 0 && facts.garbage_before &&
             collected != *facts.garbage_before) {
    // (With frozen objects the number is not known beforehand: a frozen object the garbage
    // alone held dies with it, by reference counting, and takes what only it held.)
    detail = "collect returned " + std::to_string(collected) + " but " +
             std::to_string(*facts.garbage_before) + " objects it held were unreachable";
  }
  if (!detail.empty()) report(lane, Violation::of(ViolationKind::WrongCount, {}, detail));
}

// A collector that does not declare automatic collection collects only when the program asks:
// in a `collect` op, or in a finalizer's `collect` step.
void Session::check_automatic_collection(Lane& lane, const Op& op, std::uint64_t collections) {
  if (lane.retired || lane.capabilities.automatic_collection || op.kind == OpKind::Collect) {
    return;
  }
  if (collections <= lane.nested_collections) return;
  report(lane, Violation::of(ViolationKind::WrongAutomaticCollection, {},
                             "ran a collection on its own, but declares no automatic collection"));
}

// The generation model's checks (checker/generation_checks.h).
void Session::check_generations(Lane& lane, const Op& op, const OpFacts& facts, bool walk) {
  const std::uint64_t collections = facts.collections;
  if (!lane.generations || lane.retired) return;
  // (A nested collection, or a program that allocated, linked or unlinked objects, released
  // one, gave one a finalizer or took a weak reference in the middle of an op, leave the model's
  // counts and generations behind: it reads them again from the collector. So does a build,
  // whose many allocations may each start a collection.)
  if (lane.nested_collections > 0 || !lane.born_now.empty() || !lane.linked_now.empty() ||
      !lane.unlinked_now.empty() || lane.other_steps_now > 0 || op.kind == OpKind::Build) {
    lane.generations->adopt(*lane.collector, oracle_, lane.held_objects());
    return;
  }
  if (auto finding = lane.generations->after(
          op, *lane.collector, oracle_, [&lane](ObjectId x) { return lane.holds(x); },
          [&lane](ObjectId x) { return lane.may_keep(x); },
          [&lane] { return lane.held_objects(); },
          collections, lane.freed_now.size(), facts.freed_by_collector, lane.finalized_now,
          walk)) {
    report(lane, std::move(*finding));
  }
}

// ================================================================================================
// The collector's own records
// ================================================================================================

// The objects the lane holds whose records an op that ran no collection can have changed: the
// op's own, the referents of what it freed (their counts fell), and what finalizers allocated or
// added references from.
void Session::find_touched(Lane& lane, const Op& op) {
  touched_.clear();
  const auto touch = [&](ObjectId x) {
    if (lane.holds(x)) touched_.push_back(x);
  };
  for_each_own_object(op, [&](ObjectId x, Slot) { touch(x); });
  for (std::uint32_t k = 1; k < objects_made(op); ++k) touch(op.a + k);  // (a build's members)
  for (ObjectId x : lane.freed_now) oracle_.for_each_referent(x, lane.view(), touch);
  for (ObjectId x : lane.born_now) touch(x);
  for (ObjectId x : lane.linked_now) touch(x);
  for (ObjectId x : lane.unlinked_now) touch(x);
  for (ObjectId x : lane.unmapped_now) touch(x);
}

// Whether the checks after an op walk the whole heap rather than what it touched: after a
// collection (records and invariants) or a finalizer's or callback's program (invariants) - at
// once, or once the ops since the last walk are an eighth of the objects held
// (CheckOptions::walk_every_collection) - when asked for every op, and once the ops since the
// last walk outnumber the objects held: so that a broken invariant away from what the ops
// touched waits at most that long, and walks cost O(1) per op on average.
Session::Walks Session::walks_due(Lane& lane, bool collected, bool ran_programs) {
  constexpr std::size_t kOpsPerObjectWalked = 8;
  lane.records_owed = lane.records_owed || collected;
  lane.invariants_owed = lane.invariants_owed || collected || ran_programs;
  ++lane.ops_since_walk;
  const bool now = checks_.walk_every_collection ||
                   lane.ops_since_walk * kOpsPerObjectWalked >= lane.alive;
  Walks walks;
  walks.records = lane.records_owed && now;
  walks.invariants = checks_.check_invariants &&
                     (checks_.invariants_every_op || (lane.invariants_owed && now) ||
                      lane.ops_since_walk > lane.alive);
  if (walks.records) lane.records_owed = false;
  if (walks.invariants) lane.invariants_owed = false;
  if (walks.records || walks.invariants) lane.ops_since_walk = 0;
  return walks;
}

// The collector's own invariants: of its whole heap when `walk` (walks_due), else at the objects
// the op touched.
void Session::check_invariants(Lane& lane, bool walk) {
  if (!checks_.check_invariants || lane.retired) return;
  try {
    if (walk) {
      lane.collector->check_invariants();
    } else {
      lane.collector->check_invariants_of(touched_);
    }
  } catch (const std::exception& e) {
    report(lane, Violation::of(ViolationKind::BrokenInvariant, {}, e.what()));
  }
}

// The collector's view of an object against the oracle's: its references (as a multiset) and its
// count. After a collection anything may have changed, so every object is compared (when
// walks_due says); otherwise only those the op touched (find_touched). Stops at the first
// difference.
void Session::check_bookkeeping(Lane& lane, bool everything) {
  if (lane.retired || !lane.capabilities.inspectable) return;
  for (ObjectId x : everything ? lane.held_objects() : std::span<const ObjectId>(touched_)) {
    if (!view_matches(lane, x)) return;
  }
}

// Reports and returns false when the lane holds x and its view of x differs from the oracle's.
bool Session::view_matches(Lane& lane, ObjectId x) {
  if (!lane.holds(x)) return true;
  // (Garbage that an incremental sweep has not reached may still refer to what it freed, even to
  // a slot that a new object took since: what garbage refers to no longer matters.)
  if (lane.capabilities.frees_garbage_in_steps && lane.garbage(x)) return true;
  // view_ is shared by every lane: reset what a collector's inspect may leave as it found it.
  view_.references.clear();
  view_.count = 0;
  view_.generation = 0;
  view_.tracked = true;
  lane.collector->inspect(x, view_);
  // Collectors usually keep references in the order they were made, as the oracle does: compare
  // in order first, and as multisets (sorted) only when that fails.
  expected_.clear();
  oracle_.for_each_referent(x, lane.view(), [this](ObjectId to) { expected_.push_back(to); });
  bool same = view_.references == expected_;
  if (!same) {
    std::sort(expected_.begin(), expected_.end());
    std::sort(view_.references.begin(), view_.references.end());
    same = view_.references == expected_;
  }
  std::string detail;
  // (What can never take part in a cycle may hold references untracked: an acyclic object, a
  // tuple of such objects, as CPython untracks a tuple of atomic objects and untracked tuples.
  // An untracked list can be tracked again, and then take part in a cycle through the tuple.)
  if (!view_.tracked && !view_.references.empty() && !oracle_.never_cyclic(x)) {
    detail = oracle_.kind_of(x) == ObjectKind::Tuple
                 ? "an untracked tuple, yet one of its items may take part in a cycle (only "
                   "acyclic objects, and tuples of them, never can)"
                 : "untracked, yet it holds " + std::to_string(view_.references.size()) +
                       " references: it must be tracked again the moment it gains one";
  } else if (!same) {
    detail = "its references differ from the oracle's (" + std::to_string(view_.references.size()) +
             " held, " + std::to_string(expected_.size()) + " expected)";
  } else if (lane.capabilities.count != CountMeaning::None) {
    const std::uint64_t count = lane.expected_count(x);
    if (view_.count != count) {
      detail = "its count is " + std::to_string(view_.count) + ", expected " + std::to_string(count);
    }
  }
  if (detail.empty()) return true;
  report(lane, Violation::of(ViolationKind::WrongBookkeeping, {x}, detail));
  return false;
}

// Differential check, independent of the oracle: after a full collection, collectors must hold
// the same objects.
void Session::check_agreement(const Op& op) {
  std::vector<Lane*> compared;
  for (auto& lane : lanes_) {
    const bool was_running =
        !lane->retired || (lane->first && violations_[*lane->first].op_index == ops_run_);
    if (was_running && lane->capabilities.is_full_collection(op.generation)) {
      compared.push_back(lane.get());
    }
  }
  // What a collector may keep (checker/lane.h) is left out: what its frozen objects kept before
  // the collection (reference counting frees frozen garbage that a tracing collector keeps),
  // what its list of resurrected objects keeps (each collector runs finalizers at its own time),
  // and what its finalizers allocated or linked during this collection.
  const auto may_keep = [&](std::size_t i, ObjectId x) { return compared[i]->may_keep(x); };
  for (std::size_t i = 0; i < compared.size(); ++i) {
    for (std::size_t j = i + 1; j < compared.size(); ++j) {
      // Two lanes that each hold exactly the reachable objects agree, without a look at every
      // object.
      if (compared[i]->holds_exactly_the_reachable() &&
          compared[j]->holds_exactly_the_reachable()) {
        continue;
      }
      std::vector<ObjectId> differ;
      const std::span<const ObjectId> first = compared[i]->held_objects();
      const std::span<const ObjectId> second = compared[j]->held_objects();
      std::set_symmetric_difference(first.begin(), first.end(), second.begin(), second.end(),
                                    std::back_inserter(differ));
      std::erase_if(differ, [&](ObjectId x) { return may_keep(i, x) || may_keep(j, x); });
      if (!differ.empty() && checks_.reports(ViolationKind::Disagreement)) {
        Violation v = Violation::of(ViolationKind::Disagreement, differ,
                                    "held by one collector and not the other");
        v.collector = compared[i]->index;
        v.other = compared[j]->index;
        v.op_index = ops_run_;
        violations_.push_back(std::move(v));
      }
    }
  }
}

}  // namespace cyclefuzz
