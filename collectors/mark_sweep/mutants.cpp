// Mutants of mark-sweep: each is `MarkSweep` with one phase overridden by a copy that differs
// in the lines marked BUG. The comment above each says what real collectors got wrong this way,
// and what the harness should see. (collectors/mutants.h: the catalogue.)
#include <algorithm>

#include "collectors/mark_sweep/mark_sweep.h"
#include "collectors/mutants.h"

namespace cyclefuzz {

namespace {

/// Marking gives up below a fixed depth (here 4 references from a root), as a mark stack with a
/// fixed size that silently drops what does not fit. What lies deeper is swept while reachable:
/// a premature free.
class MarkStopsAtDepth4 final : public MarkSweep {
 public:
  using MarkSweep::MarkSweep;

 protected:
  void mark() override {
    std::vector<std::pair<Cell*, int>> stack;
    for (Cell* root : mark_roots()) stack.push_back({root, 0});
    while (!stack.empty()) {
      const auto [c, depth] = stack.back();
      stack.pop_back();
      if (depth == 4) continue;  // BUG: what lies deeper is never marked
      for (Cell* r : c->references) {
        if (!r->marked) {
          r->marked = true;
          stack.push_back({r, depth + 1});
        }
      }
    }
  }
};

/// The mark stack has a fixed size (16 entries, refilled from each root in turn) and an entry that
/// would overflow it is dropped: marked, but never scanned, so what only it reaches is swept while
/// reachable. Only a wide or deep enough structure overflows it (an object whose many referents
/// each refer onwards: a clique, a tree, a fan whose members were linked on). A premature free.
class MarkStackDropsPastCapacity final : public MarkSweep {
 public:
  using MarkSweep::MarkSweep;

 protected:
  void mark() override {
    constexpr std::size_t kCapacity = 16;
    const auto trim = [](std::vector<Cell*>& stack) {
      if (stack.size() > kCapacity) stack.resize(kCapacity);  // BUG: silently drops the overflow
    };
    for (Cell* root : mark_roots()) {
      std::vector<Cell*> stack{root};
      while (!stack.empty() || !released_.empty()) {
        if (!released_.empty()) {
          Cell* value = released_.back();
          released_.pop_back();
          if (!value->marked) mark_cell(value, stack);
          trim(stack);
          continue;
        }
        Cell* c = stack.back();
        stack.pop_back();
        for (Cell* r : c->references) {
          if (!r->marked) mark_cell(r, stack);
          trim(stack);
        }
        if (c->entries) mark_entries(c, stack);
        trim(stack);
      }
    }
    waiting_.clear();
  }
};

/// Marking traverses every reference of an object but its last (an off-by-one in tp_traverse):
/// what only that reference reaches is swept while reachable. A premature free.
class MarkSkipsLastReference final : public MarkSweep {
 public:
  using MarkSweep::MarkSweep;

 protected:
  void mark() override {
    std::vector<Cell*> stack = mark_roots();
    while (!stack.empty()) {
      Cell* c = stack.back();
      stack.pop_back();
      for (std::size_t i = 0; i + 1 < c->references.size(); ++i) {  // BUG: i < size()
        Cell* r = c->references[i];
        if (!r->marked) {
          r->marked = true;
          stack.push_back(r);
        }
      }
    }
  }
};

/// The sweep stops one cell early: the newest object is never freed, garbage or not. A leak.
class SweepSkipsLastObject final : public MarkSweep {
 public:
  using MarkSweep::MarkSweep;

 protected:
  std::size_t sweep() override {
    std::size_t freed = 0;
    std::size_t left = heap_.size();
    heap_.for_each([&](Cell* c) {
      if (--left == 0) {  // BUG: the last cell is never looked at
        c->marked = false;
        return;
      }
      if (c->marked) {
        c->marked = false;
        return;
      }
      free_cell(c);
      ++freed;
    });
    return freed;
  }
};

/// Marking follows every entry of a marked map, whatever its key: the values of ephemerons are
/// traced strongly, as a weak table implemented as an ordinary table would be. A value whose key
/// is garbage lives as long as its map: a leak (and, through a value that refers back to its key,
/// the key too).
class EphemeronValueTracedStrongly final : public MarkSweep {
 public:
  using MarkSweep::MarkSweep;

 protected:
  void mark_entries(Cell* map, std::vector<Cell*>& stack) override {
    for (const Cell::Entry& e : *map->entries) {
      if (!e.value->marked) mark_cell(e.value, stack);  // BUG: the key is not looked at
    }
  }
};

/// Marking looks at a map's entries once, when it scans the map: an entry whose key is marked
/// later is never followed (no fixpoint: the bug class of ephemeron tables traversed in a single
/// pass). Its value is swept though its map and key are reachable: a premature free.
class EphemeronSinglePass final : public MarkSweep {
 public:
  using MarkSweep::MarkSweep;

 protected:
  void mark_entries(Cell* map, std::vector<Cell*>& stack) override {
    for (const Cell::Entry& e : *map->entries) {
      if (e.key->marked && !e.value->marked) mark_cell(e.value, stack);
      // BUG: an entry whose key is not marked yet does not wait for it
    }
  }
};

/// The callbacks of the weak references to the garbage run whoever holds them: a weak reference
/// that is itself garbage (its holder unmarked) is called back, and the callback sees the garbage
/// it belongs to, which the sweep is about to free (what CPython's handle_weakrefs guards against:
/// a trash weakref's callback is never called). Wrong weak reference.
class CallbackOfGarbageWeakReference final : public MarkSweep {
 public:
  using MarkSweep::MarkSweep;

 protected:
  bool finalize_unmarked() override {
    if (weak_.empty() && !finalizers_) return false;
    std::vector<ObjectId> unmarked;
    std::vector<Cell*> to_finalize;
    heap_.for_each([&](Cell* c) {
      if (c->marked) return;
      unmarked.push_back(c->id);
      if (c->has_finalizer && !c->finalized) to_finalize.push_back(c);
    });
    clear_weak_references(weak_, unmarked);  // BUG: no word of which holders are garbage
    for (Cell* c : to_finalize) {
      c->finalized = true;
      run_finalizer(c->id);
    }
    return !to_finalize.empty();
  }
};

/// An object allocated during a collection - by a weak reference's callback, after the marking -
/// is allocated white, and the sweep frees it, though the callback stored it (the allocate-black
/// rule every incremental or re-entrant marker needs). A premature free.
class AllocatesWhiteDuringCollection final : public MarkSweep {
 public:
  using MarkSweep::MarkSweep;

  void allocate(ObjectId id) override {
    if (handles_.size() <= id) handles_.resize(id + 1, nullptr);
    auto* cell = new Cell;
    cell->id = id;
    // BUG: unmarked, whether or not a collection is marking
    handles_[id] = cell;
    heap_.push_back(cell);
  }
};

}  // namespace

std::vector<CollectorEntry> mark_sweep_mutants() {
  return {
      mutant<MarkStopsAtDepth4>("mark-stops-at-depth-4",
                                "mark-sweep: marking gives up four references from a root"),
      mutant<MarkStackDropsPastCapacity>(
          "mark-stack-drops-past-capacity",
          "mark-sweep: a fixed mark stack of 16 entries drops what overflows it"),
      mutant<MarkSkipsLastReference>("mark-skips-last-reference",
                                     "mark-sweep: marking skips each object's last reference"),
      mutant<SweepSkipsLastObject>("sweep-skips-last-object",
                                   "mark-sweep: the sweep never frees the newest object"),
      mutant<EphemeronValueTracedStrongly>(
          "ephemeron-value-traced-strongly",
          "mark-sweep: a map entry's value is marked whether or not its key is"),
      mutant<EphemeronSinglePass>(
          "ephemeron-single-pass",
          "mark-sweep: an entry whose key is marked after its map is never followed"),
      mutant<CallbackOfGarbageWeakReference>(
          "callback-of-garbage-weak-reference",
          "mark-sweep: a weak reference that garbage holds is called back"),
      mutant<AllocatesWhiteDuringCollection>(
          "allocates-white-during-collection",
          "mark-sweep: what a callback allocates during a collection is swept with its garbage"),
  };
}

}  // namespace cyclefuzz
