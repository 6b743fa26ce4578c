// One collector's run inside a Session: the collector, what it has freed, the program's state in
// its heap (its list of resurrected objects, what its finalizers allocated and linked, its weak
// references), and the predicates every check, report and picture asks about its objects.
//
// The predicates, from what the program reaches to what a collection must have freed:
//
//   holds(x)          the collector allocated x and has not freed it.
//   live(x)           the program reaches x: the mutator's references do (the oracle), or the
//                     program's list of resurrected objects does, or (for the harness's
//                     strong-value maps) the entry of a live map whose key the collector has not
//                     freed does (`kept`). Freeing it is a premature free. (As of the end of
//                     the last op; during an op, when finalizers and callbacks run,
//                     `reaches_now` answers.)
//   kept(x)           the list or a map's entry reaches x and the mutator does not (as of the
//                     end of the last op).
//   garbage(x)        held, and not live: what a collection may free.
//   may_keep(x)       what a collection may leave though the mutator no longer reaches it: what
//                     the list keeps, what frozen objects kept before this op's collection
//                     or after it (`kept_before`), and what this op's finalizers allocated,
//                     linked, released from the list or cut off from what it kept, and what
//                     that reaches (`fresh`: a collector need not look again at what a
//                     finalizer changed under it), what a collector that
//                     keeps_finalized_a_cycle finalized and what that reaches, and what the
//                     harness's maps let go after the op's collection and what that reaches (as
//                     weak-reference callbacks in CPython: garbage from then on, for the next
//                     collection).
//   must_be_freed(x)  held, unreachable, and not may_keep: a full collection must have freed it
//                     (a leak otherwise), and two collectors must agree on it.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "checker/generation_checks.h"
#include "checker/object_set.h"
#include "checker/violation.h"
#include "collectors/collector.h"
#include "oracle/oracle.h"

namespace cyclefuzz {

class Lane final : public CollectorHost {
 public:
  enum class Status : std::uint8_t { Unallocated, Alive, Freed };
  /// A weak reference a program takes is NotTaken until this lane's run of it takes it.
  enum class WeakState : std::uint8_t { Set, Cleared, CalledBack, NotTaken };
  static constexpr std::size_t kNever = ~std::size_t{0};

  Lane(std::size_t index, std::string name, Oracle& oracle)
      : index(index), name(std::move(name)), oracle(oracle) {}

  // ---- the predicates (above) ---------------------------------------------------------------

  bool holds(ObjectId x) const { return x < status.size() && status[x] == Status::Alive; }
  bool live(ObjectId x) const { return oracle.reachable_from_roots(x) || kept(x); }
  /// The object that holds weak reference w, for a collector that keeps holders
  /// (Capabilities::weak_reference_holders); else the mutator holds every one.
  std::optional<ObjectId> holder_of(WeakId w) const {
    return capabilities.weak_reference_holders ? oracle.weak_holder(w) : std::nullopt;
  }
  /// Whether w went with its holder, which the collector freed.
  bool weak_gone(WeakId w) const {
    const std::optional<ObjectId> h = holder_of(w);
    return h && status[*h] == Status::Freed;
  }
  bool kept(ObjectId x) const { return kept_.contains(x); }
  bool kept_any() const { return !kept_.empty(); }
  bool garbage(ObjectId x) const { return holds(x) && !live(x); }
  bool may_keep(ObjectId x) const {
    return kept(x) || kept_before.contains(x) || fresh_.contains(x);
  }
  bool must_be_freed(ObjectId x) const {
    return holds(x) && !oracle.reachable_from_roots(x) && !may_keep(x);
  }
  /// Whether the program can reach x at this moment of an op: through the mutator's references,
  /// its list, or what running finalizers hold (searched again only after they changed).
  bool reaches_now(ObjectId x);
  /// What the collector's ObjectView::count should be for x, as Capabilities::count means it:
  /// its external references (the mutator's, and one per entry in the program's list) and, for
  /// a reference count, the references from objects it still holds, in its heap.
  std::uint64_t expected_count(ObjectId x) const;
  /// A shortest path from an entry of the program's list to x, through what the list keeps (x
  /// included); empty if the list does not keep x. (For reports: it may cost the heap.)
  std::vector<ObjectId> path_from_list(ObjectId x) const;
  /// Whether this op's finalizers allocated x or added a reference from it, or released it or cut
  /// it off from what the list kept, or x is what such an object reaches outside the mutator's
  /// heap (the `fresh` part of may_keep).
  bool fresh(ObjectId x) const { return fresh_.contains(x); }
  /// For a collector that keeps_finalized_a_cycle: whether x is what an object it finalized in
  /// this op reaches (part of fresh), which it may keep until its next full collection.
  bool kept_finalized(ObjectId x) const { return kept_finalized_.contains(x); }

  // ---- the op's bookkeeping -----------------------------------------------------------------

  /// Its heap: the mutator's references and those its finalizers made.
  HeapView view() const { return static_cast<HeapView>(index); }
  /// Resets what the last op left; `objects` is how many the trace has named so far;
  /// `reach_may_change`: the op can change what the list reaches outside the mutator's heap.
  void begin_op(std::size_t objects, bool reach_may_change);
  /// The mutator's `new`.
  void allocate(ObjectId x);
  /// Pre: called after the oracle applied the op and before the collector does.
  void forget_freed_that_died(const std::vector<ObjectId>& newly_unreachable);
  /// The objects it holds, in increasing order.
  std::span<const ObjectId> held_objects();
  /// Whether it holds exactly the reachable objects (O(1)).
  bool holds_exactly_the_reachable() const {
    return freed_reachable == 0 && alive == oracle.reachable_count();
  }
  /// At the end of an op: what the list keeps, and what the finalizers changed.
  void end_op();
  /// What the list reaches outside the mutator's heap may have changed: search it again when
  /// next asked, and recompute `kept` at the end of the op.
  void reach_changed() {
    reached_valid_ = false;
    kept_stale_ = true;
  }
  /// `release`: the program empties its list, dropping each entry's reference.
  void release_resurrected();
  /// The harness's maps (Capabilities::map_entries): after the op, each map the collector holds
  /// unlinks the value of its entry for every key the collector freed during it, as a key's
  /// weak-reference callback drops a WeakKeyDictionary's entry. (A collector's own strong-value
  /// maps dropped those entries themselves: their values are only noted as let go.)
  void drop_entries_of_freed_keys();
  /// What `from` reaches in its heap through objects `through` accepts, with its maps' semantics:
  /// an ephemeron's value once its key is live too - reached by the search, the mutator, or
  /// `also_live` (what else is known to be kept).
  std::vector<ObjectId> reached_from(std::span<const ObjectId> from, const AlivePredicate& through,
                                     const AlivePredicate& also_live) const;
  bool keeps_ephemerons() const { return capabilities.map_entries == MapEntries::Ephemerons; }
  /// Whether the collector keeps its maps itself (set_entry), rather than the harness.
  bool keeps_maps() const { return capabilities.map_entries != MapEntries::Harness; }
  /// Whether a callback must run for w once it is cleared.
  bool expects_callback(WeakId w) const {
    return capabilities.weak_reference_callbacks && oracle.weak_has_callback(w);
  }
  /// The keys the mutator no longer reaches that the collector still holds.
  const std::vector<ObjectId>& held_dead_keys();
  /// A live map whose entry keeps x, which the mutator does not reach; or nothing.
  std::optional<ObjectId> map_keeping(ObjectId x) const;

  // ---- the program, as the collector calls it -----------------------------------------------

  void freed(ObjectId id) override;
  void finalize(ObjectId x) override;
  void weak_cleared(WeakId w) override;
  void weak_callback(WeakId w) override;
  void entry_dropped(ObjectId map, ObjectId key) override;

  // ---- state --------------------------------------------------------------------------------

  const std::size_t index;
  const std::string name;
  Oracle& oracle;  // shared by every lane; a lane adds the references its finalizers make
  Capabilities capabilities;
  std::unique_ptr<Collector> collector;  // declared after the state it reports into
  std::vector<Status> status;            // by object id
  std::size_t alive = 0;
  std::vector<ObjectId> freed_now;  // during the current op, in order
  std::vector<ObjectId> bad_frees;  // frees of objects not alive, during the current op
  std::vector<std::vector<ObjectId>> frees_per_op;
  bool retired = false;
  std::size_t ops_since_walk = 0;  // ops since the checks last walked the whole heap
  bool records_owed = false;       // a collection since the records were last walked
  bool invariants_owed = false;    // a collection or finalizer since the invariants' last walk
  std::optional<std::size_t> first;  // index of its first violation
  std::optional<GenerationModel> generations;  // for collectors with generations or statistics
  ObjectSet frozen;                            // frozen by the last freeze
  ObjectSet thawed;  // frozen by it, then frozen no more (Session::thaw_finalized)
  std::size_t frozen_count = 0;                // objects frozen (held or not)
  // Before a collection, what frozen objects kept: it may survive the collection, even if the
  // frozen object keeping it dies during it (reference counting frees it with the garbage that
  // held it; what it kept waits for the next collection, as in CPython). And what they keep
  // after it: a finalizer may have given them more, which a collector that marks again keeps.
  ObjectSet kept_before;
  // At the start of a full collection, the garbage it must find (for the order of weak-reference
  // clears and finalizers).
  ObjectSet garbage_at_start;

  // The program's list of resurrected objects; each entry is one external reference the
  // collector was given.
  std::vector<ObjectId> resurrected;
  std::vector<ObjectId> released;     // during the current op: the entries `release` dropped
  std::vector<std::uint32_t> listed;  // by object id: its entries in the list
  std::vector<ObjectId> born_now;     // during the current op: the objects finalizers allocated
  std::vector<ObjectId> linked_now;   // ... and those they added references from
  std::vector<ObjectId> unlinked_now;  // ... and the references they dropped: from, to, in pairs
  std::size_t other_steps_now = 0;     // ... and their release, finalizer and weak steps that ran
  std::vector<ObjectId> unmapped_now;  // the maps and values of the entries the maps dropped
                                       // (drop_entries_of_freed_keys, entry_dropped), in pairs
  std::size_t entries_dropped_now = 0;  // ... of which the collector reported (entry_dropped)
  std::size_t entries_set_now = 0;      // entries its programs gave during the current op
  std::vector<std::uint8_t> finalized;  // by object id: its finalizer ran
  // With weak_references_cleared_once_finalized: what a finalizer ran for, and the garbage it
  // reached then (kept for it), ever.
  ObjectSet once_finalized;
  std::vector<WeakState> weak;          // by weak reference
  std::vector<WeakId> taken_now;        // during the current op: those its programs took
  // During the current op: the finalizer runs and clears, numbered in the order they happened.
  std::size_t events = 0;
  std::size_t first_finalizer = kNever;
  std::size_t first_finalizer_after_a_clear = kNever;  // of one the living held
  std::size_t finalizers_now = 0;
  std::vector<ObjectId> finalized_now;  // whose finalizers ran during the current op
  std::size_t programs_now = 0;  // finalizers, and callbacks' programs, that ran (may change it)
  std::uint64_t nested_collections = 0;  // collections a finalizer asked for that ran
  struct Clear {
    WeakId w;
    std::size_t when;        // its number among the op's events
    bool held_by_garbage;    // its holder was unreachable then, or when the op began: its
                             // callback may not run
  };
  std::vector<Clear> cleared_now;
  /// A key freed in this op that a live strong-value map kept through its own entry's value.
  struct KeptKey {
    ObjectId key, map, value;
  };
  std::vector<KeptKey> keys_kept_by_their_values;
  /// What the callbacks found wrong as they ran, during the current op (reported at its end).
  std::vector<Violation> found_in_callbacks;

 private:
  /// What the program's list (and running finalizers' objects, and the harness's maps' entries
  /// whose key was not freed) reach now, outside the mutator's heap: searched again only after the
  /// list or the heap changed.
  const ObjectSet& reached_by_list();
  /// Where reached_by_list starts: the list, running finalizers' objects, and the values the
  /// harness's maps keep for keys the mutator no longer reaches.
  std::vector<ObjectId> list_seeds();
  /// Whether the list reaches x through an entry whose key the collector freed during this op.
  bool kept_through_freed_keys(ObjectId x);
  /// Before the free of key k: notes it if a live map's entry for k keeps it (through its value).
  void note_key_kept_by_its_value(ObjectId k);

  /// The finalizer's program, in this lane's heap (checker/finalizer_programs.cpp).
  void run_program(const std::vector<Step>& program, std::optional<ObjectId> x);
  /// A program's `deref w` step, once it can reach w's holder.
  void deref_in_program(WeakId w);
  /// A program's `release x` step: the list drops one of its entries for x, if it has one.
  bool release_one(ObjectId x);
  void problem(Violation violation) { found_in_callbacks.push_back(std::move(violation)); }

  /// The objects it allocated, in increasing order, less those it freed before the last
  /// held_objects(): so that a walk after a collection costs what it holds, not every object
  /// the trace ever made.
  std::vector<ObjectId> allocated_;
  /// Reachable objects it has freed: with `alive`, it tells in O(1) whether the lane holds
  /// exactly the reachable objects.
  std::size_t freed_reachable = 0;
  std::vector<ObjectId> releasing_;         // during `release`: the entries not yet dropped
  std::vector<ObjectId> finalizer_locals_;  // objects running finalizers allocated and hold
  // `kept` is what the list reaches and the mutator does not, as of the end of an op: the
  // mutator's reachability is the same when it is used as when it was computed (only `collect`
  // uses it before it is recomputed, and a collection leaves the mutator's references alone; and
  // end_op, which asks what it kept when the op began).
  ObjectSet kept_;
  ObjectSet fresh_;  // what born_now, linked_now, released, unmapped_now's values and what
                    // unlinked_now cut off from kept_ reach (op end), the mutator's heap left out
  ObjectSet kept_finalized_;  // the part of fresh_ that the op's finalized objects reach
  ObjectSet reached_;  // what the list reaches, during the op (reached_by_list)
  std::vector<ObjectId> held_dead_keys_;  // held_dead_keys, as of its last call
  std::size_t dead_keys_seen_ = 0;        // how many of the oracle's dead keys it has taken
  bool reached_valid_ = false;
  bool kept_stale_ = false;
};

}  // namespace cyclefuzz
