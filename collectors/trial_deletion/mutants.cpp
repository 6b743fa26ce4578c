// Mutants of trial deletion: each is `TrialDeletion` with one phase overridden by a copy that differs
// in the lines marked BUG. The comment above each says what real collectors got wrong this way,
// and what the harness should see. (collectors/mutants.h: the catalogue.)
#include <algorithm>
#include <array>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <boost/container/small_vector.hpp>

#include "collectors/mutants.h"
#include "collectors/prefetch.h"
#include "collectors/trial_deletion/trial_deletion.h"

namespace cyclefuzz {

namespace {

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
    boost::container::small_vector<std::unique_ptr<Cell>, 8> freed;
    boost::container::small_vector<Cell*, 8> dying{s};
    while (!dying.empty()) {
      Cell* d = dying.back();
      dying.pop_back();
      if (d->dying) continue;
      if (d->count > 0 || resurrected_by_finalizer(d)) continue;
      if (!weak_.empty()) clear_weak_references(weak_, {d->id});
      for (Cell* t : d->references) {
        if (t->count == 0) {
          throw BrokenInvariant("trial-deletion: object " + std::to_string(t->id) +
                                " is referenced but its count already reached zero");
        }
        if (--t->count == 0) {
          dying.push_back(t);
        } else {
          possible_root(t);
        }
      }
      recolor(d, Color::Black);
      if (d->buffered) continue;  // BUG: left for MarkRoots, which never frees it
      freed.emplace_back(forget_cell(d));
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
    if (s->buffered) unbuffer(s);  // BUG: recolor(s, Color::Black): out of the buffer, still purple
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

/// The paper's CollectRoots: each root's white objects are freed (their weak references cleared
/// and their finalizers run first, as the correct phase does for all of them at once) before the
/// next root is walked, and the next walk reads cells already freed. A use-after-free: a crash
/// under AddressSanitizer, silent corruption without it (where a later root's garbage may show
/// instead as a wrong weak reference: cleared after an earlier root's finalizers ran). (The first
/// bug this harness found, in its own first draft.)
class CollectWhiteFreesPerRoot final : public TrialDeletion {
 public:
  using TrialDeletion::TrialDeletion;

 protected:
  std::size_t collect_roots() override {
    std::vector<Cell*> candidates;
    candidates.swap(roots_);
    std::vector<Cell*> garbage;
    garbage.swap(gray_);
    std::size_t freed = 0;  // BUG: summed over the roots (below)
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      if (i + 8 < candidates.size()) prefetch(&candidates[i + 8]->count);
      Cell* s = candidates[i];
      s->buffered = false;
      collect_white(s, garbage);
      // BUG: from here to the end of the loop, what follows the loop: this root's garbage is
      // freed before the next root is walked, and that walk may read the cells freed here.
      if (!weak_.empty()) {
        std::vector<ObjectId> found;
        for (Cell* g : garbage) found.push_back(g->id);
        clear_weak_references(weak_, found);
      }
      const std::vector<Cell*> orphans = run_finalizers(garbage);
      std::vector<Cell*> frozen_referents;
      for (Cell* g : garbage) {
        for (Cell* t : g->references) {
          if (t->frozen) frozen_referents.push_back(t);
        }
      }
      for (Cell* g : garbage) free_cell(g);
      for (Cell* t : frozen_referents) decrement(t);
      for (Cell* t : orphans) release(t);
      freed += garbage.size();  // BUG: const std::size_t freed = garbage.size(), after the loop
      garbage.clear();
    }  // BUG: the loop ends after collect_white
    garbage.swap(gray_);
    candidates.clear();
    candidates.swap(roots_);  // keeps the buffer's memory too (a finalizer may have filled roots_)
    roots_.insert(roots_.end(), candidates.begin(), candidates.end());
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
    Cell* target = handles_[to];
    auto& refs = handles_[from]->references;
    refs.pop_back();  // BUG: erase(find(target)): the one to `to` is the one to remove
    decrement(target);
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
    const bool pending = std::any_of(garbage.begin(), garbage.end(), [](const Cell* g) {
      return g->has_finalizer && !g->finalized;
    });
    if (!pending) return {};
    // BUG: no restore_counts(garbage): the finalizers run on trial-deleted counts, which their
    // links then add to.
    finalize_garbage(garbage);
    // BUG: to the end, the draft's keep_resurrected: ScanBlack from each garbage object with a
    // count restores the references of what it reaches, those a finalizer added included (counted
    // a second time); and nothing is returned for orphaned_by(garbage) to free.
    for (Cell* g : garbage) recolor(g, Color::White);
    for (Cell* g : garbage) {
      if (g->color == Color::White && g->count > 0) scan_black(g);
    }
    std::erase_if(garbage, [](Cell* g) { return g->color != Color::White; });
    for (Cell* g : garbage) recolor(g, Color::Black);
    return {};
  }
};

/// Freeing an object leaves the weak references it held registered with their targets: when a
/// target dies later, its weak references are cleared and called back though the weakref object
/// went with its holder (a write to, and a callback with, freed memory: the weakref-list bugs of
/// runtimes that free an object before unlinking its weakrefs). Wrong weak reference.
class WeakReferenceOutlivesHolder final : public TrialDeletion {
 public:
  using TrialDeletion::TrialDeletion;

 protected:
  Cell* forget_cell(Cell* s) override {
    if (s->buffered) unbuffer(s);
    ++freed_;
    cells_.remove(s);
    // BUG: the weak references s held stay registered
    handles_[s->id] = nullptr;
    report_free(s->id);
    return s;
  }
};

/// Reference counting frees whatever reaches zero, the garbage of the collection whose finalizers
/// are running included: a finalizer that drops a reference (its object's own, or another's) frees
/// an object the collection still holds in its list of garbage, and the collection then walks and
/// frees it again (the re-entrancy bugs of collectors that let a decrement from a finalizer free
/// what they are walking). A use after free: a crash under the sanitizers.
class FinalizerDecrementFreesGarbage final : public TrialDeletion {
 public:
  using TrialDeletion::TrialDeletion;

 protected:
  void release(Cell* s) override {
    const Busy busy(busy_);
    boost::container::small_vector<std::unique_ptr<Cell>, 8> freed;
    boost::container::small_vector<Cell*, 8> dying{s};
    while (!dying.empty()) {
      Cell* d = dying.back();
      dying.pop_back();
      // BUG: no word of whether d is the collection's
      if (d->count > 0 || resurrected_by_finalizer(d)) continue;
      if (!weak_.empty()) clear_weak_references(weak_, {d->id});
      for (Cell* t : d->references) {
        if (t->count == 0) {
          throw BrokenInvariant("trial-deletion: object " + std::to_string(t->id) +
                                " is referenced but its count already reached zero");
        }
        if (--t->count == 0) {
          dying.push_back(t);
        } else {
          possible_root(t);
        }
      }
      recolor(d, Color::Black);
      freed.emplace_back(forget_cell(d));
    }
  }
};

/// The table of which kinds are acyclic is wrong for one kind: records are taken for acyclic, so
/// a decrement to a record never makes it a candidate, and a cycle of records (an instance that
/// refers back to itself through another) is never collected (Nim's ORC trusts {.acyclic.}
/// the same way: a type wrongly marked acyclic leaks its cycles). A leak.
class RecordTreatedAsAcyclic final : public TrialDeletion {
 public:
  using TrialDeletion::TrialDeletion;

 protected:
  bool is_acyclic(ObjectKind kind) const override {
    return kind == ObjectKind::Acyclic || kind == ObjectKind::Record;  // BUG: records can cycle
  }
};

/// The weak references to the garbage are cleared once, before the finalizers, and the garbage is
/// freed without looking again: a weak reference a finalizer took to it meanwhile (CPython's
/// handle_weakrefs cannot see one either; deallocation must clear it) still points to an object
/// the collection freed. Seen as a weak reference left to a freed object (a use after free through
/// it in a real runtime).
class WeakReferenceTakenMeanwhileKept final : public TrialDeletion {
 public:
  using TrialDeletion::TrialDeletion;

 protected:
  std::vector<Cell*> run_finalizers(std::vector<Cell*>& garbage) override {
    const bool pending = std::any_of(garbage.begin(), garbage.end(), [](const Cell* g) {
      return g->has_finalizer && !g->finalized;
    });
    if (!pending) return {};
    restore_counts(garbage);
    finalize_garbage(garbage);
    keep_resurrected(garbage);
    // BUG: the correct phase clears the weak references taken to `garbage` meanwhile here.
    return orphaned_by(garbage);
  }
};

/// The candidate buffer has a fixed capacity (16 entries), and a candidate that comes while it is
/// full is not recorded: it stays black and unbuffered, as if its count had not gone down. (A
/// bounded buffer of possible roots is the usual design; the bug is what happens at the bound,
/// where the correct answer is to collect, or to grow.) A garbage cycle whose candidates all came
/// after the buffer filled is never examined, and stays allocated: missed garbage at the next
/// full collection. Only many decrements between two collections fill the buffer: a big
/// structure cut loose, many cycles dropped at once.
class CandidateBufferDropsPastCapacity final : public TrialDeletion {
 public:
  using TrialDeletion::TrialDeletion;

 protected:
  void possible_root(Cell* s) override {
    constexpr std::size_t kCapacity = 16;
    if (s->acyclic || s->color == Color::Purple) return;
    if (!s->buffered && roots_.size() >= kCapacity) return;  // BUG: dropped, never examined
    recolor(s, Color::Purple);
    if (!s->buffered) buffer(s);
  }
};

/// The count is kept in eight bits, as a compact object header may keep it, and an increment
/// past 255 wraps it to zero (a 256th reference: only a structure where one object has that many
/// referrers - a `star` - makes one). The object then looks unreferenced while references to it
/// remain: its next decrement never brings it to zero (a leak), a collection takes it for garbage
/// (a premature free). Wrong bookkeeping at once.
class CountWrapsAt256 final : public TrialDeletion {
 public:
  using TrialDeletion::TrialDeletion;

 protected:
  void increment(Cell* s) override {
    s->count = static_cast<std::uint8_t>(s->count + 1);  // BUG: the count overflows its 8 bits
    recolor(s, Color::Black);
  }
};

/// Release frees recursively, as many reference counters do: each referent whose count the
/// death drops to zero is released by a call of its own, from a copy of the object's references
/// kept on the stack. A real one overflows the 8 MB stack at tens of thousands of objects (PHP
/// and Nim's ORC at 40,000: FINDINGS.md), past what the default distribution builds (1,000:
/// runners/generator.h); so this one keeps room for 2,048 references in each frame (16 KB), and
/// a chain of some 500 objects dropped at once overflows the stack. A crash; only a deep
/// structure shows it.
class ReleaseRecursesPerObject final : public TrialDeletion {
 public:
  using TrialDeletion::TrialDeletion;

 protected:
  void release(Cell* s) override {
    const Busy busy(busy_);
    if (s->dying || s->count > 0 || resurrected_by_finalizer(s)) return;
    if (!weak_.empty()) {
      clear_weak_references(weak_, {s->id}, [this](ObjectId h) {
        return handles_[h] != nullptr && handles_[h]->dying;
      });
    }
    std::array<Cell*, 2048> kept;
    std::vector<Cell*> many;  // (more references than fit: on the heap)
    std::span<Cell* const> referents;
    if (s->references.size() <= kept.size()) {
      std::copy(s->references.begin(), s->references.end(), kept.begin());
      referents = {kept.data(), s->references.size()};
    } else {
      many.assign(s->references.begin(), s->references.end());
      referents = many;
    }
    recolor(s, Color::Black);
    const std::unique_ptr<Cell> freed(forget_cell(s));
    for (Cell* t : referents) {
      if (t->count == 0) {
        throw BrokenInvariant("trial-deletion: object " + std::to_string(t->id) +
                              " is referenced but its count already reached zero");
      }
      if (--t->count == 0) {
        release(t);  // BUG: one more frame per object down a chain
      } else {
        possible_root(t);
      }
    }
  }
};

}  // namespace

std::vector<CollectorEntry> trial_deletion_mutants() {
  return {
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
      mutant<ResurrectedChildrenFreed>(
          "resurrected-children-freed",
          "trial deletion: a resurrected object survives, what it reaches is freed"),
      mutant<FinalizerReferencesCountedTwice>(
          "finalizer-references-counted-twice",
          "trial deletion: references a finalizer adds from the garbage are counted twice"),
      mutant<WeakReferenceOutlivesHolder>(
          "weak-reference-outlives-holder",
          "trial deletion: the weak references a freed object held are cleared later"),
      mutant<FinalizerDecrementFreesGarbage>(
          "finalizer-decrement-frees-garbage",
          "trial deletion: a finalizer's decrement frees garbage the collection still holds"),
      mutant<RecordTreatedAsAcyclic>("record-treated-as-acyclic",
                                     "trial deletion: records are never candidates, as if acyclic"),
      mutant<WeakReferenceTakenMeanwhileKept>(
          "weak-reference-taken-meanwhile-kept",
          "trial deletion: a weak reference a finalizer took to the garbage is never cleared"),
      mutant<CandidateBufferDropsPastCapacity>(
          "candidate-buffer-drops-past-capacity",
          "trial deletion: a candidate that comes when 16 are buffered is dropped"),
      mutant<CountWrapsAt256>("count-wraps-at-256",
                              "trial deletion: a count kept in 8 bits wraps at 256 references"),
      mutant<ReleaseRecursesPerObject>(
          "release-recurses-per-object",
          "trial deletion: release recurses per object: a long chain overflows the stack"),
  };
}

}  // namespace cyclefuzz
