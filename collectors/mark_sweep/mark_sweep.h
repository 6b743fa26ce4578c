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
// finalizer resurrected (gave an external reference to) and everything that reaches survives.
#pragma once

#include <vector>

#include "collectors/collector.h"
#include "collectors/intrusive_list.h"
#include "collectors/references.h"

namespace cyclefuzz {

class MarkSweep : public Collector {
 public:
  using Collector::Collector;
  ~MarkSweep() override;

  const Capabilities& capabilities() const override;
  void allocate(ObjectId id) override;
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
  std::optional<ObjectId> deref(WeakId w) const override { return weak_.deref(w); }

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
  };

  /// Marks the roots (external references, frozen objects) and returns them.
  std::vector<Cell*> mark_roots();
  virtual void mark();
  /// Clears the weak references to the unmarked cells, then runs their finalizers; returns
  /// whether any finalizer ran (and so may have resurrected something).
  virtual bool finalize_unmarked();
  void clear_marks();
  void check_cell(const Cell* c) const;  // the invariant at one cell
  virtual std::size_t sweep();
  void free_cell(Cell* c);

  std::vector<Cell*> handles_;  // the mutator's pointers, by object id
  IntrusiveList<Cell> heap_;    // every cell not yet swept, in allocation order
  WeakReferences weak_;
  std::uint64_t collections_ = 0;
  std::uint64_t collected_ = 0;
  bool collecting_ = false;
  bool finalizers_ = false;  // set_finalizer was ever called: finalize_unmarked has work
};

}  // namespace cyclefuzz
