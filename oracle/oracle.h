// The reachability oracle: the true heap, built from the operation stream alone.
//
// The oracle knows nothing about any collector. It keeps the heap as a Boost.Graph graph (one
// vertex per object ever allocated, one edge per reference: parallel edges and self-loops are
// real edges) plus each object's count of external references, and it is the one definition of
// "reachable" in cyclefuzz:
//
//     an object is reachable iff a path of references leads to it from an object that the
//     mutator holds an external reference to.
//
// A weak-keyed map's entry (language/op.h) is a reference from the map to the value that counts
// only while its key is reachable: reachability is the least fixpoint of "rooted, or referred to
// by a reachable object, or the value of a reachable map's entry whose key is reachable" (an
// ephemeron's, which is also what the mutator of a strong-value map may touch).
//
// Invariant kept after every `apply`: `reachable_from_roots(x)` is exactly that definition. Only
// `unlink` and `unroot` can make objects unreachable, and an unreachable object never becomes
// reachable again (the mutator can only touch what it reaches), so the oracle maintains the
// reachable set incrementally. It keeps a *support forest*: every reachable object without an
// external reference has a parent, a reachable object that refers to it, and following parents
// always ends at a rooted object (a value supported through an entry also depends on the entry's
// key, which is then supported without it). Losing a reference that is not a parent's, or an
// external reference of an object that has a parent, changes nothing; otherwise only the objects
// whose support passed through the object that lost it (its subtree) are searched. No operation
// rescans the heap.
//
// Finalizers make each collector's heap a little different: a finalizer's program (Step) runs in
// each collector when that collector runs it, and may allocate objects and add references. So the
// graph also holds, per collector, the references its finalizers made (their owner is that
// collector's HeapView), and the objects finalizers allocate are vertices from the moment the
// trace names them. A finalizer only ever adds references from objects the mutator no longer
// reaches, so none of this changes what the mutator reaches: reachability is the mutator's, the
// same for every collector. The questions about one collector's garbage take its view.
//
// Files: oracle.cpp applies ops and keeps the support forest; rules.cpp is refuse(), the rules of
// the language that need the heap; searches.cpp answers the checks' and reports' questions.
#pragma once

#include <boost/graph/adjacency_list.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "language/op.h"

namespace cyclefuzz {

/// Whose heap a question is about: the mutator's references are in every collector's heap; a
/// reference a finalizer's `link` step made is only in the heap of the collector (numbered as in
/// its Session) that ran the finalizer.
using HeapView = std::uint16_t;
/// The mutator's references only: no collector's finalizer references.
inline constexpr HeapView kMutatorView = 0xFFFF;

/// Why the mutator may not perform an op: the rules of the trace language that need the heap.
struct Refusal {
  enum class Reason {
    UnknownObject,    // the op names an object that was never allocated
    NotFresh,         // `new` of an object id that is not the next one
    Unreachable,      // link/unlink/root of an object the mutator cannot reach
    MissingEdge,      // unlink a b where a holds no reference to b
    NoReference,      // unroot a where the mutator holds no reference to a
    BadGeneration,    // collect g with g outside 0..kOldestGeneration
    BadThreshold,     // threshold with a value above kMaxThreshold
    SecondFinalizer,  // finalizer a where a already has one
    LongProgram,      // a finalizer with more than kMaxSteps steps
    NotReachedFrom,   // a finalizer of a whose step names b, where a does not reach b (nor
                      // allocates it, earlier in its program)
    UnknownWeak,      // deref of a weak reference never taken
    NotFreshWeak,     // weak w a with w not the next weak reference
    NoEntry,          // unentry m k where m has no entry for k
    HolderGone,       // deref of a weak reference whose holder the mutator no longer reaches
    WeakNotReached,   // a finalizer's deref of a weak reference no object its object reaches holds
    Immutable,        // a reference added to or dropped from a tuple after it was made
    FullCell,         // link from a cell that already holds its one reference
    AlreadyInSet,     // link a b where a is a set that already refers to b
    AcyclicReference, // link from an acyclic object to one that is not an older acyclic object
    NotAMap,          // an entry in a tuple, a cell, an acyclic object or a set
    ProgramLink,      // a finalizer's link from a tuple, a cell, an acyclic object or a set
    LongTuple,        // a tuple made with more than kMaxItems references
    NotAllocatedByCallback,  // a callback's step names what it did not allocate
    NoCallback,       // a weak reference without a callback, with a program
    NotAnInstance,    // a finalizer, a weak reference or a map key: a tuple or an acyclic object
    NotAllocatedByProgram,  // a program's `finalizer x` step where x is not what it allocated
    ProgramWeak,      // the mutator's deref of a weak reference a program takes
    BadSize,          // a build of fewer than 2 or more than kMaxBuild objects (kMaxClique)
  };
  Reason reason;
  ObjectId object = 0;  // the object the rule is about (the referrer for MissingEdge); for
                        // BadThreshold, which of the three thresholds
  ObjectId other = 0;   // NotReachedFrom, NotAllocatedByProgram: what the step names;
                        // AcyclicReference, AlreadyInSet: the referent;
                        // WeakNotReached, NotFreshWeak, and UnknownWeak in a finalizer's step:
                        // the weak reference
  ObjectKind kind = ObjectKind::List;  // NotAMap, ProgramLink: the kind that refuses it
};

/// The problem part of an error message, e.g. "object 'b' is unreachable".
std::string describe(const Refusal& refusal, const Op& op, const Names& names,
                     const Names& weak_names = Names('w'));

/// Whether a collector still holds an object; the checks ask the oracle about one collector's view.
using AlivePredicate = std::function<bool(ObjectId)>;

/// A colour map for Boost's searches that is white everywhere at the start of every search in
/// O(1): a colour counts only if it was written in the current epoch. Searches then cost what they
/// visit, not the size of the heap.
class SearchColors {
 public:
  using value_type = boost::default_color_type;

  /// Starts a new search over a graph of `vertices` vertices: every colour becomes white.
  void begin(std::size_t vertices);
  value_type get(std::size_t v) const {
    return epoch_[v] == current_ ? value_type(color_[v]) : boost::white_color;
  }
  void put(std::size_t v, value_type c) {
    epoch_[v] = current_;
    color_[v] = static_cast<std::uint8_t>(c);
  }
  bool touched(std::size_t v) const { return epoch_[v] == current_; }

 private:
  std::vector<std::uint32_t> epoch_;
  std::vector<std::uint8_t> color_;
  std::uint32_t current_ = 0;
};

/// The property-map handle Boost's algorithms take by value.
struct SearchColorMap {
  using key_type = std::size_t;
  using value_type = boost::default_color_type;
  using reference = value_type;
  using category = boost::read_write_property_map_tag;
  SearchColors* colors = nullptr;
};
inline boost::default_color_type get(const SearchColorMap& m, std::size_t v) {
  return m.colors->get(v);
}
inline void put(const SearchColorMap& m, std::size_t v, boost::default_color_type c) {
  m.colors->put(v, c);
}

class Oracle {
 public:
  Oracle();

  /// A reference, and whose: kMutatorView for the mutator's, else the collector whose finalizer
  /// made it. A map entry's reference, from the map to the value, has its key.
  static constexpr ObjectId kNoKey = ~ObjectId{0};
  struct Reference {
    HeapView owner = kMutatorView;
    ObjectId key = kNoKey;
    std::uint64_t dropped = 0;  // bit v: collector v (its finalizers, or its own map) dropped it
                                // (views below 64)
  };
  using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::bidirectionalS,
                                      boost::no_property, Reference>;

  // ---- the mutator's rules and the one function that applies an op -------------------------

  /// Why `op` breaks a rule of the trace language in the current heap, or nothing if it is valid.
  std::optional<Refusal> refuse(const Op& op) const;
  /// Why a new reference from `from` to `to` breaks what from's kind promises, or nothing.
  std::optional<Refusal> refuse_reference(ObjectId from, ObjectId to) const;
  /// Why the program of a finalizer or a weak reference's callback breaks a rule, or nothing.
  std::optional<Refusal> refuse_program(const Op& op) const;

  /// Performs a valid op on the true heap. Precondition: `!refuse(op)`.
  void apply(const Op& op);

  /// The objects that the last `apply` made unreachable, in no particular order.
  const std::vector<ObjectId>& newly_unreachable() const { return newly_unreachable_; }

  // ---- the heap ------------------------------------------------------------------------------

  std::size_t object_count() const { return external_.size(); }
  bool reachable_from_roots(ObjectId x) const { return reachable_[x] != 0; }
  std::size_t reachable_count() const { return reachable_list_.size(); }
  std::uint32_t external_references(ObjectId x) const { return external_[x]; }
  /// How many references `from` holds to `to`, map entries not counted.
  std::size_t references(ObjectId from, ObjectId to) const;
  /// How many references `from` holds in the mutator's heap, map entries not counted.
  std::size_t references(ObjectId from) const;
  /// The targets of `from`'s references in `view`'s heap, one entry per reference.
  std::vector<ObjectId> referents(ObjectId from, HeapView view = kMutatorView) const;
  /// Calls f(target) for each of `from`'s references in `view`'s heap, and f(source) for each
  /// reference to `to`.
  template <class F>
  void for_each_referent(ObjectId from, HeapView view, F f) const {
    for (auto [e, end] = boost::out_edges(from, graph_); e != end; ++e) {
      if (sees(view, *e)) f(static_cast<ObjectId>(boost::target(*e, graph_)));
    }
  }
  template <class F>
  void for_each_referrer(ObjectId to, HeapView view, F f) const {
    for (auto [e, end] = boost::in_edges(to, graph_); e != end; ++e) {
      if (sees(view, *e)) f(static_cast<ObjectId>(boost::source(*e, graph_)));
    }
  }
  /// Whether reference e is in `view`'s heap: a map entry is, until that collector frees its key
  /// (for the mutator's view: while its key is reachable).
  bool sees(HeapView view, Graph::edge_descriptor e) const {
    const Reference& r = graph_[e];
    return made_in(view, e) && (r.key == kNoKey || key_alive(view, r.key)) &&
           (view >= kDroppable || (r.dropped >> view & 1) == 0);
  }
  /// Whether reference e was ever in `view`'s heap: the mutator's, or that collector's finalizers'
  /// (a map entry even after the collector freed its key).
  bool made_in(HeapView view, Graph::edge_descriptor e) const {
    const HeapView owner = graph_[e].owner;
    return owner == kMutatorView || owner == view;
  }
  bool key_alive(HeapView view, ObjectId key) const {
    if (view == kMutatorView) return reachable_[key] != 0;
    return view >= freed_keys_.size() || key >= freed_keys_[view].size() ||
           freed_keys_[view][key] == 0;
  }
  /// Every reference, every collector's included: filter with `sees`.
  const Graph& graph() const { return graph_; }

  /// Reachable objects and objects with external references, each in no particular order; for
  /// choosing one at random in O(1).
  const std::vector<ObjectId>& reachable_objects() const { return reachable_list_; }
  const std::vector<ObjectId>& rooted_objects() const { return rooted_list_; }

  /// Finalizers and weak references, as the trace registered them.
  bool has_finalizer(ObjectId x) const { return finalizer_[x] != kNoFinalizer; }
  /// x's finalizer's program. Pre: has_finalizer(x).
  const std::vector<Step>& finalizer_program(ObjectId x) const { return programs_[finalizer_[x]]; }
  /// Whether a finalizer's `new` step allocates x: the mutator never holds it, and it exists
  /// only in the collectors that ran that finalizer.
  bool born_in_finalizer(ObjectId x) const { return born_in_finalizer_[x] != 0; }
  std::size_t weak_count() const { return weak_targets_.size(); }
  ObjectId weak_target(WeakId w) const { return weak_targets_[w]; }
  bool weak_has_callback(WeakId w) const { return weak_callbacks_[w] != 0; }
  /// The weak references taken to x, in the order the trace took them.
  const std::vector<WeakId>& weak_references_to(ObjectId x) const { return weak_by_target_[x]; }
  /// The program of w's callback (often empty).
  const std::vector<Step>& callback_program(WeakId w) const { return weak_programs_[w]; }
  /// Whether a program's `weak` step takes w: it exists only in the collectors that ran the step,
  /// and the mutator never holds it.
  bool weak_in_program(WeakId w) const { return weak_in_program_[w] != 0; }
  /// The object that holds w (`weak w a in h`), or nothing when the mutator holds it.
  std::optional<ObjectId> weak_holder(WeakId w) const {
    return weak_holders_[w] == kNoHolder ? std::nullopt : std::optional(weak_holders_[w]);
  }
  /// The weak references the mutator can still dereference (its own, and those of objects it
  /// reaches), in no particular order; for choosing one at random in O(1).
  const std::vector<WeakId>& derefable_weak() const { return derefable_weak_; }
  /// w's place in derefable_weak(). Pre: w is there.
  std::size_t derefable_index(WeakId w) const { return derefable_index_[w]; }

  /// Weak-keyed maps: the value of m's entry for k in `view`'s heap (the mutator's, or what a
  /// collector's programs made of it), if it has one - whether or not that collector freed k.
  std::optional<ObjectId> entry_value(ObjectId map, ObjectId key,
                                      HeapView view = kMutatorView) const;
  /// Calls f(key, value) for each of map's entries in `view`'s heap, in the order they were made.
  template <class F>
  void for_each_entry(ObjectId map, F f, HeapView view = kMutatorView) const {
    for (auto [e, end] = boost::out_edges(map, graph_); e != end; ++e) {
      if (graph_[*e].key == kNoKey || !has_entry_edge(view, *e)) continue;
      f(graph_[*e].key, static_cast<ObjectId>(boost::target(*e, graph_)));
    }
  }
  /// The maps that have (or had, until the mutator dropped it) an entry for key k.
  const std::vector<ObjectId>& maps_keyed_by(ObjectId k) const { return maps_keyed_by_[k]; }
  /// The objects used as keys that the mutator still reaches, in no particular order.
  const std::vector<ObjectId>& keys() const { return keys_; }
  /// The objects used as keys that the mutator no longer reaches, in the order they died.
  const std::vector<ObjectId>& dead_keys() const { return dead_keys_; }
  /// Whether the trace ever made a map entry.
  bool has_maps() const { return !keys_.empty() || !dead_keys_.empty(); }
  /// Collector `view` freed x: the entries keyed by x are gone from its heap.
  void key_freed(HeapView view, ObjectId x);

  // ---- questions the checks ask about one collector's view ----------------------------------

  /// Reference counting frees an unreachable object as soon as no cycle holds it. Among the
  /// unreachable objects that `alive` says a collector still holds, returns those that no cycle
  /// of such objects holds (directly or through a chain of them), nor an entry of a map that
  /// `live_map` accepts (by default: one the mutator reaches) whose key the collector has not
  /// freed. Only the ancestors of `candidates` are searched, so the cost is theirs, not the heap's.
  std::vector<ObjectId> unheld_garbage(std::span<const ObjectId> candidates,
                                       const AlivePredicate& alive, HeapView view = kMutatorView,
                                       const AlivePredicate& live_map = nullptr) const;

  /// What the mutator reaches through `a` (a included, a reachable), in breadth-first order: what a
  /// finalizer of `a` may store or link (besides what it allocates); the `most` nearest only.
  std::vector<ObjectId> reached_through(ObjectId a, std::size_t most = SIZE_MAX) const;

  /// The objects reachable from `from` in `view`'s heap through references between objects that
  /// `through` accepts (those of `from` it accepts included), in breadth-first order.
  /// With `freed_keys`, the entries whose key that collector freed count too (what they kept when
  /// the op's collection saw them).
  std::vector<ObjectId> descendants(std::span<const ObjectId> from, const AlivePredicate& through,
                                    HeapView view = kMutatorView, bool freed_keys = false) const;
  /// Whether `to` is among descendants({from}, through, view); the search stops where it finds it.
  bool reaches(ObjectId from, ObjectId to, const AlivePredicate& through, HeapView view) const;
  /// As descendants, but a map entry's reference counts only once its key is live - reachable
  /// from the roots, accepted by `also_live`, or found by the search itself - and the entries of
  /// live maps count once the search finds their key: what ephemerons keep beyond the mutator's
  /// reach, given what else is known to be kept (`also_live`).
  std::vector<ObjectId> ephemeron_descendants(std::span<const ObjectId> from,
                                              const AlivePredicate& through, HeapView view,
                                              const AlivePredicate& also_live) const;

  /// A reference that collector `view`'s run of a finalizer made. Pre: the mutator does not
  /// reach `from` (so it never will again), and view != kMutatorView.
  void add_finalizer_reference(HeapView view, ObjectId from, ObjectId to);
  /// Collector `view`'s run of a program gives map m an entry k -> v, replacing the old one; false
  /// if view >= kDroppable (then the step is skipped). Pre as add_finalizer_reference, for m.
  bool set_finalizer_entry(HeapView view, ObjectId map, ObjectId key, ObjectId value);
  /// ... drops m's entry for k, if its heap has one (else, or if view >= kDroppable, false).
  bool drop_finalizer_entry(HeapView view, ObjectId map, ObjectId key);
  /// Collector `view` dropped m's entry for k itself (MapEntries::StrongValuesUntilKeyCleared),
  /// m reachable or not; false as drop_finalizer_entry.
  bool drop_entry(HeapView view, ObjectId map, ObjectId key);
  /// Collector `view`'s run of a finalizer drops one plain reference from `from` to `to` that its
  /// heap has; false if it has none, or if view >= kDroppable (then the step is skipped). Pre as
  /// add_finalizer_reference.
  bool drop_finalizer_reference(HeapView view, ObjectId from, ObjectId to);
  /// The collectors whose finalizers can drop references (Reference::dropped).
  static constexpr HeapView kDroppable = 64;
  /// What object x is (`new x KIND`; what a finalizer allocates is a list).
  ObjectKind kind_of(ObjectId x) const { return kinds_[x]; }
  /// Whether x may hold map entries: a list, a record or a dict.
  bool holds_entries(ObjectId x) const {
    return kinds_[x] == ObjectKind::List || kinds_[x] == ObjectKind::Record ||
           kinds_[x] == ObjectKind::Dict;
  }
  /// Whether x may have a finalizer, a weak reference to it (so key a weak-keyed map's entry),
  /// or hold one: not a tuple nor an acyclic object (as CPython's tuples and atomic objects have
  /// neither).
  bool is_instance(ObjectId x) const {
    return kinds_[x] != ObjectKind::Tuple && kinds_[x] != ObjectKind::Acyclic;
  }
  /// Whether x can never take part in a cycle, whatever the program does: an acyclic object, or
  /// a tuple of such objects (a tuple's references never change). Then a collector may leave it
  /// untracked, references and all.
  bool never_cyclic(ObjectId x) const { return never_cyclic_[x] != 0; }
  /// The weak references object x holds.
  const std::vector<WeakId>& weak_references_held_by(ObjectId x) const {
    return weak_by_holder_[x];
  }

  // ---- explanations for reports (each may cost the whole heap) ------------------------------

  /// A shortest path of references from a rooted object to `x`, both included; empty if `x` is
  /// unreachable.
  std::vector<ObjectId> path_from_roots(ObjectId x) const;

  /// A shortest path of references in `view`'s heap from one of `sources` to `x`, both included,
  /// through objects `through` accepts (the sources and x included); empty if there is none.
  std::vector<ObjectId> path_from(std::span<const ObjectId> sources, ObjectId x,
                                  const AlivePredicate& through, HeapView view) const;

  /// For an unreachable object `x` that a collector still holds: a cycle of such objects that
  /// holds `x` (first object repeated at the end), and the path from that cycle to `x` (starting
  /// on the cycle, ending at `x`; just `x` when `x` is on the cycle). Both empty if no cycle holds
  /// `x`. The cycle is found with Boost's strongly connected components.
  struct HoldingCycle {
    std::vector<ObjectId> cycle;
    std::vector<ObjectId> path;
  };
  HoldingCycle cycle_holding(ObjectId x, const AlivePredicate& alive,
                             HeapView view = kMutatorView) const;

 private:
  /// Pre: x is reachable and has neither an external reference nor a parent.
  void lose_support(ObjectId x);
  /// The subtree T of lose_support: x and what depends on it, as parent or as key.
  void collect_dependents(ObjectId x);
  /// The reference of m's entry for k, in `view`'s heap.
  std::optional<Graph::edge_descriptor> entry_edge(ObjectId map, ObjectId key,
                                                   HeapView view = kMutatorView) const;
  /// Whether e, an entry's reference, is in `view`'s heap (made there and not dropped), whatever
  /// its key.
  bool has_entry_edge(HeapView view, Graph::edge_descriptor e) const {
    return made_in(view, e) && (view >= kDroppable || (graph_[e].dropped >> view & 1) == 0);
  }
  /// Registers k as a key of map m (for the lists of keys).
  void add_key(ObjectId map, ObjectId key);
  /// Removes reference e; if it was what supported its target, the target loses that support.
  void remove_reference(Graph::edge_descriptor e);
  bool adopt_by_a_referrer(ObjectId x);
  void add_to(std::vector<ObjectId>& list, std::vector<std::uint32_t>& index, ObjectId x);
  void remove_from(std::vector<ObjectId>& list, std::vector<std::uint32_t>& index, ObjectId x);
  /// Ancestors of the given (unreachable, alive) objects among unreachable objects `alive`
  /// holds, the objects themselves included, in breadth-first order.
  std::vector<ObjectId> garbage_ancestors(std::span<const ObjectId> from,
                                          const AlivePredicate& alive, HeapView view) const;
  /// Allocates the vertex of object `id` (the next one), with the mutator's external reference
  /// or, for an object a finalizer allocates, without.
  void add_object(ObjectId id, bool rooted);
  /// Registers weak reference w (the next one), which the mutator can dereference unless a
  /// program takes it.
  void add_weak(WeakId w, ObjectId target, bool callback, std::optional<ObjectId> holder,
                std::vector<Step> program, bool in_program);
  /// What an op's program gives the heap as the trace names it: the objects it allocates, their
  /// finalizers, the weak references it takes (each exists only where the program runs).
  void add_program(const Op& op);

  Graph graph_;
  std::vector<std::uint32_t> external_;
  std::vector<std::uint8_t> reachable_;
  std::vector<ObjectId> reachable_list_, rooted_list_;
  std::vector<std::uint32_t> reachable_index_, rooted_index_;
  std::vector<ObjectId> newly_unreachable_;
  /// The support forest: for each reachable object, the object whose reference keeps it
  /// reachable, or kNoParent when an external reference does (or, for a rooted object, may).
  static constexpr ObjectId kNoParent = ~ObjectId{0};
  std::vector<ObjectId> parent_;
  /// For an object whose parent supports it through a map entry: that entry's key; else kNoKey.
  std::vector<ObjectId> parent_key_;
  std::vector<std::vector<ObjectId>> maps_keyed_by_;  // by key
  std::vector<ObjectId> keys_, dead_keys_;
  std::vector<std::uint32_t> key_index_;  // by object: its index in keys_
  std::vector<std::vector<std::uint8_t>> freed_keys_;  // by view, then key: the view freed it
  static constexpr std::uint32_t kNoFinalizer = ~std::uint32_t{0};
  std::vector<std::uint32_t> finalizer_;  // by object: its program's index in programs_
  std::vector<std::vector<Step>> programs_;
  std::vector<std::uint8_t> born_in_finalizer_;
  std::vector<ObjectId> weak_targets_;      // by weak reference
  std::vector<std::uint8_t> weak_callbacks_;
  std::vector<std::vector<WeakId>> weak_by_target_;  // by object
  static constexpr ObjectId kNoHolder = ~ObjectId{0};
  std::vector<ObjectId> weak_holders_;               // by weak reference
  std::vector<std::uint8_t> weak_in_program_;        // by weak reference
  std::vector<std::vector<Step>> weak_programs_;     // by weak reference: its callback's
  std::vector<std::vector<WeakId>> weak_by_holder_;  // by object
  std::vector<ObjectKind> kinds_;                    // by object
  std::vector<std::uint8_t> never_cyclic_;           // by object
  std::vector<WeakId> derefable_weak_;
  std::vector<std::uint32_t> derefable_index_;  // by weak reference

  // Scratch space for searches, reused so that a search costs what it visits.
  mutable SearchColors colors_, members_;
  mutable std::vector<std::uint32_t> in_degree_;
  std::vector<ObjectId> subtree_, supported_;
};

}  // namespace cyclefuzz
