// The checks for collectors with generations or gc statistics, as one collector's model that the
// Session keeps beside it (checker/session.h), each finding a Violation:
//
//   wrong generation   a new object is not in generation 0; an object's generation went down
//                      (but to generation 0 when its finalizer ran during the op: CPython tracks
//                      an object anew to run its finalizer from its deallocation); or after a
//                      collection of generation g, a survivor of generations 0..g is not in
//                      generation g + 1 (the oldest stays in the oldest)
//   missed garbage     after `collect k` (partial), an object of generations 0..k is still alive
//                      though it is garbage that nothing in an older generation holds
//   wrong automatic collection   (Capabilities::cpython_thresholds) an allocation started a
//                      collection when CPython's rules say it should not have (or automatic
//                      collection is disabled), or not when they say it should, or
//                      gc.get_count() differs from those rules' counts
//   wrong statistics   (a collector with statistics()) gc.get_stats()'s collections and collected
//                      per generation differ from the collections seen and the objects they freed,
//                      or it reports uncollectable objects
//
// gc.freeze() moves every tracked object to a permanent generation (3) that collections leave
// alone; gc.unfreeze() moves them to the oldest. Objects the collector stops tracking (it may,
// for objects holding no references) are left out of the generation checks; that they hold no
// references is a bookkeeping check.
//
// The model knows each object's generation as observed after the last collection, so it costs
// O(1) per op except around collections, which cost the heap anyway.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "collectors/collector.h"
#include "checker/object_set.h"
#include "checker/violation.h"
#include "oracle/oracle.h"

namespace cyclefuzz {

/// The objects a collector holds, in increasing order: asked for only around collections and
/// freezes, since listing them may cost the heap.
using HeldObjects = std::function<std::span<const ObjectId>()>;

class GenerationModel {
 public:
  GenerationModel(const Capabilities& capabilities, const CollectorOptions& options);

  /// Before `op` is applied: remembers what the checks after it need (for `collect k`, the
  /// garbage it must free). `kept` says what the program's list of resurrected objects keeps
  /// alive: that is no garbage, before or after. `held` lists the objects `holds` accepts.
  void before(const Op& op, const Collector& collector, const Oracle& oracle, HeapView view,
              const AlivePredicate& holds, const AlivePredicate& kept, const HeldObjects& held);

  /// After `op`: the first broken rule, or nothing. `may_keep` says what the op may have left
  /// alive though the mutator no longer reaches it (Lane::may_keep: what the list keeps, and what
  /// the collection's finalizers or the harness's maps changed under it, or frozen objects kept,
  /// which the collector need not have looked at again). `collections` is how many collections the
  /// collector ran during the op; `freed` how many objects it freed, `freed_by_collector` how
  /// many before the harness's maps dropped the entries of freed keys (as weak-reference
  /// callbacks would: CPython counts what they free in no collection's statistics); `finalized`
  /// the objects whose finalizers ran during the op. `walk`: a collection looks at every object
  /// the collector holds; else (Session::walks_due puts the walks of a big heap off) only at
  /// those of the generations it collected, and whether the others stayed where they were waits
  /// for the next walk (a collection's, or walk()).
  std::optional<Violation> after(const Op& op, const Collector& collector, const Oracle& oracle,
                               const AlivePredicate& holds, const AlivePredicate& may_keep,
                               const HeldObjects& held, std::uint64_t collections,
                               std::size_t freed, std::size_t freed_by_collector,
                               std::span<const ObjectId> finalized, bool walk);

  /// The walk that collections put off, outside any (at the end of a run): every object is in the
  /// generation it was last seen in, since no collection of that generation ran meanwhile.
  std::optional<Violation> walk(const Collector& collector, std::span<const ObjectId> held);

  /// After an op during which a finalizer's nested collection ran (a collector may handle one
  /// rather than refuse it), or a finalizer allocated objects or added references in the middle
  /// of a collection: the model cannot tell what the collector made of it, so it takes the
  /// collector's generations and statistics as they now are, and checks from there.
  void adopt(const Collector& collector, const Oracle& oracle, std::span<const ObjectId> held);

 private:
  /// The generation CPython's rules say an allocation collects, or -1; updates the counts.
  int predicted_collection();
  void count_collection(int generation);
  /// The long-lived rule's counts from the collector, when it reports them.
  void adopt_long_lived(const GcStatistics& statistics);
  std::optional<Violation> check_generations(const Collector& collector,
                                           std::span<const ObjectId> held,
                                           std::span<const ObjectId> young, int collected,
                                           bool walk);

  static constexpr int kUntracked = -1;
  static constexpr int kNoCollection = -2;  // check_generations' `collected` for walk()

  int oldest_;
  bool thresholds_;
  bool freezes_;
  bool weak_reference_holders_;
  bool enabled_ = true;
  std::uint32_t threshold_[3];
  std::vector<int> generation_;      // by object, as observed after the last collection
  std::vector<ObjectId> must_free_;  // for a partial collect: the garbage it must free
  ObjectSet held_by_old_;            // (before's scratch space)
  // CPython's counts, kept independently of the collector.
  std::uint64_t count_[3] = {0, 0, 0};
  std::size_t long_lived_pending_ = 0, long_lived_total_ = 0;
  // gc.get_stats(), kept from the collections seen.
  std::uint64_t collections_of_[3] = {0, 0, 0};
  std::uint64_t collected_[3] = {0, 0, 0};
};

}  // namespace cyclefuzz
