// The one boundary between the program (a trace) and a collector.
//
// Every collector - the built-in models, the mutants, users' plug-ins, real runtimes - sits behind
// `Collector`. The harness plays the mutator: it allocates objects, adds and drops references and
// external references, and asks for collections. The collector owns its heap (a real allocation
// per object, so that a premature free is a genuine use-after-free) and reports every free, by
// object, the moment it happens. It calls the program's code - finalizers, weak-reference
// callbacks - through the same `CollectorHost`, and a finalizer's effects come back to it as
// ordinary mutator operations (a resurrection is a `root`), in the middle of its work.
//
// What the checker may demand of a collector depends on what it promises: that promise is data
// (`Capabilities`), never a test of the collector's name.
#pragma once

#include <cstddef>
#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "collectors/weak_references.h"
#include "language/op.h"

namespace cyclefuzz {

/// What `ObjectView::count` means for a collector.
enum class CountMeaning : std::uint8_t {
  None,        // the collector keeps no count the checker can compare
  References,  // a reference count: external references plus references from objects not freed
  External,    // the number of external references only (a tracing collector's roots)
};

/// What `collect` returns, and so what the checker may demand of its result.
enum class CollectCount : std::uint8_t {
  Freed,               // exactly the objects it freed during the call; after a full collection,
                       // that is every unreachable object it held before
  FoundInGenerations,  // the unreachable objects it found in the generations it collected, as
                       // CPython's gc.collect(g): never more than it freed during the call, but
                       // fewer when reference counting then frees older objects that only the
                       // garbage held, or garbage that a finalizer's dropped reference freed
                       // (it counts what is still unreachable after the finalizers); after a
                       // full collection whose programs dropped nothing, exactly what Freed
                       // demands
  None,                // not a count of objects (Lua's collectgarbage("collect") returns 0)
};

/// Who keeps weak-keyed maps' entries (language/op.h), and so which semantics the checks demand.
enum class MapEntries : std::uint8_t {
  /// The collector knows nothing of them: the harness builds strong-value maps from its plain
  /// references, as CPython's weakref.WeakKeyDictionary is a dict whose key's weak-reference
  /// callback drops the entry. `entry m k v` is `link m v` (and `unlink` of the value it
  /// replaces), `unentry m k` the unlink of its value, and after each op the harness unlinks the
  /// values of the entries whose key the collector freed during it.
  Harness,
  /// The collector keeps them (set_entry, remove_entry) as ephemerons: a value lives while its map
  /// and its key do, and the entry goes when the key is freed.
  Ephemerons,
  /// The collector keeps them (set_entry, remove_entry) as strong-value maps: a value lives while
  /// its map lives and its key is not freed (a value that refers back to its key keeps both), and
  /// the collector drops the entry itself when it frees the key (PHP 8.2's WeakMap).
  StrongValues,
  /// As StrongValues, but the entry goes when the collector clears the weak references to its
  /// key, which it reports (report_entry_dropped) as it drops it: at the key's free, or earlier,
  /// with a collection's garbage, before any finalizer runs, so that a key a finalizer then
  /// resurrects has lost its entries (CPython's weakref.WeakKeyDictionary: handle_weakrefs calls
  /// the `_remove` callback of each weak reference to the garbage that is not garbage itself).
  StrongValuesUntilKeyCleared,
};

struct Capabilities {
  /// Frees an object as soon as nothing refers to it, without waiting for `collect`; then every
  /// unreachable object that no garbage cycle holds must be gone after each operation.
  bool reference_counting = false;
  /// How many generations: `collect(g)` is a full collection iff g >= generations - 1.
  int generations = 1;
  /// `collect(g)` for a young generation (g < generations - 1) is a step of the collector's own
  /// work, not a collection of generations: it may free any garbage or none, and the collector
  /// shows no generations (the wrong generation and missed garbage checks do not apply). Lua's
  /// collectgarbage("step"): in incremental mode a part of a cycle, so that a trace's steps fall
  /// between its links and unlinks; in 5.4's generational mode a young (or major) collection.
  bool young_collections_are_steps = false;
  /// May run collections on its own during any operation. Without it, a collection that runs
  /// during an op other than `collect`, unless a finalizer asked for it, is a violation.
  bool automatic_collection = false;
  /// What `ObjectView::count` holds.
  CountMeaning count = CountMeaning::None;
  /// What `collect` returns.
  CollectCount collect_count = CollectCount::Freed;
  /// A reported free is a finalizer's call, not the release of the object's memory: the runtime
  /// finalizes one cycle's garbage over several steps and keeps a finalized object as long as
  /// other garbage refers to it (Lua's __gc). Garbage still referring to a freed object is then
  /// no dangling reference (a free while reachable still is a premature free).
  bool free_is_finalization = false;
  /// Sweeps a collection's garbage over several steps, the program running between them (Lua's
  /// incremental sweep): garbage not swept yet may still refer to an object already freed. That
  /// is no dangling reference (a free while reachable still is a premature free).
  bool frees_garbage_in_steps = false;
  /// Keeps an object whose finalizer ran, and what it reaches, until its next cycle (Lua marks
  /// them so that their finalizers can run: lgc.c's markbeingfnz): the full collection in which
  /// a finalizer ran need not free them; the next one must.
  bool keeps_finalized_a_cycle = false;
  /// `inspect` shows the collector's own references (else the bookkeeping checks skip it).
  bool inspectable = true;
  /// Implements gc.freeze()/gc.unfreeze(): then no collection may free a frozen object (reference
  /// counting still may), and what frozen objects refer to survives collections.
  bool freezes = false;
  /// Runs finalizers (set_finalizer): once per object, only when it is unreachable, before it is
  /// freed; what a finalizer resurrects survives (PEP 442).
  bool finalizers = false;
  /// A finalizer may run again for an object it already ran for (still only when the object is
  /// unreachable; a second run runs no program). Duktape asks for re-entrant finalizers: it arms
  /// a finalizer again when reference counting ran it and the object's count is not zero after
  /// it, and when a round of mark-and-sweep finds a finalized object marked - reachable, or only
  /// reached from garbage that waits for its own finalizer (duk_heap_markandsweep.c's sweep).
  /// Without it, once per object.
  bool finalizers_may_run_again = false;
  /// Keeps weak references (weak_ref, deref): cleared when the target is freed, never while it is
  /// reachable; a callback runs once, after its clear.
  bool weak_references = false;
  /// Runs weak references' callbacks. Without it (PHP's WeakReference has none; nor have Lua's
  /// weak tables) `callback` is ignored: no callback may run, and no callback's program does.
  bool weak_reference_callbacks = true;
  /// Clears the weak references to all the garbage a collection found before it runs any of that
  /// garbage's finalizers (CPython's handle_weakrefs before finalize_garbage).
  bool weak_references_cleared_before_finalizers = false;
  /// Keeps weak references that objects hold (weak_held_by) as those objects' own: one goes when
  /// its holder is freed (never cleared or called back after), and a collection never runs the
  /// callback of one whose holder is part of the garbage it found (CPython's handle_weakrefs: a
  /// weakref that is itself trash gets no callback). Without it, the checks treat every weak
  /// reference as the mutator's.
  bool weak_reference_holders = false;
  /// With weak_references_cleared_before_finalizers, the order covers the weak references that
  /// the mutator and live objects hold, not those that garbage holds: a collection may leave one
  /// of them set until it frees its holder (which takes it along) or its target. Lua clears no
  /// weak table that only garbage reaches: it frees it uncleared with its holder when nothing
  /// being finalized reaches that, and when something does, Lua 5.3 and 5.4 clear its values
  /// only of what is not kept for finalization with it (lgc.c's atomic clears the "resurrected"
  /// weak tables after marking what they hold), so a finalizer can find such a target there.
  bool weak_references_of_garbage_outlive_finalizers = false;
  /// With weak_references_cleared_before_finalizers: a full collection may first finish a cycle
  /// that began before it - its sweep, and the finalizers of the garbage that cycle found - and
  /// only then run a cycle of its own, whose clears must come before the finalizers that follow its
  /// first clear of a weak reference that the mutator or a live object holds (Lua's incremental
  /// collector: luaC_fullgc runs the pending cycle to its end, finalizers included, before it
  /// starts the full one). What is reachable again after the collection need not have been cleared:
  /// an earlier cycle's finalizer may have resurrected it before the collection's own cycle looked.
  bool finalizers_of_an_earlier_cycle_run_first = false;
  /// A weak reference to an object once kept for finalization - its finalizer ran, or garbage
  /// that such an object reached then - may be cleared at any later collection, even while the
  /// program reaches the object: Lua 5.1's weak tables, which LuaJIT keeps, drop a userdata that
  /// is marked finalized from weak values at every atomic phase, and the mark stays (lj_gc.c's
  /// gc_mayclear; lj_gc_separateudata marks every unreachable userdata).
  bool weak_references_cleared_once_finalized = false;
  /// Automatic collection follows CPython's rules - allocation counts, thresholds, the
  /// long-lived rule for full collections - and `statistics()` exposes the counts
  /// (gc.get_count()). Needs generations == 3.
  bool cpython_thresholds = false;
  /// Who keeps map entries.
  MapEntries map_entries = MapEntries::Harness;

  bool is_full_collection(int generation) const { return generation >= generations - 1; }
};

/// The generation of a frozen object (gc.freeze()), as ObjectView::generation shows it.
inline constexpr int kPermanentGeneration = 3;

/// A collector's own record of one object, as CPython exposes it through tp_traverse and
/// ob_refcnt: the checker compares it with the oracle after operations.
struct ObjectView {
  std::vector<ObjectId> references;  // one entry per reference held, in any order
  std::uint64_t count = 0;           // see Capabilities::count
  int generation = 0;                // the generation holding the object (0 without generations;
                                     // kPermanentGeneration when frozen)
  bool tracked = true;               // false: the collector stopped tracking it (it holds no
                                     // references), as CPython does for some tuples and dicts
};

/// The gc module's statistics, for collectors that keep them: gc.get_count() and gc.get_stats().
/// A collector without generations counts its collections under generation 0.
struct GcStatistics {
  std::uint64_t count[3] = {0, 0, 0};  // allocations minus frees since generation 0 was last
                                       // collected; collections of generation g - 1 since g was
  std::uint64_t collections[3] = {0, 0, 0};    // collections of generation g
  std::uint64_t collected[3] = {0, 0, 0};      // objects they freed
  std::uint64_t uncollectable[3] = {0, 0, 0};  // garbage they found but could not free
  /// CPython's long-lived rule (gcstate's long_lived_pending and long_lived_total), when the
  /// collector follows it: not in the gc module, but the checker's model of the rules reads them
  /// when a finalizer changed the heap under a collection and it must catch up.
  std::optional<std::array<std::uint64_t, 2>> long_lived;
};

/// The program's side of the boundary, as a collector sees it: where it reports each free as it
/// happens, and the program code it runs.
class CollectorHost {
 public:
  virtual ~CollectorHost() = default;
  virtual void freed(ObjectId id) = 0;
  /// Runs the object's finalizer: the program's code, which may call back into the collector
  /// (a `root` of what it resurrects) before it returns.
  virtual void finalize(ObjectId /*id*/) {}
  /// A weak reference was cleared; then its callback ran.
  virtual void weak_cleared(WeakId /*w*/) {}
  virtual void weak_callback(WeakId /*w*/) {}
  /// Map `map` dropped its entry for `key` (MapEntries::StrongValuesUntilKeyCleared).
  virtual void entry_dropped(ObjectId /*map*/, ObjectId /*key*/) {}
};

/// Thrown by `check_invariants()` when a collector's own structures are inconsistent.
class BrokenInvariant : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

/// Throws BrokenInvariant saying "<collector>: object <id> <what>". (The message is built only
/// when an invariant fails: the checks run after every operation.)
[[noreturn]] void broken_invariant(const char* collector, ObjectId id, const std::string& what);

/// Settings a run may give a collector.
struct CollectorOptions {
  /// Automatic collection thresholds per generation, as gc.set_threshold() (0 disables).
  std::uint32_t thresholds[3] = {700, 10, 10};
};

class Collector {
 public:
  explicit Collector(CollectorHost& host) : host_(host) {}
  virtual ~Collector() = default;
  Collector(const Collector&) = delete;
  Collector& operator=(const Collector&) = delete;

  virtual const Capabilities& capabilities() const = 0;

  // ---- the mutator's operations (the harness only asks for valid ones) ---------------------
  virtual void allocate(ObjectId id) = 0;  // the mutator holds one external reference to it
  virtual void link(ObjectId from, ObjectId to) = 0;
  virtual void unlink(ObjectId from, ObjectId to) = 0;
  virtual void root(ObjectId id) = 0;
  virtual void unroot(ObjectId id) = 0;
  /// Collects generations 0..generation; returns the number of objects it found unreachable,
  /// which is the number it freed during the call (unless Capabilities::collect_count says
  /// otherwise).
  virtual std::size_t collect(int generation) = 0;
  /// As gc.set_threshold(): new automatic collection thresholds (collectors without automatic
  /// collection ignore them).
  virtual void set_thresholds(const std::array<std::uint32_t, 3>& /*thresholds*/) {}
  /// As gc.freeze() and gc.unfreeze() (see Capabilities::freezes).
  virtual void freeze() {}
  virtual void unfreeze() {}
  /// As gc.enable() and gc.disable(): automatic collection on or off.
  virtual void set_automatic_collection(bool /*enabled*/) {}
  /// The object has a finalizer (Capabilities::finalizers).
  virtual void set_finalizer(ObjectId /*id*/) {}
  /// Right after allocate, what the object is when it is not a list (language/op.h: ObjectKind):
  /// what its kind promises a collector may use (a tuple's references never change; an acyclic
  /// object is never part of a cycle), or ignore. A tuple's references follow as links.
  virtual void set_kind(ObjectId /*id*/, ObjectKind /*kind*/) {}
  /// A weak reference to `target`, with or without a callback (Capabilities::weak_references).
  virtual void weak_ref(WeakId /*w*/, ObjectId /*target*/, bool /*callback*/) {}
  /// Right after weak_ref: object `holder` holds `w` (Capabilities::weak_reference_holders).
  virtual void weak_held_by(WeakId /*w*/, ObjectId /*holder*/) {}
  /// What weak reference `w` points to, or nothing once it is cleared.
  virtual std::optional<ObjectId> deref(WeakId /*w*/) const { return std::nullopt; }
  /// Map entries, for a collector that keeps them (Capabilities::map_entries is not Harness; the
  /// harness asks no other): `map`'s entry for `key` is now `value`, replacing the old one; `map`
  /// drops its entry for `key`. `inspect` lists each entry's value among the references.
  virtual void set_entry(ObjectId /*map*/, ObjectId /*key*/, ObjectId /*value*/) {}
  virtual void remove_entry(ObjectId /*map*/, ObjectId /*key*/) {}

  // ---- what the checker may look at ---------------------------------------------------------
  /// The collector's record of an object it has not freed.
  virtual void inspect(ObjectId id, ObjectView& view) const = 0;
  /// How many collections have run, automatic ones included.
  virtual std::uint64_t collections() const = 0;
  /// Walks the collector's own structures; throws BrokenInvariant if they are inconsistent.
  virtual void check_invariants() const = 0;
  /// The invariants an operation that ran no collection can have broken at `objects` (each one
  /// allocated and not freed: what the operation touched, and the referents of what it freed).
  /// The checker asks this after such operations, so that checking costs what the operation
  /// touched, and walks the whole heap (check_invariants) after collections and every so often.
  /// By default the whole walk: a collector that cannot check one object alone is still checked.
  virtual void check_invariants_of(std::span<const ObjectId> /*objects*/) const {
    check_invariants();
  }
  /// Its gc statistics, if it keeps them (see Capabilities::cpython_thresholds).
  virtual std::optional<GcStatistics> statistics() const { return std::nullopt; }

 protected:
  void report_free(ObjectId id) { host_.freed(id); }
  void run_finalizer(ObjectId id) { host_.finalize(id); }
  void report_weak_cleared(WeakId w) { host_.weak_cleared(w); }
  void report_weak_callback(WeakId w) { host_.weak_callback(w); }
  void report_entry_dropped(ObjectId map, ObjectId key) { host_.entry_dropped(map, key); }
  /// Clears the weak references to each of `targets`, then runs the callbacks of those that have
  /// one: every clear comes before any callback, so no callback can reach a target through
  /// another weak reference (CPython's handle_weakrefs). A weak reference whose holder `garbage`
  /// accepts is garbage itself: cleared, never called back.
  void clear_weak_references(WeakReferences& weak, const std::vector<ObjectId>& targets,
                             const std::function<bool(ObjectId)>& garbage = nullptr);
  /// Clears the weak references `holder` holds (garbage itself, it takes them with it): no
  /// callback ever runs for them.
  void clear_held_weak_references(WeakReferences& weak, ObjectId holder);

 private:
  CollectorHost& host_;
};

/// The one function that applies an op to a collector. Returns what `collect` returned, for a
/// collect op. `replaced`: for `entry` and `unentry`, the value the map's entry for the key had
/// before the op, if any (the harness's maps unlink it).
std::optional<std::size_t> apply(Collector& collector, const Op& op,
                                 std::optional<ObjectId> replaced = std::nullopt);

}  // namespace cyclefuzz
