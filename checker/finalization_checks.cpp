// The finalizer and weak-reference checks: those the program's callbacks make as the collector
// calls them (a finalizer or callback that runs when it must not), and those that must hold once
// the op is over (every freed object finalized, every clear called back, deref as the clears say,
// and a full collection's clears before its finalizers).
#include <algorithm>

#include "checker/lane.h"
#include "checker/session.h"

namespace cyclefuzz {

// ================================================================================================
// As the collector calls them
// ================================================================================================

// Runs x's finalizer: checks that it may run, then does what the trace says it does.
void Lane::finalize(ObjectId x) {
  if (first_finalizer == kNever) first_finalizer = events;
  // (A clear of one that garbage holds may be the sweep of an earlier cycle: Lua frees a dead
  // holder's weak table uncleared.)
  const auto held_by_the_living = [](const Clear& c) { return !c.held_by_garbage; };
  if (first_finalizer_after_a_clear == kNever &&
      std::any_of(cleared_now.begin(), cleared_now.end(), held_by_the_living)) {
    first_finalizer_after_a_clear = events;
  }
  ++events;
  ++finalizers_now;
  const auto wrong = [&](const char* detail) {
    problem(Violation::of(ViolationKind::WrongFinalization, {x}, detail));
  };
  if (!holds(x)) return wrong("ran the finalizer of an object already freed");
  if (!capabilities.finalizers || !oracle.has_finalizer(x)) {
    return wrong("ran a finalizer the object does not have");
  }
  const bool again = finalized[x] != 0;
  if (again && !capabilities.finalizers_may_run_again) {
    return wrong("ran its finalizer a second time");
  }
  finalized[x] = 1;
  finalized_now.push_back(x);
  if (capabilities.weak_references_cleared_once_finalized) {
    // What the collector kept for x's finalizer: x, and the garbage x reaches.
    const auto garbage_now = [this](ObjectId y) { return holds(y) && !live(y); };
    for (ObjectId y : oracle.descendants(std::span(&x, 1), garbage_now, view(), true)) {
      once_finalized.insert(y);
    }
    once_finalized.insert(x);
  }
  // (Reachable from the mutator, that is: as in PEP 442, a finalizer of a collection's garbage
  // runs even when another finalizer of that garbage has just resurrected its object.)
  if (oracle.reachable_from_roots(x)) return wrong("ran its finalizer while still reachable");
  // A program runs once (what its `new` steps allocate has the trace's names): a finalizer that
  // runs again runs none.
  if (!again) run_program(oracle.finalizer_program(x), x);
}

void Lane::weak_cleared(WeakId w) {
  ++events;
  if (w >= weak.size() || weak[w] == WeakState::NotTaken) {
    return problem(Violation::of(ViolationKind::WrongWeakReference, {},
                                 "cleared a weak reference never taken"));
  }
  const ObjectId target = oracle.weak_target(w);
  const auto wrong = [&](const char* detail) {
    problem(Violation::of(ViolationKind::WrongWeakReference, {target}, detail).of_weak(w));
  };
  const std::optional<ObjectId> holder = holder_of(w);
  // (Garbage when the op began counts too: a collection need not call back what its garbage
  // holds, though a finalizer resurrects the holder meanwhile - it cannot know that yet.)
  const bool held_by_garbage = holder && (!reaches_now(*holder) || !live(*holder));
  if (!capabilities.weak_references) {
    wrong("cleared a weak reference it does not keep");
  } else if (weak_gone(w)) {
    wrong("cleared a weak reference after freeing the object that held it");
  } else if (weak[w] != WeakState::Set) {
    wrong("cleared a weak reference to it a second time");
  } else if (!holds(target)) {
    wrong("cleared a weak reference to it only after freeing it");
  } else if (reaches_now(target) && !held_by_garbage &&
             !(capabilities.weak_references_cleared_once_finalized &&
               once_finalized.contains(target))) {
    // (One that garbage holds may be cleared with the garbage: its target may live on.)
    wrong("cleared a weak reference to it while the program could still reach it");
  }
  weak[w] = WeakState::Cleared;
  cleared_now.push_back({w, events, held_by_garbage});
}

void Lane::weak_callback(WeakId w) {
  if (w >= weak.size() || weak[w] == WeakState::NotTaken) {
    return problem(Violation::of(ViolationKind::WrongWeakReference, {},
                                 "ran the callback of a weak reference never taken"));
  }
  const ObjectId target = oracle.weak_target(w);
  const auto wrong = [&](const char* detail) {
    problem(Violation::of(ViolationKind::WrongWeakReference, {target}, detail).of_weak(w));
  };
  const std::optional<ObjectId> holder = holder_of(w);
  const std::size_t problems_before = found_in_callbacks.size();
  if (!expects_callback(w)) {
    wrong("ran a callback for a weak reference to it that has none");
  } else if (weak_gone(w)) {
    wrong("ran the callback of a weak reference after freeing the object that held it");
  } else if (holder && garbage_at_start.contains(*holder) && !reaches_now(*holder) &&
             !kept_through_freed_keys(*holder) && !thawed.contains(*holder) &&
             std::find(taken_now.begin(), taken_now.end(), w) == taken_now.end()) {
    // (One a finalizer took during the collection is no weak reference the collection found:
    // it may be called back when its target goes, whoever holds it, as CPython does. Nor is one
    // frozen with a holder that was thawed since: CPython thaws the holder, not what it holds.)
    wrong("ran the callback of a weak reference that is itself garbage of the collection (its "
          "holder is): a callback must never see the garbage it belongs to");
  } else if (weak[w] == WeakState::Set) {
    wrong("ran a weak reference's callback before clearing it");
  } else if (weak[w] == WeakState::CalledBack) {
    wrong("ran a weak reference's callback a second time");
  } else if (holds(target) && reaches_now(target)) {
    wrong("ran a weak reference's callback while the program could still reach it");
  }
  weak[w] = WeakState::CalledBack;
  // Its program runs once, in a rightful callback (one run out of turn is reported, not obeyed).
  if (found_in_callbacks.size() == problems_before) {
    run_program(oracle.callback_program(w), std::nullopt);
  }
}

// A map the collector keeps dropped an entry as it cleared the weak references to its key
// (MapEntries::StrongValuesUntilKeyCleared): the program must not reach the key then. The entry
// stays gone from this collector's heap though a finalizer resurrects the key later; what its
// value kept is let go, and may outlive the op's collection (the collection found its garbage
// before the entry went).
void Lane::entry_dropped(ObjectId map, ObjectId key) {
  ++events;
  const auto wrong = [&](const char* detail) {
    problem(Violation::of(ViolationKind::WrongWeakReference, {key, map}, detail));
  };
  if (capabilities.map_entries != MapEntries::StrongValuesUntilKeyCleared) {
    return wrong("dropped an entry keyed by it from a map whose entries go only with their keys");
  }
  if (!holds(map) || !holds(key)) {
    return wrong("dropped an entry keyed by it after freeing the map or the key");
  }
  const std::optional<ObjectId> value = oracle.entry_value(map, key, view());
  if (!value) return wrong("dropped an entry keyed by it that the map does not have");
  if (reaches_now(key)) {
    return wrong("dropped an entry keyed by it while the program could still reach it");
  }
  if (!oracle.drop_entry(view(), map, key)) return;  // (past kDroppable lanes: kept as it was)
  unmapped_now.insert(unmapped_now.end(), {map, *value});
  ++entries_dropped_now;
  reach_changed();
}

// ================================================================================================
// Once the op is over
// ================================================================================================

// First what the callbacks found as they happened, then what must hold once the op is over.
void Session::check_finalizers_and_weak_references(Lane& lane, const Op& op, bool full) {
  if (lane.retired) return;
  if (!lane.found_in_callbacks.empty()) {
    return report(lane, std::move(lane.found_in_callbacks.front()));
  }
  if (lane.capabilities.finalizers) {
    std::vector<ObjectId> unfinalized;
    for (ObjectId x : lane.freed_now) {
      if (oracle_.has_finalizer(x) && !lane.finalized[x]) unfinalized.push_back(x);
    }
    if (!unfinalized.empty()) {
      return report(lane, Violation::of(ViolationKind::WrongFinalization, unfinalized,
                                        "freed without its finalizer running"));
    }
  }
  if (!lane.capabilities.weak_references) return;
  const auto wrong = [&](ObjectId target, WeakId w, std::string detail) {
    report(lane, Violation::of(ViolationKind::WrongWeakReference, {target}, std::move(detail))
                     .of_weak(w));
  };
  for (ObjectId x : lane.freed_now) {
    for (WeakId w : oracle_.weak_references_to(x)) {
      if (lane.weak[w] == Lane::WeakState::Set && !lane.weak_gone(w)) {
        return wrong(x, w, "freed, but a weak reference still points to it");
      }
    }
  }
  // (A weak reference held by garbage when it was cleared may go without its callback, and so
  // may one whose holder was freed after the clear, before the callbacks ran: it is no longer the
  // program's - as when a callback run before it dropped the last reference to its holder.)
  for (const auto& [w, when, held_by_garbage] : lane.cleared_now) {
    if (lane.expects_callback(w) && lane.weak[w] != Lane::WeakState::CalledBack &&
        !held_by_garbage && !lane.weak_gone(w)) {
      return wrong(oracle_.weak_target(w), w, "a weak reference to it was cleared, but its "
                   "callback never ran");
    }
  }
  if (op.kind == OpKind::Deref) {
    const ObjectId target = oracle_.weak_target(op.weak);
    const std::optional<ObjectId> expected =
        lane.weak[op.weak] == Lane::WeakState::Set ? std::optional(target) : std::nullopt;
    const std::optional<ObjectId> got = lane.collector->deref(op.weak);
    if (got != expected) {
      return wrong(target, op.weak, std::string("deref ") +
                                        (got ? "found an object" : "found it cleared") +
                                        (expected ? ", but it was never cleared"
                                                  : ", but the collector cleared it"));
    }
  }
  if (full && !lane.garbage_at_start.empty() && lane.first_finalizer != Lane::kNever &&
      lane.capabilities.weak_references_cleared_before_finalizers) {
    check_weak_references_cleared_first(lane);
  }
}

// A full collection that runs finalizers clears every weak reference to its garbage before the
// first of them (Capabilities::weak_references_cleared_before_finalizers) - those that garbage
// holds too, which then go with their holders: else a finalizer could follow one into an object
// the collection is tearing down. (Those its finalizers took meanwhile it clears when it frees
// their targets, as any other: the clearing before finalizers cannot have seen them.)
void Session::check_weak_references_cleared_first(Lane& lane) {
  const auto taken_now = [&lane](WeakId w) {
    return std::find(lane.taken_now.begin(), lane.taken_now.end(), w) != lane.taken_now.end();
  };
  const bool garbage_holders_left_out =
      lane.capabilities.weak_references_of_garbage_outlive_finalizers;
  // (The finalizers of an earlier cycle that it finished first ran before its first clear.)
  const std::size_t order_from = lane.capabilities.finalizers_of_an_earlier_cycle_run_first
                                     ? lane.first_finalizer_after_a_clear
                                     : lane.first_finalizer;
  for (const auto& [w, when, held_by_garbage] : lane.cleared_now) {
    const ObjectId target = oracle_.weak_target(w);
    if (when > order_from && lane.garbage_at_start.contains(target) && !taken_now(w) &&
        !(garbage_holders_left_out && held_by_garbage)) {
      return report(lane, Violation::of(ViolationKind::WrongWeakReference, {target},
                                        "garbage of a full collection whose weak reference was "
                                        "cleared only after a finalizer of that collection ran")
                              .of_weak(w));
    }
  }
  for (ObjectId target : lane.garbage_at_start.members()) {
    // (A finalizer of an earlier cycle may have made it reachable before the collection's own
    // cycle looked: then that cycle had nothing to clear.)
    if (lane.capabilities.finalizers_of_an_earlier_cycle_run_first && lane.live(target)) continue;
    for (WeakId w : oracle_.weak_references_to(target)) {
      // (Set, and held by the mutator, by garbage, or by an object freed during the op.)
      const std::optional<ObjectId> holder = lane.holder_of(w);
      if (lane.weak[w] != Lane::WeakState::Set || taken_now(w) ||
          (lane.weak_gone(w) && !lane.garbage_at_start.contains(*holder)) ||
          (garbage_holders_left_out && holder && lane.garbage_at_start.contains(*holder))) {
        continue;
      }
      return report(lane, Violation::of(ViolationKind::WrongWeakReference, {target},
                                        "garbage of a full collection whose weak reference was "
                                        "never cleared, though a finalizer of that collection "
                                        "ran")
                              .of_weak(w));
    }
  }
}

}  // namespace cyclefuzz
