// The scaffolding of the oracle's searches: Boost's breadth_first_visit over filtered views of
// the heap, with a queue that can stop early and visitors that record what a search found.
// Private to oracle/ (oracle.cpp, searches.cpp).
#pragma once

#include <boost/graph/breadth_first_search.hpp>
#include <vector>

#include "oracle/oracle.h"

namespace cyclefuzz::search {

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

/// Vertex filter: objects the predicate accepts. It points at the predicate, which outlives the
/// search: Boost copies a filter into every iterator it makes, and copying a std::function there
/// cost a few percent of every search (perf: std::function's _M_manager).
template <class Accept>
struct Only {
  const Accept* accept = nullptr;
  bool operator()(Vertex v) const { return (*accept)(v); }
};
template <class Accept>
Only<Accept> only(const Accept& accept) {
  return {&accept};
}

/// Edge filter: the references in one collector's heap (Oracle::sees), or ever in it
/// (Oracle::made_in).
struct InView {
  const Oracle* oracle = nullptr;
  HeapView view = kMutatorView;
  bool ever = false;
  bool operator()(Oracle::Graph::edge_descriptor e) const {
    return ever ? oracle->made_in(view, e) : oracle->sees(view, e);
  }
};

/// Collects every vertex a search discovers, in discovery order.
struct RecordDiscovered : boost::default_bfs_visitor {
  std::vector<ObjectId>* out = nullptr;
  template <class G>
  void discover_vertex(Vertex v, const G&) const {
    out->push_back(static_cast<ObjectId>(v));
  }
};

/// Sets `found` on reaching `target`.
struct Finds : boost::default_bfs_visitor {
  Vertex target = 0;
  bool* found = nullptr;
  template <class G>
  void discover_vertex(Vertex v, const G&) const {
    if (v == target) *found = true;
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

}  // namespace cyclefuzz::search
