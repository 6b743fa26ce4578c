#include "collectors/mutants/mutants.h"

#include <algorithm>
#include <type_traits>

#include "collectors/generational/generational.h"
#include "collectors/mark_sweep/mark_sweep.h"
#include "collectors/trial_deletion/trial_deletion.h"

namespace cyclefuzz {

namespace {

// Each mutant overrides one phase of a correct collector with a copy that differs in the lines
// marked BUG. The comment above each says what real collectors got wrong this way, and what the
// harness should see.

// ================================================================================================
// Trial deletion
// ================================================================================================

/// Scan finds an object externally reachable and recolours it and everything below it black, but
/// never gives back the counts MarkGray took away. The next decrement that should leave such an
/// object alive brings its count to zero: a premature free, long after the collection that broke
/// it. (A phase that undoes only part of what an earlier phase did.)
class ScanForgetsRestore final : public TrialDeletion {
 public:
  using TrialDeletion::TrialDeletion;

 protected:
  void scan_black(Cell* s) override {  // (the correct phase, less its prefetching)
    recolor(s, Color::Black);
    restoring_.assign(1, s);
    for (std::size_t next = 0; next < restoring_.size(); ++next) {
      for (Cell* t : restoring_[next]->references) {
        if (t->frozen) continue;
        // BUG: the correct ScanBlack increments t's count here.
        if (t->color != Color::Black) {
          recolor(t, Color::Black);
          restoring_.push_back(t);
        }
      }
    }
    restoring_.clear();
  }
};

/// A candidate whose count drops to zero is left in the buffer for MarkRoots to free, as the
/// paper does, but MarkRoots only drops stale entries and never frees them: the object stays
/// allocated forever. (A stale candidate-buffer entry.) Seen as a late free at once, and as a leak
/// at the next full collection.
class BufferedReleaseLeaks final : public TrialDeletion {
 public:
  using TrialDeletion::TrialDeletion;

 protected:
  void release(Cell* s) override {
    const Busy busy(busy_);
    std::vector<Cell*> dying{s};
    while (!dying.empty()) {
      Cell* d = dying.back();
      dying.pop_back();
      if (resurrected_by_finalizer(d)) continue;
      clear_weak_references(weak_, {d->id});
      for (Cell* t : d->references) {
        if (--t->count == 0) {
          dying.push_back(t);
        } else {
          possible_root(t);
        }
      }
      recolor(d, Color::Black);
      if (d->buffered) continue;  // BUG: left for MarkRoots, which never frees it
      free_cell(d);
    }
  }
};

/// A candidate whose count goes down and then up again is taken out of the buffer (it looks
/// live), but keeps its purple colour; when its count goes down again, PossibleRoot sees purple,
/// assumes it is buffered, and the candidate is lost. The cycle it heads is never collected: a
/// leak.
class LostCandidate final : public TrialDeletion {
 public:
  using TrialDeletion::TrialDeletion;

 protected:
  void increment(Cell* s) override {
    ++s->count;
    if (s->buffered) unbuffer(s);  // BUG: and the colour stays purple
  }
};

/// CollectWhite takes every referent of a white object, not only the white ones: live objects
/// that garbage refers to are freed with it. A premature free.
class CollectWhiteTakesBlack final : public TrialDeletion {
 public:
  using TrialDeletion::TrialDeletion;

 protected:
  void collect_white(Cell* s, std::vector<Cell*>& garbage) override {
    if (s->color != Color::White) return;
    recolor(s, Color::Black);
    const std::size_t first = garbage.size();
    garbage.push_back(s);
    for (std::size_t i = first; i < garbage.size(); ++i) {
      for (Cell* t : garbage[i]->references) {
        if (std::find(garbage.begin(), garbage.end(), t) == garbage.end()) {  // BUG: any colour
          recolor(t, Color::Black);
          garbage.push_back(t);
        }
      }
    }
  }
};

/// The paper's CollectRoots: each root's white objects are freed before the next root is walked,
/// and the next walk reads cells already freed. A use-after-free: a crash under AddressSanitizer,
/// silent corruption without it. (The first bug this harness found, in its own first draft.)
class CollectWhiteFreesPerRoot final : public TrialDeletion {
 public:
  using TrialDeletion::TrialDeletion;

 protected:
  std::size_t collect_roots() override {
    std::vector<Cell*> candidates;
    candidates.swap(roots_);
    std::size_t freed = 0;
    for (Cell* s : candidates) {
      s->buffered = false;
      std::vector<Cell*> garbage;
      collect_white(s, garbage);
      std::vector<ObjectId> found;
      for (Cell* g : garbage) found.push_back(g->id);
      clear_weak_references(weak_, found);
      const std::vector<Cell*> orphans = run_finalizers(garbage);
      for (Cell* g : garbage) free_cell(g);  // BUG: before the other roots are walked
      for (Cell* t : orphans) release(t);
      freed += garbage.size();
    }
    return freed;
  }
};

/// MarkGray visits each reference twice and so takes two off the count for it: objects that are
/// referenced from outside look garbage. A premature free.
class MarkGrayCountsTwice final : public TrialDeletion {
 public:
  using TrialDeletion::TrialDeletion;

 protected:
  void mark_gray(Cell* s) override {  // (the correct phase, less its prefetching)
    if (s->color == Color::Gray) return;
    recolor(s, Color::Gray);
    std::size_t next = gray_.size();
    gray_.push_back(s);
    for (; next < gray_.size(); ++next) {
      for (Cell* t : gray_[next]->references) {
        if (t->frozen) continue;
        t->count -= std::min<std::uint32_t>(t->count, 2);  // BUG: once per reference is right
        if (t->color != Color::Gray) {
          recolor(t, Color::Gray);
          gray_.push_back(t);
        }
      }
    }
  }
};

/// Unlink removes the object's last reference, whatever it points to, and decrements the right
/// target: the references and the counts disagree from then on. Wrong bookkeeping at once, then
/// premature frees and leaks.
class UnlinkDropsLastReference final : public TrialDeletion {
 public:
  using TrialDeletion::TrialDeletion;

  void unlink(ObjectId from, ObjectId to) override {
    handles_[from]->references.pop_back();  // BUG: the one to `to` is the one to remove
    decrement(handles_[to]);
  }
};

// ================================================================================================
// Mark-sweep
// ================================================================================================

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

// ================================================================================================
// Generational
// ================================================================================================

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
    std::vector<Cell*> to_finalize;
    unreachable.for_each([&](Cell* c) {
      if (c->has_finalizer) to_finalize.push_back(c);  // BUG: and !c->finalized
    });
    for (Cell* c : to_finalize) {
      c->finalized = true;
      run_finalizer(c->id);
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

/// A finalizer resurrects an object, and the collector keeps that object but not what it reaches:
/// the rest of the garbage is freed under it. A premature free (the program's list still reaches
/// the freed objects).
class ResurrectedChildrenFreed final : public TrialDeletion {
 public:
  using TrialDeletion::TrialDeletion;

 protected:
  void keep_resurrected(std::vector<Cell*>& garbage) override {
    trial_delete(garbage);
    // BUG: the correct phase restores (ScanBlack) everything the resurrected objects reach.
    for (Cell* g : garbage) g->dying = g->count == 0;
    std::erase_if(garbage, [](Cell* g) { return !g->dying; });
  }
};

/// Finalizers run on the counts MarkGray left (without the references from the garbage), then
/// every garbage object with a count above zero is restored by ScanBlack. A reference a finalizer
/// adds from the garbage is counted when it is made and again when ScanBlack restores its
/// referrer: wrong counts, then leaks. (This harness's own first draft of finalizer programs.)
class FinalizerReferencesCountedTwice final : public TrialDeletion {
 public:
  using TrialDeletion::TrialDeletion;

 protected:
  std::vector<Cell*> run_finalizers(std::vector<Cell*>& garbage) override {
    bool ran = false;
    for (Cell* g : garbage) {
      if (!g->has_finalizer || g->finalized) continue;
      g->finalized = true;
      run_finalizer(g->id);  // BUG: on trial-deleted counts, which its links then add to
      ran = true;
    }
    if (!ran) return {};
    for (Cell* g : garbage) recolor(g, Color::White);
    for (Cell* g : garbage) {
      if (g->color == Color::White && g->count > 0) scan_black(g);
    }
    std::erase_if(garbage, [](Cell* g) { return g->color != Color::White; });
    for (Cell* g : garbage) recolor(g, Color::Black);
    return {};
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

template <class Mutant>
CollectorEntry mutant(const char* name, const char* summary) {
  return {std::string("mutant:") + name, summary,
          [](CollectorHost& l, const CollectorOptions& o) -> std::unique_ptr<Collector> {
            if constexpr (std::is_constructible_v<Mutant, CollectorHost&, const CollectorOptions&>) {
              return std::make_unique<Mutant>(l, o);
            } else {
              return std::make_unique<Mutant>(l);
            }
          },
          false};
}

}  // namespace

const std::vector<CollectorEntry>& mutant_catalogue() {
  static const std::vector<CollectorEntry> kMutants = {
      mutant<ScanForgetsRestore>("scan-forgets-restore",
                                 "trial deletion: ScanBlack does not restore counts"),
      mutant<BufferedReleaseLeaks>("buffered-release-leaks",
                                   "trial deletion: a buffered object at count zero is never freed"),
      mutant<LostCandidate>("lost-candidate",
                            "trial deletion: a candidate whose count went down and up is lost"),
      mutant<CollectWhiteTakesBlack>("collect-white-takes-black",
                                     "trial deletion: CollectWhite frees live referents too"),
      mutant<CollectWhiteFreesPerRoot>("collect-white-frees-per-root",
                                       "trial deletion: frees before every root is walked (UAF)"),
      mutant<MarkGrayCountsTwice>("mark-gray-counts-twice",
                                  "trial deletion: MarkGray decrements each reference twice"),
      mutant<UnlinkDropsLastReference>("unlink-drops-last-reference",
                                       "trial deletion: unlink removes the wrong reference"),
      mutant<MarkStopsAtDepth4>("mark-stops-at-depth-4",
                                "mark-sweep: marking gives up four references from a root"),
      mutant<MarkSkipsLastReference>("mark-skips-last-reference",
                                     "mark-sweep: marking skips each object's last reference"),
      mutant<SweepSkipsLastObject>("sweep-skips-last-object",
                                   "mark-sweep: the sweep never frees the newest object"),
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
      mutant<ResurrectedChildrenFreed>(
          "resurrected-children-freed",
          "trial deletion: a resurrected object survives, what it reaches is freed"),
      mutant<NestedCollectionInRelease>(
          "nested-collection-in-release",
          "generational: a finalizer's collect runs while reference counting frees a chain"),
      mutant<CallbackForSurvivor>(
          "callback-for-survivor",
          "generational: weak references to young survivors are cleared, callbacks run"),
      mutant<FinalizerReferencesCountedTwice>(
          "finalizer-references-counted-twice",
          "trial deletion: references a finalizer adds from the garbage are counted twice"),
  };
  return kMutants;
}

}  // namespace cyclefuzz
