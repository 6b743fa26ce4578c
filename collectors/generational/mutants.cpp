// Mutants of generational: each is `Generational` with one phase overridden by a copy that differs
// in the lines marked BUG. The comment above each says what real collectors got wrong this way,
// and what the harness should see. (collectors/mutants.h: the catalogue.)
#include <algorithm>

#include "collectors/generational/generational.h"
#include "collectors/mutants.h"

namespace cyclefuzz {

namespace {

/// A partial collection subtracts the references from every generation, not only from the young
/// ones: a young object that only an older live object refers to looks unreachable and is freed.
/// A premature free. (The remembered-set bug of generational collectors.)
class PartialIgnoresOlderReferrers final : public Generational {
 public:
  using Generational::Generational;

 protected:
  void update_refs(IntrusiveList<Cell>& young, int g) override {
    Generational::update_refs(young, g);
    for (int older = g + 1; older < kGenerations; ++older) {  // BUG: only young referrers count
      generations_[older].for_each([&](Cell* c) {
        for (Cell* t : c->references) {
          if (t->generation == g) --t->gc_refs;
        }
      });
    }
  }
};

/// Survivors of a young collection stay where they are. Nothing is freed wrongly, but every young
/// collection scans them again and the oldest generation never fills. A wrong generation.
class SurvivorsNotPromoted final : public Generational {
 public:
  using Generational::Generational;

 protected:
  void promote_survivors(int g) override {
    if (g + 1 < kGenerations) return;  // BUG: survivors belong one generation older
    long_lived_pending_ = 0;
    long_lived_total_ = generations_[g].size();
  }
};

/// A partial collection moves its unreachable objects to the next generation with the
/// survivors, instead of freeing them; only a full collection frees garbage. Missed garbage.
class GarbagePromoted final : public Generational {
 public:
  using Generational::Generational;

 protected:
  void delete_garbage(IntrusiveList<Cell>& unreachable, int g) override {
    if (g + 1 == kGenerations) {
      Generational::delete_garbage(unreachable, g);
      return;
    }
    unreachable.for_each([&](Cell* u) {  // BUG: garbage promoted instead of cleared
      unreachable.remove(u);
      u->unreachable = false;
      u->generation = g + 1;
      generations_[g + 1].push_back(u);
    });
  }
};

/// The long-lived rule always holds the full collection back: automatic collection never
/// collects the oldest generation, and cycles that reach it stay until someone calls collect().
/// A wrong automatic collection.
class FullCollectionNeverFires final : public Generational {
 public:
  using Generational::Generational;

 protected:
  void collect_generations() override {
    for (int g = kGenerations - 1; g >= 0; --g) {
      if (counts_[g] <= thresholds_[g]) continue;
      if (g == kGenerations - 1) continue;  // BUG: pending < total / 4 is the only reason
      collect_generation(g);
      return;
    }
  }
};

/// gc.freeze() moves objects into the oldest generation instead of a permanent one: the next full
/// collection frees frozen garbage. A frozen object collected.
class FrozenCollected final : public Generational {
 public:
  using Generational::Generational;

  void freeze() override {
    for (int g = 0; g + 1 < kGenerations; ++g) {  // BUG: they belong in permanent_, untouched
      generations_[g].for_each([](Cell* c) { c->generation = kGenerations - 1; });
      generations_[kGenerations - 1].splice_back(generations_[g]);
    }
    counts_[0] = 0;
  }
};

/// An untracked object (it held no references) gains one and is not tracked again: collections
/// never see its references, so a cycle through it is never collected. Wrong bookkeeping at
/// once (an untracked object holding a reference), a leak later.
class UntrackedNotRetracked final : public Generational {
 public:
  using Generational::Generational;

  void link(ObjectId from, ObjectId to) override {
    Cell* target = handles_[to];
    handles_[from]->references.push_back(target);  // BUG: an untracked source stays untracked
    ++target->count;
  }
};

/// finalize_garbage forgets that a finalizer already ran: an object resurrected once, released
/// and found again as garbage runs its finalizer a second time (CPython before PEP 442 kept no
/// such flag for __del__). Wrong finalization.
class FinalizerRunTwice final : public Generational {
 public:
  using Generational::Generational;

 protected:
  bool finalize_garbage(IntrusiveList<Cell>& unreachable) override {
    std::vector<ObjectId> to_finalize;
    unreachable.for_each([&](Cell* c) {
      if (c->has_finalizer) to_finalize.push_back(c->id);  // BUG: and !c->finalized
    });
    for (ObjectId id : to_finalize) {
      Cell* c = handles_[id];
      if (c == nullptr) continue;
      c->finalized = true;
      ++c->count;
      run_finalizer(id);
      if (--c->count == 0) release(c);
    }
    return !to_finalize.empty();
  }
};

/// The weak references to the garbage are cleared after its finalizers run, not before: a
/// finalizer (or a callback) can still follow a weak reference into an object that a finalizer
/// already saw die, or that the collection is about to free (the order handle_weakrefs fixed).
/// Wrong weak reference.
class WeakrefsClearedAfterFinalizers final : public Generational {
 public:
  using Generational::Generational;

 protected:
  void handle_weakrefs(IntrusiveList<Cell>&) override {}  // BUG: deferred past the finalizers
  bool finalize_garbage(IntrusiveList<Cell>& unreachable) override {
    const bool ran = Generational::finalize_garbage(unreachable);
    Generational::handle_weakrefs(unreachable);
    return ran;
  }
};

/// A finalizer's gc.collect() is obeyed while reference counting frees a chain: the nested
/// collection finds the chain's dying objects (count zero, still in their generation lists),
/// frees them, and the outer loop then frees them again (the re-entrancy bugs of collectors that
/// call finalizers from inside their own loops). A use-after-free under ASan, else a double free.
class NestedCollectionInRelease final : public Generational {
 public:
  using Generational::Generational;

  std::size_t collect(int generation) override {
    if (collecting_) return 0;  // BUG: and while releasing_ > 0
    collecting_ = true;
    const std::size_t found = collect_generation(std::min(generation, kGenerations - 1));
    collecting_ = false;
    return found;
  }
};

/// The weak references of the young survivors are handled as if they were garbage: they are
/// cleared and their callbacks run although the objects live on. Wrong weak reference.
class CallbackForSurvivor final : public Generational {
 public:
  using Generational::Generational;

 protected:
  void untrack_childless(IntrusiveList<Cell>& young, IntrusiveList<Cell>& childless) override {
    std::vector<ObjectId> survivors;
    young.for_each([&](Cell* c) {
      if (c->weakly_referenced) survivors.push_back(c->id);
    });
    clear_weak_references(weak_, survivors);  // BUG: handle_weakrefs given the wrong list
    Generational::untrack_childless(young, childless);
  }
};

/// handle_weakrefs without its rule for trash weakrefs: a weak reference that the unreachable set
/// holds is called back with the rest, and its callback runs with the garbage it belongs to
/// (CPython's handle_weakrefs never calls the callback of a weakref that is itself trash).
/// Wrong weak reference.
class CallbackOfTrashWeakref final : public Generational {
 public:
  using Generational::Generational;

 protected:
  void handle_weakrefs(IntrusiveList<Cell>& unreachable) override {
    std::vector<ObjectId> targets;
    unreachable.for_each([&](Cell* c) {
      if (c->weakly_referenced) targets.push_back(c->id);
    });
    clear_weak_references(weak_, targets);  // BUG: no word of which holders are unreachable
    unreachable.for_each([&](Cell* c) {
      if (c->holds_weak) clear_held_weak_references(weak_, c->id);
    });
  }
};

/// The weak references that the unreachable set holds are let go with their holders, uncleared,
/// on the reasoning that they are garbage anyway: but the finalizers run first, and one can still
/// follow such a weak reference into garbage (CPython clears every weakref to the unreachable set,
/// trash or not, before any finalizer). Wrong weak reference.
class TrashWeakrefsNotCleared final : public Generational {
 public:
  using Generational::Generational;

 protected:
  void handle_weakrefs(IntrusiveList<Cell>& unreachable) override {
    unreachable.for_each([&](Cell* c) {
      if (c->holds_weak) weak_.drop_held_by(c->id);  // BUG: before the finalizers, not after
    });
    Generational::handle_weakrefs(unreachable);
  }
};

/// finalize_garbage takes its list of objects to finalize up front and trusts it: a finalizer that
/// drops a reference lets reference counting free another object of the unreachable set (or run
/// its finalizer first), and the loop then finalizes a freed object (the re-entrancy bugs of
/// collectors that call out while walking their own lists). A use after free: a crash under the
/// sanitizers.
class FinalizerWalksFreedGarbage final : public Generational {
 public:
  using Generational::Generational;

 protected:
  bool finalize_garbage(IntrusiveList<Cell>& unreachable) override {
    std::vector<Cell*> to_finalize;  // BUG: pointers, which a finalizer's decrement may free
    unreachable.for_each([&](Cell* c) {
      if (c->has_finalizer && !c->finalized) to_finalize.push_back(c);
    });
    for (Cell* c : to_finalize) {
      c->finalized = true;
      ++c->count;
      run_finalizer(c->id);
      if (--c->count == 0) release(c);
    }
    return !to_finalize.empty();
  }
};

/// Tuples are untracked when every item is untracked now, whatever its kind (the test CPython's
/// _PyTuple_MaybeUntrack avoids: an untracked list or record is tracked again when it gains a
/// reference, and then a cycle through the untracked tuple is one no collection sees). Wrong
/// bookkeeping at once; a leak once the cycle is closed and dropped.
class TupleUntrackedWithListItem final : public Generational {
 public:
  using Generational::Generational;

 protected:
  bool untrackable(const Cell* c) const override {
    if (c->has_finalizer || c->weakly_referenced || c->holds_weak) return false;
    if (c->references.empty()) return true;
    if (c->kind != ObjectKind::Tuple) return false;
    return std::all_of(c->references.begin(), c->references.end(), [](const Cell* t) {
      return t->kind == ObjectKind::Acyclic || t->generation == kUntracked;  // BUG: any kind
    });
  }
};

}  // namespace

std::vector<CollectorEntry> generational_mutants() {
  return {
      mutant<PartialIgnoresOlderReferrers>(
          "partial-ignores-older-referrers",
          "generational: a partial collection discounts references from older generations"),
      mutant<SurvivorsNotPromoted>("survivors-not-promoted",
                                   "generational: survivors of a young collection stay young"),
      mutant<GarbagePromoted>("garbage-promoted",
                              "generational: a partial collection promotes its garbage"),
      mutant<FullCollectionNeverFires>(
          "full-collection-never-fires",
          "generational: automatic collection never collects the oldest generation"),
      mutant<FrozenCollected>("frozen-collected",
                              "generational: gc.freeze() leaves objects collectable"),
      mutant<UntrackedNotRetracked>(
          "untracked-not-retracked",
          "generational: an untracked object that gains a reference is not tracked again"),
      mutant<FinalizerRunTwice>("finalizer-run-twice",
                                "generational: a resurrected object's finalizer runs again"),
      mutant<WeakrefsClearedAfterFinalizers>(
          "weakrefs-cleared-after-finalizers",
          "generational: weak references to garbage are cleared after its finalizers run"),
      mutant<NestedCollectionInRelease>(
          "nested-collection-in-release",
          "generational: a finalizer's collect runs while reference counting frees a chain"),
      mutant<CallbackForSurvivor>(
          "callback-for-survivor",
          "generational: weak references to young survivors are cleared, callbacks run"),
      mutant<CallbackOfTrashWeakref>(
          "callback-of-trash-weakref",
          "generational: a weak reference the unreachable set holds is called back"),
      mutant<TrashWeakrefsNotCleared>(
          "trash-weakrefs-not-cleared",
          "generational: weak references garbage holds go uncleared before its finalizers"),
      mutant<FinalizerWalksFreedGarbage>(
          "finalizer-walks-freed-garbage",
          "generational: finalizes objects a finalizer's decrement already freed"),
      mutant<TupleUntrackedWithListItem>(
          "tuple-untracked-with-list-item",
          "generational: a tuple of untracked lists is untracked (a list is tracked again)"),
  };
}

}  // namespace cyclefuzz
