#include "reports/heap_picture.h"

#include <algorithm>
#include <boost/graph/graphviz.hpp>
#include <boost/property_map/function_property_map.hpp>
#include <map>
#include <sstream>

#include "checker/lane.h"
#include "reports/report.h"

namespace cyclefuzz {

namespace {

using Graph = HeapPicture::Graph;
using Vertex = Graph::vertex_descriptor;
using Attributes = std::map<std::string, std::string>;

/// The objects worth drawing, most important first, each once.
class Selection {
 public:
  explicit Selection(std::size_t objects) : listed_(objects, 0) {}

  void add(ObjectId x) {
    if (x < listed_.size() && !listed_[x]) {
      listed_[x] = 1;
      order_.push_back(x);
    }
  }
  template <class Objects>
  void add_all(const Objects& objects) {
    for (ObjectId x : objects) add(x);
  }
  /// Breadth-first from everything listed so far: adds each object that `neighbours(x, add)`
  /// offers for a listed x, nearest first.
  template <class Neighbours>
  void spread(Neighbours neighbours) {
    for (std::size_t i = 0; i < order_.size(); ++i) {
      neighbours(order_[i], [this](ObjectId y) { add(y); });
    }
  }
  const std::vector<ObjectId>& order() const { return order_; }

 private:
  std::vector<std::uint8_t> listed_;
  std::vector<ObjectId> order_;
};

/// "rc 2", "rc 3 (oracle 2)", "roots 2 (oracle 1)": the collector's count, shown where it means
/// something the picture does not already show.
std::string count_line(CountMeaning meaning, std::uint64_t count, std::uint64_t expected) {
  const std::string wrong = count != expected ? " (oracle " + std::to_string(expected) + ")" : "";
  switch (meaning) {
    case CountMeaning::References:
      return "rc " + std::to_string(count) + wrong;
    case CountMeaning::External:  // the double circles show the right number
      return wrong.empty() ? "" : "roots " + std::to_string(count) + wrong;
    case CountMeaning::None:
      break;
  }
  return "";
}

/// A caption line short enough to read above a picture: a path through a long chain keeps its
/// two ends, which the picture itself shows.
std::string shortened(const std::string& line) {
  constexpr std::size_t kKept = 70;
  if (line.size() <= 2 * kKept + 5) return line;
  return line.substr(0, kKept) + " ... " + line.substr(line.size() - kKept);
}

/// Builds the picture of one collector in a session, after the session's last op.
class Painter {
 public:
  Painter(const Session& session, std::size_t collector, const Trace& trace, bool ask_collector)
      : session_(session),
        collector_(collector),
        view_(static_cast<HeapView>(collector)),
        trace_(trace),
        oracle_(session.oracle()),
        lane_(session.lane(collector)),
        capabilities_(session.collector(collector).capabilities()),
        violations_(violations_at_last_op()),
        ask_collector_(ask_collector),
        vertex_(oracle_.object_count(), kNone) {}

  HeapPicture paint(std::size_t limit) {
    const std::vector<ObjectId> relevant = choose();
    std::vector<ObjectId> kept(relevant.begin(),
                               relevant.begin() + std::min(limit, relevant.size()));
    std::sort(kept.begin(), kept.end());  // a stable layout: objects in allocation order
    for (ObjectId x : kept) add_node(x, object_node(x));
    for (ObjectId x : kept) add_external_references(x);
    add_list(kept);
    for (ObjectId x : kept) add_weak_references(x);
    for (ObjectId x : kept) add_references(x);
    for (const Violation* v : violations_) {
      const Highlight h =
          v->kind == ViolationKind::PrematureFree ? Highlight::Path : Highlight::Cycle;
      highlight(v->path, h);
      highlight(v->cycle, h);
    }
    picture_.objects_shown = kept.size();
    picture_.objects_relevant = relevant.size();
    write_caption();
    return std::move(picture_);
  }

 private:
  static constexpr Vertex kNone = static_cast<Vertex>(-1);

  /// The collector's violations at the session's last op: one op can break several rules (a
  /// leak after a full collection is also a wrong count), and each explains part of the picture.
  std::vector<const Violation*> violations_at_last_op() const {
    std::vector<const Violation*> found;
    for (const Violation& v : session_.violations()) {
      if (v.collector == collector_ && v.op_index + 1 == session_.ops_run()) found.push_back(&v);
    }
    return found;
  }
  /// Whether a violation of one of `kinds` (all kinds when empty) names x.
  bool named_by_violation(ObjectId x, std::initializer_list<ViolationKind> kinds = {}) const {
    return std::any_of(violations_.begin(), violations_.end(), [&](const Violation* v) {
      return (kinds.size() == 0 || std::find(kinds.begin(), kinds.end(), v->kind) != kinds.end()) &&
             std::find(v->objects.begin(), v->objects.end(), x) != v->objects.end();
    });
  }
  bool holds(ObjectId x) const { return lane_.holds(x); }
  /// Whether the collector freed x too soon, as the checker found: the program reaches x, or the
  /// op's premature free names it. (A key that only its own entry's value kept is not live once
  /// freed: the entry went with it.)
  bool freed_too_soon(ObjectId x) const {
    return !holds(x) && (lane_.live(x) || named_by_violation(x, {ViolationKind::PrematureFree}));
  }
  /// Whether the collector may be asked about x: the picture asks it at all, it holds x and
  /// everything x refers to, and no entry of x's has a key it freed too soon. (A collector's
  /// record of an object that refers to a freed one may lead into freed memory: its `inspect`
  /// reads the referent to name it. A collector drops an entry as it frees the entry's key,
  /// which the oracle's view takes on trust; one that frees a key too soon may have kept the
  /// entry, with its key or its value freed under it.)
  bool readable(ObjectId x) const {
    if (!ask_collector_ || !holds(x)) return false;
    bool safe = true;
    oracle_.for_each_referent(x, view_, [&](ObjectId y) { safe = safe && holds(y); });
    oracle_.for_each_entry(
        x, [&](ObjectId key, ObjectId) { safe = safe && !freed_too_soon(key); }, view_);
    return safe;
  }
  /// Adds a node; an object's own node (not a marker) becomes its vertex.
  Vertex add_node(ObjectId x, PictureNode node) {
    const Vertex v = boost::add_vertex(picture_.graph);
    if (node.marker == Marker::None) vertex_[x] = v;
    picture_.graph[v] = std::move(node);
    return v;
  }

  /// Everything worth drawing, most important first.
  std::vector<ObjectId> choose() const {
    Selection chosen(oracle_.object_count());
    const bool has_op = session_.ops_run() > 0;
    const Op* op = has_op ? &trace_.ops[session_.ops_run() - 1] : nullptr;
    const auto touched_by_op = [&] {
      if (op == nullptr) return;
      for_each_own_object(*op, [&](ObjectId x, Slot) { chosen.add(x); });
      const auto& frees = session_.frees_per_op(collector_);  // recorded only on request
      if (!frees.empty()) chosen.add_all(frees.back());
    };

    if (violations_.empty()) {
      // No violation: the whole heap, starting from what the op touched and spreading along
      // references in both directions, so that a cut keeps the op's neighbourhood.
      touched_by_op();
      chosen.add_all(oracle_.rooted_objects());
      chosen.spread([&](ObjectId x, auto add) {
        oracle_.for_each_referent(x, view_, add);
        oracle_.for_each_referrer(x, view_, add);
      });
      for (ObjectId x = 0; x < oracle_.object_count(); ++x) {  // what nothing reaches
        if (session_.allocated(collector_, x)) chosen.add(x);
      }
      return chosen.order();
    }

    // What explains each violation: its first object, the path to it (nearest first), the cycle.
    for (const Violation* v : violations_) {
      if (!v->objects.empty()) chosen.add(v->objects.front());
      chosen.add_all(std::vector<ObjectId>(v->path.rbegin(), v->path.rend()));
      chosen.add_all(v->cycle);
      // A bookkeeping error is about the references of its object: draw both ends of each.
      if (v->kind == ViolationKind::WrongBookkeeping && !v->objects.empty() &&
          readable(v->objects.front())) {
        chosen.add_all(oracle_.referents(v->objects.front(), view_));
        ObjectView view;
        session_.collector(collector_).inspect(v->objects.front(), view);
        chosen.add_all(view.references);
      }
    }
    for (const Violation* v : violations_) chosen.add_all(v->objects);
    chosen.add_all(lane_.resurrected);  // the list is a root: its entries explain what it keeps
    // Every reachable object on a path from an external reference to those: their reachable
    // ancestors, nearest first.
    chosen.spread([&](ObjectId x, auto add) {
      oracle_.for_each_referrer(x, view_, [&](ObjectId from) {
        if (oracle_.reachable_from_roots(from)) add(from);
      });
    });
    touched_by_op();
    return chosen.order();
  }

  PictureNode object_node(ObjectId x) const {
    PictureNode node;
    node.object = x;
    node.concerned = named_by_violation(x);
    // Live as the checker sees it (checker/lane.h): what the mutator or the program's list of
    // resurrected objects reaches. Freeing that was premature, whichever of them reaches it.
    const bool live = lane_.live(x);
    node.label = trace_.names[x];
    if (oracle_.kind_of(x) != ObjectKind::List) {
      node.label += std::string(" (") + keyword(oracle_.kind_of(x)) + ")";
    }
    if (oracle_.born_in_finalizer(x)) node.label += "\nnew in a finalizer";
    node.frozen = lane_.frozen.contains(x);
    if (!holds(x)) {
      node.state = freed_too_soon(x) ? ObjectState::PrematurelyFreed : ObjectState::Freed;
      return node;
    }
    const bool should_be_gone =
        named_by_violation(x, {ViolationKind::Leak, ViolationKind::LateFree});
    node.state = live             ? ObjectState::Live
                 : should_be_gone ? ObjectState::Leaked
                                  : ObjectState::Garbage;
    if (!readable(x)) return node;
    ObjectView view;
    session_.collector(collector_).inspect(x, view);
    const std::string count =
        count_line(capabilities_.count, view.count, lane_.expected_count(x));
    if (!count.empty()) node.label += "\n" + count;
    if (capabilities_.generations > 1 && !capabilities_.young_collections_are_steps) {
      node.label += "\ngen " + std::to_string(view.generation);
    }
    return node;
  }

  void add_external_references(ObjectId x) {
    const std::uint32_t n = oracle_.external_references(x);
    if (n == 0) return;
    PictureNode marker;
    marker.marker = Marker::External;
    marker.object = x;
    marker.label = n > 1 ? "\u00d7" + std::to_string(n) : "";
    const Vertex r = add_node(x, std::move(marker));
    // The path that reaches a prematurely freed object starts at an external reference.
    const bool on_path = std::any_of(violations_.begin(), violations_.end(), [x](const auto* v) {
      return v->kind == ViolationKind::PrematureFree && !v->path.empty() && v->path.front() == x;
    });
    boost::add_edge(
        r, vertex_[x],
        PictureEdge{ReferenceState::External, on_path ? Highlight::Path : Highlight::None},
        picture_.graph);
  }

  /// The program's list of resurrected objects, as the root it is: one node, an edge to each of
  /// its drawn entries (one per entry), the first of the path that explains a premature free
  /// highlighted.
  void add_list(const std::vector<ObjectId>& drawn) {
    std::vector<ObjectId> entries;
    for (ObjectId x : lane_.resurrected) {
      if (std::binary_search(drawn.begin(), drawn.end(), x)) entries.push_back(x);
    }
    if (entries.empty()) return;
    PictureNode list;
    list.marker = Marker::List;
    list.label = "list";
    const Vertex l = add_node(0, std::move(list));
    const bool explains = std::any_of(violations_.begin(), violations_.end(), [](const auto* v) {
      return v->kind == ViolationKind::PrematureFree && v->detail == kFreedWhileListed &&
             !v->path.empty();
    });
    bool highlighted = false;
    for (ObjectId x : entries) {
      const bool on_path = explains && !highlighted &&
                           std::any_of(violations_.begin(), violations_.end(),
                                       [x](const auto* v) { return v->path.front() == x; });
      highlighted = highlighted || on_path;
      boost::add_edge(
          l, vertex_[x],
          PictureEdge{ReferenceState::Listed, on_path ? Highlight::Path : Highlight::None},
          picture_.graph);
    }
  }

  /// The weak references to x: a marker each, with a dotted edge to x, crossed out once this
  /// collector cleared it; and an edge from its holder, if drawn.
  void add_weak_references(ObjectId x) {
    for (WeakId w : oracle_.weak_references_to(x)) {
      if (w >= lane_.weak.size() || lane_.weak[w] == Lane::WeakState::NotTaken) continue;
      PictureNode marker;
      marker.marker = Marker::Weak;
      marker.object = w;
      marker.cleared = lane_.weak[w] != Lane::WeakState::Set;
      marker.label = trace_.weak_names[w] + (oracle_.weak_has_callback(w) ? "\ncallback" : "");
      const Vertex m = add_node(x, std::move(marker));
      boost::add_edge(m, vertex_[x], PictureEdge{ReferenceState::Weak, Highlight::None},
                      picture_.graph);
      if (const auto h = oracle_.weak_holder(w); h && vertex_[*h] != kNone) {
        boost::add_edge(vertex_[*h], m, PictureEdge{ReferenceState::HoldsWeak, Highlight::None},
                        picture_.graph);
      }
    }
  }

  /// x's references to drawn objects: the oracle's against the collector's view, as multisets.
  void add_references(ObjectId x) {
    std::map<ObjectId, std::pair<std::size_t, std::size_t>> counts;  // target: (oracle, view)
    for (ObjectId t : oracle_.referents(x, view_)) {
      if (vertex_[t] != kNone) ++counts[t].first;
    }
    // The entries whose key the collector freed too soon: the oracle's view let them go with the
    // key, but the checker's path runs through them (the program reached the key by them).
    oracle_.for_each_entry(
        x,
        [&](ObjectId key, ObjectId value) {
          if (freed_too_soon(key) && vertex_[value] != kNone) ++counts[value].first;
        },
        view_);
    const bool read = readable(x);
    if (holds(x) && !read) ++unread_;
    if (read) {
      ObjectView view;
      session_.collector(collector_).inspect(x, view);
      for (ObjectId t : view.references) {
        if (t >= oracle_.object_count()) {
          ++unknown_references_;
        } else if (vertex_[t] != kNone) {
          ++counts[t].second;
        }
      }
    }
    const auto add = [&](ObjectId t, std::size_t n, ReferenceState state) {
      for (std::size_t i = 0; i < n; ++i) {
        boost::add_edge(vertex_[x], vertex_[t], PictureEdge{state, Highlight::None},
                        picture_.graph);
      }
      if (n > 0 && state == ReferenceState::MissingInCollector) has_missing_ = true;
      if (n > 0 && state == ReferenceState::OnlyInCollector) has_only_in_collector_ = true;
    };
    for (const auto& [t, n] : counts) {
      const auto [in_oracle, in_view] = n;
      if (!holds(x)) {
        add(t, in_oracle, ReferenceState::FromFreed);
        continue;
      }
      if (!read) {
        add(t, in_oracle, ReferenceState::Unread);
        continue;
      }
      const std::size_t agreed = std::min(in_oracle, in_view);
      add(t, agreed, ReferenceState::Agreed);
      add(t, in_oracle - agreed, ReferenceState::MissingInCollector);
      add(t, in_view - agreed, ReferenceState::OnlyInCollector);
    }
    label_entries(x);
  }

  /// x's map entries in this collector's heap: each drawn reference to an entry's value that the
  /// oracle knows of gets the entry's key, one reference per entry.
  void label_entries(ObjectId x) {
    if (vertex_[x] == kNone) return;
    Graph& g = picture_.graph;
    oracle_.for_each_entry(x, [&](ObjectId key, ObjectId value) {
      if (vertex_[value] == kNone || !oracle_.key_alive(view_, key)) return;
      for (auto [e, end] = boost::out_edges(vertex_[x], g); e != end; ++e) {
        PictureEdge& edge = g[*e];
        if (boost::target(*e, g) == vertex_[value] && edge.key.empty() &&
            edge.state != ReferenceState::OnlyInCollector) {
          edge.key = "[" + trace_.names[key] + "]";
          break;
        }
      }
    }, view_);
  }

  /// Highlights one real reference between each pair of consecutive drawn objects of `walk`.
  void highlight(const std::vector<ObjectId>& walk, Highlight h) {
    Graph& g = picture_.graph;
    for (std::size_t i = 0; i + 1 < walk.size(); ++i) {
      const Vertex from = vertex_[walk[i]], to = vertex_[walk[i + 1]];
      if (from == kNone || to == kNone) continue;
      for (auto [e, end] = boost::out_edges(from, g); e != end; ++e) {
        PictureEdge& edge = g[*e];
        if (boost::target(*e, g) == to && edge.state != ReferenceState::OnlyInCollector &&
            edge.highlight == Highlight::None) {
          edge.highlight = h;
          break;
        }
      }
    }
  }

  void write_caption() {
    std::vector<std::string>& caption = picture_.caption;
    caption.push_back(trace_.source);
    const std::string& name = session_.collector_name(collector_);
    for (const Violation* v : violations_) {
      std::ostringstream printed;
      print_violation(printed, trace_, session_, *v);
      std::istringstream text(printed.str());
      for (std::string line; std::getline(text, line);) {
        caption.push_back(
            shortened(line.substr(std::min(line.find_first_not_of(' '), line.size()))));
      }
    }
    if (violations_.empty()) {
      caption.push_back(session_.ops_run() > 0
                            ? name + ": the heap after " + where(trace_, session_.ops_run() - 1) +
                                  "; no violation"
                            : name + ": the heap before the first op");
    }
    if (picture_.objects_shown < picture_.objects_relevant) {
      caption.push_back("cut to the neighbourhood of " +
                        std::string(violations_.empty() ? "the op" : "the violation") + ": " +
                        std::to_string(picture_.objects_shown) + " of " +
                        std::to_string(picture_.objects_relevant) + " objects shown");
    }
    if (has_missing_) caption.push_back("dashed: a reference the collector's view lacks");
    if (has_only_in_collector_) caption.push_back("doubled: a reference only its view has");
    if (!ask_collector_) {
      caption.push_back("nothing read from the collector (asking it about its heap crashed): "
                        "dotted grey, the oracle's references");
    } else if (unread_ > 0) {
      caption.push_back("dotted grey: the references of " + std::to_string(unread_) +
                        " objects that refer to freed ones, not read from the collector");
    }
    if (unknown_references_ > 0) {
      caption.push_back("its view also names " + std::to_string(unknown_references_) +
                        " objects that were never allocated");
    }
  }

  const Session& session_;
  std::size_t collector_;
  HeapView view_;  // its heap: its finalizers' references too
  const Trace& trace_;
  const Oracle& oracle_;
  const Lane& lane_;
  const Capabilities& capabilities_;
  const std::vector<const Violation*> violations_;
  const bool ask_collector_;
  std::vector<Vertex> vertex_;  // by object id: its node, or kNone when not drawn
  HeapPicture picture_;
  bool has_missing_ = false, has_only_in_collector_ = false;
  std::size_t unknown_references_ = 0;
  std::size_t unread_ = 0;  // held objects whose view was not read
};

// ---- DOT: how each kind of node and edge looks --------------------------------------------------

/// Graphviz reads `\` in a label as the start of an escape (`\n`, `\l`): keep the text literal
/// and turn line breaks into `separator`.
std::string label_text(const std::string& text, const char* separator) {
  std::string out;
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += separator;
    } else {
      out += c;
    }
  }
  return out;
}

Attributes node_attributes(const PictureNode& node) {
  switch (node.marker) {
    case Marker::External:
      return {{"shape", "doublecircle"}, {"label", node.label}, {"width", "0.3"},
              {"fixedsize", "true"},     {"fontsize", "9"},     {"tooltip", "external reference"}};
    case Marker::List:
      return {{"shape", "box"},     {"label", node.label},  {"color", "blue"},
              {"fontcolor", "blue"}, {"fontsize", "10"},
              {"tooltip", "the program's list of resurrected objects"}};
    case Marker::Weak:
      return {{"shape", "diamond"},
              {"label", label_text(node.label + "\n", "\\n")},
              {"fontsize", "9"},
              {"style", node.cleared ? "dashed" : "solid"},
              {"color", node.cleared ? "grey60" : "black"},
              {"tooltip", node.cleared ? "weak reference, cleared" : "weak reference"}};
    case Marker::None:
      break;
  }
  // Every line ends with a line break, which Graphviz draws the same, so that Boost always
  // quotes the label: its escape_dot_string leaves a DOT keyword (an object named `node`) bare,
  // and dot rejects that.
  Attributes a = {{"label", label_text(node.label + "\n", "\\n")}};
  std::string style = "filled";
  switch (node.state) {
    case ObjectState::Live:
      a["fillcolor"] = "white";
      break;
    case ObjectState::Garbage:
      a["fillcolor"] = "white";
      style += ",dotted";
      break;
    case ObjectState::PrematurelyFreed:
      a["fillcolor"] = "red";
      break;
    case ObjectState::Leaked:
      a["fillcolor"] = "orange";
      break;
    case ObjectState::Freed:
      a["fillcolor"] = "lightgrey";
      a["color"] = "grey60";
      a["fontcolor"] = "grey40";
      break;
  }
  if (node.frozen) a["color"] = "blue";
  if (node.concerned) {
    style += ",bold";
    a["penwidth"] = "3";
  }
  a["style"] = style;
  return a;
}

/// How each kind of reference looks, in ReferenceState's order ("": Graphviz's default).
struct Look {
  const char* color;
  const char* style;
  const char* arrowhead;
  const char* tooltip;
};
constexpr Look kReferenceLooks[] = {
    {"", "", "", ""},                                                   // Agreed
    {"", "dashed", "", "missing from the collector's view"},           // MissingInCollector
    {"blue:invis:blue", "", "", "only in the collector's view"},       // OnlyInCollector: two lines
    {"grey60", "", "", ""},                                             // FromFreed
    {"grey60", "dotted", "",  // Unread
     "not read from the collector: the object refers to a freed one"},
    {"", "", "", ""},                                                   // External
    {"blue", "", "", "an entry of the program's list"},                // Listed
    {"", "dotted", "odiamond", "weak reference"},                      // Weak
    {"", "", "odot", "holds this weak reference (it goes when its holder is freed)"},  // HoldsWeak
};
static_assert(std::size(kReferenceLooks) ==
              static_cast<std::size_t>(ReferenceState::HoldsWeak) + 1);

Attributes edge_attributes(const PictureEdge& edge) {
  const Look& look = kReferenceLooks[static_cast<std::size_t>(edge.state)];
  Attributes a;
  if (!edge.key.empty()) a["label"] = edge.key;
  for (const auto& [key, value] : {std::pair{"color", look.color}, std::pair{"style", look.style},
                                   std::pair{"arrowhead", look.arrowhead},
                                   std::pair{"tooltip", look.tooltip}}) {
    if (*value != '\0') a[key] = value;
  }
  if (edge.highlight != Highlight::None) {  // what explains the violation: the path, the cycle
    a["color"] = edge.highlight == Highlight::Path ? "red" : "orange";
    a["penwidth"] = "2.5";
  }
  return a;
}

/// `o<id>` an object, `r<id>` its external references, `w<id>` a weak reference, `list` the list.
std::string node_id(const PictureNode& node) {
  switch (node.marker) {
    case Marker::None:
      return "o" + std::to_string(node.object);
    case Marker::External:
      return "r" + std::to_string(node.object);
    case Marker::Weak:
      return "w" + std::to_string(node.object);
    case Marker::List:
      break;
  }
  return "list";
}

}  // namespace

HeapPicture picture_heap(const Session& session, std::size_t collector, const Trace& trace,
                         std::size_t limit, bool ask_collector) {
  return Painter(session, collector, trace, ask_collector).paint(limit);
}

void write_dot(std::ostream& out, const HeapPicture& picture) {
  const Graph& g = picture.graph;
  const auto ids = boost::make_function_property_map<Vertex, std::string>(
      [&g](Vertex v) { return node_id(g[v]); });
  const auto nodes = boost::make_function_property_map<Vertex, Attributes>(
      [&g](Vertex v) { return node_attributes(g[v]); });
  const auto edges = boost::make_function_property_map<Graph::edge_descriptor, Attributes>(
      [&g](Graph::edge_descriptor e) { return edge_attributes(g[e]); });
  std::string caption;
  for (const std::string& line : picture.caption) caption += label_text(line, "") + "\\l";
  const Attributes graph = {
      {"label", caption}, {"labelloc", "t"}, {"labeljust", "l"}, {"fontname", "Helvetica"}};
  const Attributes node_defaults = {{"fontname", "Helvetica"}};
  const Attributes edge_defaults = {{"arrowsize", "0.7"}};
  boost::write_graphviz(out, g, boost::attributes_writer<decltype(nodes)>(nodes),
                        boost::attributes_writer<decltype(edges)>(edges),
                        boost::make_graph_attributes_writer(graph, node_defaults, edge_defaults),
                        ids);
}

}  // namespace cyclefuzz
