// The one vocabulary of cyclefuzz: a heap mutation.
//
// An `Op` comes from a text trace (trace.h), from fuzzer bytes and from the generators
// (generator.h); every consumer sees the same type. `show(op)` prints exactly the trace line that
// the parser reads back, so anything the harness reports can be replayed.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace cyclefuzz {

/// Objects are numbered in the order the trace names them: by `new` ops and by finalizers' `new`
/// steps (an object a finalizer allocates exists only in the collectors that run that finalizer).
using ObjectId = std::uint32_t;
/// Weak references have their own names, numbered in the order the trace creates them.
using WeakId = std::uint32_t;

/// Generations are 0, 1 and 2, as in CPython. `collect` with no argument means `collect 2`: a full
/// collection. A collector without generations treats every `collect` as a full one.
inline constexpr int kOldestGeneration = 2;

/// What an object is (`new a KIND`): a small generic set that the model collectors treat alike
/// but for what a kind promises, and that a runtime may map to its own types.
enum class ObjectKind : std::uint8_t {
  List,     // a container (the default): any references, changed at will
  Record,   // an object with named fields (an instance with a __dict__, a PHP object)
  Dict,     // a dictionary
  Cell,     // a closure cell: at most one reference at a time
  Tuple,    // an immutable sequence: its references are given when it is made, and never change
  Acyclic,  // promised never to be part of a cycle: it refers only to older acyclic objects (as
            // Nim's {.acyclic.} types, or CPython's atomic objects), so a collector may skip it
  Set,      // a set: at most one reference to each object, in no order (a Python set, PHP's
            // SplObjectStorage, a Lua table whose keys are its members)
};

/// The most references a tuple is made with.
inline constexpr std::size_t kMaxItems = 8;

enum class OpKind : std::uint8_t {
  New,      // new a [KIND]: allocate a; the mutator holds one external reference to it
            // (new t tuple b c ...: t refers to b, c, ... from the start, and only to them)
  Link,     // link a b: a gains one reference to b
  Unlink,   // unlink a b: a drops one of its references to b
  Root,     // root a: the mutator takes one more external reference to a
  Unroot,   // unroot a: the mutator drops one of its external references to a
  Collect,    // collect [g]: collect generations 0..g
  Threshold,  // threshold t0 t1 t2: automatic collection thresholds, as gc.set_threshold()
  Freeze,     // freeze: every object allocated so far is frozen: no collection frees it
  Unfreeze,   // unfreeze: frozen objects are collectable again (in the oldest generation)
  Disable,    // disable: no automatic collection (collect still works), as gc.disable()
  Enable,     // enable: automatic collection again, as gc.enable()
  Finalizer,  // finalizer a [step...]: a gets a finalizer, a small program (Step) that runs when
              // a collector finalizes a
  Release,    // release: the program empties its list of resurrected objects
  Weak,       // weak w a [callback] [in h]: the mutator (or object h) takes weak reference w to
              // a; one that h holds goes when h is freed (a weakref object h refers to)
  Deref,      // deref w: the mutator checks w (alive while a is reachable, cleared once freed)
  Entry,      // entry m k v: m's entry for key k is now v (a weak-keyed map entry; see below)
  Unentry,    // unentry m k: m drops its entry for key k
  Build,      // build s SHAPE n: n new objects in a shape (below); the mutator holds s alone
};

/// The shape `build s SHAPE n` gives its n objects, s (member 0) and s_1 .. s_(n-1) (lists), the
/// mutator holding only s: a chain (member i refers to i + 1), a ring (the chain, and the last
/// refers to s), a tree (i refers to 2i + 1 and 2i + 2), a fan (s refers to each other member), a
/// clique (each refers to every other) or a star (s and each other member refer to each other: s
/// has n - 1 referrers, so counts kept in a few bits overflow). Every member is reachable from
/// s. Ordinary ops then abandon it, hang it off live data, cut it or close it; the op is one line
/// however large, so that a counterexample shrinks by its size (runners/minimize.h), not op by
/// op.
enum class Shape : std::uint8_t { Chain, Ring, Tree, Fan, Clique, Star };

/// The most objects one `build` makes (a clique: kMaxClique, for its n(n-1) references).
inline constexpr std::uint32_t kMaxBuild = 1'000'000;
inline constexpr std::uint32_t kMaxClique = 256;

// Weak-keyed maps. Any object can hold entries, at most one per key: `entry m k v` makes v the
// value of m's entry for k (replacing the old value), `unentry m k` drops it. The entry does not
// keep its key alive, and it is gone once the key is freed. Whether it keeps its value alive
// depends on the collector (Capabilities::map_entries): an *ephemeron* keeps v only while m
// and k are both reachable (Lua's weak-keyed tables, JavaScript's WeakMap); a *strong-value* map
// keeps v while m is reachable and k not yet freed (CPython's weakref.WeakKeyDictionary: a cycle
// from v back to k then leaks until the entry is dropped). What the mutator reaches is the same
// for both: through an entry only while its key is reachable too.

/// One step of a finalizer's program. It runs in each collector when (and if) that collector
/// runs the finalizer, so it may only act where the mutator cannot look: on what the dying
/// object reaches and the mutator no longer does, on objects the finalizer allocates, and through
/// the program's list of resurrected objects (which the mutator never dereferences). Then a trace
/// means the same for every collector, whatever its timing.
enum class StepKind : std::uint8_t {
  New,        // new x: allocates x, held by the finalizer until it returns (then dropped)
  Link,       // link b c: b gains a reference to c
  Resurrect,  // resurrect [b]: stores b (by default the dying object) in the program's list
  Collect,    // collect: asks for a full collection from inside the collector (a nested one)
  Unlink,     // unlink b c: b drops one of its references to c (a reference-counting decrement
              // in the middle of a collection, which may free c there and then)
  Deref,      // deref w: stores what weak reference w yields, if anything, in the program's list
              // (resurrection through a weak reference); w is one an object it reaches holds
  Release,    // release [b]: drops one of the list's entries for b (by default the dying object):
              // an external reference dropped in the middle of a collection
  Finalizer,  // finalizer x: gives x, which an earlier step allocated, a finalizer of its own
              // (one that does nothing but is counted when it runs)
  Weak,       // weak v b [callback] in h: h, which the program reaches, takes a new weak
              // reference v to b (v exists only in the collectors that ran the step)
  Entry,      // entry m k v: m's entry for key k is now v (m a map the mutator no longer reaches)
  Unentry,    // unentry m k: m drops its entry for key k, if it has one
};

struct Step {
  StepKind kind = StepKind::Collect;
  ObjectId a = 0;  // New, Finalizer: the object. Link, Unlink: the referrer. Resurrect, Release:
                   // what it stores or lets go. Weak: the target.
  ObjectId b = 0;  // Link, Unlink: the referent. Weak: the holder. Entry, Unentry: the key
                   // (`a` is the map).
  WeakId weak = 0;  // Deref, Weak: the weak reference.
  bool callback = false;  // Weak: it has a callback (one that runs no program)
  ObjectId c = 0;  // Entry: the value.

  static Step make_new(ObjectId x) { return {StepKind::New, x}; }
  static Step link(ObjectId from, ObjectId to) { return {StepKind::Link, from, to}; }
  static Step resurrect(ObjectId x) { return {StepKind::Resurrect, x}; }
  static Step collect() { return {StepKind::Collect}; }
  static Step unlink(ObjectId from, ObjectId to) { return {StepKind::Unlink, from, to}; }
  static Step deref(WeakId w) { return {StepKind::Deref, 0, 0, w}; }
  static Step release(ObjectId x) { return {StepKind::Release, x}; }
  static Step finalizer(ObjectId x) { return {StepKind::Finalizer, x}; }
  static Step weak_ref_in(WeakId w, ObjectId target, bool callback, ObjectId holder) {
    return {StepKind::Weak, target, holder, w, callback};
  }
  static Step entry(ObjectId map, ObjectId key, ObjectId value) {
    return {StepKind::Entry, map, key, 0, false, value};
  }
  static Step unentry(ObjectId map, ObjectId key) { return {StepKind::Unentry, map, key}; }

  friend bool operator==(const Step&, const Step&) = default;
};

/// The most steps a finalizer's program may have.
inline constexpr std::size_t kMaxSteps = 8;

/// The largest threshold a trace may set.
inline constexpr std::uint32_t kMaxThreshold = 1'000'000;

/// What is wrong with a generation or a threshold written `shown`, whether the parser found no
/// number there or the oracle (oracle/rules.cpp) a number out of range: one message for each rule.
std::string bad_generation(std::string_view shown);
std::string bad_threshold(std::string_view shown);
std::string bad_build_size(std::string_view shown);

struct Op {
  OpKind kind = OpKind::Collect;
  ObjectId a = 0;  // New, Root, Unroot: the object. Link, Unlink: the referrer.
  ObjectId b = 0;  // Link, Unlink: the referent.
  int generation = kOldestGeneration;  // Collect only.
  std::array<std::uint32_t, 3> thresholds{};  // Threshold only.
  WeakId weak = 0;      // Weak, Deref: the weak reference.
  bool option = false;  // Weak: it has a callback.
  std::vector<Step> steps;  // Finalizer: its program, in order (often empty)
  ObjectId c = 0;  // Entry: the value (`a` is the map, `b` the key; Unentry names those two).
  bool held = false;  // Weak: an object holds it (`b`), not the mutator: `weak w a in b`
  ObjectKind object_kind = ObjectKind::List;  // New: what it makes
  std::vector<ObjectId> items;                // New of a tuple: its references, in order
  Shape shape = Shape::Chain;  // Build: its shape
  std::uint32_t size = 0;      // Build: how many objects (`a` the first, the others a + 1, ...)

  static Op make_new(ObjectId a) { return {OpKind::New, a}; }
  static Op make_new(ObjectId a, ObjectKind kind, std::vector<ObjectId> items = {}) {
    Op op{OpKind::New, a};
    op.object_kind = kind;
    op.items = std::move(items);
    return op;
  }
  static Op link(ObjectId a, ObjectId b) { return {OpKind::Link, a, b}; }
  static Op unlink(ObjectId a, ObjectId b) { return {OpKind::Unlink, a, b}; }
  static Op root(ObjectId a) { return {OpKind::Root, a}; }
  static Op unroot(ObjectId a) { return {OpKind::Unroot, a}; }
  static Op collect(int generation = kOldestGeneration) {
    return {OpKind::Collect, 0, 0, generation};
  }
  static Op threshold(std::uint32_t t0, std::uint32_t t1, std::uint32_t t2) {
    return {OpKind::Threshold, 0, 0, kOldestGeneration, {t0, t1, t2}};
  }
  static Op finalizer(ObjectId a, std::vector<Step> steps = {}) {
    return {OpKind::Finalizer, a, 0, kOldestGeneration, {}, 0, false, std::move(steps)};
  }
  static Op weak_ref(WeakId w, ObjectId a, bool callback) {
    return {OpKind::Weak, a, 0, kOldestGeneration, {}, w, callback};
  }
  /// A weak reference that object `holder` holds: it goes when the holder is freed.
  static Op weak_ref_in(WeakId w, ObjectId a, bool callback, ObjectId holder) {
    Op op{OpKind::Weak, a, holder, kOldestGeneration, {}, w, callback};
    op.held = true;
    return op;
  }
  static Op deref(WeakId w) { return {OpKind::Deref, 0, 0, kOldestGeneration, {}, w}; }
  static Op entry(ObjectId map, ObjectId key, ObjectId value) {
    Op op{OpKind::Entry, map, key};
    op.c = value;
    return op;
  }
  static Op unentry(ObjectId map, ObjectId key) { return {OpKind::Unentry, map, key}; }
  static Op build(ObjectId first, Shape shape, std::uint32_t size) {
    Op op{OpKind::Build, first};
    op.shape = shape;
    op.size = size;
    return op;
  }

  friend bool operator==(const Op&, const Op&) = default;
};

/// What the language knows of one kind of op: one row per kind, in one table (op.cpp), from which
/// the parser, the printer and every switch-free use read it.
struct OpKindInfo {
  OpKind kind;
  const char* keyword;  // in the trace language ("new", "link", ...)
  const char* usage;    // what its arguments are, for error messages
  int objects;          // how many objects it names: `a` when at least 1, `b` when 2, `c` when
                        // 3 (a finalizer names `a`; its steps name their own)
};

/// The row of `kind`.
const OpKindInfo& info(OpKind kind);
/// Every row, in OpKind's order.
std::span<const OpKindInfo> op_kinds();

/// How many objects an op names (0 to 3): `a` is named when it is at least 1, `b` when 2, `c`
/// when 3. (A weak reference an object holds names its holder too.)
inline int object_arity(const Op& op) { return info(op.kind).objects + (op.held ? 1 : 0); }
/// The keyword of an op in the trace language ("new", "link", ...).
inline const char* keyword(OpKind kind) { return info(kind).keyword; }
/// The keyword of a finalizer's step ("new", "link", "resurrect", "collect").
const char* keyword(StepKind kind);
/// The word for an object's kind ("list", "record", ...), and the kind a word names.
const char* keyword(ObjectKind kind);
std::optional<ObjectKind> object_kind_named(std::string_view word);

// ---- the slots of an op: one walk for every renaming, check and picture --------------------

/// Whether the object in a slot of an op is one the op (or its step) allocates, or one that exists.
enum class Slot : std::uint8_t { Allocates, Names };

/// Calls f(id, slot) for each object the op itself names (`a`, `b`, `c`: object_arity; a tuple's
/// items), not its steps'. (A `build` names its first object; the others follow it.)
template <class O, class F>
  requires std::is_same_v<std::remove_const_t<O>, Op>
void for_each_own_object(O& op, F f) {
  const int arity = object_arity(op);
  const bool allocates = op.kind == OpKind::New || op.kind == OpKind::Build;
  if (arity >= 1) f(op.a, allocates ? Slot::Allocates : Slot::Names);
  if (arity >= 2) f(op.b, Slot::Names);
  if (arity >= 3) f(op.c, Slot::Names);
  for (auto& item : op.items) f(item, Slot::Names);
}

/// Calls f(id, slot) for each object a step names, as the text shows them (a resurrect of the
/// dying object itself too, though the text leaves it out).
template <class S, class F>
  requires std::is_same_v<std::remove_const_t<S>, Step>
void for_each_object(S& step, F f) {
  switch (step.kind) {
    case StepKind::New:
      f(step.a, Slot::Allocates);
      break;
    case StepKind::Link:
    case StepKind::Unlink:
    case StepKind::Weak:
    case StepKind::Unentry:
      f(step.a, Slot::Names);
      f(step.b, Slot::Names);
      break;
    case StepKind::Entry:
      f(step.a, Slot::Names);
      f(step.b, Slot::Names);
      f(step.c, Slot::Names);
      break;
    case StepKind::Resurrect:
    case StepKind::Release:
    case StepKind::Finalizer:
      f(step.a, Slot::Names);
      break;
    case StepKind::Collect:
    case StepKind::Deref:
      break;
  }
}

/// Calls f(id, slot) for every object an op names: its own, then each step's, in order.
template <class O, class F>
  requires std::is_same_v<std::remove_const_t<O>, Op>
void for_each_object(O& op, F f) {
  for_each_own_object(op, f);
  for (auto& step : op.steps) for_each_object(step, f);
}

/// Names, indexed by ObjectId (or WeakId). Those without a name (generated traces) are shown as
/// the prefix and the number - "o7", "w2" - which is also what the generators name them.
class Names {
 public:
  explicit Names(char prefix = 'o') : prefix_(prefix) {}
  Names(std::vector<std::string> names, char prefix = 'o')
      : names_(std::move(names)), prefix_(prefix) {}

  std::string operator[](std::uint32_t id) const;
  void push_back(std::string name) { names_.push_back(std::move(name)); }
  std::size_t size() const { return names_.size(); }
  /// For names without entries: the members of a `build` of `size` objects from `first` are
  /// named after it, as the parser names them (`o7`, then `o7_1`, `o7_2`, ...).
  void name_build(ObjectId first, std::uint32_t size) { builds_.push_back({first, size}); }

  /// The name a generator gives object `id`.
  static std::string generated(ObjectId id) { return "o" + std::to_string(id); }
  /// The name of member k > 0 of a `build` whose first object is named `first`.
  static std::string member(const std::string& first, std::uint32_t k) {
    return first + "_" + std::to_string(k);
  }

 private:
  struct Build {
    ObjectId first;
    std::uint32_t size;
  };
  std::vector<std::string> names_;
  std::vector<Build> builds_;  // in increasing order of `first`
  char prefix_;
};

/// How many objects an op allocates itself (not its program): 1 for `new`, the size of a `build`.
inline std::uint32_t objects_made(const Op& op) {
  return op.kind == OpKind::Build ? op.size : op.kind == OpKind::New ? 1 : 0;
}
/// Calls f(part) for each of the ordinary ops a `build` stands for, in order: each member's
/// `new`, the shape's `link`s, then an `unroot` of every member but the first. One part at a
/// time, never a vector of them: ops are large, and making the vector of a build's parts took a
/// tenth of fuzz_collectors' time (every oracle and every collector expands every build).
template <class F>
void for_each_part_of_build(const Op& build, F f) {
  const ObjectId s = build.a;
  const std::uint32_t n = build.size;
  for (std::uint32_t i = 0; i < n; ++i) f(Op::make_new(s + i));
  switch (build.shape) {
    case Shape::Chain:
    case Shape::Ring:
      for (std::uint32_t i = 0; i + 1 < n; ++i) f(Op::link(s + i, s + i + 1));
      if (build.shape == Shape::Ring) f(Op::link(s + n - 1, s));
      break;
    case Shape::Tree:
      for (std::uint32_t i = 1; i < n; ++i) f(Op::link(s + (i - 1) / 2, s + i));
      break;
    case Shape::Fan:
      for (std::uint32_t i = 1; i < n; ++i) f(Op::link(s, s + i));
      break;
    case Shape::Star:
      for (std::uint32_t i = 1; i < n; ++i) {
        f(Op::link(s, s + i));
        f(Op::link(s + i, s));
      }
      break;
    case Shape::Clique:
      for (std::uint32_t i = 0; i < n; ++i) {
        for (std::uint32_t j = 0; j < n; ++j) {
          if (i != j) f(Op::link(s + i, s + j));
        }
      }
      break;
  }
  for (std::uint32_t i = 1; i < n; ++i) f(Op::unroot(s + i));
}
/// The word for a shape, and the shape a word names.
const char* keyword(Shape shape);
std::optional<Shape> shape_named(std::string_view word);

/// The objects a finalizer's `new` steps allocate, in order (their ids follow the trace's last).
std::vector<ObjectId> allocated_by(const Op& op);
/// How many weak references an op takes: a `weak` op's own, and its program's `weak` steps'.
std::size_t weak_references_taken(const Op& op);

/// The trace line for `op`, without a newline: parse(show(op)) == op.
std::string show(const Op& op, const Names& names, const Names& weak_names = Names('w'));

}  // namespace cyclefuzz
