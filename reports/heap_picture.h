// A picture of the heap at a violation, for a person: the oracle's heap against one collector's
// own view of it (its references and counts, from Collector::inspect), cut to what explains the
// violation, written as Graphviz DOT by Boost.Graph's write_graphviz.
//
// How it is drawn (docs/diagnostics.md):
//   double circle       the mutator's external references to the object it points at
//   white               a live object: reachable, and held by the collector
//   red                 freed while still reachable (premature free); red edges: the path from an
//                       external reference that reaches it
//   orange              unreachable and still held where it should be gone (leak, late free);
//                       orange edges: the cycle that holds it, and the path from that cycle
//   grey                freed, rightly
//   dotted outline      unreachable and still held, not (yet) a violation: awaiting collection
//   bold outline        an object the violation names
//   solid edge          a reference the oracle's heap and the collector's view agree on
//   dashed edge         a reference in the oracle's heap that the collector's view lacks
//   doubled blue edge   a reference only the collector's view has
//   grey edge           a reference from a freed object (the collector has no view of it)
//   grey dotted edge    a reference from an object whose view is not read: it refers to a freed
//                       object, and reading a collector's record of it could read freed memory
//   box "list"          the program's list of resurrected objects: as live a root as the mutator's
//                       references, with blue edges to its entries
//   blue outline        frozen by gc.freeze(); "new in a finalizer": allocated by a finalizer
//   diamond, dotted edge  a weak reference to its target (crossed out once the collector cleared it)
// Labels carry the collector's count ("rc 2"; "rc 3 (oracle 2)" when it is wrong) and generation.
//
// What is kept: the objects the violation names, the path or cycle that explains it, every
// reachable object on a path from an external reference to them, and the objects the op touched
// or freed; without a violation, the whole heap. The states come from the checker's predicates
// (checker/lane.h), so the picture shows what the checker sees; the collector is asked about an
// object only while it holds it and everything it refers to. Beyond the limit, the objects nearest the
// violation are kept and the caption says how many were left out.
#pragma once

#include <boost/graph/adjacency_list.hpp>
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "checker/session.h"
#include "language/trace.h"

namespace cyclefuzz {

/// What an object is in the picture; each state has its own colour.
enum class ObjectState : std::uint8_t {
  Live,              // reachable and held
  Garbage,           // unreachable and held, not (yet) a violation
  PrematurelyFreed,  // freed while reachable
  Leaked,            // unreachable and held, and the violation says it should be gone
  Freed,             // freed and unreachable
};

/// What a reference is: the oracle's heap against the collector's view of it.
enum class ReferenceState : std::uint8_t {
  Agreed,              // in both
  MissingInCollector,  // in the oracle's heap only
  OnlyInCollector,     // in the collector's view only
  FromFreed,           // from an object the collector freed, which it can no longer show
  Unread,              // from an object whose view is not read: it refers to a freed object, and
                       // a collector's record of it may lead into freed memory
  External,            // from the mutator: an external reference
  Listed,              // from the program's list of resurrected objects: an entry
  Weak,                // a weak reference to its target (it keeps nothing alive)
  HoldsWeak,           // from the object that holds a weak reference to that weak reference
};

/// What a node stands for: an object, or something outside the heap that refers into it.
enum class Marker : std::uint8_t {
  None,      // an object
  External,  // the mutator's external references to `object`
  List,      // the program's list of resurrected objects (one node)
  Weak,      // weak reference number `object` (a WeakId)
};

/// Edges that explain the violation.
enum class Highlight : std::uint8_t {
  None,
  Path,   // the path from an external reference to a prematurely freed object
  Cycle,  // the cycle that holds a leaked object, and the path from it
};

struct PictureNode {
  Marker marker = Marker::None;
  ObjectId object = 0;  // the object (or, for a weak-reference marker, the weak reference)
  ObjectState state = ObjectState::Live;
  bool concerned = false;  // named by the violation
  bool frozen = false;     // frozen by the last gc.freeze(): the collector may not collect it
  bool cleared = false;    // a weak-reference marker: the collector cleared it
  std::string label;       // lines separated by '\n'
};

struct PictureEdge {
  ReferenceState state = ReferenceState::Agreed;
  Highlight highlight = Highlight::None;
  std::string key;  // a map entry's reference: its key's name, drawn on the edge ("[k]")
};

struct HeapPicture {
  using Graph =
      boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS, PictureNode, PictureEdge>;
  Graph graph;
  std::vector<std::string> caption;  // what the picture shows, line by line
  std::size_t objects_shown = 0;
  std::size_t objects_relevant = 0;  // before the cut
};

/// How many objects a picture shows at most by default: more is unreadable.
inline constexpr std::size_t kDefaultPictureLimit = 60;

/// Pictures collector `collector` of `session` as they stand now, after the session's last op,
/// explaining the collector's violation at that op if it had one. Pre: the collector ran that op
/// (it was not retired before it), so its heap and the oracle's describe the same moment. The
/// objects the op freed are drawn too when the session records frees (CheckOptions). Without
/// `ask_collector`, nothing is read from the collector (counts, generations, its references): the
/// picture is the oracle's and the checker's alone, for a collector that crashed when asked.
HeapPicture picture_heap(const Session& session, std::size_t collector, const Trace& trace,
                         std::size_t limit = kDefaultPictureLimit, bool ask_collector = true);

/// The picture as Graphviz DOT (`o<id>` is object id's node, `r<id>` its external references).
void write_dot(std::ostream& out, const HeapPicture& picture);

}  // namespace cyclefuzz
