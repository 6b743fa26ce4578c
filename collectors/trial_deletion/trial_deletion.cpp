#include "collectors/trial_deletion/trial_deletion.h"

#include "collectors/prefetch.h"
#include "collectors/transitions.h"

#include <boost/container/small_vector.hpp>

#include <algorithm>
#include <memory>
#include <string>

namespace cyclefuzz {

const Capabilities& TrialDeletion::capabilities() const {
  static const Capabilities kCapabilities{.reference_counting = true,
                                          .generations = 1,
                                          .automatic_collection = false,
                                          .count = CountMeaning::References,
                                          .freezes = true,
                                          .finalizers = true,
                                          .weak_references = true,
                                          .weak_references_cleared_before_finalizers = true,
                                          .weak_reference_holders = true};
  return kCapabilities;
}

TrialDeletion::~TrialDeletion() {
  cells_.for_each([](Cell* c) { delete c; });
}

// ================================================================================================
// The mutator's operations
// ================================================================================================

void TrialDeletion::allocate(ObjectId id) {
  if (handles_.size() <= id) handles_.resize(id + 1, nullptr);
  auto* cell = new Cell;
  cell->id = id;
  handles_[id] = cell;
  cells_.push_back(cell);
}

void TrialDeletion::link(ObjectId from, ObjectId to) {
  Cell* target = handles_[to];
  handles_[from]->references.push_back(target);
  increment(target);
}

void TrialDeletion::unlink(ObjectId from, ObjectId to) {
  Cell* target = handles_[to];
  auto& refs = handles_[from]->references;
  refs.erase(std::find(refs.begin(), refs.end(), target));
  decrement(target);
}

void TrialDeletion::root(ObjectId id) {
  ++handles_[id]->external;
  increment(handles_[id]);
}

void TrialDeletion::unroot(ObjectId id) {
  --handles_[id]->external;
  decrement(handles_[id]);
}

// ================================================================================================
// Reference counting (the paper's Increment, Decrement, Release, PossibleRoot)
// ================================================================================================

void TrialDeletion::increment(Cell* s) {
  ++s->count;
  recolor(s, Color::Black);
}

void TrialDeletion::decrement(Cell* s) {
  if (--s->count == 0) {
    release(s);
  } else {
    possible_root(s);
  }
}

// Frees `s` and, transitively, everything whose count its death drops to zero. Unlike the paper,
// a buffered object is freed at once and leaves the buffer: keeping it allocated until the next
// collection would hold acyclic garbage, which reference counting promises never to do.
// As in CPython's deallocation, the finalizer runs before the weak references are cleared.
//
// The cells it frees are deleted only when the cascade is over, so that a count that reached zero
// while references to it remained (wrong counts: never in a correct run) is caught here as a
// broken invariant rather than read from freed memory.
//
// A cell of the garbage whose finalizers are running (dying) is the collection's: a finalizer's
// decrement that takes it to zero leaves it to the collection, which frees it with the rest of
// its garbage (freeing it here would leave the collection holding a freed cell: as CPython's
// finalize_garbage survives a finalizer that drops the last reference to another object of the
// unreachable set, because deallocation takes it off the list).
void TrialDeletion::release(Cell* s) {
  const Busy busy(busy_);
  // Inline while short: most releases free one object or a few.
  boost::container::small_vector<std::unique_ptr<Cell>, 8> freed;
  boost::container::small_vector<Cell*, 8> dying{s};
  while (!dying.empty()) {
    Cell* d = dying.back();
    dying.pop_back();
    if (d->dying) continue;  // the collection's
    // (One that waited here may have been resurrected meanwhile, by a finalizer's `deref` of a
    // weak reference to it that was not cleared yet: it lives.)
    if (d->count > 0 || resurrected_by_finalizer(d)) continue;
    // (During a collection, one that its garbage holds is garbage too: no callback.)
    if (!weak_.empty()) {
      clear_weak_references(weak_, {d->id}, [this](ObjectId h) {
        return handles_[h] != nullptr && handles_[h]->dying;
      });
    }
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

bool TrialDeletion::resurrected_by_finalizer(Cell* s) {
  if (!s->has_finalizer || s->finalized) return false;
  s->finalized = true;
  ++s->count;  // the finalizer's own reference to it
  run_finalizer(s->id);
  --s->count;
  if (s->count == 0) return false;
  // Dropping the finalizer's reference is a decrement to a non-zero count: what the finalizer
  // gave it may be a cycle of its own (a reference to itself, or from an object it allocated).
  possible_root(s);
  return true;
}

// A decrement to a non-zero count may have cut the last outside reference into a cycle - unless
// the object is acyclic: no cycle passes through it (as Nim's ORC never registers an acyclic
// type's objects as cycle roots).
void TrialDeletion::possible_root(Cell* s) {
  if (s->acyclic) return;
  if (s->color != Color::Purple) {
    recolor(s, Color::Purple);
    if (!s->buffered) buffer(s);
  }
}

// ================================================================================================
// The candidate buffer
// ================================================================================================

void TrialDeletion::buffer(Cell* s) {
  s->buffered = true;
  s->buffer_index = static_cast<std::uint32_t>(roots_.size());
  roots_.push_back(s);
}

void TrialDeletion::unbuffer(Cell* s) {
  Cell* last = roots_.back();
  roots_[s->buffer_index] = last;
  last->buffer_index = s->buffer_index;
  roots_.pop_back();
  s->buffered = false;
}

// ================================================================================================
// Cycle collection: read `collect` first.
// ================================================================================================

// The paper's CollectCycles.
// Pre: the invariants above. Post: every garbage cycle below a candidate, and everything only such
// cycles hold, is freed; the buffer is empty; every remaining object is black and its count is
// what it was, minus the references of the freed objects.
std::size_t TrialDeletion::collect(int /*generation: every collection is full*/) {
  // A finalizer may ask for a collection while one runs, or while reference counting frees a
  // chain whose dying objects still sit in the buffer: refused (as CPython's gc.collect() does
  // during a collection), since a nested CollectCycles would free them under the outer loop.
  if (busy_ > 0) return 0;
  return collect_cycles();
}

std::size_t TrialDeletion::collect_cycles() {
  const Busy busy(busy_);
  ++collections_;
  const std::uint64_t freed_before = freed_;
  mark_roots();
  scan_roots();
  collect_roots();
  collected_ += freed_ - freed_before;
  return freed_ - freed_before;  // the white objects, and what their frozen referents held
}

void TrialDeletion::freeze() {
  cells_.for_each([](Cell* c) { c->frozen = true; });
}

// A frozen candidate was dropped from the buffer; once thawed, any frozen object may head a
// garbage cycle, so each becomes a candidate again.
void TrialDeletion::unfreeze() {
  cells_.for_each([this](Cell* c) {
    if (!c->frozen) return;
    c->frozen = false;
    possible_root(c);
  });
}

std::optional<GcStatistics> TrialDeletion::statistics() const {
  GcStatistics statistics;
  statistics.collections[0] = collections_;
  statistics.collected[0] = collected_;
  return statistics;
}

// Post: stale (black) entries have left the buffer; below each purple candidate, every object is
// gray and its count no longer includes references from gray objects; gray_ lists them all.
//
// The buffer is compacted in place, and gray_ sized for at least every candidate up front: fresh
// memory in a collection costs a page fault per 4 KiB, which on a heap of a million candidates
// was as much as the marking.
void TrialDeletion::mark_roots() {
  gray_.clear();
  gray_.reserve(roots_.size());
  std::size_t kept = 0;
  for (std::size_t i = 0; i < roots_.size(); ++i) {
    if (i + 8 < roots_.size()) prefetch(&roots_[i + 8]->count);
    Cell* s = roots_[i];
    if (s->color == Color::Purple && !s->frozen) {
      mark_gray(s);
      s->buffer_index = static_cast<std::uint32_t>(kept);
      roots_[kept++] = s;
    } else {
      s->buffered = false;  // a black object's count reached zero only if it was freed already
      if (s->color == Color::Purple) recolor(s, Color::Black);  // frozen: never a candidate
    }
  }
  roots_.resize(kept);
}

// Post: every gray object is black (a reference from outside the gray subgraph still counts, so
// it and all it reaches are live: counts restored) or white (garbage).
//
// The paper calls Scan on each candidate, and Scan recurses through the objects it turns white;
// every gray object lies below a candidate, so that reaches each of them, as this loop over gray_
// does without chasing a pointer. The colours come out the same: an object ends black exactly when
// a gray object whose count stayed above zero reaches it through gray objects (ScanBlack turns
// white objects black again), whichever order Scan visits them in.
void TrialDeletion::scan_roots() {
  for (std::size_t i = 0; i < gray_.size(); ++i) {
    if (i + 8 < gray_.size()) prefetch(&gray_[i + 8]->count);
    scan(gray_[i]);
  }
  gray_.clear();
}

// Post: the buffer is empty and every white object is freed.
//
// Unlike the paper, nothing is freed until every white object has been found: the paper lets
// CollectWhite read the colour of an object it freed a moment ago (freed objects stay "black"
// there), which with a real free is a use-after-free.
std::size_t TrialDeletion::collect_roots() {
  std::vector<Cell*> candidates;
  candidates.swap(roots_);
  // The garbage is at most what was gray: gray_'s memory (empty now) holds it without growing.
  std::vector<Cell*> garbage;
  garbage.swap(gray_);
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    if (i + 8 < candidates.size()) prefetch(&candidates[i + 8]->count);
    Cell* s = candidates[i];
    s->buffered = false;
    collect_white(s, garbage);
  }
  if (!weak_.empty()) {
    clear_weak_references_to(garbage);
    // (And those the garbage holds, whatever their target: one outside the garbage may die by
    // reference counting as the garbage goes, and must not call back into it.)
    for (Cell* g : garbage) clear_held_weak_references(weak_, g->id);
  }
  const std::vector<Cell*> orphans = run_finalizers(garbage);
  // MarkGray never takes from a frozen object's count, so the garbage's references to frozen
  // objects are dropped as the garbage goes (reference counting may then free them).
  std::vector<Cell*> frozen_referents;
  for (Cell* g : garbage) {
    for (Cell* t : g->references) {
      if (t->frozen) frozen_referents.push_back(t);
    }
  }
  for (Cell* g : garbage) free_cell(g);
  for (Cell* t : frozen_referents) decrement(t);
  for (Cell* t : orphans) release(t);
  const std::size_t freed = garbage.size();
  garbage.clear();
  garbage.swap(gray_);
  candidates.clear();
  candidates.swap(roots_);  // keeps the buffer's memory too (a finalizer may have filled roots_)
  roots_.insert(roots_.end(), candidates.begin(), candidates.end());
  return freed;
}

namespace {

// What mark_gray and scan_black read: the references of the cells they walk, then the count,
// colour and frozen flag of each cell those refer to (collectors/prefetch.h).
template <class Cell>
void fetch_references(const Cell* c) {
  prefetch(&c->references);
  prefetch(reinterpret_cast<const char*>(&c->references) + sizeof(c->references) - 1);
}

template <class Cell>
void fetch_referents(const Cell* c) {
  for (const Cell* t : c->references) prefetch(&t->count);
}

}  // namespace

// Colours gray everything below `s` that is not gray yet, taking from each object's count one
// for every reference from a gray object; appends what it colours to gray_. Breadth-first over
// gray_ itself, which is MarkGray's queue.
void TrialDeletion::mark_gray(Cell* s) {
  if (s->color == Color::Gray) return;
  recolor(s, Color::Gray);
  const std::size_t first = gray_.size();
  gray_.push_back(s);
  drain<Keep::Visited>(
      gray_, first, cells_.size() > kPrefetchAbove,
      [this](Cell* c) {
        for (Cell* t : c->references) {
          if (t->frozen) continue;  // never trial-deleted: what it refers to keeps its count
          --t->count;
          if (t->color != Color::Gray) {
            recolor(t, Color::Gray);
            gray_.push_back(t);
          }
        }
      },
      fetch_references<Cell>, fetch_referents<Cell>);
}

// The paper's Scan of one gray object, without its recursion (scan_roots calls it on every gray
// object): a count above zero is a reference from outside the gray subgraph, so the object is
// live and ScanBlack restores it and all it reaches; else it is white, unless a later ScanBlack
// reaches it.
void TrialDeletion::scan(Cell* s) {
  if (s->color != Color::Gray) return;
  if (s->count > 0 && s->references.empty()) {
    recolor(s, Color::Black);  // all ScanBlack would do: it restores no count below `s`
  } else if (s->count > 0) {
    scan_black(s);
  } else {
    recolor(s, Color::White);
  }
}

// Restores the counts below an externally reachable object (white objects become black again).
// Breadth-first over restoring_.
void TrialDeletion::scan_black(Cell* s) {
  recolor(s, Color::Black);
  restoring_.assign(1, s);
  drain<Keep::Nothing>(
      restoring_, 0, cells_.size() > kPrefetchAbove,
      [this](Cell* c) {
        for (Cell* t : c->references) {
          if (t->frozen) continue;  // mark_gray took nothing from it
          ++t->count;
          if (t->color != Color::Black) {
            recolor(t, Color::Black);
            restoring_.push_back(t);
          }
        }
      },
      fetch_references<Cell>, fetch_referents<Cell>);
}

// Gathers the white objects reachable from `s` through white objects into `garbage`, turning them
// black. No count needs lowering when they are freed: every reference from a white object was
// taken out by mark_gray and never restored.
void TrialDeletion::collect_white(Cell* s, std::vector<Cell*>& garbage) {
  if (s->color != Color::White) return;
  recolor(s, Color::Black);
  const std::size_t first = garbage.size();
  garbage.push_back(s);
  for (std::size_t i = first; i < garbage.size(); ++i) {
    for (Cell* t : garbage[i]->references) {
      if (t->color == Color::White) {
        recolor(t, Color::Black);
        garbage.push_back(t);
      }
    }
  }
}

// ---- Finalizers: read this to understand how a finalizer may change the garbage -------------
//
// A finalizer is the program's code: it may store (root) what it reaches, allocate objects, add
// references from the garbage, and drop what it allocated - all ordinary reference counting. So
// it runs on true counts: restore_counts gives back what MarkGray took, finalize_garbage runs the
// finalizers, and keep_resurrected trial-deletes the garbage again, as CPython re-checks its
// unreachable set after finalizers (handle_resurrected_objects). Collections without pending
// finalizers skip all of it.

// Post: `garbage` holds what is still garbage after its finalizers ran; returns the objects the
// finalizers allocated that only that garbage refers to (count zero: free them after it).
std::vector<TrialDeletion::Cell*> TrialDeletion::run_finalizers(std::vector<Cell*>& garbage) {
  const bool pending = std::any_of(garbage.begin(), garbage.end(), [](const Cell* g) {
    return g->has_finalizer && !g->finalized;
  });
  if (!pending) return {};
  restore_counts(garbage);
  finalize_garbage(garbage);
  keep_resurrected(garbage);
  // A finalizer may take a new weak reference to the garbage after the collection cleared the
  // old ones (CPython's handle_weakrefs cannot see those either; deallocation clears them): the
  // garbage left after the finalizers clears them before it goes.
  if (!weak_.empty()) clear_weak_references_to(garbage);
  return orphaned_by(garbage);
}

// One the garbage holds is garbage too: cleared without its callback.
void TrialDeletion::clear_weak_references_to(const std::vector<Cell*>& garbage) {
  std::vector<ObjectId> ids;
  for (const Cell* g : garbage) ids.push_back(g->id);
  std::vector<ObjectId> sorted = ids;
  std::sort(sorted.begin(), sorted.end());
  clear_weak_references(weak_, ids, [&sorted](ObjectId h) {
    return std::binary_search(sorted.begin(), sorted.end(), h);
  });
}

// Pre: counts leave out the references from `garbage` (MarkGray; but to frozen objects). Post:
// every count is true, and each object of `garbage` is marked as dying.
void TrialDeletion::restore_counts(const std::vector<Cell*>& garbage) {
  for (Cell* g : garbage) {
    g->dying = true;
    for (Cell* t : g->references) {
      if (!t->frozen) ++t->count;
    }
  }
}

// Pre: the weak references to `garbage` are cleared. Post: every object of `garbage` with a
// finalizer has run it.
void TrialDeletion::finalize_garbage(const std::vector<Cell*>& garbage) {
  for (Cell* g : garbage) {
    if (!g->has_finalizer || g->finalized) continue;
    g->finalized = true;
    run_finalizer(g->id);
  }
}

// Pre: counts are true; `garbage` is marked dying. Post: counts leave out the references from
// the objects still in `garbage` - exactly those that nothing outside it refers to - and only they
// are marked dying.
void TrialDeletion::keep_resurrected(std::vector<Cell*>& garbage) {
  trial_delete(garbage);
  for (Cell* g : garbage) {
    if (g->dying && g->count > 0) restore_from(g);
  }
  std::erase_if(garbage, [](Cell* g) { return !g->dying; });
}

// MarkGray again, within the garbage: takes the references of `garbage` out of every count.
void TrialDeletion::trial_delete(const std::vector<Cell*>& garbage) {
  for (Cell* g : garbage) {
    for (Cell* t : g->references) {
      if (!t->frozen) --t->count;
    }
  }
}

// ScanBlack within the garbage: `s` has a reference from outside it, so it and every dying object
// it reaches live on, and their references count again.
void TrialDeletion::restore_from(Cell* s) {
  s->dying = false;
  std::vector<Cell*>& stack = restoring_;
  stack.assign(1, s);
  while (!stack.empty()) {
    Cell* c = stack.back();
    stack.pop_back();
    for (Cell* t : c->references) {
      if (t->frozen) continue;
      ++t->count;
      if (t->dying) {
        t->dying = false;
        stack.push_back(t);
      }
    }
  }
}

// Objects outside `garbage` (the finalizers allocated them) that only `garbage` refers to: their
// counts are zero now, and they go once it is freed.
std::vector<TrialDeletion::Cell*> TrialDeletion::orphaned_by(const std::vector<Cell*>& garbage) const {
  std::vector<Cell*> orphans;
  for (Cell* g : garbage) {
    for (Cell* t : g->references) {
      if (!t->dying && !t->frozen && t->count == 0) orphans.push_back(t);
    }
  }
  std::sort(orphans.begin(), orphans.end());
  orphans.erase(std::unique(orphans.begin(), orphans.end()), orphans.end());
  return orphans;
}

// Every colour change goes through here, so that a fuzzer can count each kind of transition
// (from, to, buffered or not) as coverage.
void TrialDeletion::recolor(Cell* s, Color to) {
  transitions::note(transitions::Family::TrialDeletion,
                    (static_cast<std::uint32_t>(s->color) << 4) |
                        (static_cast<std::uint32_t>(to) << 1) | (s->buffered ? 1 : 0));
  s->color = to;
}

void TrialDeletion::free_cell(Cell* s) { delete forget_cell(s); }

TrialDeletion::Cell* TrialDeletion::forget_cell(Cell* s) {
  if (s->buffered) unbuffer(s);  // (a finalizer's reference counting may have buffered it)
  ++freed_;
  cells_.remove(s);
  weak_.drop_held_by(s->id);
  handles_[s->id] = nullptr;  // (a weak reference a buggy version kept may still name it)
  report_free(s->id);
  return s;
}

// ================================================================================================
// Inspection
// ================================================================================================

void TrialDeletion::inspect(ObjectId id, ObjectView& view) const {
  const Cell* cell = handles_[id];
  view.references.clear();
  for (const Cell* r : cell->references) view.references.push_back(r->id);
  view.count = cell->count;
  view.generation = 0;
}

// Restates the invariants as code. One cell: counted, black or purple (grey and white exist only
// during a collection), purple only as a candidate, and where the candidate buffer says.
void TrialDeletion::check_cell(const Cell* c) const {
  constexpr const char* kName = "trial-deletion";
  if (c->count == 0) broken_invariant(kName, c->id, "has count 0 but was not freed");
  if (c->color != Color::Black && c->color != Color::Purple) {
    broken_invariant(kName, c->id, "is gray or white outside a collection");
  }
  if (c->color == Color::Purple && !c->buffered) {
    broken_invariant(kName, c->id, "is purple but not in the candidate buffer");
  }
  if (c->buffered && (c->buffer_index >= roots_.size() || roots_[c->buffer_index] != c)) {
    broken_invariant(kName, c->id, "is marked buffered but is not where the buffer says");
  }
}

// The whole heap: every cell as above, its count is its external references plus the references
// to it, every reference leads to a cell not freed, and every buffer entry knows where it is.
void TrialDeletion::check_invariants() const {
  constexpr const char* kName = "trial-deletion";
  census_.begin(cells_.size());
  cells_.for_each([&](const Cell* c) { census_.add(c); });
  cells_.for_each([&](const Cell* c) {
    for (const Cell* r : c->references) {
      if (!census_.count_reference_to(r)) broken_invariant(kName, c->id, "refers to a freed cell");
    }
  });
  cells_.for_each([&](const Cell* c) {
    check_cell(c);
    const std::uint64_t internal = *census_.referrers(c);
    if (c->count != c->external + internal) {
      broken_invariant(kName, c->id,
                       "has count " + std::to_string(c->count) + " but " +
                           std::to_string(c->external) + " external and " +
                           std::to_string(internal) + " internal references");
    }
  });
  for (std::size_t i = 0; i < roots_.size(); ++i) {
    if (!roots_[i]->buffered || roots_[i]->buffer_index != i) {
      throw BrokenInvariant("trial-deletion: candidate buffer entry " + std::to_string(i) +
                            " does not know it is buffered there");
    }
  }
}

void TrialDeletion::check_invariants_of(std::span<const ObjectId> objects) const {
  for (ObjectId x : objects) check_cell(handles_[x]);
}

}  // namespace cyclefuzz
