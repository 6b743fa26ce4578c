#include "oracle/oracle.h"

#include <algorithm>
#include <cassert>


namespace cyclefuzz {

// Room for the objects of a short trace (a fuzzer's input, a generated trace): an oracle is made
// for each, and under AddressSanitizer each doubling of each of its tables is an allocation, a
// stack trace and fresh pages (docs/performance.md, "Fuzzing speed").
Oracle::Oracle() {
  constexpr std::size_t kObjects = 128;
  const auto reserve = [](auto&... tables) { (tables.reserve(kObjects), ...); };
  reserve(external_, reachable_, reachable_list_, rooted_list_, reachable_index_, rooted_index_,
          parent_, parent_key_, maps_keyed_by_, key_index_, finalizer_, born_in_finalizer_,
          weak_by_target_, weak_by_holder_, kinds_, never_cyclic_);
}

// ================================================================================================
// Applying an op
// ================================================================================================

void Oracle::apply(const Op& op) {
  assert(!refuse(op));
  newly_unreachable_.clear();
  switch (op.kind) {
    case OpKind::Build:  // (nothing it makes is unreachable after it)
      for_each_part_of_build(op, [this](const Op& part) { apply(part); });
      break;
    case OpKind::New:
      add_object(op.a, true);
      kinds_[op.a] = op.object_kind;
      for (ObjectId item : op.items) boost::add_edge(op.a, item, Reference{}, graph_);
      never_cyclic_[op.a] =
          op.object_kind == ObjectKind::Acyclic ||
          (op.object_kind == ObjectKind::Tuple &&
           std::all_of(op.items.begin(), op.items.end(), [this](ObjectId x) {
             return never_cyclic_[x] != 0;
           }));
      break;
    case OpKind::Link:
      boost::add_edge(op.a, op.b, Reference{}, graph_);
      break;
    case OpKind::Unlink:
      // Remove exactly one of possibly several parallel references (not a map entry's).
      for (auto [e, end] = boost::out_edges(op.a, graph_); e != end; ++e) {
        if (boost::target(*e, graph_) == op.b && graph_[*e].key == kNoKey) {
          remove_reference(*e);
          break;
        }
      }
      break;
    case OpKind::Entry: {
      // The new value first: when it is the old one, it never loses its support.
      const std::optional<Graph::edge_descriptor> old = entry_edge(op.a, op.b);
      boost::add_edge(op.a, op.c, Reference{kMutatorView, op.b}, graph_);
      if (old) {
        remove_reference(*old);
      } else {
        add_key(op.a, op.b);
      }
      break;
    }
    case OpKind::Unentry:
      remove_reference(*entry_edge(op.a, op.b));
      break;
    case OpKind::Root:
      if (external_[op.a]++ == 0) add_to(rooted_list_, rooted_index_, op.a);
      break;
    case OpKind::Unroot:
      if (--external_[op.a] == 0) {
        remove_from(rooted_list_, rooted_index_, op.a);
        if (parent_[op.a] == kNoParent) lose_support(op.a);
      }
      break;
    case OpKind::Finalizer:
      finalizer_[op.a] = static_cast<std::uint32_t>(programs_.size());
      programs_.push_back(op.steps);
      add_program(op);
      break;
    case OpKind::Weak:
      add_weak(op.weak, op.a, op.option, op.held ? std::optional(op.b) : std::nullopt, op.steps,
               false);
      add_program(op);
      break;
    case OpKind::Collect:
    case OpKind::Threshold:
    case OpKind::Freeze:
    case OpKind::Unfreeze:
    case OpKind::Disable:
    case OpKind::Enable:
    case OpKind::Release:
    case OpKind::Deref:
      // They change what collectors do, never what the mutator reaches: the program's list of
      // resurrected objects is each collector's own (the mutator never dereferences it).
      break;
  }
}

void Oracle::add_object(ObjectId id, bool rooted) {
  const auto v = boost::add_vertex(graph_);
  (void)v;
  assert(v == id);
  external_.push_back(rooted ? 1 : 0);
  reachable_.push_back(rooted ? 1 : 0);
  parent_.push_back(kNoParent);
  parent_key_.push_back(kNoKey);
  maps_keyed_by_.emplace_back();
  key_index_.push_back(0);
  finalizer_.push_back(kNoFinalizer);
  born_in_finalizer_.push_back(rooted ? 0 : 1);
  weak_by_target_.emplace_back();
  weak_by_holder_.emplace_back();
  kinds_.push_back(ObjectKind::List);
  never_cyclic_.push_back(0);
  reachable_index_.push_back(0);
  rooted_index_.push_back(0);
  if (rooted) {
    add_to(reachable_list_, reachable_index_, id);
    add_to(rooted_list_, rooted_index_, id);
  }
}

void Oracle::add_weak(WeakId w, ObjectId target, bool callback, std::optional<ObjectId> holder,
                      std::vector<Step> program, bool in_program) {
  assert(w == weak_targets_.size());
  weak_targets_.push_back(target);
  weak_callbacks_.push_back(callback ? 1 : 0);
  weak_by_target_[target].push_back(w);
  weak_holders_.push_back(holder.value_or(kNoHolder));
  weak_programs_.push_back(std::move(program));
  weak_in_program_.push_back(in_program ? 1 : 0);
  if (holder) weak_by_holder_[*holder].push_back(w);
  derefable_index_.push_back(0);
  if (!in_program) add_to(derefable_weak_, derefable_index_, w);
}

void Oracle::add_program(const Op& op) {
  for (const Step& step : op.steps) {
    switch (step.kind) {
      case StepKind::New:
        add_object(step.a, false);
        break;
      case StepKind::Finalizer:
        finalizer_[step.a] = static_cast<std::uint32_t>(programs_.size());
        programs_.emplace_back();
        break;
      case StepKind::Weak:
        add_weak(step.weak, step.a, step.callback, step.b, {}, true);
        break;
      default:
        break;
    }
  }
}

void Oracle::add_finalizer_reference(HeapView view, ObjectId from, ObjectId to) {
  assert(view != kMutatorView && !reachable_[from]);
  boost::add_edge(from, to, Reference{view}, graph_);
}

bool Oracle::drop_finalizer_reference(HeapView view, ObjectId from, ObjectId to) {
  assert(view != kMutatorView && !reachable_[from]);
  if (view >= kDroppable) return false;
  for (auto [e, end] = boost::out_edges(from, graph_); e != end; ++e) {
    if (boost::target(*e, graph_) == to && graph_[*e].key == kNoKey && sees(view, *e)) {
      graph_[*e].dropped |= std::uint64_t{1} << view;
      return true;
    }
  }
  return false;
}

std::optional<Oracle::Graph::edge_descriptor> Oracle::entry_edge(ObjectId map, ObjectId key,
                                                                  HeapView view) const {
  for (auto [e, end] = boost::out_edges(map, graph_); e != end; ++e) {
    if (graph_[*e].key == key && has_entry_edge(view, *e)) return *e;
  }
  return std::nullopt;
}

// A key dies with the mutator's reach: one a program gives an entry may be dead already.
void Oracle::add_key(ObjectId map, ObjectId key) {
  std::vector<ObjectId>& maps = maps_keyed_by_[key];
  if (maps.empty()) {
    if (reachable_[key]) {
      add_to(keys_, key_index_, key);
    } else {
      dead_keys_.push_back(key);
    }
  }
  if (std::find(maps.begin(), maps.end(), map) == maps.end()) maps.push_back(map);
}

bool Oracle::set_finalizer_entry(HeapView view, ObjectId map, ObjectId key, ObjectId value) {
  assert(view != kMutatorView && !reachable_[map]);
  if (view >= kDroppable) return false;
  const std::optional<Graph::edge_descriptor> old = entry_edge(map, key, view);
  if (old) graph_[*old].dropped |= std::uint64_t{1} << view;
  boost::add_edge(map, value, Reference{view, key}, graph_);
  add_key(map, key);
  return true;
}

bool Oracle::drop_finalizer_entry(HeapView view, ObjectId map, ObjectId key) {
  assert(!reachable_[map]);
  return drop_entry(view, map, key);
}

bool Oracle::drop_entry(HeapView view, ObjectId map, ObjectId key) {
  assert(view != kMutatorView);
  if (view >= kDroppable) return false;
  const std::optional<Graph::edge_descriptor> old = entry_edge(map, key, view);
  if (!old) return false;
  graph_[*old].dropped |= std::uint64_t{1} << view;
  return true;
}

std::optional<ObjectId> Oracle::entry_value(ObjectId map, ObjectId key, HeapView view) const {
  const auto e = entry_edge(map, key, view);
  if (!e) return std::nullopt;
  return static_cast<ObjectId>(boost::target(*e, graph_));
}

void Oracle::key_freed(HeapView view, ObjectId x) {
  if (view == kMutatorView || maps_keyed_by_[x].empty()) return;
  if (freed_keys_.size() <= view) freed_keys_.resize(view + 1);
  if (freed_keys_[view].size() <= x) freed_keys_[view].resize(object_count(), 0);
  freed_keys_[view][x] = 1;
}

// A parent supports its child through one reference: a plain one (any of several parallel ones)
// or the entry of one key. Losing the last reference of that kind loses the support.
void Oracle::remove_reference(Graph::edge_descriptor e) {
  const auto from = static_cast<ObjectId>(boost::source(e, graph_));
  const auto to = static_cast<ObjectId>(boost::target(e, graph_));
  const ObjectId key = graph_[e].key;
  boost::remove_edge(e, graph_);
  if (!reachable_[to] || parent_[to] != from || parent_key_[to] != key) return;
  if (key == kNoKey && references(from, to) > 0) return;
  parent_[to] = kNoParent;
  parent_key_[to] = kNoKey;
  if (external_[to] == 0) lose_support(to);
}

// Pre: as lose_support. Finds, within a few steps, a referrer of x whose chain of parents ends
// without passing through x, and makes it x's parent: then nothing died and the forest holds
// again, without a search of x's subtree (which, for the head of a long chain that is being let
// go from its far end, is the whole chain). Returns false when it finds none within the budget;
// lose_support then searches.
//
// The chain is followed to its end, through rooted objects that have a parent too: a rooted
// object's parent is what supports it once it is unrooted, so stopping at the first rooted object
// could close a cycle of parents through x. Every reachable object without a parent is rooted,
// but x.
//
// Only plain references adopt, along chains of plain references: support through a map entry
// depends on its key too, which the search (lose_support) weighs.
bool Oracle::adopt_by_a_referrer(ObjectId x) {
  constexpr int kBudget = 16;  // parent steps, over all the referrers tried
  int steps = 0;
  for (auto [e, end] = boost::in_edges(x, graph_); e != end; ++e) {
    const auto p = static_cast<ObjectId>(boost::source(*e, graph_));
    if (!reachable_[p] || graph_[*e].key != kNoKey) continue;
    ObjectId c = p;
    while (c != x && parent_[c] != kNoParent && ++steps <= kBudget) {
      if (parent_key_[c] != kNoKey) return false;
      c = parent_[c];
    }
    if (steps > kBudget) return false;
    if (c != x) {
      parent_[x] = p;
      parent_key_[x] = kNoKey;
      return true;
    }
  }
  return false;
}

// Pre: the support forest held before the op (every reachable object is rooted or has a parent,
// a reachable object that refers to it - through an entry whose key is reachable, for a value -
// and following parents and keys always ends at rooted objects); then `x` lost the external
// reference or the parent's reference that supported it, and has neither now.
// Post: exactly the objects that are no longer reachable are unmarked and listed in
// `newly_unreachable_`, breadth-first from x first; the forest holds again.
//
// Why searching T (collect_dependents) is enough: an object outside T keeps its chains of parents
// and keys to rooted objects, none through x. Among T, an object stays reachable iff it is rooted,
// or a reachable object outside T refers to it (through an entry: whose key is outside T, or
// stays reachable), or it descends within T from such objects - the ephemeron fixpoint, which
// the worklist computes in one pass: an entry waits until both its map and its key are known to
// stay.
void Oracle::lose_support(ObjectId x) {
  assert(reachable_[x] && external_[x] == 0 && parent_[x] == kNoParent);
  if (adopt_by_a_referrer(x)) return;
  const std::size_t n = object_count();
  collect_dependents(x);  // subtree_, members_
  // Whether y stays reachable as far as known: outside T (and reachable), or found to stay.
  colors_.begin(n);
  const auto stays = [&](ObjectId y) {
    return reachable_[y] && (!members_.touched(y) || colors_.touched(y));
  };
  supported_.clear();
  const auto keep = [&](ObjectId v, ObjectId parent, ObjectId key) {
    colors_.put(v, boost::black_color);
    parent_[v] = parent;
    parent_key_[v] = key;
    supported_.push_back(v);
  };

  // 1. The objects of T supported from outside it: rooted, or referred to by a reachable object
  //    outside T (through an entry: whose key is outside T).
  for (ObjectId v : subtree_) {
    parent_[v] = kNoParent;
    parent_key_[v] = kNoKey;
  }
  for (ObjectId v : subtree_) {
    if (external_[v] > 0) {
      keep(v, kNoParent, kNoKey);
      continue;
    }
    for (auto [e, end] = boost::in_edges(v, graph_); e != end; ++e) {
      const auto from = static_cast<ObjectId>(boost::source(*e, graph_));
      const ObjectId key = graph_[*e].key;
      if (graph_[*e].owner != kMutatorView || !reachable_[from] || members_.touched(from)) continue;
      if (key != kNoKey && (!reachable_[key] || members_.touched(key))) continue;
      keep(v, from, key);
      break;
    }
  }

  // 2. What they reach within T stays, each entry once its map and its key both stay.
  for (std::size_t i = 0; i < supported_.size(); ++i) {
    const ObjectId s = supported_[i];
    for (auto [e, end] = boost::out_edges(s, graph_); e != end; ++e) {
      const auto to = static_cast<ObjectId>(boost::target(*e, graph_));
      const ObjectId key = graph_[*e].key;
      if (graph_[*e].owner != kMutatorView || !members_.touched(to) || colors_.touched(to)) {
        continue;
      }
      if (key == kNoKey || stays(key)) keep(to, s, key);
    }
    for (ObjectId map : maps_keyed_by_[s]) {  // s as a key: the entries it was waiting for
      if (!stays(map)) continue;
      const std::optional<ObjectId> value = entry_value(map, s);
      if (value && members_.touched(*value) && !colors_.touched(*value)) keep(*value, map, s);
    }
  }
  if (colors_.touched(x)) return;  // x stays reachable, and with it all of T

  // 3. The rest of T is garbage from now on, listed breadth-first: from x, then from each dying
  //    object not yet listed (one whose entry's key died, reached from no dying object).
  const std::size_t first = newly_unreachable_.size();
  std::size_t next = first;
  for (ObjectId start : subtree_) {
    if (colors_.touched(start)) continue;
    colors_.put(start, boost::black_color);
    newly_unreachable_.push_back(start);
    for (; next < newly_unreachable_.size(); ++next) {
      for (auto [e, end] = boost::out_edges(newly_unreachable_[next], graph_); e != end; ++e) {
        const auto to = static_cast<ObjectId>(boost::target(*e, graph_));
        if (!members_.touched(to) || colors_.touched(to)) continue;
        colors_.put(to, boost::black_color);
        newly_unreachable_.push_back(to);
      }
    }
  }
  for (std::size_t i = first; i < newly_unreachable_.size(); ++i) {
    const ObjectId d = newly_unreachable_[i];
    reachable_[d] = 0;
    remove_from(reachable_list_, reachable_index_, d);
    if (!maps_keyed_by_[d].empty()) {
      remove_from(keys_, key_index_, d);
      dead_keys_.push_back(d);
    }
    for (WeakId w : weak_by_holder_[d]) {
      if (!weak_in_program_[w]) remove_from(derefable_weak_, derefable_index_, w);
    }
  }
}

// T: x, and every reachable object that depends on a member of T without an external reference -
// as its parent, or as the key of the entry through which its parent supports it. In
// breadth-first order from x, x first; members_ marks them.
void Oracle::collect_dependents(ObjectId x) {
  subtree_.assign(1, x);
  members_.begin(object_count());
  members_.put(x, boost::black_color);
  const auto add = [&](ObjectId y) {
    if (!reachable_[y] || members_.touched(y)) return;
    members_.put(y, boost::black_color);
    subtree_.push_back(y);
  };
  for (std::size_t i = 0; i < subtree_.size(); ++i) {
    const ObjectId p = subtree_[i];
    // A rooted object supports what depends on it, whatever happens.
    if (external_[p] > 0) continue;
    for (auto [e, end] = boost::out_edges(p, graph_); e != end; ++e) {
      const auto to = static_cast<ObjectId>(boost::target(*e, graph_));
      if (parent_[to] == p && parent_key_[to] == graph_[*e].key) add(to);
    }
    for (ObjectId map : maps_keyed_by_[p]) {
      const std::optional<ObjectId> value = entry_value(map, p);
      if (value && parent_[*value] == map && parent_key_[*value] == p) add(*value);
    }
  }
}

void Oracle::add_to(std::vector<ObjectId>& list, std::vector<std::uint32_t>& index, ObjectId x) {
  index[x] = static_cast<std::uint32_t>(list.size());
  list.push_back(x);
}

void Oracle::remove_from(std::vector<ObjectId>& list, std::vector<std::uint32_t>& index,
                         ObjectId x) {
  const ObjectId last = list.back();
  list[index[x]] = last;
  index[last] = index[x];
  list.pop_back();
}

}  // namespace cyclefuzz
