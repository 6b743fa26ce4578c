#include "collectors/generational/generational.h"

#include "collectors/transitions.h"

#include <boost/container/small_vector.hpp>

#include <algorithm>
#include <string>

namespace cyclefuzz {

namespace {

// State transitions a fuzzer counts as coverage (collectors/transitions.h).
enum : std::uint32_t {
  kFreeCounted = 0x100,             // reference counting freed an object outside a collection
  kFreeUnreachable = 0x101,         // a collection freed an object of its unreachable set
  kFreeCascade = 0x102,             // ... and one outside it that only the garbage held
  kAutomaticCollection = 0x200,     // | generation
  kFullCollectionHeldBack = 0x300,  // the long-lived rule deferred a full collection
  kPromotion = 0x400,               // | generation the survivors left
  kSurvivedClearing = 0x500,        // an unreachable object outlived its own tp_clear
  kUntrack = 0x600,                 // a survivor without references stopped being tracked
  kRetrack = 0x601,                 // ... and was tracked again when it gained one
};

void note(std::uint32_t code) { transitions::note(transitions::Family::Generational, code); }

}  // namespace

Generational::Generational(CollectorHost& listener, const CollectorOptions& options)
    : Collector(listener) {
  std::copy(std::begin(options.thresholds), std::end(options.thresholds), thresholds_.begin());
}

const Capabilities& Generational::capabilities() const {
  static const Capabilities kCapabilities{.reference_counting = true,
                                          .generations = kGenerations,
                                          .automatic_collection = true,
                                          .count = CountMeaning::References,
                                          .freezes = true,
                                          .finalizers = true,
                                          .weak_references = true,
                                          .weak_references_cleared_before_finalizers = true,
                                          .weak_reference_holders = true,
                                          .cpython_thresholds = true};
  return kCapabilities;
}

std::optional<GcStatistics> Generational::statistics() const {
  GcStatistics statistics;
  std::copy(counts_.begin(), counts_.end(), statistics.count);
  std::copy(collections_of_.begin(), collections_of_.end(), statistics.collections);
  std::copy(collected_.begin(), collected_.end(), statistics.collected);
  statistics.long_lived = {long_lived_pending_, long_lived_total_};
  return statistics;
}

Generational::~Generational() {
  for (auto& generation : generations_) generation.for_each([](Cell* c) { delete c; });
  permanent_.for_each([](Cell* c) { delete c; });
  untracked_.for_each([](Cell* c) { delete c; });
}

// ================================================================================================
// The mutator's operations
// ================================================================================================

// As _PyObject_GC_Link: count the allocation, collect if a threshold is passed, then track the
// new object in the youngest generation. Not while a collection runs, nor while reference
// counting frees a chain (a finalizer's allocation): as `collect` refuses then, since the dying
// objects are still in their generation lists. The count stays past the threshold, so the next
// allocation outside collects.
void Generational::allocate(ObjectId id) {
  ++counts_[0];
  if (enabled_ && thresholds_[0] > 0 && counts_[0] > thresholds_[0] && !collecting_ &&
      releasing_ == 0) {
    collecting_ = true;
    collect_generations();
    collecting_ = false;
  }
  if (handles_.size() <= id) handles_.resize(id + 1, nullptr);
  auto* cell = new Cell;
  cell->id = id;
  handles_[id] = cell;
  generations_[0].push_back(cell);
}

void Generational::link(ObjectId from, ObjectId to) {
  Cell* source = handles_[from];
  Cell* target = handles_[to];
  if (source->kind != ObjectKind::Acyclic) track(source);  // it gains a reference
  source->references.push_back(target);
  ++target->count;
}

// An untracked object is tracked again, in the youngest generation.
void Generational::track(Cell* s) {
  if (s->generation != kUntracked) return;
  untracked_.remove(s);
  s->generation = 0;
  generations_[0].push_back(s);
  note(kRetrack);
}

// An acyclic object is never tracked (as CPython never tracks an atomic object): no cycle passes
// through it, and it has no finalizer and no weak reference (language/op.h), so it never becomes
// an instance either.
void Generational::set_kind(ObjectId id, ObjectKind kind) {
  Cell* c = handles_[id];
  c->kind = kind;
  if (kind != ObjectKind::Acyclic || c->generation == kUntracked) return;
  list_of(c).remove(c);
  c->generation = kUntracked;
  untracked_.push_back(c);
}

void Generational::set_finalizer(ObjectId id) {
  handles_[id]->has_finalizer = true;
  track(handles_[id]);
}

void Generational::weak_ref(WeakId w, ObjectId target, bool callback) {
  weak_.add(w, target, callback);
  handles_[target]->weakly_referenced = true;
  track(handles_[target]);
}

void Generational::weak_held_by(WeakId w, ObjectId holder) {
  weak_.hold(w, holder);
  handles_[holder]->holds_weak = true;
  track(handles_[holder]);
}

void Generational::unlink(ObjectId from, ObjectId to) {
  Cell* target = handles_[to];
  auto& refs = handles_[from]->references;
  refs.erase(std::find(refs.begin(), refs.end(), target));
  decref(target);
}

void Generational::root(ObjectId id) {
  ++handles_[id]->external;
  ++handles_[id]->count;
}

void Generational::unroot(ObjectId id) {
  --handles_[id]->external;
  decref(handles_[id]);
}

// ================================================================================================
// Reference counting
// ================================================================================================

void Generational::decref(Cell* s) {
  if (--s->count == 0) release(s);
}

// Frees `s` and, transitively, everything whose count its death drops to zero; each deallocation
// takes one off the youngest generation's count, as PyObject_GC_Del does. As subtype_dealloc
// does, the finalizer runs first and the weak references are cleared after it.
void Generational::release(Cell* s) {
  ++releasing_;
  // Inline while short: a collection's delete_garbage releases every garbage object here.
  boost::container::small_vector<Cell*, 16> dying{s};
  while (!dying.empty()) {
    Cell* d = dying.back();
    dying.pop_back();
    // (One that waited here may have been resurrected meanwhile, by a finalizer's `deref` of a
    // weak reference to it that was not cleared yet: it lives.)
    if (d->count > 0 || resurrected_by_finalizer(d)) continue;
    // (During a collection, one that the unreachable set holds is garbage: no callback.)
    if (d->weakly_referenced) {
      clear_weak_references(weak_, {d->id}, [this](ObjectId h) {
        return handles_[h] != nullptr && handles_[h]->unreachable;
      });
    }
    for (Cell* t : d->references) {
      if (--t->count == 0) dying.push_back(t);
    }
    note(collecting_ ? (d->unreachable ? kFreeUnreachable : kFreeCascade) : kFreeCounted);
    list_of(d).remove(d);
    if (counts_[0] > 0) --counts_[0];
    if (d->holds_weak) weak_.drop_held_by(d->id);
    report_free(d->id);
    handles_[d->id] = nullptr;
    delete d;
    ++freed_;
  }
  --releasing_;
}

// PEP 442: the finalizer runs (once in the object's life) while one count holds the object; if
// it gave the object a reference, the object lives on.
bool Generational::resurrected_by_finalizer(Cell* s) {
  if (!s->has_finalizer || s->finalized) return false;
  s->finalized = true;
  ++s->count;
  run_finalizer(s->id);
  --s->count;
  return s->count > 0;
}

IntrusiveList<Generational::Cell>& Generational::list_of(Cell* s) {
  if (s->unreachable) return *unreachable_;
  if (s->generation == kPermanentGeneration) return permanent_;
  if (s->generation == kUntracked) return untracked_;
  return generations_[s->generation];
}

// ================================================================================================
// Collection: read `collect_generation` first.
// ================================================================================================

// As gc.collect(g): an explicit collection always runs, whatever the thresholds.
// A finalizer may ask for a collection while one runs (refused, as CPython does) or while
// reference counting frees a chain (refused too: the dying objects are still in their generation
// lists, where a nested collection would free them under the outer loop).
std::size_t Generational::collect(int generation) {
  if (collecting_ || releasing_ > 0) return 0;
  collecting_ = true;
  const std::size_t found = collect_generation(std::min(generation, kGenerations - 1));
  collecting_ = false;
  return found;
}

// As gc.set_threshold(): the counts stay; the next allocation compares them with the new values.
void Generational::set_thresholds(const std::array<std::uint32_t, 3>& thresholds) {
  thresholds_ = thresholds;
}

// As gc.freeze(): every tracked object moves to the permanent generation, and the allocation count
// starts again.
void Generational::freeze() {
  for (auto& generation : generations_) {
    generation.for_each([](Cell* c) { c->generation = kPermanentGeneration; });
    permanent_.splice_back(generation);
  }
  counts_[0] = 0;
}

// As gc.unfreeze(): the permanent generation joins the oldest.
void Generational::unfreeze() {
  permanent_.for_each([](Cell* c) { c->generation = kGenerations - 1; });
  generations_[kGenerations - 1].splice_back(permanent_);
}

void Generational::set_automatic_collection(bool enabled) { enabled_ = enabled; }

// Automatic collection: the oldest generation whose count exceeds its threshold, unless that is
// a full collection that the long-lived rule holds back.
void Generational::collect_generations() {
  for (int g = kGenerations - 1; g >= 0; --g) {
    if (counts_[g] <= thresholds_[g]) continue;
    if (g == kGenerations - 1 && long_lived_pending_ < long_lived_total_ / 4) {
      note(kFullCollectionHeldBack);
      continue;
    }
    note(kAutomaticCollection | static_cast<std::uint32_t>(g));
    collect_generation(g);
    return;
  }
}

// Pre: the invariants; `collecting_` is set. Post: every object of generations 0..g that only
// garbage refers to is freed (and whatever only such objects held); survivors of generations
// 0..g are in generation g + 1 (or stay in the oldest); returns the number of objects freed.
std::size_t Generational::collect_generation(int g) {
  ++collections_;
  if (++stamp_ == 0) {  // after 2^32 collections: no stale stamp may equal the new one
    for (auto& generation : generations_) generation.for_each([](Cell* c) { c->stamp = 0; });
    permanent_.for_each([](Cell* c) { c->stamp = 0; });
    untracked_.for_each([](Cell* c) { c->stamp = 0; });
    stamp_ = 1;
  }
  const std::size_t freed_before = freed_;
  if (g + 1 < kGenerations) ++counts_[g + 1];
  for (int i = 0; i <= g; ++i) counts_[i] = 0;

  IntrusiveList<Cell>& young = generations_[g];
  for (int i = 0; i < g; ++i) young.splice_back(generations_[i]);
  update_refs(young, g);
  IntrusiveList<Cell> unreachable, childless;
  unreachable_ = &unreachable;  // (a finalizer's reference counting may free its objects)
  move_unreachable(young, unreachable, childless, g);
  untrack_childless(young, childless);
  promote_survivors(g);
  handle_weakrefs(unreachable);
  if (finalize_garbage(unreachable)) {
    handle_resurrected_objects(unreachable, g);
    // A finalizer may have taken new weak references to the garbage, or given the garbage new
    // ones, that the first pass could not see: delete_garbage would call those back while their
    // holders are torn down.
    handle_weakrefs(unreachable);
  }
  delete_garbage(unreachable, g);
  unreachable_ = nullptr;
  ++collections_of_[g];
  collected_[g] += freed_ - freed_before;
  return freed_ - freed_before;
}

// CPython's update_refs (gc_refs := count) and subtract_refs (minus one for each reference from a
// young object), in one pass rather than two: gc_refs starts at zero the first time this
// collection touches an object (its stamp), so a reference may be subtracted before the pass has
// reached the object it points to. The young set is told by generation number (0..g), since the
// pass is also what relabels the merged younger generations as g.
// Post: every young object is in generation g, and its gc_refs counts only the references from
// outside the young set (older objects and the mutator): if it is zero, only young objects keep
// it alive.
void Generational::update_refs(IntrusiveList<Cell>& young_set, int g) {
  young_set.for_each([&](Cell* c) {
    c->generation = static_cast<std::int8_t>(g);
    gc_refs(c) += c->count;
    for (Cell* t : c->references) {
      if (in_young_set(t, g)) --gc_refs(t);
    }
  });
}

// CPython's move_unreachable: one walk over the young list, with no stack. An object whose
// gc_refs is above zero is reachable, and so is each young object it refers to: those get
// gc_refs 1 (and go back to the end of the young list, if the walk had already moved them to
// `unreachable`), so that the walk comes to them later. An object the walk reaches with gc_refs
// still zero is moved to `unreachable` for now.
// A reachable object that holds no references (or a tuple of objects that never take part in a
// cycle: `untrackable`), no finalizer and no weak reference (to it, or held by it: a weakref
// object it refers to, which CPython tracks) goes to
// `childless` as the walk finds it (CPython's untrack_tuples and untrack_dicts, without a pass
// of their own).
// Post: `young` holds the young objects reachable from one with gc_refs > 0 (or referred to from
// outside the young set), `childless` the reachable ones set aside, `unreachable` the rest.
void Generational::move_unreachable(IntrusiveList<Cell>& young_set,
                                    IntrusiveList<Cell>& unreachable,
                                    IntrusiveList<Cell>& childless, int g) {
  for (Cell* c = young_set.front(); c != nullptr;) {
    if (c->gc_refs == 0) {
      Cell* after = young_set.next(c);
      young_set.remove(c);
      c->unreachable = true;
      unreachable.push_back(c);
      c = after;
      continue;
    }
    for (Cell* t : c->references) {
      if (!in_young_set(t, g) || t->gc_refs > 0) continue;
      t->gc_refs = 1;
      if (t->unreachable) {
        unreachable.remove(t);
        t->unreachable = false;
        young_set.push_back(t);
      }
    }
    Cell* after = young_set.next(c);
    if (untrackable(c)) {  // (after its referents: an untracked tuple still keeps its items)
      young_set.remove(c);
      c->generation = kUntracked;
      childless.push_back(c);
      note(kUntrack);
    }
    c = after;
  }
}

// Post: the survivors that move_unreachable found untrackable (and labelled untracked) are no
// longer tracked: no collection needs to look at them until they gain a reference (a tuple never
// does).
void Generational::untrack_childless(IntrusiveList<Cell>& /*young*/,
                                     IntrusiveList<Cell>& childless) {
  untracked_.splice_back(childless);
}

// CPython's untracking: an object with nothing that could take part in a cycle - no references
// (untrack_dicts; it is tracked again when it gains one), or a tuple of acyclic objects and such
// tuples (untrack_tuples, _PyTuple_MaybeUntrack: a tuple never gains a reference, so it stays
// untracked; an untracked list may be tracked again, so a tuple holding one may not be).
bool Generational::untrackable(const Cell* c) const {
  if (c->has_finalizer || c->weakly_referenced || c->holds_weak) return false;
  return c->references.empty() || (c->kind == ObjectKind::Tuple && never_cyclic(c));
}

// An acyclic object, or a tuple of such objects: a tuple's items never change, so the answer is
// kept once known (tuples nest only in the order they were made, so the recursion ends).
bool Generational::never_cyclic(const Cell* c) const {
  if (c->kind == ObjectKind::Acyclic) return true;
  if (c->kind != ObjectKind::Tuple) return false;
  if (c->never_cyclic < 0) {
    c->never_cyclic = std::all_of(c->references.begin(), c->references.end(),
                                  [this](const Cell* t) { return never_cyclic(t); });
  }
  return c->never_cyclic != 0;
}

// Post: survivors of a young collection are one generation older; a full collection resets the
// long-lived bookkeeping.
void Generational::promote_survivors(int g) {
  if (g + 1 < kGenerations) {
    note(kPromotion | static_cast<std::uint32_t>(g));
    if (g + 1 == kGenerations - 1) long_lived_pending_ += generations_[g].size();
    generations_[g].for_each([&](Cell* c) { c->generation = g + 1; });
    generations_[g + 1].splice_back(generations_[g]);
  } else {
    long_lived_pending_ = 0;
    long_lived_total_ = generations_[g].size();
  }
}

// Post: no weak reference to an unreachable object is left, and the callbacks have run - before
// any finalizer, so that no finalizer can reach garbage through a weak reference.
//
// The weak references that the unreachable set holds are cleared too, whatever their target: a
// target outside the set may die during delete_garbage, by reference counting, and the callback of
// a weak reference whose holder is being torn down would run then (bpo-38006: CPython clears
// every weakref inside the unreachable set for this reason).
void Generational::handle_weakrefs(IntrusiveList<Cell>& unreachable) {
  std::vector<ObjectId> targets;
  unreachable.for_each([&](Cell* c) {
    if (c->weakly_referenced) targets.push_back(c->id);
  });
  clear_weak_references(weak_, targets, [this](ObjectId h) { return handles_[h]->unreachable; });
  unreachable.for_each([&](Cell* c) {
    if (c->holds_weak) clear_held_weak_references(weak_, c->id);
  });
}

// Post: every unreachable object with a finalizer has run it, once in its life. A finalizer may
// give an object a reference (`root`) meanwhile; nothing is freed here.
//
// A finalizer may drop references (reference counting), and so free objects of the unreachable
// set, this one's finalizer included, before their turn: they are taken by id, and one freed
// meanwhile is skipped. Each is held by one count while its finalizer runs, as CPython's
// finalize_garbage holds it, and released after if that was the last.
bool Generational::finalize_garbage(IntrusiveList<Cell>& unreachable) {
  std::vector<ObjectId> to_finalize;
  unreachable.for_each([&](Cell* c) {
    if (c->has_finalizer && !c->finalized) to_finalize.push_back(c->id);
  });
  for (ObjectId id : to_finalize) {
    Cell* c = handles_[id];
    if (c == nullptr || c->finalized) continue;  // (reference counting got to it first)
    c->finalized = true;
    ++c->count;
    run_finalizer(id);
    if (--c->count == 0) release(c);
  }
  return !to_finalize.empty();
}

// As steps 2 and 3 again, within the unreachable set: an object that something outside the set
// now refers to (the finalizers' references) is reachable, and so is all it reaches. Those move
// to generation g + 1 with the other survivors.
void Generational::handle_resurrected_objects(IntrusiveList<Cell>& unreachable, int g) {
  unreachable.for_each([](Cell* c) { c->gc_refs = c->count; });  // stamped: they were young
  unreachable.for_each([](Cell* c) {
    for (Cell* t : c->references) {
      if (t->unreachable) --t->gc_refs;
    }
  });
  std::vector<Cell*> stack;
  unreachable.for_each([&](Cell* c) {
    if (c->gc_refs > 0) {
      c->reached = true;
      stack.push_back(c);
    }
  });
  while (!stack.empty()) {
    Cell* c = stack.back();
    stack.pop_back();
    for (Cell* t : c->references) {
      if (t->unreachable && !t->reached) {
        t->reached = true;
        stack.push_back(t);
      }
    }
  }
  const int older = std::min(g + 1, kGenerations - 1);
  std::size_t resurrected = 0;
  unreachable.for_each([&](Cell* c) {
    if (!c->reached) return;
    c->reached = false;
    c->unreachable = false;
    unreachable.remove(c);
    c->generation = older;
    generations_[older].push_back(c);
    ++resurrected;
  });
  // They count as survivors for the long-lived rule, as the promoted ones did.
  if (g == kGenerations - 1) {
    long_lived_total_ += resurrected;
  } else if (older == kGenerations - 1) {
    long_lived_pending_ += resurrected;
  }
}

// As CPython's delete_garbage: clear each unreachable object's references (tp_clear), holding the
// object meanwhile; reference counting then frees the garbage. An object that survives its own
// clearing (another unreachable object still refers to it) moves to the next generation, where
// the clearing of that other object frees it.
// Post: `unreachable` is empty.
void Generational::delete_garbage(IntrusiveList<Cell>& unreachable, int g) {
  const int older = std::min(g + 1, kGenerations - 1);
  while (!unreachable.empty()) {
    Cell* u = unreachable.front();
    ++u->count;
    References<Cell> references;
    references.swap(u->references);
    for (Cell* t : references) decref(t);
    if (u->count == 1) {
      decref(u);
    } else {
      note(kSurvivedClearing);
      --u->count;
      unreachable.remove(u);
      u->unreachable = false;
      u->generation = older;
      generations_[older].push_back(u);
    }
  }
}

// ================================================================================================
// Inspection
// ================================================================================================

void Generational::inspect(ObjectId id, ObjectView& view) const {
  const Cell* cell = handles_[id];
  view.references.clear();
  for (const Cell* r : cell->references) view.references.push_back(r->id);
  view.count = cell->count;
  view.generation = cell->generation;
  view.tracked = cell->generation != kUntracked;
}

// Restates the invariants as code. One cell: counted, in a generation (or permanent, or
// untracked, only while it holds no references), carrying no collection's state, the handle for
// its id.
void Generational::check_cell(const Cell* c) const {
  constexpr const char* kName = "generational";
  if (c->generation != kUntracked && c->generation != kPermanentGeneration &&
      (c->generation < 0 || c->generation >= kGenerations)) {
    broken_invariant(kName, c->id, "says it is in generation " + std::to_string(c->generation));
  }
  if (c->count == 0) broken_invariant(kName, c->id, "has count 0 but was not freed");
  if (c->unreachable || c->reached || c->stamp > stamp_) {
    broken_invariant(kName, c->id, "carries collection state outside a collection");
  }
  if (c->id >= handles_.size() || handles_[c->id] != c) {
    broken_invariant(kName, c->id, "is not the handle for its id");
  }
  if (c->generation == kUntracked && !c->references.empty() && !never_cyclic(c)) {
    broken_invariant(kName, c->id, "is untracked but holds references");
  }
}

// The whole heap: every cell as above and in the list of the generation it says, its count is
// its external references plus the references to it, and every reference leads to a cell in a
// generation.
void Generational::check_invariants() const {
  constexpr const char* kName = "generational";
  const auto for_each_list = [&](const auto& visit) {
    for (int g = 0; g < kGenerations; ++g) visit(generations_[g], g);
    visit(permanent_, kPermanentGeneration);
    visit(untracked_, kUntracked);
  };
  std::size_t cells = 0;
  for_each_list([&](const IntrusiveList<Cell>& list, int) { cells += list.size(); });
  census_.begin(cells);
  for_each_list([&](const IntrusiveList<Cell>& list, int g) {
    list.for_each([&](const Cell* c) {
      if (c->generation != g) {
        broken_invariant(kName, c->id,
                         "is in generation " + std::to_string(g) + "'s list but says it is in " +
                             std::to_string(c->generation));
      }
      check_cell(c);
      census_.add(c);
    });
  });
  for_each_list([&](const IntrusiveList<Cell>& list, int) {
    list.for_each([&](const Cell* c) {
      for (const Cell* r : c->references) {
        if (!census_.count_reference_to(r)) {
          broken_invariant(kName, c->id, "refers to a cell in no generation");
        }
      }
    });
  });
  for_each_list([&](const IntrusiveList<Cell>& list, int) {
    list.for_each([&](const Cell* c) {
      const std::uint64_t internal = *census_.referrers(c);
      if (c->count == c->external + internal) return;
      broken_invariant(kName, c->id,
                       "has count " + std::to_string(c->count) + " but " +
                           std::to_string(c->external) + " external and " +
                           std::to_string(internal) + " internal references");
    });
  });
}

void Generational::check_invariants_of(std::span<const ObjectId> objects) const {
  for (ObjectId x : objects) check_cell(handles_[x]);
}

}  // namespace cyclefuzz
