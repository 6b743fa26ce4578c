// What the checker reports: a violation of one of the rules a collector must keep, and the kinds
// of rule.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "language/op.h"

namespace cyclefuzz {

// The kinds, one row each: the enumerator, the words people read, the slug JSON and file names
// use, and (in a comment) when the rule applies. Everything else about a kind is derived from here.
#define CYCLEFUZZ_VIOLATION_KINDS(X)                                                          \
  X(PrematureFree, "premature free", "premature-free")       /* always */                    \
  X(Leak, "leak", "leak")                                     /* after a full collection */   \
  X(WrongCount, "wrong count", "wrong-count")                 /* what `collect` returned */    \
  X(LateFree, "late free", "late-free")                       /* reference counting */         \
  X(Disagreement, "disagreement", "disagreement")             /* two collectors */             \
  X(WrongBookkeeping, "wrong bookkeeping", "wrong-bookkeeping")                               \
  X(BrokenInvariant, "broken invariant", "broken-invariant")                                  \
  X(DoubleFree, "double free", "double-free")                                                 \
  X(WrongGeneration, "wrong generation", "wrong-generation") /* generations */                \
  X(MissedGarbage, "missed garbage", "missed-garbage")       /* ... after a partial collect */ \
  X(WrongAutomaticCollection, "wrong automatic collection", "wrong-automatic-collection")     \
  X(FrozenCollected, "frozen object collected", "frozen-object-collected") /* freezes */      \
  X(WrongStatistics, "wrong statistics", "wrong-statistics") /* gc statistics */              \
  X(WrongFinalization, "wrong finalization", "wrong-finalization") /* finalizers */           \
  X(WrongWeakReference, "wrong weak reference", "wrong-weak-reference") /* weak references */

enum class ViolationKind : std::uint8_t {
#define CYCLEFUZZ_ENUMERATOR(name, words, slug) name,
  CYCLEFUZZ_VIOLATION_KINDS(CYCLEFUZZ_ENUMERATOR)
#undef CYCLEFUZZ_ENUMERATOR
};

/// How many kinds there are.
inline constexpr int kViolationKinds = 0
#define CYCLEFUZZ_ONE(name, words, slug) +1
    CYCLEFUZZ_VIOLATION_KINDS(CYCLEFUZZ_ONE)
#undef CYCLEFUZZ_ONE
    ;

/// "premature free", "leak", ...
const char* describe(ViolationKind kind);
/// "premature-free", "leak", ...: for JSON and file names.
const char* slug(ViolationKind kind);

/// The detail of a premature free whose path starts at an object with external references.
inline constexpr const char* kFreedWhileReachable = "freed while still reachable";
/// The detail of a premature free whose path starts at an entry of the program's list of
/// resurrected objects.
inline constexpr const char* kFreedWhileListed =
    "freed while the program's list of resurrected objects reaches it";
/// The detail of a premature free of a value that a strong-value map's entry keeps (its map is
/// live, its key not yet freed); the path is the map, then the value.
inline constexpr const char* kFreedWhileMapped =
    "freed while the entry of a map the program reaches keeps it (its key not yet freed)";

/// The detail of a premature free of a key that the value of its own entry refers to, in a live
/// strong-value map; the path is the map, the value, then the key.
inline constexpr const char* kFreedKeyKeptByItsValue =
    "freed while its own entry's value, which a strong-value map the program reaches keeps, "
    "refers to it";

/// One broken rule. Built as `Violation::of(kind, objects, detail)` and, where they explain it,
/// `.along(path)`, `.around(cycle)`, `.of_weak(w)`; the Session fills in whose and when.
struct Violation {
  ViolationKind kind;
  std::size_t collector = 0;  // index of the collector in the session
  std::size_t other = 0;      // Disagreement only: the other collector
  std::size_t op_index = 0;   // the op after which it was found
  std::vector<ObjectId> objects;  // the objects concerned
  std::vector<ObjectId> path;   // PrematureFree: to objects[0] from a rooted object (detail
                                // kFreedWhileReachable), from an entry of the program's list
                                // (kFreedWhileListed), or from the held garbage referring to it.
                                // Leak, LateFree: from the holding cycle to objects[0].
  std::vector<ObjectId> cycle;  // Leak: a garbage cycle that holds objects[0], first repeated last
  std::string detail;           // what differs, in words
  std::vector<WeakId> weak;     // WrongWeakReference: the weak reference concerned

  static Violation of(ViolationKind kind, std::vector<ObjectId> objects, std::string detail) {
    Violation v{kind};
    v.objects = std::move(objects);
    v.detail = std::move(detail);
    return v;
  }
  Violation along(std::vector<ObjectId> p) && {
    path = std::move(p);
    return std::move(*this);
  }
  Violation around(std::vector<ObjectId> c) && {
    cycle = std::move(c);
    return std::move(*this);
  }
  Violation of_weak(WeakId w) && {
    weak = {w};
    return std::move(*this);
  }
};

}  // namespace cyclefuzz
