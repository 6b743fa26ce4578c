#include "oracle/oracle.h"

#include <algorithm>
#include <boost/graph/breadth_first_search.hpp>
#include <boost/graph/filtered_graph.hpp>
#include <boost/graph/reverse_graph.hpp>
#include <boost/graph/strong_components.hpp>
#include <boost/property_map/property_map.hpp>
#include <cassert>

namespace cyclefuzz {

namespace {

using Vertex = std::size_t;

/// A FIFO buffer for Boost's breadth-first search that reports itself empty once `stop` is set,
/// which ends the search early without throwing.
class StoppableQueue {
 public:
  explicit StoppableQueue(const bool* stop = nullptr) : stop_(stop) {}
  void push(Vertex v) { items_.push_back(v); }
  Vertex& top() { return items_[head_]; }
  void pop() { ++head_; }
  bool empty() const { return (stop_ != nullptr && *stop_) || head_ == items_.size(); }

 private:
  std::vector<Vertex> items_;
  std::size_t head_ = 0;
  const bool* stop_;
};

/// Vertex filter: objects the predicate accepts.
struct Only {
  std::function<bool(Vertex)> accept;
  bool operator()(Vertex v) const { return accept(v); }
};

/// Collects every vertex a search discovers, in discovery order.
struct RecordDiscovered : boost::default_bfs_visitor {
  std::vector<ObjectId>* out = nullptr;
  template <class G>
  void discover_vertex(Vertex v, const G&) const {
    out->push_back(static_cast<ObjectId>(v));
  }
};

/// Sets `found` when the search discovers an object the mutator holds a reference to.
struct StopAtRooted : boost::default_bfs_visitor {
  const std::vector<std::uint32_t>* external = nullptr;
  bool* found = nullptr;
  template <class G>
  void discover_vertex(Vertex v, const G&) const {
    if ((*external)[v] > 0) *found = true;
  }
};

/// Records each discovered vertex's predecessor; sets `found` on reaching `target`.
struct RecordPredecessors : boost::default_bfs_visitor {
  std::vector<Vertex>* predecessor = nullptr;
  Vertex target = 0;
  bool* found = nullptr;
  template <class E, class G>
  void tree_edge(E e, const G& g) const {
    (*predecessor)[boost::target(e, g)] = boost::source(e, g);
    if (boost::target(e, g) == target) *found = true;
  }
};

std::string in_quotes(const std::string& name) { return "'" + name + "'"; }

}  // namespace

// ================================================================================================
// Search scratch space
// ================================================================================================

void SearchColors::begin(std::size_t vertices) {
  if (epoch_.size() < vertices) {
    epoch_.resize(vertices, 0);
    color_.resize(vertices, 0);
  }
  if (++current_ == 0) {  // the epoch counter wrapped: forget every old colour for real
    std::fill(epoch_.begin(), epoch_.end(), 0);
    current_ = 1;
  }
}

// ================================================================================================
// The mutator's rules
// ================================================================================================

std::string describe(const Refusal& refusal, const Op& op, const Names& names,
                     const Names& weak_names) {
  const std::string name = in_quotes(names[refusal.object]);
  switch (refusal.reason) {
    case Refusal::Reason::UnknownObject:
      return "unknown object " + name;
    case Refusal::Reason::NotFresh:
      return "duplicate name " + name;
    case Refusal::Reason::Unreachable:
      return "object " + name + " is unreachable (the mutator can only touch what it reaches)";
    case Refusal::Reason::MissingEdge:
      return name + " holds no reference to " + in_quotes(names[op.b]);
    case Refusal::Reason::NoReference:
      return "no external reference to " + name + " to drop";
    case Refusal::Reason::BadGeneration:
      return "bad generation " + std::to_string(op.generation) + " (expected 0, 1 or " +
             std::to_string(kOldestGeneration) + ")";
    case Refusal::Reason::BadThreshold:
      return "bad threshold (at most " + std::to_string(kMaxThreshold) + ")";
    case Refusal::Reason::SecondFinalizer:
      return name + " already has a finalizer";
    case Refusal::Reason::NotReachedFrom:
      return name + " does not reach " + in_quotes(names[op.b]) + " (a finalizer can only store "
             "what its object reaches)";
    case Refusal::Reason::UnknownWeak:
      return "unknown weak reference " + in_quotes(weak_names[op.weak]);
    case Refusal::Reason::NotFreshWeak:
      return "duplicate weak reference name " + in_quotes(weak_names[op.weak]);
  }
  return "invalid operation";
}

std::optional<Refusal> Oracle::refuse(const Op& op) const {
  using R = Refusal::Reason;
  const int arity = object_arity(op);
  if (op.kind == OpKind::New) {
    if (op.a < object_count()) return Refusal{R::NotFresh, op.a};
    if (op.a > object_count()) return Refusal{R::UnknownObject, op.a};
    return std::nullopt;
  }
  if (arity >= 1 && op.a >= object_count()) return Refusal{R::UnknownObject, op.a};
  if (arity >= 2 && op.b >= object_count()) return Refusal{R::UnknownObject, op.b};
  switch (op.kind) {
    case OpKind::Link:
      if (!reachable_from_roots(op.a)) return Refusal{R::Unreachable, op.a};
      if (!reachable_from_roots(op.b)) return Refusal{R::Unreachable, op.b};
      break;
    case OpKind::Unlink:
      if (!reachable_from_roots(op.a)) return Refusal{R::Unreachable, op.a};
      if (references(op.a, op.b) == 0) return Refusal{R::MissingEdge, op.a};
      break;
    case OpKind::Root:
      if (!reachable_from_roots(op.a)) return Refusal{R::Unreachable, op.a};
      break;
    case OpKind::Unroot:
      if (external_[op.a] == 0) return Refusal{R::NoReference, op.a};
      break;
    case OpKind::Collect:
      if (op.generation < 0 || op.generation > kOldestGeneration) {
        return Refusal{R::BadGeneration, 0};
      }
      break;
    case OpKind::Threshold:
      for (std::uint32_t t : op.thresholds) {
        if (t > kMaxThreshold) return Refusal{R::BadThreshold, 0};
      }
      break;
    case OpKind::Finalizer: {
      if (!reachable_from_roots(op.a)) return Refusal{R::Unreachable, op.a};
      if (has_finalizer(op.a)) return Refusal{R::SecondFinalizer, op.a};
      if (!op.option || op.b == op.a) break;
      const ObjectId from[] = {op.a};
      const auto reached = descendants(from, [this](ObjectId x) { return reachable_[x] != 0; });
      if (std::find(reached.begin(), reached.end(), op.b) == reached.end()) {
        return Refusal{R::NotReachedFrom, op.a};
      }
      break;
    }
    case OpKind::Weak:
      if (op.weak != weak_targets_.size()) return Refusal{R::NotFreshWeak, 0};
      if (!reachable_from_roots(op.a)) return Refusal{R::Unreachable, op.a};
      break;
    case OpKind::Deref:
      if (op.weak >= weak_targets_.size()) return Refusal{R::UnknownWeak, 0};
      break;
    case OpKind::New:
    case OpKind::Freeze:
    case OpKind::Unfreeze:
    case OpKind::Disable:
    case OpKind::Enable:
    case OpKind::Release:
      break;
  }
  return std::nullopt;
}

// ================================================================================================
// Applying an op
// ================================================================================================

void Oracle::apply(const Op& op) {
  assert(!refuse(op));
  newly_unreachable_.clear();
  switch (op.kind) {
    case OpKind::New: {
      const Vertex v = boost::add_vertex(graph_);
      (void)v;
      assert(v == op.a);
      external_.push_back(1);
      reachable_.push_back(1);
      finalizer_stores_.push_back(kNoFinalizer);
      finalizer_collects_.push_back(0);
      weak_by_target_.emplace_back();
      reachable_index_.push_back(0);
      rooted_index_.push_back(0);
      add_to(reachable_list_, reachable_index_, op.a);
      add_to(rooted_list_, rooted_index_, op.a);
      break;
    }
    case OpKind::Link:
      boost::add_edge(op.a, op.b, graph_);
      break;
    case OpKind::Unlink: {
      // Remove exactly one of possibly several parallel references.
      for (auto [e, end] = boost::out_edges(op.a, graph_); e != end; ++e) {
        if (boost::target(*e, graph_) == op.b) {
          boost::remove_edge(*e, graph_);
          break;
        }
      }
      forget_reachability_after_losing(op.b);
      break;
    }
    case OpKind::Root:
      if (external_[op.a]++ == 0) add_to(rooted_list_, rooted_index_, op.a);
      break;
    case OpKind::Unroot:
      if (--external_[op.a] == 0) {
        remove_from(rooted_list_, rooted_index_, op.a);
        forget_reachability_after_losing(op.a);
      }
      break;
    case OpKind::Finalizer:
      finalizer_stores_[op.a] = op.option ? op.b : kStoresNothing;
      finalizer_collects_[op.a] = op.collects ? 1 : 0;
      break;
    case OpKind::Weak:
      weak_targets_.push_back(op.a);
      weak_callbacks_.push_back(op.option ? 1 : 0);
      weak_by_target_[op.a].push_back(op.weak);
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

// Pre: `x` has just lost a reference (an edge into it, or its last external reference); before
// that, everything marked reachable was reachable.
// Post: exactly the objects that are no longer reachable are unmarked and listed in
// `newly_unreachable_`.
//
// Why this is enough: a previously reachable object p that does not descend from x keeps the path
// it had, since that path could not use the lost reference (else p would descend from x). So only
// x's descendants can become unreachable, and among them one stays reachable iff it is rooted or a
// reachable non-descendant refers to it, or it descends from such an object.
void Oracle::forget_reachability_after_losing(ObjectId x) {
  if (!reachable_[x]) return;
  const std::size_t n = object_count();
  const Only reachable{[this](Vertex v) { return reachable_[v] != 0; }};

  // 1. Backwards: a rooted ancestor proves x (and so all its descendants) still reachable. This
  //    usually stops after a few objects.
  bool found_root = false;
  {
    const auto reversed = boost::make_reverse_graph(graph_);  // the filter keeps a reference
    auto ancestors = boost::make_filtered_graph(reversed, boost::keep_all(), reachable);
    StoppableQueue queue(&found_root);
    colors_.begin(n);
    boost::breadth_first_visit(ancestors, Vertex{x}, queue,
                               StopAtRooted{{}, &external_, &found_root},
                               SearchColorMap{&colors_});
  }
  if (found_root) return;

  // 2. Forwards: x's reachable descendants D are the only candidates.
  std::vector<ObjectId> descendants;
  {
    auto heap = boost::make_filtered_graph(graph_, boost::keep_all(), reachable);
    StoppableQueue queue;
    colors_.begin(n);
    boost::breadth_first_visit(heap, Vertex{x}, queue, RecordDiscovered{{}, &descendants},
                               SearchColorMap{&colors_});
  }
  members_.begin(n);
  for (ObjectId d : descendants) members_.put(d, boost::black_color);

  // 3. Objects of D that stay reachable: those rooted or referred to from a reachable object
  //    outside D, and what they reach within D.
  std::vector<Vertex> still_reachable;
  for (ObjectId d : descendants) {
    bool keep = external_[d] > 0;
    for (auto [e, end] = boost::in_edges(d, graph_); !keep && e != end; ++e) {
      const Vertex from = boost::source(*e, graph_);
      keep = reachable_[from] && !members_.touched(from);
    }
    if (keep) still_reachable.push_back(d);
  }
  {
    const Only in_descendants{[this](Vertex v) { return members_.touched(v); }};
    auto within = boost::make_filtered_graph(graph_, boost::keep_all(), in_descendants);
    StoppableQueue queue;
    colors_.begin(n);
    boost::breadth_first_visit(within, still_reachable.begin(), still_reachable.end(), queue,
                               boost::default_bfs_visitor{}, SearchColorMap{&colors_});
  }

  // 4. The rest of D is garbage from now on.
  for (ObjectId d : descendants) {
    if (colors_.touched(d)) continue;
    reachable_[d] = 0;
    remove_from(reachable_list_, reachable_index_, d);
    newly_unreachable_.push_back(d);
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

// ================================================================================================
// Queries
// ================================================================================================

std::size_t Oracle::references(ObjectId from, ObjectId to) const {
  std::size_t count = 0;
  for (auto [e, end] = boost::out_edges(from, graph_); e != end; ++e) {
    count += boost::target(*e, graph_) == to;
  }
  return count;
}

std::vector<ObjectId> Oracle::referents(ObjectId from) const {
  std::vector<ObjectId> out;
  for (auto [e, end] = boost::out_edges(from, graph_); e != end; ++e) {
    out.push_back(static_cast<ObjectId>(boost::target(*e, graph_)));
  }
  return out;
}

std::vector<ObjectId> Oracle::garbage_ancestors(std::span<const ObjectId> from,
                                                const AlivePredicate& alive) const {
  const Only held_garbage{[&](Vertex v) { return !reachable_[v] && alive(v); }};
  std::vector<Vertex> sources;
  for (ObjectId x : from) {
    if (held_garbage(x)) sources.push_back(x);
  }
  std::vector<ObjectId> ancestors;
  const auto reversed = boost::make_reverse_graph(graph_);  // the filter keeps a reference
  auto referrers = boost::make_filtered_graph(reversed, boost::keep_all(), held_garbage);
  StoppableQueue queue;
  colors_.begin(object_count());
  boost::breadth_first_visit(referrers, sources.begin(), sources.end(), queue,
                             RecordDiscovered{{}, &ancestors}, SearchColorMap{&colors_});
  return ancestors;
}

std::vector<ObjectId> Oracle::descendants(std::span<const ObjectId> from,
                                          const AlivePredicate& through) const {
  const Only accepted{[&](Vertex v) { return through(static_cast<ObjectId>(v)); }};
  std::vector<Vertex> sources;
  for (ObjectId x : from) {
    if (through(x)) sources.push_back(x);
  }
  std::vector<ObjectId> found;
  auto heap = boost::make_filtered_graph(graph_, boost::keep_all(), accepted);
  StoppableQueue queue;
  colors_.begin(object_count());
  boost::breadth_first_visit(heap, sources.begin(), sources.end(), queue,
                             RecordDiscovered{{}, &found}, SearchColorMap{&colors_});
  return found;
}

// Within the ancestor set A (closed under "refers to" among held garbage), peel objects that
// nothing in A refers to, as reference counting would free them, until only objects that a cycle
// holds are left (Kahn's algorithm; Boost's topological_sort only reports that a cycle exists).
std::vector<ObjectId> Oracle::unheld_garbage(std::span<const ObjectId> candidates,
                                             const AlivePredicate& alive) const {
  const std::vector<ObjectId> ancestors = garbage_ancestors(candidates, alive);
  members_.begin(object_count());
  for (ObjectId v : ancestors) members_.put(v, boost::black_color);
  if (in_degree_.size() < object_count()) in_degree_.resize(object_count());

  std::vector<ObjectId> unheld;
  for (ObjectId v : ancestors) {
    std::uint32_t degree = 0;
    for (auto [e, end] = boost::in_edges(v, graph_); e != end; ++e) {
      degree += members_.touched(boost::source(*e, graph_));
    }
    in_degree_[v] = degree;
    if (degree == 0) unheld.push_back(v);
  }
  for (std::size_t i = 0; i < unheld.size(); ++i) {
    for (auto [e, end] = boost::out_edges(unheld[i], graph_); e != end; ++e) {
      const Vertex w = boost::target(*e, graph_);
      if (members_.touched(w) && --in_degree_[w] == 0) unheld.push_back(static_cast<ObjectId>(w));
    }
  }
  return unheld;
}

// ================================================================================================
// Explanations
// ================================================================================================

std::vector<ObjectId> Oracle::path_from_roots(ObjectId x) const {
  if (!reachable_[x]) return {};
  if (external_[x] > 0) return {x};
  std::vector<Vertex> predecessor(object_count());
  bool found = false;
  StoppableQueue queue(&found);
  colors_.begin(object_count());
  std::vector<Vertex> roots(rooted_list_.begin(), rooted_list_.end());
  boost::breadth_first_visit(graph_, roots.begin(), roots.end(), queue,
                             RecordPredecessors{{}, &predecessor, x, &found},
                             SearchColorMap{&colors_});
  std::vector<ObjectId> path{x};
  while (external_[path.back()] == 0) {
    path.push_back(static_cast<ObjectId>(predecessor[path.back()]));
  }
  std::reverse(path.begin(), path.end());
  return path;
}

Oracle::HoldingCycle Oracle::cycle_holding(ObjectId x, const AlivePredicate& alive) const {
  const ObjectId from[] = {x};
  const std::vector<ObjectId> ancestors = garbage_ancestors(from, alive);  // BFS order from x
  if (ancestors.empty()) return {};
  std::vector<std::uint8_t> in_ancestors(object_count(), 0);
  for (ObjectId v : ancestors) in_ancestors[v] = 1;
  const Only member{[&](Vertex v) { return in_ancestors[v] != 0; }};
  auto sub = boost::make_filtered_graph(graph_, boost::keep_all(), member);

  std::vector<int> component(object_count(), -1);
  boost::strong_components(
      sub, boost::make_iterator_property_map(component.begin(), get(boost::vertex_index, sub)));
  std::vector<int> component_size(object_count(), 0);
  for (ObjectId v : ancestors) ++component_size[component[v]];
  const auto on_cycle = [&](ObjectId v) {
    return component_size[component[v]] > 1 || references(v, v) > 0;
  };

  // The nearest ancestor on a cycle: ancestors are in breadth-first order from x.
  const auto nearest = std::find_if(ancestors.begin(), ancestors.end(), on_cycle);
  if (nearest == ancestors.end()) return {};
  const ObjectId start = *nearest;

  HoldingCycle result;
  // The cycle: a breadth-first search within start's component from start's referents back to
  // start.
  {
    const int c = component[start];
    const Only same_component{[&](Vertex v) { return in_ancestors[v] && component[v] == c; }};
    auto scc = boost::make_filtered_graph(graph_, boost::keep_all(), same_component);
    std::vector<Vertex> predecessor(object_count());
    std::vector<Vertex> sources;
    for (ObjectId r : referents(start)) {
      if (same_component(r) && std::find(sources.begin(), sources.end(), r) == sources.end()) {
        sources.push_back(r);
      }
    }
    if (references(start, start) > 0) {
      result.cycle = {start, start};
    } else {
      for (Vertex s : sources) predecessor[s] = start;
      bool found = false;
      StoppableQueue queue(&found);
      colors_.begin(object_count());
      boost::breadth_first_visit(scc, sources.begin(), sources.end(), queue,
                                 RecordPredecessors{{}, &predecessor, start, &found},
                                 SearchColorMap{&colors_});
      std::vector<ObjectId> back{start};
      do {
        back.push_back(static_cast<ObjectId>(predecessor[back.back()]));
      } while (back.back() != start);
      result.cycle.assign(back.rbegin(), back.rend());
    }
  }
  // The path from the cycle to x.
  {
    std::vector<Vertex> predecessor(object_count());
    bool found = start == x;
    StoppableQueue queue(&found);
    colors_.begin(object_count());
    boost::breadth_first_visit(sub, Vertex{start}, queue,
                               RecordPredecessors{{}, &predecessor, x, &found},
                               SearchColorMap{&colors_});
    std::vector<ObjectId> back{x};
    while (back.back() != start) back.push_back(static_cast<ObjectId>(predecessor[back.back()]));
    result.path.assign(back.rbegin(), back.rend());
  }
  return result;
}

}  // namespace cyclefuzz
