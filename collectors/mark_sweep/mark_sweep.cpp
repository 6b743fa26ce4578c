#include "collectors/mark_sweep/mark_sweep.h"

#include <bit>

#include "collectors/transitions.h"

#include <algorithm>
#include <string>

namespace cyclefuzz {

const Capabilities& MarkSweep::capabilities() const {
  static const Capabilities kCapabilities{.reference_counting = false,
                                          .generations = 1,
                                          .automatic_collection = false,
                                          .count = CountMeaning::External,
                                          .freezes = true,
                                          .finalizers = true,
                                          .weak_references = true,
                                          .weak_references_cleared_before_finalizers = true,
                                          .weak_reference_holders = true,
                                          .map_entries = MapEntries::Ephemerons};
  return kCapabilities;
}

MarkSweep::~MarkSweep() {
  heap_.for_each([](Cell* c) { delete c; });
}

// ================================================================================================
// The mutator's operations: bookkeeping only, nothing is freed here.
// ================================================================================================

// An object allocated during a collection (by a weak reference's callback, after the marking) is
// allocated marked: it is no part of the garbage that marking found, and the sweep must not take
// it (it unmarks it, as every survivor).
void MarkSweep::allocate(ObjectId id) {
  if (handles_.size() <= id) handles_.resize(id + 1, nullptr);
  auto* cell = new Cell;
  cell->id = id;
  cell->marked = collecting_;
  handles_[id] = cell;
  heap_.push_back(cell);
}

void MarkSweep::link(ObjectId from, ObjectId to) {
  handles_[from]->references.push_back(handles_[to]);
}

void MarkSweep::unlink(ObjectId from, ObjectId to) {
  auto& refs = handles_[from]->references;
  refs.erase(std::find(refs.begin(), refs.end(), handles_[to]));
}

void MarkSweep::set_entry(ObjectId map, ObjectId key, ObjectId value) {
  auto& entries = handles_[map]->entries;
  if (!entries) entries = std::make_unique<std::vector<Cell::Entry>>();
  Cell* k = handles_[key];
  const auto it = std::find_if(entries->begin(), entries->end(),
                               [k](const Cell::Entry& e) { return e.key == k; });
  if (it != entries->end()) {
    it->value = handles_[value];
    return;
  }
  entries->push_back({k, handles_[value]});
  ++entry_count_;
}

void MarkSweep::remove_entry(ObjectId map, ObjectId key) {
  auto& entries = *handles_[map]->entries;
  Cell* k = handles_[key];
  entries.erase(std::find_if(entries.begin(), entries.end(),
                             [k](const Cell::Entry& e) { return e.key == k; }));
  --entry_count_;
}

void MarkSweep::root(ObjectId id) { ++handles_[id]->external; }

void MarkSweep::unroot(ObjectId id) { --handles_[id]->external; }

// ================================================================================================
// Collection: mark from the roots, sweep the unmarked.
// ================================================================================================

// A finalizer asking for a collection while one runs is refused, as CPython's gc.collect() is.
std::size_t MarkSweep::collect(int /*generation: every collection is full*/) {
  if (collecting_) return 0;
  collecting_ = true;
  ++collections_;
  mark();
  // A finalizer may resurrect what it reaches, and may drop references (`unlink`), which leaves
  // more objects unmarked when marking again, some with finalizers of their own: those run too,
  // before anything is swept, until a marking leaves no finalizer to run.
  while (finalize_unmarked()) {
    clear_marks();
    mark();
  }
  const std::size_t freed = sweep();
  collecting_ = false;
  collected_ += freed;
  return freed;
}

void MarkSweep::freeze() {
  heap_.for_each([](Cell* c) { c->frozen = true; });
}

void MarkSweep::unfreeze() {
  heap_.for_each([](Cell* c) { c->frozen = false; });
}

std::optional<GcStatistics> MarkSweep::statistics() const {
  GcStatistics statistics;
  statistics.collections[0] = collections_;
  statistics.collected[0] = collected_;
  return statistics;
}

std::vector<MarkSweep::Cell*> MarkSweep::mark_roots() {
  std::vector<Cell*> roots;
  heap_.for_each([&](Cell* c) {
    if ((c->external > 0 || c->frozen) && !c->marked) {
      c->marked = true;
      roots.push_back(c);
    }
  });
  return roots;
}

// Pre: no cell is marked. Post: exactly the cells reachable from a root are marked, an entry's
// value counting as reachable once its map and its key are. An explicit stack, since a heap may
// be a chain of a million objects.
void MarkSweep::mark() {
  std::vector<Cell*> stack = mark_roots();
  while (!stack.empty() || !released_.empty()) {
    if (!released_.empty()) {
      Cell* value = released_.back();
      released_.pop_back();
      if (!value->marked) mark_cell(value, stack);
      continue;
    }
    Cell* c = stack.back();
    stack.pop_back();
    for (Cell* r : c->references) {
      if (!r->marked) mark_cell(r, stack);
    }
    if (c->entries) mark_entries(c, stack);
  }
  // Entries whose key stays unmarked: their values live only if something else reaches them.
  waiting_.clear();
}

void MarkSweep::mark_cell(Cell* r, std::vector<Cell*>& stack) {
  r->marked = true;
  // A cell without references has nothing left to mark: it need not wait on the stack (one
  // object referring to a million leaves would make a stack of a million).
  if (!r->references.empty() || r->entries) stack.push_back(r);
  if (waiting_.empty()) return;
  if (const auto it = waiting_.find(r); it != waiting_.end()) {
    released_.insert(released_.end(), it->second.begin(), it->second.end());
    waiting_.erase(it);
  }
}

void MarkSweep::mark_entries(Cell* map, std::vector<Cell*>& stack) {
  for (const Cell::Entry& e : *map->entries) {
    if (!e.key->marked) {
      waiting_[e.key].push_back(e.value);
    } else if (!e.value->marked) {
      mark_cell(e.value, stack);
    }
  }
}

// Pre: marks as `mark` left them. Post: the weak references to unmarked cells are cleared, and
// the finalizer of every unmarked cell that has one has run (once in its life). A finalizer may
// give a cell an external reference (`root`) while it runs; the marks do not show it yet.
bool MarkSweep::finalize_unmarked() {
  // Nothing to clear and nothing to run: no pass over the heap for it.
  if (weak_.empty() && !finalizers_) return false;
  std::vector<ObjectId> unmarked;
  std::vector<Cell*> to_finalize;
  heap_.for_each([&](Cell* c) {
    if (c->marked) return;
    unmarked.push_back(c->id);
    if (c->has_finalizer && !c->finalized) to_finalize.push_back(c);
  });
  clear_weak_references(weak_, unmarked, [this](ObjectId h) { return !handles_[h]->marked; });
  for (Cell* c : to_finalize) {
    c->finalized = true;
    run_finalizer(c->id);
  }
  return !to_finalize.empty();
}

void MarkSweep::clear_marks() {
  heap_.for_each([](Cell* c) { c->marked = false; });
}

// Pre: marks as `mark` left them. Post: unmarked cells are freed, and with them the entries whose
// key they were; marks are cleared.
std::size_t MarkSweep::sweep() {
  if (entry_count_ > 0) drop_entries_of_unmarked_keys();
  std::size_t freed = 0;
  heap_.for_each([&](Cell* c) {
    if (c->marked) {
      c->marked = false;
      return;
    }
    free_cell(c);
    ++freed;
  });
  // How much a sweep freed, in powers of two, is the only state a fuzzer can tell apart here.
  transitions::note(transitions::Family::MarkSweep, std::bit_width(freed));
  return freed;
}

// Before any cell is freed, so that no key is read after its free.
void MarkSweep::drop_entries_of_unmarked_keys() {
  heap_.for_each([&](Cell* c) {
    if (!c->entries) return;
    entry_count_ -= std::erase_if(*c->entries, [&](const Cell::Entry& e) {
      return !c->marked || !e.key->marked;
    });
  });
}

void MarkSweep::free_cell(Cell* c) {
  heap_.remove(c);
  weak_.drop_held_by(c->id);
  report_free(c->id);
  delete c;
}

// ================================================================================================
// Inspection
// ================================================================================================

void MarkSweep::inspect(ObjectId id, ObjectView& view) const {
  const Cell* cell = handles_[id];
  view.references.clear();
  for (const Cell* r : cell->references) view.references.push_back(r->id);
  if (cell->entries) {
    for (const Cell::Entry& e : *cell->entries) view.references.push_back(e.value->id);
  }
  view.count = cell->external;
  view.generation = 0;
}

// Restates the invariant as code. One cell: unmarked, and the mutator's handle for its id.
void MarkSweep::check_cell(const Cell* c) const {
  if (c->marked) broken_invariant("mark-sweep", c->id, "is still marked outside a collection");
  if (c->id >= handles_.size() || handles_[c->id] != c) {
    broken_invariant("mark-sweep", c->id, "is in the heap but not the handle for its id");
  }
}

// The whole heap: every cell as above, and every reference leads to a cell in the heap (a sweep
// never leaves a survivor pointing at a freed cell).
void MarkSweep::check_invariants() const {
  census_.begin(heap_.size());
  heap_.for_each([&](const Cell* c) { census_.add(c); });
  heap_.for_each([&](const Cell* c) {
    check_cell(c);
    for (const Cell* r : c->references) {
      if (!census_.holds(r)) broken_invariant("mark-sweep", c->id, "refers to a freed cell");
    }
    if (!c->entries) return;
    for (const Cell::Entry& e : *c->entries) {
      if (!census_.holds(e.key) || !census_.holds(e.value)) {
        broken_invariant("mark-sweep", c->id, "has a map entry with a freed key or value");
      }
    }
  });
}

void MarkSweep::check_invariants_of(std::span<const ObjectId> objects) const {
  for (ObjectId x : objects) check_cell(handles_[x]);
}

}  // namespace cyclefuzz
