#include "oracle/oracle.h"

#include <boost/graph/filtered_graph.hpp>
#include <cassert>

#include "oracle/search.h"

namespace cyclefuzz {

using namespace search;

namespace {

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

}  // namespace

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

}  // namespace cyclefuzz
