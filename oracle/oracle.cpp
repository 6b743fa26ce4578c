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

/// Edge filter: the references in one collector's heap (Oracle::sees).
struct InView {
  const Oracle* oracle = nullptr;
  HeapView view = kMutatorView;
  bool operator()(Oracle::Graph::edge_descriptor e) const { return oracle->sees(view, e); }
};

/// Collects every vertex a search discovers, in discovery order.
struct RecordDiscovered : boost::default_bfs_visitor {
  std::vector<ObjectId>* out = nullptr;
  template <class G>
  void discover_vertex(Vertex v, const G&) const {
    out->push_back(static_cast<ObjectId>(v));
  }
};

/// Edge filter: the edges of the support forest that carry support from an object without
/// external references (a rooted object supports its subtree whatever happens above it): from a
/// reachable object to a reachable object whose parent it is.
struct SupportEdge {
  const Oracle::Graph* graph = nullptr;
  const std::vector<ObjectId>* parent = nullptr;
  const std::vector<std::uint8_t>* reachable = nullptr;
  const std::vector<std::uint32_t>* external = nullptr;
  bool operator()(Oracle::Graph::edge_descriptor e) const {
    const Vertex from = boost::source(e, *graph);
    const Vertex to = boost::target(e, *graph);
    return (*external)[from] == 0 && (*reachable)[to] && (*parent)[to] == from;
  }
};

/// Makes the source of each tree edge of a search the parent of its target.
struct RecordParents : boost::default_bfs_visitor {
  std::vector<ObjectId>* parent = nullptr;
  template <class E, class G>
  void tree_edge(E e, const G& g) const {
    (*parent)[boost::target(e, g)] = static_cast<ObjectId>(boost::source(e, g));
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
    case Refusal::Reason::LongProgram:
      return "the finalizer of " + name + " has " + std::to_string(op.steps.size()) +
             " steps (at most " + std::to_string(kMaxSteps) + ")";
    case Refusal::Reason::NotReachedFrom:
      return name + " does not reach " + in_quotes(names[refusal.other]) + " (a finalizer can "
             "only touch what its object reaches, and what it allocates itself)";
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
      if (op.steps.size() > kMaxSteps) return Refusal{R::LongProgram, op.a};
      // Its steps name what a reaches now (the finalizer skips what a no longer reaches when it
      // runs) or what an earlier step allocated.
      std::vector<ObjectId> usable;
      bool searched = false;
      ObjectId next = static_cast<ObjectId>(object_count());
      const auto refuse_name = [&](ObjectId x) -> std::optional<Refusal> {
        if (x >= next) return Refusal{R::UnknownObject, x};
        if (x >= object_count()) return std::nullopt;  // allocated by an earlier step
        if (!searched) {
          usable = reached_through(op.a);
          searched = true;
        }
        if (std::find(usable.begin(), usable.end(), x) == usable.end()) {
          return Refusal{R::NotReachedFrom, op.a, x};
        }
        return std::nullopt;
      };
      for (const Step& step : op.steps) {
        std::optional<Refusal> refusal;
        switch (step.kind) {
          case StepKind::New:
            if (step.a < next) return Refusal{R::NotFresh, step.a};
            if (step.a > next) return Refusal{R::UnknownObject, step.a};
            ++next;
            break;
          case StepKind::Link:
            refusal = refuse_name(step.a);
            if (!refusal) refusal = refuse_name(step.b);
            break;
          case StepKind::Resurrect:
            refusal = refuse_name(step.a);
            break;
          case StepKind::Collect:
            break;
        }
        if (refusal) return refusal;
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
    case OpKind::New:
      add_object(op.a, true);
      break;
    case OpKind::Link:
      boost::add_edge(op.a, op.b, Reference{}, graph_);
      break;
    case OpKind::Unlink: {
      // Remove exactly one of possibly several parallel references.
      for (auto [e, end] = boost::out_edges(op.a, graph_); e != end; ++e) {
        if (boost::target(*e, graph_) == op.b) {
          boost::remove_edge(*e, graph_);
          break;
        }
      }
      if (parent_[op.b] == op.a && references(op.a, op.b) == 0) {
        parent_[op.b] = kNoParent;
        if (external_[op.b] == 0) lose_support(op.b);
      }
      break;
    }
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
      for (ObjectId x : allocated_by(op)) add_object(x, false);
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

void Oracle::add_object(ObjectId id, bool rooted) {
  const Vertex v = boost::add_vertex(graph_);
  (void)v;
  assert(v == id);
  external_.push_back(rooted ? 1 : 0);
  reachable_.push_back(rooted ? 1 : 0);
  parent_.push_back(kNoParent);
  finalizer_.push_back(kNoFinalizer);
  born_in_finalizer_.push_back(rooted ? 0 : 1);
  weak_by_target_.emplace_back();
  reachable_index_.push_back(0);
  rooted_index_.push_back(0);
  if (rooted) {
    add_to(reachable_list_, reachable_index_, id);
    add_to(rooted_list_, rooted_index_, id);
  }
}

void Oracle::add_finalizer_reference(HeapView view, ObjectId from, ObjectId to) {
  assert(view != kMutatorView && !reachable_[from]);
  boost::add_edge(from, to, Reference{view}, graph_);
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
bool Oracle::adopt_by_a_referrer(ObjectId x) {
  constexpr int kBudget = 16;  // parent steps, over all the referrers tried
  int steps = 0;
  for (auto [e, end] = boost::in_edges(x, graph_); e != end; ++e) {
    const auto p = static_cast<ObjectId>(boost::source(*e, graph_));
    if (!reachable_[p]) continue;
    ObjectId c = p;
    while (c != x && parent_[c] != kNoParent && ++steps <= kBudget) c = parent_[c];
    if (steps > kBudget) return false;
    if (c != x) {
      parent_[x] = p;
      return true;
    }
  }
  return false;
}

// Pre: the support forest held before the op (every reachable object is rooted or has a parent,
// a reachable object that refers to it, and parents lead to rooted objects); then `x` lost the
// external reference or the parent's reference that supported it, and has neither now.
// Post: exactly the objects that are no longer reachable are unmarked and listed in
// `newly_unreachable_`, in the order of a breadth-first search from x; the forest holds again.
//
// Why searching x's subtree T is enough: an object outside T keeps its chain of parents to a
// rooted object, which does not pass through x. Among T, an object stays reachable iff it is
// rooted, or a reachable object outside T refers to it, or it descends within T from such an
// object. If x stays reachable so does all of T (x reaches it through forest edges); otherwise
// every object that dies is reached from x through objects that die (a surviving object on the
// way would keep it alive).
void Oracle::lose_support(ObjectId x) {
  assert(reachable_[x] && external_[x] == 0 && parent_[x] == kNoParent);
  if (adopt_by_a_referrer(x)) return;
  const std::size_t n = object_count();

  // 1. T: x and the objects supported through it, along forest edges, up to rooted objects.
  subtree_.clear();
  {
    auto forest = boost::make_filtered_graph(
        graph_, SupportEdge{&graph_, &parent_, &reachable_, &external_});
    StoppableQueue queue;
    colors_.begin(n);
    boost::breadth_first_visit(forest, Vertex{x}, queue, RecordDiscovered{{}, &subtree_},
                               SearchColorMap{&colors_});
  }
  members_.begin(n);
  for (ObjectId v : subtree_) members_.put(v, boost::black_color);

  // 2. The objects of T supported from outside it: rooted, or referred to by a reachable object
  //    outside T, which becomes their parent.
  supported_.clear();
  for (ObjectId v : subtree_) {
    parent_[v] = kNoParent;
    bool supported = external_[v] > 0;
    for (auto [e, end] = boost::in_edges(v, graph_); !supported && e != end; ++e) {
      const Vertex from = boost::source(*e, graph_);
      if (reachable_[from] && !members_.touched(from)) {
        parent_[v] = static_cast<ObjectId>(from);
        supported = true;
      }
    }
    if (supported) supported_.push_back(v);
  }

  // 3. What they reach within T stays reachable, and is supported along the search's tree edges.
  {
    const Only in_subtree{[this](Vertex v) { return members_.touched(v); }};
    auto within = boost::make_filtered_graph(graph_, boost::keep_all(), in_subtree);
    StoppableQueue queue;
    colors_.begin(n);
    boost::breadth_first_visit(within, supported_.begin(), supported_.end(), queue,
                               RecordParents{{}, &parent_}, SearchColorMap{&colors_});
  }
  if (colors_.touched(x)) return;  // x stays reachable, and with it all of T

  // 4. The rest of T is garbage from now on, listed in breadth-first order from x.
  members_.begin(n);
  for (ObjectId v : subtree_) {
    if (!colors_.touched(v)) members_.put(v, boost::black_color);
  }
  {
    const Only dying{[this](Vertex v) { return members_.touched(v); }};
    auto garbage = boost::make_filtered_graph(graph_, boost::keep_all(), dying);
    StoppableQueue queue;
    colors_.begin(n);
    boost::breadth_first_visit(garbage, Vertex{x}, queue, RecordDiscovered{{}, &newly_unreachable_},
                               SearchColorMap{&colors_});
  }
  for (ObjectId d : newly_unreachable_) {
    reachable_[d] = 0;
    remove_from(reachable_list_, reachable_index_, d);
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

std::vector<ObjectId> Oracle::referents(ObjectId from, HeapView view) const {
  std::vector<ObjectId> out;
  for_each_referent(from, view, [&out](ObjectId to) { out.push_back(to); });
  return out;
}

std::vector<ObjectId> Oracle::garbage_ancestors(std::span<const ObjectId> from,
                                                const AlivePredicate& alive, HeapView view) const {
  const Only held_garbage{[&](Vertex v) { return !reachable_[v] && alive(v); }};
  std::vector<Vertex> sources;
  for (ObjectId x : from) {
    if (held_garbage(x)) sources.push_back(x);
  }
  std::vector<ObjectId> ancestors;
  // (Each adaptor keeps a reference to the one below it.)
  const auto heap = boost::make_filtered_graph(graph_, InView{this, view});
  const auto reversed = boost::make_reverse_graph(heap);
  auto referrers = boost::make_filtered_graph(reversed, boost::keep_all(), held_garbage);
  StoppableQueue queue;
  colors_.begin(object_count());
  boost::breadth_first_visit(referrers, sources.begin(), sources.end(), queue,
                             RecordDiscovered{{}, &ancestors}, SearchColorMap{&colors_});
  return ancestors;
}

std::vector<ObjectId> Oracle::reached_through(ObjectId a) const {
  const ObjectId from[] = {a};
  return descendants(from, [this](ObjectId x) { return reachable_[x] != 0; });
}

std::vector<ObjectId> Oracle::descendants(std::span<const ObjectId> from,
                                          const AlivePredicate& through, HeapView view) const {
  const Only accepted{[&](Vertex v) { return through(static_cast<ObjectId>(v)); }};
  std::vector<Vertex> sources;
  for (ObjectId x : from) {
    if (through(x)) sources.push_back(x);
  }
  std::vector<ObjectId> found;
  auto heap = boost::make_filtered_graph(graph_, InView{this, view}, accepted);
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
                                             const AlivePredicate& alive, HeapView view) const {
  const std::vector<ObjectId> ancestors = garbage_ancestors(candidates, alive, view);
  members_.begin(object_count());
  for (ObjectId v : ancestors) members_.put(v, boost::black_color);
  if (in_degree_.size() < object_count()) in_degree_.resize(object_count());

  std::vector<ObjectId> unheld;
  for (ObjectId v : ancestors) {
    std::uint32_t degree = 0;
    for_each_referrer(v, view, [&](ObjectId from) { degree += members_.touched(from); });
    in_degree_[v] = degree;
    if (degree == 0) unheld.push_back(v);
  }
  for (std::size_t i = 0; i < unheld.size(); ++i) {
    for_each_referent(unheld[i], view, [&](ObjectId w) {
      if (members_.touched(w) && --in_degree_[w] == 0) unheld.push_back(w);
    });
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

Oracle::HoldingCycle Oracle::cycle_holding(ObjectId x, const AlivePredicate& alive,
                                           HeapView view) const {
  const ObjectId from[] = {x};
  const std::vector<ObjectId> ancestors = garbage_ancestors(from, alive, view);  // BFS from x
  if (ancestors.empty()) return {};
  std::vector<std::uint8_t> in_ancestors(object_count(), 0);
  for (ObjectId v : ancestors) in_ancestors[v] = 1;
  const Only member{[&](Vertex v) { return in_ancestors[v] != 0; }};
  auto sub = boost::make_filtered_graph(graph_, InView{this, view}, member);

  std::vector<int> component(object_count(), -1);
  boost::strong_components(
      sub, boost::make_iterator_property_map(component.begin(), get(boost::vertex_index, sub)));
  std::vector<int> component_size(object_count(), 0);
  for (ObjectId v : ancestors) ++component_size[component[v]];
  const auto self_references = [&](ObjectId v) {
    const std::vector<ObjectId> targets = referents(v, view);
    return std::count(targets.begin(), targets.end(), v);
  };
  const auto on_cycle = [&](ObjectId v) {
    return component_size[component[v]] > 1 || self_references(v) > 0;
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
    auto scc = boost::make_filtered_graph(graph_, InView{this, view}, same_component);
    std::vector<Vertex> predecessor(object_count());
    std::vector<Vertex> sources;
    for (ObjectId r : referents(start, view)) {
      if (same_component(r) && std::find(sources.begin(), sources.end(), r) == sources.end()) {
        sources.push_back(r);
      }
    }
    if (self_references(start) > 0) {
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
