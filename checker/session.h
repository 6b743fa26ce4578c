// The differential checker: runs one op stream on the oracle and on several collectors, and checks
// every collector against the oracle after every op.
//
// Checks, and when each applies (a collector's Capabilities decide), in the terms of the lane's
// predicates (checker/lane.h: live, garbage, must_be_freed, ...):
//   premature free     always: an object freed by this op is still live (the mutator or the
//                      program's list reaches it), or an object the collector still holds refers
//                      to it (a dangling reference)
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
//                      builds: the whole heap after collections, else what the op touched), or
//                      the collector threw
//   double free        the collector reported a free of an object it had already freed, or never
//                      allocated
//   wrong generation, missed garbage, wrong automatic collection, wrong statistics
//                      collectors with generations or gc statistics: checker/generation_checks.h
//   wrong automatic collection (without Capabilities::automatic_collection) a collection ran
//                      during an op other than `collect`, and no finalizer asked for it
//   frozen object collected   (Capabilities::freezes) a collection freed a frozen object that
//                      reference counting would not have freed; leaks and counts after a full
//                      collection leave out frozen objects and what they reach
// Finalizers are the program's code, and run in each collector at its own time: each collector
// has its own list of resurrected objects (what it reaches is live for every check above), and
// its own heap below the garbage, where its finalizers' programs allocate objects and add
// references (Oracle's HeapView). What a finalizer allocated or added references from during an
// op, and what that reaches, may outlive that op's collection (leak, disagreement); the next full
// collection must free it (lane.h: may_keep).
// A collector with a violation is retired for the rest of the trace: its heap can no longer be
// trusted (the next op might touch the freed memory).
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "checker/violation.h"
#include "collectors/collector.h"
#include "collectors/registry.h"
#include "oracle/oracle.h"
#include "language/trace.h"

#ifndef CYCLEFUZZ_CHECKED
#define CYCLEFUZZ_CHECKED 0
#endif

namespace cyclefuzz {

class Lane;

/// Whether this build checks every collector's invariants after every op by default.
inline constexpr bool kCheckedBuild = CYCLEFUZZ_CHECKED != 0;

struct CheckOptions {
  /// Check every collector's own invariants after every op: the whole heap
  /// (Collector::check_invariants) after an op that ran a collection or a finalizer, and once
  /// the ops since the last such walk outnumber the objects held (so that walks cost O(1) per op
  /// on average); after any other op, at the objects it touched (check_invariants_of).
  bool check_invariants = kCheckedBuild;
  bool invariants_every_op = false;  // walk the whole heap after every op (slow on long traces)
  /// When the walks that a collection (or a finalizer) calls for happen - every held object's
  /// record against the oracle's, the invariants' walk: after that op (the checked build: a
  /// fault shows at its op), or else once the ops since the last walk are at least an eighth of
  /// the objects held, and at the end of the run (Session::finish). Then a walk costs at most 8
  /// per op on average on a long trace, and a fault away from what the ops touched shows within
  /// that many ops (the fast build).
  bool walk_every_collection = kCheckedBuild;
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
  /// After the last op: the walks that were put off (CheckOptions::walk_every_collection). run()
  /// calls it; a caller of step() calls it at the end.
  void finish();
  /// Whether every collector is retired: further ops would check nothing.
  bool done() const;

  const std::vector<Violation>& violations() const { return violations_; }
  std::size_t collector_count() const;
  const std::string& collector_name(std::size_t i) const;
  /// How collector i was chosen: its catalogue entry (a plug-in's carries its file).
  const CollectorEntry& collector_entry(std::size_t i) const { return entries_[i]; }
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
  /// Collector i's run: its predicates (checker/lane.h) say what the program reaches, what is
  /// garbage and what a collection must have freed, for reports and pictures.
  const Lane& lane(std::size_t i) const;
  /// Whether collector i still holds object x (allocated and not freed).
  bool holds(std::size_t i, ObjectId x) const;
  /// Whether collector i ever allocated x (every object the mutator allocates; an object a
  /// finalizer allocates once it ran that finalizer).
  bool allocated(std::size_t i, ObjectId x) const;
  /// The settings every collector of the session was made with.
  const CollectorOptions& collector_options() const { return options_; }

 private:
  /// What one op was for one lane, for its checks.
  struct OpFacts {
    bool full = false;                          // a full collection
    std::optional<std::size_t> collected;       // what `collect` returned
    std::optional<std::size_t> garbage_before;  // unreachable objects held before, when that fixes
                                                // what a collection must find
    std::uint64_t collections = 0;              // collections that ran during the op
    std::size_t freed_by_collector = 0;  // frees before the harness's maps dropped entries
  };
  // checker/session.cpp: the op, in order.
  std::optional<OpFacts> run_op(Lane& lane, const Op& op, std::size_t reachable_before,
                                std::optional<ObjectId> replaced);
  void freeze(Lane& lane);
  void thaw_finalized(Lane& lane, const Op& op);
  void check_lane(Lane& lane, const Op& op, const OpFacts& facts);
  void report(Lane& lane, Violation violation);
  // checker/checks.cpp
  bool check_frees(Lane& lane);
  void check_frozen_frees(Lane& lane);
  void keep_by_frozen(Lane& lane) const;
  void check_leak(Lane& lane);
  void check_late_free(Lane& lane);
  void check_count(Lane& lane, const OpFacts& facts);
  void check_automatic_collection(Lane& lane, const Op& op, std::uint64_t collections);
  /// `walk`: the records' walk is due, and the generations' with it (walks_due).
  void check_generations(Lane& lane, const Op& op, const OpFacts& facts, bool walk);
  void find_touched(Lane& lane, const Op& op);
  struct Walks {
    bool records = false;     // every held object's record, against the oracle's
    bool invariants = false;  // the collector's own walk of its heap
  };
  Walks walks_due(Lane& lane, bool collected, bool ran_programs);
  void check_invariants(Lane& lane, bool walk);
  void check_bookkeeping(Lane& lane, bool everything);
  bool view_matches(Lane& lane, ObjectId x);
  void check_agreement(const Op& op);
  // checker/finalization_checks.cpp
  void check_finalizers_and_weak_references(Lane& lane, const Op& op, bool full);
  void check_weak_references_cleared_first(Lane& lane);

  Oracle oracle_;
  std::vector<CollectorEntry> entries_;
  CollectorOptions options_;
  std::vector<std::unique_ptr<Lane>> lanes_;
  std::vector<Violation> violations_;
  CheckOptions checks_;
  std::size_t ops_run_ = 0;
  // Scratch space for the bookkeeping and invariant checks, reused so that they allocate nothing
  // per object.
  ObjectView view_;
  std::vector<ObjectId> expected_;
  std::vector<ObjectId> touched_;  // find_touched
};

}  // namespace cyclefuzz
