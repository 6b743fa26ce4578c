// Reference counting with synchronous cycle collection by trial deletion, after
// D. F. Bacon and V. T. Rajan, "Concurrent Cycle Collection in Reference Counted Systems"
// (ECOOP 2001), section 3: "Synchronous Cycle Collection".
//
// Invariants (between operations):
//   * an object's count is its external references plus the references held by objects not
//     freed; an object whose count reaches zero is freed at once (acyclic garbage never waits);
//   * every object is black or purple; purple objects are exactly the candidates whose count was
//     decremented to a non-zero value since they were last scanned, and every purple object is in
//     the candidate buffer (`roots_`). A black object may also sit in the buffer (a stale entry,
//     dropped by MarkRoots).
//
// `collect` is the paper's CollectCycles: MarkRoots (trial-delete the references inside the
// subgraph below each purple candidate, colouring it gray), ScanRoots (whatever still has a count
// is externally reachable: restore it and everything it reaches to black; the rest turns white),
// CollectRoots (free the white objects). Every phase is iterative: a cycle of a million objects
// must not overflow the stack. Two departures from the paper's recursive formulation, for speed
// on large live heaps (where every object may be a candidate) and with the same result:
//   * MarkGray and ScanBlack walk breadth-first over a vector, fetching cells ahead
//     (collectors/prefetch.h), rather than depth-first in pointer order, which waits for one cache
//     miss after another;
//   * ScanRoots applies Scan to every gray object, in the order MarkGray found them (gray_),
//     rather than recursively from the candidates through white objects: that recursion only
//     serves to reach every gray object, which gray_ already lists, and colours white, then black
//     again, whatever lies between a candidate and the externally reachable objects.
//
// Finalizers and weak references (PEP 442's order, which CPython's gc follows):
//   * an object whose count drops to zero runs its finalizer (once in its life) while one count
//     holds it; if the finalizer gave it a reference it lives on, else its weak references are
//     cleared and it is freed;
//   * CollectRoots clears the weak references to all the white objects it found, then - if any
//     has a finalizer that has not run - gives every count back what MarkGray took, runs the
//     finalizers on those true counts (they may store, allocate and link), and trial-deletes the
//     white objects again: whatever something outside them now refers to, and all that reaches,
//     lives on (ScanBlack within them); only the rest is freed, and with it what the finalizers
//     allocated that only it refers to.
#pragma once

#include <vector>

#include "collectors/cell_census.h"
#include "collectors/collector.h"
#include "collectors/intrusive_list.h"
#include "collectors/references.h"

namespace cyclefuzz {

class TrialDeletion : public Collector {
 public:
  using Collector::Collector;
  ~TrialDeletion() override;

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
  void set_finalizer(ObjectId id) override { handles_[id]->has_finalizer = true; }
  void set_kind(ObjectId id, ObjectKind kind) override { handles_[id]->acyclic = is_acyclic(kind); }
  void weak_ref(WeakId w, ObjectId target, bool callback) override {
    weak_.add(w, target, callback);
  }
  void weak_held_by(WeakId w, ObjectId holder) override { weak_.hold(w, holder); }
  std::optional<ObjectId> deref(WeakId w) const override { return weak_.deref(w); }

 protected:
  enum class Color : std::uint8_t {
    Black,   // in use, or free
    Gray,    // possible member of a garbage cycle (during a collection)
    White,   // member of a garbage cycle (during a collection)
    Purple,  // possible root of a garbage cycle
  };

  // What a collection reads of a cell it visits (the count, colour and frozen flag of each
  // referent, the references of each cell it walks) comes first and together, so that a visit
  // touches as few cache lines as it can; the rest comes after.
  struct Cell : ListLinks {
    std::uint32_t count = 1;  // reference count, external references included
    Color color = Color::Black;
    bool frozen = false;
    bool buffered = false;  // in roots_
    bool has_finalizer = false;
    References<Cell> references;
    ObjectId id = 0;
    std::uint32_t external = 1;      // external references, for check_invariants only
    std::uint32_t buffer_index = 0;  // its position in roots_
    bool finalized = false;          // its finalizer ran: it never runs again
    bool dying = false;              // in the garbage whose finalizers run (collect_roots)
    bool acyclic = false;            // never part of a cycle (ObjectKind::Acyclic)
  };

  // The phases are virtual so that a mutant (mutants.cpp, beside it) can replace exactly one with a
  // documented bug.

  // ---- reference counting -------------------------------------------------------------------
  virtual void increment(Cell* s);
  virtual void decrement(Cell* s);
  virtual void release(Cell* s);
  virtual void possible_root(Cell* s);
  /// Whether an object of this kind can never be part of a cycle.
  virtual bool is_acyclic(ObjectKind kind) const { return kind == ObjectKind::Acyclic; }
  /// Runs the finalizer of `s`, whose count is zero, if it has one that has not run; returns
  /// whether the finalizer resurrected it (gave it a reference).
  virtual bool resurrected_by_finalizer(Cell* s);

  // ---- the candidate buffer -----------------------------------------------------------------
  void buffer(Cell* s);
  void unbuffer(Cell* s);

  // ---- cycle collection ---------------------------------------------------------------------
  std::size_t collect_cycles();
  virtual void mark_roots();
  virtual void scan_roots();
  virtual std::size_t collect_roots();
  virtual void mark_gray(Cell* s);
  virtual void scan(Cell* s);
  virtual void scan_black(Cell* s);
  virtual void collect_white(Cell* s, std::vector<Cell*>& garbage);
  /// The finalizers of the garbage found, if any has one pending (see the .cpp).
  virtual std::vector<Cell*> run_finalizers(std::vector<Cell*>& garbage);
  void restore_counts(const std::vector<Cell*>& garbage);
  /// Runs the finalizers of the garbage found.
  virtual void finalize_garbage(const std::vector<Cell*>& garbage);
  /// Takes out of `garbage` what the finalizers resurrected and everything that reaches.
  virtual void keep_resurrected(std::vector<Cell*>& garbage);
  /// Clears the weak references to `garbage` (calling back those whose holder is not in it).
  void clear_weak_references_to(const std::vector<Cell*>& garbage);
  void trial_delete(const std::vector<Cell*>& garbage);
  void restore_from(Cell* s);
  std::vector<Cell*> orphaned_by(const std::vector<Cell*>& garbage) const;

  void recolor(Cell* s, Color to);
  void check_cell(const Cell* c) const;  // the invariants at one cell
  void free_cell(Cell* s);
  /// Reports `s` freed and takes it out of the heap, with the weak references it held; the caller
  /// deletes it.
  virtual Cell* forget_cell(Cell* s);

  std::vector<Cell*> handles_;  // the mutator's pointers, by object id
  IntrusiveList<Cell> cells_;   // every cell not freed, for check_invariants and the destructor
  mutable CellCensus<Cell> census_;  // check_invariants' scratch, kept between walks
  std::vector<Cell*> roots_;    // the candidate buffer
  /// How deep in release or collect_cycles we are: a finalizer runs there, and may call collect.
  int busy_ = 0;
  struct Busy {
    explicit Busy(int& depth) : depth_(depth) { ++depth_; }
    ~Busy() { --depth_; }
    Busy(const Busy&) = delete;
    Busy& operator=(const Busy&) = delete;
    int& depth_;
  };
  WeakReferences weak_;
  std::uint64_t collections_ = 0;
  std::uint64_t collected_ = 0;  // freed by collections
  std::uint64_t freed_ = 0;      // freed at all
  // The worklists, kept between calls: a collection calls mark_gray and scan_black once per
  // candidate, and allocating each time was most of its cost. gray_ lists every object MarkGray
  // coloured gray in this collection, in the order it found them: MarkGray's queue, then what
  // ScanRoots scans. restoring_ is ScanBlack's queue.
  std::vector<Cell*> gray_, restoring_;
};

}  // namespace cyclefuzz
