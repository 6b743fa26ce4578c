// Naive mark-sweep: the simplest correct collector, and the baseline the others are compared to.
//
// Invariant (between operations): nothing is ever freed outside `collect`; every object ever
// allocated and not yet swept is in `heap_`, unmarked.
//
// A collection marks everything reachable from objects with external references (the roots) and
// sweeps the rest. There are no reference counts, so garbage - cyclic or not - waits for the next
// collection, and every collection is a full one. gc.freeze() has its closest meaning: frozen
// objects are roots, so neither they nor what they reach is ever swept.
//
// Finalizers and weak references, as CPython orders them (PEP 442): a collection clears the weak
// references to everything it did not mark, then runs the finalizers of the unmarked objects that
// have one and have not run it; if any ran, it marks again from the roots, so that what a
// finalizer resurrected (gave an external reference to) and everything that reaches survives -
// and again, until a marking leaves no finalizer to run (a finalizer's unlink can cut off what
// the first marking reached).
//
// Map entries are ephemerons: marking follows an entry once both its map and its key are marked
// (an entry found before its key waits for it: one pass, the fixpoint), and the sweep drops the
// entries of the keys it frees from the maps that survive.
#pragma once

#include <memory>
#include <unordered_map>
#include <vector>

#include "collectors/cell_census.h"
#include "collectors/collector.h"
#include "collectors/intrusive_list.h"
#include "collectors/references.h"

namespace cyclefuzz {

class MarkSweep : public Collector {
 public:
  using Collector::Collector;
  ~MarkSweep() override;

  const Capabilities& capabilities() const override;
  void allocate(ObjectId id) override;  // (virtual: a mutant replaces it)
  void link(ObjectId from, ObjectId to) override;
  void unlink(ObjectId from, ObjectId to) override;
  void root(ObjectId id) override;
  void unroot(ObjectId id) override;
  std::size_t collect(int generation) override;
  void inspect(ObjectId id, ObjectView& view) const override;
  std::uint64_t collections() const override { return collections_; }
  void check_invariants() const override;
  void check_invariants_of(std::span<const ObjectId> objects) const override;
  void freeze() override;
  void unfreeze() override;
  std::optional<GcStatistics> statistics() const override;
  void set_finalizer(ObjectId id) override {
    handles_[id]->has_finalizer = true;
    finalizers_ = true;
  }
  void weak_ref(WeakId w, ObjectId target, bool callback) override {
    weak_.add(w, target, callback);
  }
  void weak_held_by(WeakId w, ObjectId holder) override { weak_.hold(w, holder); }
  std::optional<ObjectId> deref(WeakId w) const override { return weak_.deref(w); }
  void set_entry(ObjectId map, ObjectId key, ObjectId value) override;
  void remove_entry(ObjectId map, ObjectId key) override;

 protected:
  // The phases are virtual so that a mutant (mutants.cpp, beside it) can replace exactly one.
  struct Cell : ListLinks {
    ObjectId id = 0;
    std::uint32_t external = 1;  // references the mutator holds: the roots
    bool marked = false;
    bool frozen = false;
    bool has_finalizer = false;
    bool finalized = false;  // its finalizer ran: it never runs again
    References<Cell> references;
    struct Entry {
      Cell* key;
      Cell* value;
    };
    std::unique_ptr<std::vector<Entry>> entries;  // a map's, when it has any
  };

  /// Marks the roots (external references, frozen objects) and returns them.
  std::vector<Cell*> mark_roots();
  virtual void mark();
  /// Marks r (unmarked), queues it for scanning, and releases the values that waited for r as a
  /// key.
  void mark_cell(Cell* r, std::vector<Cell*>& stack);
  /// Marks what a marked map's entries keep: each value whose key is marked; an entry whose key
  /// is not marked yet waits for it (waiting_).
  virtual void mark_entries(Cell* map, std::vector<Cell*>& stack);
  /// Clears the weak references to the unmarked cells, then runs their finalizers; returns
  /// whether any finalizer ran (and so may have resurrected something).
  virtual bool finalize_unmarked();
  void clear_marks();
  void check_cell(const Cell* c) const;  // the invariant at one cell
  virtual std::size_t sweep();
  void drop_entries_of_unmarked_keys();
  void free_cell(Cell* c);

  std::vector<Cell*> handles_;  // the mutator's pointers, by object id
  mutable CellCensus<Cell> census_;  // check_invariants' scratch, kept between walks
  IntrusiveList<Cell> heap_;    // every cell not yet swept, in allocation order
  WeakReferences weak_;
  std::size_t entry_count_ = 0;                            // entries in all maps
  std::unordered_map<Cell*, std::vector<Cell*>> waiting_;  // during mark: by key, values
  std::vector<Cell*> released_;  // during mark: values whose key was marked after their entry
  std::uint64_t collections_ = 0;
  std::uint64_t collected_ = 0;
  bool collecting_ = false;
  bool finalizers_ = false;  // set_finalizer was ever called: finalize_unmarked has work
};

}  // namespace cyclefuzz
