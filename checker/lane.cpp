#include "checker/lane.h"

#include <algorithm>

namespace cyclefuzz {

// ================================================================================================
// What the program reaches
// ================================================================================================

// The search stops at objects the mutator reaches: all they reach, it reaches too (a finalizer
// only adds references from objects the mutator cannot reach), so a list that refers into the
// live heap costs what it reaches outside it, not the whole heap at every op.
//
// Map entries: the harness's maps keep their values strongly while the key is not freed, so the
// values of live maps' entries whose key the mutator no longer reaches start the search too, and
// it follows every entry this collector still has. An ephemeron's value lives only while its key
// does: that search follows an entry once it has found its key.
const ObjectSet& Lane::reached_by_list() {
  if (reached_valid_) return reached_;
  reached_.clear();
  const std::vector<ObjectId> entries = list_seeds();
  if (!entries.empty()) {
    const auto unreachable = [this](ObjectId y) { return !oracle.reachable_from_roots(y); };
    // (During a collection, an ephemeron whose map the list keeps and whose key a frozen object
    // keeps lives: kept now, by the list and the frozen objects together. kept_before, what they
    // kept when the collection began, may be more: a finalizer may have dropped a frozen
    // object's reference since, and a collector that marks again finds the key garbage.)
    ObjectSet kept_with_frozen;
    if (keeps_ephemerons() && !kept_before.empty()) {
      std::vector<ObjectId> keepers = entries;
      for (ObjectId x : frozen.members()) {
        if (holds(x) && unreachable(x)) keepers.push_back(x);
      }
      const auto nothing_else = [](ObjectId) { return false; };
      for (ObjectId x : reached_from(keepers, unreachable, nothing_else)) {
        kept_with_frozen.insert(x);
      }
    }
    const auto frozen_keep = [&](ObjectId y) { return kept_with_frozen.contains(y); };
    for (ObjectId x : reached_from(entries, unreachable, frozen_keep)) reached_.insert(x);
  }
  reached_valid_ = true;
  return reached_;
}

std::vector<ObjectId> Lane::list_seeds() {
  std::vector<ObjectId> entries = resurrected;
  entries.insert(entries.end(), releasing_.begin(), releasing_.end());
  entries.insert(entries.end(), finalizer_locals_.begin(), finalizer_locals_.end());
  if (!keeps_ephemerons()) {
    for (ObjectId k : held_dead_keys()) {
      for (ObjectId map : oracle.maps_keyed_by(k)) {
        if (!oracle.reachable_from_roots(map)) continue;
        // (In its view: a collector's own map may have dropped the entry of a key not freed.)
        const std::optional<ObjectId> value = oracle.entry_value(map, k, view());
        if (value && !oracle.reachable_from_roots(*value)) entries.push_back(*value);
      }
    }
  }
  return entries;
}

// The harness unlinks the values of the entries whose key the collector freed only after the op:
// until then, the collector still holds them through the map.
bool Lane::kept_through_freed_keys(ObjectId x) {
  if (keeps_ephemerons() || !oracle.has_maps()) return false;
  const auto unreachable = [this](ObjectId y) { return !oracle.reachable_from_roots(y); };
  const std::vector<ObjectId> found = oracle.descendants(list_seeds(), unreachable, view(), true);
  return std::find(found.begin(), found.end(), x) != found.end();
}

std::vector<ObjectId> Lane::reached_from(std::span<const ObjectId> from,
                                         const AlivePredicate& through,
                                         const AlivePredicate& also_live) const {
  return keeps_ephemerons() ? oracle.ephemeron_descendants(from, through, view(), also_live)
                            : oracle.descendants(from, through, view());
}

// The oracle's dead keys are appended in order: take the new ones, drop those freed since.
const std::vector<ObjectId>& Lane::held_dead_keys() {
  const std::vector<ObjectId>& dead = oracle.dead_keys();
  held_dead_keys_.insert(held_dead_keys_.end(), dead.begin() + dead_keys_seen_, dead.end());
  dead_keys_seen_ = dead.size();
  std::erase_if(held_dead_keys_, [this](ObjectId k) { return !holds(k); });
  return held_dead_keys_;
}

std::optional<ObjectId> Lane::map_keeping(ObjectId x) const {
  std::optional<ObjectId> map;
  for (auto [e, end] = boost::in_edges(x, oracle.graph()); e != end; ++e) {
    const auto from = static_cast<ObjectId>(boost::source(*e, oracle.graph()));
    if (!map && oracle.graph()[*e].key != Oracle::kNoKey && oracle.sees(view(), *e) &&
        holds(from) && live(from)) {
      map = from;
    }
  }
  return map;
}

bool Lane::reaches_now(ObjectId x) {
  return oracle.reachable_from_roots(x) || reached_by_list().contains(x);
}

std::uint64_t Lane::expected_count(ObjectId x) const {
  std::uint64_t count = oracle.external_references(x) + (x < listed.size() ? listed[x] : 0);
  if (capabilities.count == CountMeaning::References) {
    oracle.for_each_referrer(x, view(), [&](ObjectId from) { count += holds(from); });
  }
  return count;
}

std::vector<ObjectId> Lane::path_from_list(ObjectId x) const {
  // (A kept object the collector freed is still on the path: the path explains the free.)
  return oracle.path_from(resurrected, x, [this](ObjectId y) { return kept(y); }, view());
}

// ================================================================================================
// The op's bookkeeping
// ================================================================================================

void Lane::begin_op(std::size_t objects, bool reach_may_change) {
  // (What frozen objects kept during the last op's collection kept ephemerons' values then.)
  if (reach_may_change || !kept_before.empty()) reach_changed();
  freed_now.clear();
  bad_frees.clear();
  events = 0;
  first_finalizer = kNever;
  first_finalizer_after_a_clear = kNever;
  finalizers_now = 0;
  finalized_now.clear();
  programs_now = 0;
  nested_collections = 0;
  cleared_now.clear();
  found_in_callbacks.clear();
  released.clear();
  taken_now.clear();
  born_now.clear();
  linked_now.clear();
  unlinked_now.clear();
  other_steps_now = 0;
  unmapped_now.clear();
  entries_dropped_now = 0;
  entries_set_now = 0;
  keys_kept_by_their_values.clear();
  kept_before.clear();
  garbage_at_start.clear();
  fresh_.clear();  // (fresh is about one op: what this op's finalizers changed)
  kept_finalized_.clear();
  if (status.size() < objects) {
    status.resize(objects, Status::Unallocated);
    listed.resize(objects, 0);
    finalized.resize(objects, 0);
  }
  for (auto w = static_cast<WeakId>(weak.size()); w < oracle.weak_count(); ++w) {
    weak.push_back(oracle.weak_in_program(w) ? WeakState::NotTaken : WeakState::Set);
  }
}

void Lane::allocate(ObjectId x) {
  status[x] = Status::Alive;
  ++alive;
  allocated_.insert(std::upper_bound(allocated_.begin(), allocated_.end(), x), x);
}

void Lane::freed(ObjectId id) {
  if (id >= status.size() || status[id] != Status::Alive) {
    bad_frees.push_back(id);
    return;
  }
  if (!oracle.maps_keyed_by(id).empty()) {  // its entries are gone: what they kept may not be
    note_key_kept_by_its_value(id);
    oracle.key_freed(view(), id);
    reach_changed();
  }
  status[id] = Status::Freed;
  --alive;
  freed_reachable += oracle.reachable_from_roots(id);
  freed_now.push_back(id);
}

// A strong-value map keeps its entry's value while the key is not freed, so a value that refers
// back to its key keeps the key: freeing such a key while its map is live is premature, though
// once it is freed nothing keeps the value any more (so `kept`, found again at the end of the op,
// no longer says so).
void Lane::note_key_kept_by_its_value(ObjectId k) {
  if (keeps_ephemerons()) return;
  const auto unreachable = [this](ObjectId y) { return !oracle.reachable_from_roots(y); };
  for (ObjectId map : oracle.maps_keyed_by(k)) {
    if (!holds(map) || !reaches_now(map)) continue;
    const std::optional<ObjectId> value = oracle.entry_value(map, k, view());
    if (!value || !holds(*value)) continue;
    const ObjectId from[] = {*value};
    const std::vector<ObjectId> reached = oracle.descendants(from, unreachable, view());
    if (std::find(reached.begin(), reached.end(), k) != reached.end()) {
      keys_kept_by_their_values.push_back({k, map, *value});
      return;
    }
  }
}

std::span<const ObjectId> Lane::held_objects() {
  if (allocated_.size() != alive) {
    std::erase_if(allocated_, [this](ObjectId x) { return !holds(x); });
  }
  return allocated_;
}

void Lane::forget_freed_that_died(const std::vector<ObjectId>& newly_unreachable) {
  if (freed_reachable == 0) return;
  for (ObjectId x : newly_unreachable) freed_reachable -= status[x] == Status::Freed;
}

// `kept` is recomputed only when the list or what it reaches may have changed (reach_changed).
// `fresh`: what the objects its finalizers allocated or added references from during the op
// reach, and what the entries of the list it released reach, and what it cut off (unlink,
// unentry, an entry replaced) from what the list or a map's entry kept when the op began (garbage
// from then on: a collection that found its garbage before a finalizer released or cut them off
// need not free them; a live map's entries whose key the mutator let go are on the list's road,
// reached_by_list), and, for a collector that keeps_finalized_a_cycle, what the objects it
// finalized reach (as keys of its ephemerons, too; through the harness's maps' entries as plain
// references). They may outlive the collection they changed: a collector need not look again at
// what a finalizer changed under it (an object a finalizer allocates is no part of the garbage
// found; one that was untracked is tracked again young, outside the collection, as in CPython).
// The next full collection must free them. What they reached counts even when they were freed
// later in the op: the collection saw it held by them (an untracked object that a finalizer links
// to a cycle is tracked again young, its reference keeps the cycle out of the garbage, then
// reference counting frees it with the rest, and the cycle waits for the next collection). The
// search goes through freed objects too: none that an object freed in this op reached was freed
// before it, else the free was premature; and through the entries of keys freed in this op, for
// the same reason. So do the values the harness's maps let go after the collection, and what
// they kept. The plain searches stop where the mutator's heap begins: `fresh` only matters for
// objects the mutator does not reach (may_keep), and what it reaches leads to nothing else (a
// finalizer only adds references from objects the mutator cannot reach), so they cost the
// garbage, not the heap.
void Lane::end_op() {
  // (kept_ is still what the list kept when the op began: what a program cut off from it then.)
  std::vector<ObjectId> changed;
  for (std::size_t i = 1; i < unlinked_now.size(); i += 2) {
    if (kept(unlinked_now[i])) changed.push_back(unlinked_now[i]);
  }
  if (kept_stale_) kept_.assign(reached_by_list());
  kept_stale_ = false;
  const auto allocated = [this](ObjectId y) { return status[y] != Status::Unallocated; };
  const auto not_the_mutators = [this](ObjectId y) {
    return status[y] != Status::Unallocated && !oracle.reachable_from_roots(y);
  };
  if (capabilities.keeps_finalized_a_cycle && !finalized_now.empty()) {
    // (What the finalizers reached when the collector marked it: their objects, and what their
    // programs unlinked since. A finalized key keeps its entries' values too.)
    std::vector<ObjectId> marked = finalized_now;
    for (std::size_t i = 1; i < unlinked_now.size(); i += 2) marked.push_back(unlinked_now[i]);
    const auto listed_maps = [this](ObjectId map) { return kept(map); };
    const std::vector<ObjectId> reached =
        keeps_ephemerons() ? oracle.ephemeron_descendants(marked, allocated, view(), listed_maps)
                           : oracle.descendants(marked, not_the_mutators, view(), true);
    for (ObjectId x : reached) {
      fresh_.insert(x);
      kept_finalized_.insert(x);
    }
  }
  if (changed.empty() && born_now.empty() && linked_now.empty() && unmapped_now.empty() &&
      released.empty()) {
    return;
  }
  changed.insert(changed.end(), born_now.begin(), born_now.end());
  changed.insert(changed.end(), linked_now.begin(), linked_now.end());
  changed.insert(changed.end(), released.begin(), released.end());
  for (std::size_t i = 1; i < unmapped_now.size(); i += 2) changed.push_back(unmapped_now[i]);
  for (ObjectId x : oracle.descendants(changed, not_the_mutators, view(), true)) fresh_.insert(x);
}

// A value is unlinked only while the lane holds it: one freed already is a premature free, which
// the checks report; the collector is not asked to touch it. Unless a free is a finalization
// (Lua's __gc): the finalized value still exists, and the map still refers to it. A collector
// that keeps strong-value maps itself dropped the entry as it freed the key: the value is only
// noted, as one a map let go in this op, freed or not (what it held, freed by reference counting
// in its turn, may have let go of a cycle that the op's collection had already passed by).
void Lane::drop_entries_of_freed_keys() {
  if (keeps_ephemerons() || !oracle.has_maps()) return;
  for (std::size_t i = 0; i < freed_now.size(); ++i) {  // (unlinks may free more keys)
    const ObjectId k = freed_now[i];
    for (ObjectId map : oracle.maps_keyed_by(k)) {
      const std::optional<ObjectId> value = oracle.entry_value(map, k, view());
      if (!value || !holds(map)) continue;
      if (keeps_maps()) {  // (it may have freed the value already: what it held counts)
        unmapped_now.insert(unmapped_now.end(), {map, *value});
        continue;
      }
      if (!holds(*value) && !capabilities.free_is_finalization) continue;
      unmapped_now.insert(unmapped_now.end(), {map, *value});
      collector->unlink(map, *value);
    }
  }
}

}  // namespace cyclefuzz
