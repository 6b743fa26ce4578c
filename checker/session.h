// The differential checker: runs one op stream on the oracle and on several collectors, and checks
// every collector against the oracle after every op.
//
// Checks, and when each applies (a collector's Capabilities decide):
//   premature free     always: an object freed by this op is still reachable, or an object the
//                      collector still holds refers to it (a dangling reference)
//   leak               after a full collection: an unreachable object is still alive
//   wrong count        after `collect`: it returned a number other than the frees it made; after a
//                      full one, other than the unreachable objects it held before (as far as
//                      Capabilities::collect_count promises a count)
//   late free          reference counting: an unreachable object that no garbage cycle holds is
//                      still alive after the op
//   disagreement       after a full collection: two collectors hold different objects
//   wrong bookkeeping  the collector's own view of an object (its references, its count) differs
//                      from the oracle's; checked for the objects the op touched, or for all after
//                      a collection
//   broken invariant   the collector's check_invariants() failed (after every op in checked
//                      builds), or the collector threw
//   double free        the collector reported a free of an object it had already freed, or never
//                      allocated
//   wrong generation, missed garbage, wrong automatic collection, wrong statistics
//                      collectors with generations or gc statistics: checker/generation_checks.h
//   frozen object collected   (Capabilities::freezes) a collection freed a frozen object that
//                      reference counting would not have freed; leaks and counts after a full
//                      collection leave out frozen objects and what they reach
// Finalizers are the program's code, and run in each collector at its own time: each collector
// has its own list of resurrected objects (what it reaches is live for every check above), and
// its own heap below the garbage, where its finalizers' programs allocate objects and add
// references (Oracle's HeapView). What a finalizer allocated or added references from during an
// op, and what that reaches, may outlive that op's collection (leak, disagreement); the next full
// collection must free it.
// A collector with a violation is retired for the rest of the trace: its heap can no longer be
// trusted (the next op might touch the freed memory).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "collectors/collector.h"
#include "collectors/registry.h"
#include "oracle/oracle.h"
#include "language/trace.h"

#ifndef CYCLEFUZZ_CHECKED
#define CYCLEFUZZ_CHECKED 0
#endif

namespace cyclefuzz {

/// Whether this build checks every collector's invariants after every op by default.
inline constexpr bool kCheckedBuild = CYCLEFUZZ_CHECKED != 0;

enum class ViolationKind : std::uint8_t {
  PrematureFree,
  Leak,
  WrongCount,
  LateFree,
  Disagreement,
  WrongBookkeeping,
  BrokenInvariant,
  DoubleFree,
  WrongGeneration,           // collectors with generations (checker/generation_checks.h)
  MissedGarbage,             // ... after a partial collection
  WrongAutomaticCollection,  // collectors that promise CPython's thresholds
  FrozenCollected,           // collectors that freeze
  WrongStatistics,           // collectors that keep gc statistics
  WrongFinalization,         // collectors that run finalizers
  WrongWeakReference,        // collectors that keep weak references
};
inline constexpr int kViolationKinds = 15;

/// "premature free", "leak", ...
const char* describe(ViolationKind kind);
/// "premature-free", "leak", ...: for JSON and file names.
const char* slug(ViolationKind kind);

/// The detail of a premature free whose path starts at an object with external references.
inline constexpr const char* kFreedWhileReachable = "freed while still reachable";

struct Violation {
  ViolationKind kind;
  std::size_t collector = 0;  // index of the collector in the session
  std::size_t other = 0;      // Disagreement only: the other collector
  std::size_t op_index = 0;   // the op after which it was found
  std::vector<ObjectId> objects;  // the objects concerned
  std::vector<ObjectId> path;   // PrematureFree: to objects[0] from a rooted object (detail
                                // kFreedWhileReachable) or from the held garbage referring to it.
                                // Leak, LateFree: from the holding cycle to objects[0].
  std::vector<ObjectId> cycle;  // Leak: a garbage cycle that holds objects[0], first repeated last
  std::string detail;           // what differs, in words
  std::vector<WeakId> weak;     // WrongWeakReference: the weak reference concerned
};

/// What a collector's `ObjectView::count` should be for object x, as `meaning` defines it, when
/// `holds(y)` says which objects the collector still holds (a freed referrer no longer counts).
/// (In `view`'s heap: the references its finalizers made count too.)
template <class Holds>
std::uint64_t expected_count(const Oracle& oracle, CountMeaning meaning, ObjectId x,
                             HeapView view, Holds holds) {
  std::uint64_t count = oracle.external_references(x);
  if (meaning == CountMeaning::References) {
    oracle.for_each_referrer(x, view, [&](ObjectId from) { count += holds(from); });
  }
  return count;
}

struct CheckOptions {
  bool check_invariants = kCheckedBuild;  // run check_invariants() after every op
  bool record_frees = false;              // keep each collector's frees per op, for reports
  /// The kinds reported, one bit per ViolationKind (all by default). A property test enables
  /// only its own. A premature or double free still retires the collector when not reported:
  /// its heap is no longer safe to touch.
  std::uint32_t reported = ~0u;

  static std::uint32_t only(ViolationKind kind) { return 1u << static_cast<unsigned>(kind); }
  bool reports(ViolationKind kind) const { return (reported & only(kind)) != 0; }
};

class Session {
 public:
  Session(const std::vector<CollectorEntry>& collectors, const CollectorOptions& options,
          CheckOptions checks = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  /// Applies one op to the oracle and to every collector still running, then checks them.
  /// Pre: the op is valid (the oracle does not refuse it).
  void step(const Op& op);

  /// Steps through a whole trace; stops early once every collector is retired.
  void run(const Trace& trace);

  const std::vector<Violation>& violations() const { return violations_; }
  std::size_t collector_count() const;
  const std::string& collector_name(std::size_t i) const;
  /// Whether collector i had a violation (and so was retired).
  bool retired(std::size_t i) const;
  /// The first violation of collector i, or nullptr when it passed.
  const Violation* first_violation(std::size_t i) const;
  /// Collector i's frees at op k, in the order reported (needs CheckOptions::record_frees).
  const std::vector<std::vector<ObjectId>>& frees_per_op(std::size_t i) const;
  std::size_t ops_run() const { return ops_run_; }
  const Oracle& oracle() const { return oracle_; }
  /// Collector i itself, to look at its own view of objects (`inspect`), for pictures and for
  /// observers that check more than the session does.
  const Collector& collector(std::size_t i) const;
  /// Whether collector i still holds object x (allocated and not freed).
  bool holds(std::size_t i, ObjectId x) const;
  /// Whether collector i ever allocated x (every object the mutator allocates; an object a
  /// finalizer allocates once it ran that finalizer).
  bool allocated(std::size_t i, ObjectId x) const;
  /// Whether collector i's finalizers allocated x, or added a reference from it, during the last
  /// op, or x is what such an object reaches: then x may outlive that op's collection.
  bool changed_by_finalizers(std::size_t i, ObjectId x) const;
  /// How many entries collector i's list of resurrected objects has for x: each is one external
  /// reference the collector was given.
  std::uint32_t listed(std::size_t i, ObjectId x) const;
  /// The settings every collector of the session was made with.
  const CollectorOptions& collector_options() const { return options_; }

 private:
  struct Lane;
  void check_lane(Lane& lane, const Op& op, std::optional<std::size_t> collected,
                  std::optional<std::size_t> garbage_before, std::uint64_t collections);
  /// Fills the lane's kept_before with what its frozen objects keep from collection: the frozen
  /// garbage and the garbage it reaches.
  void keep_by_frozen(Lane& lane) const;
  bool check_frees(Lane& lane);
  void check_frozen_frees(Lane& lane);
  void check_finalizers_and_weak_references(Lane& lane, const Op& op, bool full);
  void release_resurrected(Lane& lane);
  void check_bookkeeping(Lane& lane, const Op& op, bool everything);
  bool view_matches(Lane& lane, ObjectId x);
  void check_agreement(const Op& op);
  void report(Lane& lane, Violation violation);

  Oracle oracle_;
  CollectorOptions options_;
  std::vector<std::unique_ptr<Lane>> lanes_;
  std::vector<Violation> violations_;
  CheckOptions checks_;
  std::size_t ops_run_ = 0;
  // Scratch space for the bookkeeping check, reused so that it allocates nothing per object.
  ObjectView view_;
  std::vector<ObjectId> expected_;
};

}  // namespace cyclefuzz
