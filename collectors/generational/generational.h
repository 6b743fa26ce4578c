// Reference counting plus a generational cycle collector, after CPython's `gc` module
// (Modules/gcmodule.c; the scheme of CPython 3.11).
//
// Invariants (between operations):
//   * an object's count is its external references plus the references held by objects not
//     freed; an object whose count reaches zero is freed at once;
//   * every object is in exactly one of three generation lists, and its `generation` says which;
//   * counts_[0] is allocations minus deallocations since the last collection of generation 0
//     (never below 0); counts_[g] for g > 0 is the number of collections of generation g - 1 since
//     the last collection of generation g.
//
// A collection of generation g (read `collect_generation` first):
//   1. the younger generations are merged into g: the "young" set;
//   2. gc_refs := count for each young object, minus one for each reference from a young object:
//      what is left counts references from outside the young set (older objects, the mutator);
//   3. objects with gc_refs > 0, and all young objects they reach, are reachable; the rest is
//      moved to the unreachable set; reachable objects that hold no references (or tuples of
//      objects that can never take part in a cycle) are set aside, to be untracked;
//   4. survivors are promoted to generation g + 1 (the oldest generation stays put);
//   5. the weak references to the unreachable objects, and those they hold, are cleared, then
//      their finalizers run (handle_weakrefs, finalize_garbage); if any ran, the unreachable
//      objects that a finalizer gave a reference to, and all they reach, survive into
//      generation g + 1 (handle_resurrected_objects);
//   6. the unreachable objects' references are cleared (as tp_clear does), which frees them and
//      whatever only they held, by reference counting.
// Outside a collection, an object whose count drops to zero runs its finalizer first (PEP 442),
// and lives on if the finalizer gave it a reference; else its weak references are cleared.
// gc.freeze() moves every tracked object to a permanent generation that no collection touches,
// gc.unfreeze() moves them back to the oldest; gc.disable() stops automatic collection.
// As CPython does for tuples and dicts that hold only atomic values, a collection stops tracking
// survivors that hold no references, and tuples of acyclic objects and such tuples (unless it has
// a finalizer or weak references: those are instances, which CPython always tracks); an untracked
// object is tracked again (in generation 0) the moment it gains one. An acyclic object is never
// tracked.
//
// Automatic collection follows the allocation counts and the thresholds (default 700, 10, 10):
// after an allocation pushes counts_[0] past its threshold, the oldest generation whose count
// exceeds its threshold is collected, except that a full collection is held back until the
// objects promoted into the oldest generation since the last full one reach a quarter of those
// that survived it (CPython's long_lived_pending < long_lived_total / 4 rule).
#pragma once

#include <array>
#include <vector>

#include "collectors/cell_census.h"
#include "collectors/collector.h"
#include "collectors/intrusive_list.h"
#include "collectors/references.h"

namespace cyclefuzz {

class Generational : public Collector {
 public:
  static constexpr int kGenerations = 3;
  static constexpr int kUntracked = -1;  // the "generation" of objects the collector stopped tracking

  Generational(CollectorHost& listener, const CollectorOptions& options);
  ~Generational() override;

  const Capabilities& capabilities() const override;
  void allocate(ObjectId id) override;
  void link(ObjectId from, ObjectId to) override;
  void unlink(ObjectId from, ObjectId to) override;
  void root(ObjectId id) override;
  void unroot(ObjectId id) override;
  std::size_t collect(int generation) override;
  void set_thresholds(const std::array<std::uint32_t, 3>& thresholds) override;
  void freeze() override;
  void unfreeze() override;
  void set_automatic_collection(bool enabled) override;
  void inspect(ObjectId id, ObjectView& view) const override;
  std::uint64_t collections() const override { return collections_; }
  void check_invariants() const override;
  void check_invariants_of(std::span<const ObjectId> objects) const override;

  /// gc.get_count(): the allocation and collection counts that drive automatic collection.
  std::optional<GcStatistics> statistics() const override;

  void set_finalizer(ObjectId id) override;
  void set_kind(ObjectId id, ObjectKind kind) override;
  void weak_ref(WeakId w, ObjectId target, bool callback) override;
  void weak_held_by(WeakId w, ObjectId holder) override;
  std::optional<ObjectId> deref(WeakId w) const override { return weak_.deref(w); }

 protected:
  // 88 bytes (96 with malloc's header): a full collection passes over every young cell twice,
  // and at a million objects each pass is memory-bound.
  struct Cell : ListLinks {
    std::uint32_t count = 1;  // reference count, external references included
    // gc_refs belongs to the collection numbered `stamp` (collections_): a collection starts it
    // afresh the first time it touches it, so no pass has to clear it afterwards.
    std::uint32_t stamp = 0;
    std::int64_t gc_refs = 0;
    std::int8_t generation = 0;
    bool reached = false;      // scratch, while resurrected objects are sought
    bool unreachable = false;  // in the unreachable set, during a collection only
    bool has_finalizer = false;
    bool finalized = false;          // its finalizer ran: it never runs again
    bool weakly_referenced = false;  // a weak reference was taken to it
    bool holds_weak = false;         // it holds a weak reference (a weakref object it refers to)
    ObjectKind kind = ObjectKind::List;
    mutable std::int8_t never_cyclic = -1;  // a tuple's: -1 until never_cyclic() is asked
    References<Cell> references;
    ObjectId id = 0;
    std::uint32_t external = 1;  // external references, for check_invariants only
  };

  // The phases are virtual so that a mutant (mutants.cpp, beside it) can replace exactly one.

  // ---- reference counting -------------------------------------------------------------------
  void decref(Cell* s);
  virtual void release(Cell* s);
  virtual bool resurrected_by_finalizer(Cell* s);
  void track(Cell* s);

  // ---- collection ---------------------------------------------------------------------------
  virtual void collect_generations();  // automatic: which generation, if any
  std::size_t collect_generation(int generation);
  /// CPython's update_refs and subtract_refs, in one pass (see the definition).
  virtual void update_refs(IntrusiveList<Cell>& young, int generation);
  virtual void move_unreachable(IntrusiveList<Cell>& young, IntrusiveList<Cell>& unreachable,
                                IntrusiveList<Cell>& childless, int generation);
  virtual void untrack_childless(IntrusiveList<Cell>& young, IntrusiveList<Cell>& childless);
  virtual void promote_survivors(int generation);
  virtual void handle_weakrefs(IntrusiveList<Cell>& unreachable);
  virtual bool finalize_garbage(IntrusiveList<Cell>& unreachable);
  /// Whether a reachable object may be untracked (see the .cpp).
  virtual bool untrackable(const Cell* c) const;
  bool never_cyclic(const Cell* c) const;
  virtual void handle_resurrected_objects(IntrusiveList<Cell>& unreachable, int generation);
  virtual void delete_garbage(IntrusiveList<Cell>& unreachable, int generation);
  IntrusiveList<Cell>& list_of(Cell* s);
  void check_cell(const Cell* c) const;  // the invariants at one cell
  /// Whether `t` is in the young set of a collection of generation g: generations 0..g (not
  /// untracked, -1, nor permanent).
  static bool in_young_set(const Cell* t, int g) {
    return static_cast<unsigned>(t->generation) <= static_cast<unsigned>(g);
  }
  /// t's gc_refs, started at zero if this collection has not touched it yet.
  std::int64_t& gc_refs(Cell* t) {
    if (t->stamp != stamp_) {
      t->stamp = stamp_;
      t->gc_refs = 0;
    }
    return t->gc_refs;
  }

  std::vector<Cell*> handles_;  // the mutator's pointers, by object id
  mutable CellCensus<Cell> census_;  // check_invariants' scratch, kept between walks
  std::array<IntrusiveList<Cell>, kGenerations> generations_;
  IntrusiveList<Cell> permanent_;  // frozen objects
  IntrusiveList<Cell> untracked_;  // objects holding no references that collections skip
  WeakReferences weak_;
  std::array<std::uint64_t, kGenerations> counts_{};
  std::array<std::uint32_t, kGenerations> thresholds_{};
  std::size_t long_lived_total_ = 0;    // survivors of the last full collection
  std::size_t long_lived_pending_ = 0;  // promoted into the oldest generation since
  IntrusiveList<Cell>* unreachable_ = nullptr;  // the unreachable set, during a collection
  bool collecting_ = false;
  int releasing_ = 0;  // depth of release(): a finalizer there may call collect
  bool enabled_ = true;
  std::array<std::uint64_t, kGenerations> collections_of_{};  // gc.get_stats()
  std::array<std::uint64_t, kGenerations> collected_{};
  std::uint64_t collections_ = 0;
  std::uint32_t stamp_ = 0;  // the collection under way, for Cell::stamp (never 0 in one)
  std::size_t freed_ = 0;  // frees so far, to count those of one collection
};

}  // namespace cyclefuzz
