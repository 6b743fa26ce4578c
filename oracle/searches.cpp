// The oracle's questions about one collector's heap, and its explanations for reports. Each search
// costs what it visits (SearchColors), never the heap; the explanations may cost the heap.
#include <algorithm>
#include <unordered_map>
#include <boost/graph/filtered_graph.hpp>
#include <boost/graph/reverse_graph.hpp>
#include <boost/graph/strong_components.hpp>
#include <boost/property_map/property_map.hpp>

#include "oracle/oracle.h"
#include "oracle/search.h"

namespace cyclefuzz {

using namespace search;

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
// Queries
// ================================================================================================

std::size_t Oracle::references(ObjectId from, ObjectId to) const {
  std::size_t count = 0;
  for (auto [e, end] = boost::out_edges(from, graph_); e != end; ++e) {
    count += boost::target(*e, graph_) == to && graph_[*e].key == kNoKey;
  }
  return count;
}

std::size_t Oracle::references(ObjectId from) const {
  std::size_t count = 0;
  for (auto [e, end] = boost::out_edges(from, graph_); e != end; ++e) {
    count += graph_[*e].key == kNoKey && sees(kMutatorView, *e);
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
  const auto is_held_garbage = [&](Vertex v) { return !reachable_[v] && alive(v); };
  const auto held_garbage = only(is_held_garbage);
  std::vector<Vertex> sources;
  for (ObjectId x : from) {
    if (held_garbage(x)) sources.push_back(x);
  }
  std::vector<ObjectId> ancestors;
  if (sources.empty()) return ancestors;  // (most ops: nothing they touched is held garbage)
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

// The search stops once it has found `most` (a big structure below a then costs no more).
std::vector<ObjectId> Oracle::reached_through(ObjectId a, std::size_t most) const {
  const auto accepts = [this](Vertex v) { return reachable_[v] != 0; };
  const auto accepted = only(accepts);
  std::vector<ObjectId> found;
  bool enough = most == 0;
  auto heap = boost::make_filtered_graph(graph_, InView{this, kMutatorView, false}, accepted);
  StoppableQueue queue(&enough);
  colors_.begin(object_count());
  const Vertex source = a;
  struct UpTo : boost::default_bfs_visitor {
    std::vector<ObjectId>* out;
    std::size_t most;
    bool* enough;
    void discover_vertex(Vertex v, const decltype(heap)&) const {
      if (*enough) return;
      out->push_back(static_cast<ObjectId>(v));
      *enough = out->size() >= most;
    }
  };
  boost::breadth_first_visit(heap, &source, &source + 1, queue, UpTo{{}, &found, most, &enough},
                             SearchColorMap{&colors_});
  return found;
}

std::vector<ObjectId> Oracle::descendants(std::span<const ObjectId> from,
                                          const AlivePredicate& through, HeapView view,
                                          bool freed_keys) const {
  const auto accepts = [&](Vertex v) { return through(static_cast<ObjectId>(v)); };
  const auto accepted = only(accepts);
  std::vector<Vertex> sources;
  for (ObjectId x : from) {
    if (through(x)) sources.push_back(x);
  }
  std::vector<ObjectId> found;
  auto heap = boost::make_filtered_graph(graph_, InView{this, view, freed_keys}, accepted);
  StoppableQueue queue;
  colors_.begin(object_count());
  boost::breadth_first_visit(heap, sources.begin(), sources.end(), queue,
                             RecordDiscovered{{}, &found}, SearchColorMap{&colors_});
  return found;
}

bool Oracle::reaches(ObjectId from, ObjectId to, const AlivePredicate& through,
                     HeapView view) const {
  if (!through(from) || !through(to)) return false;
  const auto accepts = [&](Vertex v) { return through(static_cast<ObjectId>(v)); };
  const auto accepted = only(accepts);
  auto heap = boost::make_filtered_graph(graph_, InView{this, view}, accepted);
  bool found = from == to;
  StoppableQueue queue(&found);
  colors_.begin(object_count());
  const Vertex source = from;
  boost::breadth_first_visit(heap, &source, &source + 1, queue, Finds{{}, to, &found},
                             SearchColorMap{&colors_});
  return found;
}

// A breadth-first search by hand: an entry found before its key waits in `waiting` (by key) until
// the key is found, if ever. Live objects (the mutator's, `also_live`) count as found: the entries
// of a live map follow the keys the search finds.
std::vector<ObjectId> Oracle::ephemeron_descendants(std::span<const ObjectId> from,
                                                    const AlivePredicate& through,
                                                    HeapView view,
                                                    const AlivePredicate& also_live) const {
  std::vector<ObjectId> found;
  std::unordered_map<ObjectId, std::vector<ObjectId>> waiting;
  colors_.begin(object_count());
  const auto discover = [&](ObjectId y) {
    if (colors_.touched(y) || !through(y)) return;
    colors_.put(y, boost::black_color);
    found.push_back(y);
  };
  const auto live = [&](ObjectId y) {
    return reachable_[y] != 0 || colors_.touched(y) || also_live(y);
  };
  for (ObjectId x : from) discover(x);
  for (std::size_t i = 0; i < found.size(); ++i) {
    const ObjectId y = found[i];
    for (auto [e, end] = boost::out_edges(y, graph_); e != end; ++e) {
      if (!sees(view, *e)) continue;
      const auto to = static_cast<ObjectId>(boost::target(*e, graph_));
      const ObjectId key = graph_[*e].key;
      if (key == kNoKey || live(key)) {
        discover(to);
      } else {
        waiting[key].push_back(to);
      }
    }
    if (const auto it = waiting.find(y); it != waiting.end()) {
      for (ObjectId to : it->second) discover(to);
      waiting.erase(it);
    }
    for (ObjectId map : maps_keyed_by_[y]) {
      if (!live(map)) continue;
      const std::optional<Graph::edge_descriptor> e = entry_edge(map, y, view);
      if (e && sees(view, *e)) discover(static_cast<ObjectId>(boost::target(*e, graph_)));
    }
  }
  return found;
}

// Within the ancestor set A (closed under "refers to" among held garbage), peel objects that
// nothing in A refers to, as reference counting would free them, until only objects that a cycle
// holds are left (Kahn's algorithm; Boost's topological_sort only reports that a cycle exists).
//
// An entry of a live map, whose key is garbage the collector has not freed yet, holds its value
// too: the map lives, and only the key's death drops the entry, which for a cycle through the key
// takes a collection (a reference-counting collector that keeps ephemerons counts the entry's
// value until then).
std::vector<ObjectId> Oracle::unheld_garbage(std::span<const ObjectId> candidates,
                                             const AlivePredicate& alive, HeapView view,
                                             const AlivePredicate& live_map) const {
  const auto lives = [&](ObjectId map) {
    return live_map ? live_map(map) : reachable_[map] != 0;
  };
  const std::vector<ObjectId> ancestors = garbage_ancestors(candidates, alive, view);
  if (ancestors.empty()) return {};
  members_.begin(object_count());
  for (ObjectId v : ancestors) members_.put(v, boost::black_color);
  if (in_degree_.size() < object_count()) in_degree_.resize(object_count());

  std::vector<ObjectId> unheld;
  for (ObjectId v : ancestors) {
    std::uint32_t degree = 0;
    for (auto [e, end] = boost::in_edges(v, graph_); e != end; ++e) {
      if (!sees(view, *e)) continue;
      const auto from = static_cast<ObjectId>(boost::source(*e, graph_));
      degree += members_.touched(from) || (graph_[*e].key != kNoKey && lives(from));
    }
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
  return path_from(rooted_list_, x, [this](ObjectId y) { return reachable_[y] != 0; },
                   kMutatorView);
}

std::vector<ObjectId> Oracle::path_from(std::span<const ObjectId> sources, ObjectId x,
                                        const AlivePredicate& through, HeapView view) const {
  if (!through(x)) return {};
  std::vector<Vertex> starts;
  for (ObjectId s : sources) {
    if (s == x) return {x};
    if (through(s)) starts.push_back(s);
  }
  const auto accepts = [&](Vertex v) { return through(static_cast<ObjectId>(v)); };
  const auto accepted = only(accepts);
  auto heap = boost::make_filtered_graph(graph_, InView{this, view}, accepted);
  std::vector<Vertex> predecessor(object_count());
  bool found = false;
  StoppableQueue queue(&found);
  colors_.begin(object_count());
  boost::breadth_first_visit(heap, starts.begin(), starts.end(), queue,
                             RecordPredecessors{{}, &predecessor, x, &found},
                             SearchColorMap{&colors_});
  if (!found) return {};
  std::sort(starts.begin(), starts.end());
  std::vector<ObjectId> path{x};
  while (!std::binary_search(starts.begin(), starts.end(), path.back())) {
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
  const auto is_member = [&](Vertex v) { return in_ancestors[v] != 0; };
  const auto member = only(is_member);
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
    const auto in_the_component = [&](Vertex v) { return in_ancestors[v] && component[v] == c; };
    const auto same_component = only(in_the_component);
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
  // The path from the cycle to x, within the ancestors.
  const ObjectId cycle_entry[] = {start};
  result.path = path_from(cycle_entry, x, [&](ObjectId v) { return in_ancestors[v] != 0; }, view);
  return result;
}

}  // namespace cyclefuzz
