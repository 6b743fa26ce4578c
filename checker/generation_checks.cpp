#include "checker/generation_checks.h"

#include <algorithm>


namespace cyclefuzz {

namespace {

std::string generation_text(int g) { return "generation " + std::to_string(g); }

bool tracked_now(const Collector& collector, const AlivePredicate& holds, ObjectId x) {
  if (!holds(x)) return false;
  ObjectView view;
  collector.inspect(x, view);
  return view.tracked;
}

}  // namespace

GenerationModel::GenerationModel(const Capabilities& capabilities, const CollectorOptions& options)
    // (A collector whose young collections are steps shows no generations.)
    : oldest_(capabilities.young_collections_are_steps ? 0 : capabilities.generations - 1),
      thresholds_(capabilities.cpython_thresholds),
      freezes_(capabilities.freezes),
      weak_reference_holders_(capabilities.weak_reference_holders) {
  std::copy(std::begin(options.thresholds), std::end(options.thresholds), threshold_);
}

void GenerationModel::before(const Op& op, const Collector&, const Oracle& oracle,
                             HeapView view, const AlivePredicate& holds, const AlivePredicate& kept,
                             const HeldObjects& held) {
  must_free_.clear();
  if (op.kind != OpKind::Collect || op.generation >= oldest_) return;
  // Garbage of generations 0..k that no garbage of an older generation holds, directly or
  // through other garbage.
  const auto garbage = [&](ObjectId x) {
    return holds(x) && !oracle.reachable_from_roots(x) && !kept(x);
  };
  std::vector<ObjectId> young, old;
  for (ObjectId x : held()) {
    if (!garbage(x)) continue;
    (generation_[x] <= op.generation ? young : old).push_back(x);
  }
  held_by_old_.clear();
  for (ObjectId x : oracle.descendants(old, garbage, view)) held_by_old_.insert(x);
  for (ObjectId x : young) {
    if (!held_by_old_.contains(x)) must_free_.push_back(x);
  }
}

int GenerationModel::predicted_collection() {
  ++count_[0];
  if (!enabled_ || threshold_[0] == 0 || count_[0] <= threshold_[0]) return -1;
  for (int g = oldest_; g >= 0; --g) {
    if (count_[g] <= threshold_[g]) continue;
    if (g == oldest_ && long_lived_pending_ < long_lived_total_ / 4) continue;
    return g;
  }
  return -1;
}

void GenerationModel::count_collection(int g) {
  if (g < oldest_) ++count_[g + 1];
  for (int i = 0; i <= g; ++i) count_[i] = 0;
}

// Read this first: the order of the checks is the order in which one failure explains the next.
std::optional<Violation> GenerationModel::after(
    const Op& op, const Collector& collector, const Oracle& oracle, const AlivePredicate& holds,
    const AlivePredicate& may_keep, const HeldObjects& held, std::uint64_t collections,
    std::size_t freed, std::size_t freed_by_collector, std::span<const ObjectId> finalized,
    bool walk) {
  if (generation_.size() < oracle.object_count()) generation_.resize(oracle.object_count(), 0);

  // What the op itself does to the model.
  switch (op.kind) {
    case OpKind::Threshold:
      std::copy(op.thresholds.begin(), op.thresholds.end(), threshold_);
      break;
    case OpKind::Disable:
    case OpKind::Enable:
      enabled_ = op.kind == OpKind::Enable;
      break;
    case OpKind::Link:  // an untracked object that gains a reference is tracked again, young
    case OpKind::Entry:      // (a map entry's value is a reference from the map)
      // An acyclic one may stay untracked (generational never tracks one for its references;
      // CPython tracks a dict once it holds a container): the collector says which.
      if (generation_[op.a] == kUntracked &&
          (oracle.kind_of(op.a) != ObjectKind::Acyclic || tracked_now(collector, holds, op.a))) {
        generation_[op.a] = 0;
      }
      break;
    case OpKind::Finalizer:  // ... and so is one that becomes an instance: with a finalizer,
    case OpKind::Weak:       // or a weak reference to it; its holder too (a weakref object)
      if (generation_[op.a] == kUntracked) generation_[op.a] = 0;
      if (op.held && weak_reference_holders_ && generation_[op.b] == kUntracked) {
        generation_[op.b] = 0;
      }
      break;
    case OpKind::Freeze:
      if (!freezes_) break;
      for (ObjectId x : held()) {
        if (generation_[x] != kUntracked) generation_[x] = kPermanentGeneration;
      }
      count_[0] = 0;
      break;
    case OpKind::Unfreeze:
      if (!freezes_) break;
      for (ObjectId x : held()) {  // (what the collector no longer holds is never read again)
        if (generation_[x] == kPermanentGeneration) generation_[x] = oldest_;
      }
      break;
    default:
      break;
  }

  // 1. Which generation this op collected, if any: the op says so, or CPython's rules do.
  int collected = -1;
  if (op.kind == OpKind::Collect) {
    collected = std::min(op.generation, oldest_);
    if (thresholds_) count_collection(collected);
  } else if (thresholds_) {
    const int expected = op.kind == OpKind::New ? predicted_collection() : -1;
    if (collections != (expected >= 0 ? 1u : 0u)) {
      return Violation::of(ViolationKind::WrongAutomaticCollection, {},
                     std::to_string(collections) + " collection(s) ran during this op; CPython's "
                     "rules (counts " + std::to_string(count_[0]) + ", " +
                     std::to_string(count_[1]) + ", " + std::to_string(count_[2]) +
                     ", thresholds " + std::to_string(threshold_[0]) + ", " +
                     std::to_string(threshold_[1]) + ", " + std::to_string(threshold_[2]) +
                     ") call for " + (expected >= 0 ? "a collection of " +
                                                          generation_text(expected)
                                                    : std::string("none")));
    }
    if (expected >= 0) {
      collected = expected;
      count_collection(collected);
    } else if (op.kind != OpKind::New) {
      count_[0] = count_[0] > freed ? count_[0] - freed : 0;
    }
  }

  if (collected >= 0) {
    ++collections_of_[collected];
    collected_[collected] += freed_by_collector;
  }

  // 2. The counts the collector reports are the counts the rules give: they also tell which
  //    generation it collected.
  if (thresholds_) {
    const std::optional<GcStatistics> statistics = collector.statistics();
    if (!statistics) {
      return Violation::of(ViolationKind::WrongAutomaticCollection, {},
                     "the collector promises CPython's thresholds but reports no gc counts");
    }
    if (!std::equal(count_, count_ + 3, statistics->count)) {
      return Violation::of(ViolationKind::WrongAutomaticCollection, {},
                     "gc.get_count() is (" + std::to_string(statistics->count[0]) + ", " +
                         std::to_string(statistics->count[1]) + ", " +
                         std::to_string(statistics->count[2]) + "), CPython's rules give (" +
                         std::to_string(count_[0]) + ", " + std::to_string(count_[1]) + ", " +
                         std::to_string(count_[2]) + ")");
    }
  }
  if (const std::optional<GcStatistics> statistics = collector.statistics()) {
    for (int g = 0; g <= oldest_; ++g) {
      std::string wrong;
      if (statistics->collections[g] != collections_of_[g]) {
        wrong = std::to_string(statistics->collections[g]) + " collections, " +
                std::to_string(collections_of_[g]) + " seen";
      } else if (statistics->collected[g] != collected_[g]) {
        wrong = std::to_string(statistics->collected[g]) + " collected, " +
                std::to_string(collected_[g]) + " freed by its collections";
      } else if (statistics->uncollectable[g] != 0) {
        wrong = std::to_string(statistics->uncollectable[g]) + " uncollectable, but every "
                "garbage object can be freed";
      }
      if (!wrong.empty()) {
        return Violation::of(ViolationKind::WrongStatistics, {},
                       "gc.get_stats() for " + generation_text(g) + ": " + wrong);
      }
    }
  }
  if (oldest_ == 0) return std::nullopt;  // the rest is about generations

  // 3. Generations: a new object starts young (an acyclic one may start untracked); after a
  //    collection, survivors move up one.
  ObjectView view;
  const bool collection_ran = collected >= 0 || collections > 0;
  if (op.kind == OpKind::New && holds(op.a)) {
    collector.inspect(op.a, view);
    if (!view.tracked && op.object_kind == ObjectKind::Acyclic) {
      generation_[op.a] = kUntracked;
    } else if ((thresholds_ || !collection_ran) && view.generation != 0) {
      return Violation::of(ViolationKind::WrongGeneration, {op.a},
                     "a new object is in " + generation_text(view.generation));
    }
  }
  // A collector may track an object again, young, to run its finalizer outside its own
  // collection's finalizers (CPython's subtype_dealloc does): one the finalizer resurrected stays
  // there, or, when part of it stays where it was (a CPython record's __dict__), as young as that
  // part. Younger is never wrong for a collector (it only looks at the object sooner).
  std::vector<ObjectId> young_again;
  for (ObjectId x : finalized) {
    if (!holds(x)) continue;
    collector.inspect(x, view);
    if (view.tracked && (view.generation == 0 || (generation_[x] != kUntracked &&
                                                  view.generation < generation_[x]))) {
      generation_[x] = view.generation;
      young_again.push_back(x);
    }
  }
  if (op.kind == OpKind::New) young_again.push_back(op.a);  // (allocated after the collection)
  if (collection_ran) {
    if (auto finding = check_generations(collector, held(), young_again, collected, walk)) {
      return finding;
    }
    // Values that the harness's maps let go after the collection (their keys died in it) were
    // survivors when the collector moved them up, which is when CPython counts them into
    // long_lived_pending or long_lived_total. The model looks after the op and sees them no more,
    // nor whether the collection had untracked them: it takes the collector's numbers.
    if (freed > freed_by_collector) {
      if (const std::optional<GcStatistics> statistics = collector.statistics()) {
        adopt_long_lived(*statistics);
      }
    }
  }

  // 4. A partial collection frees the young garbage that nothing older holds.
  for (ObjectId x : must_free_) {
    if (holds(x) && !may_keep(x)) {  // (a finalizer may have resurrected it meanwhile)
      return Violation::of(ViolationKind::MissedGarbage, {x},
                     "garbage in " + generation_text(generation_[x]) + ", held by nothing older, "
                     "survived a collection of generations 0.." + std::to_string(op.generation));
    }
  }

  return std::nullopt;
}

void GenerationModel::adopt(const Collector& collector, const Oracle& oracle,
                            std::span<const ObjectId> held) {
  if (generation_.size() < oracle.object_count()) generation_.resize(oracle.object_count(), 0);
  ObjectView view;
  for (ObjectId x : held) {
    collector.inspect(x, view);
    generation_[x] = view.tracked ? view.generation : kUntracked;
  }
  if (const std::optional<GcStatistics> statistics = collector.statistics()) {
    std::copy(std::begin(statistics->count), std::end(statistics->count), count_);
    std::copy(std::begin(statistics->collections), std::end(statistics->collections),
              collections_of_);
    std::copy(std::begin(statistics->collected), std::end(statistics->collected), collected_);
    adopt_long_lived(*statistics);
  }
  must_free_.clear();
}

void GenerationModel::adopt_long_lived(const GcStatistics& statistics) {
  if (!statistics.long_lived) return;
  long_lived_pending_ = (*statistics.long_lived)[0];
  long_lived_total_ = (*statistics.long_lived)[1];
}

std::optional<Violation> GenerationModel::walk(const Collector& collector,
                                              std::span<const ObjectId> held) {
  if (oldest_ == 0) return std::nullopt;
  return check_generations(collector, held, {}, kNoCollection, true);
}

// Pre: a collection ran; `collected` is its generation when known (else -1), or kNoCollection
// (walk()); `young` are objects that are young whatever it did (allocated after it, or tracked
// again). Post: generation_ is what the collector now says of each object looked at: all when
// `walk`, else those of the generations collected. (An object left out keeps the generation it
// was last seen in: no collection since could move it but one that looks at it.)
std::optional<Violation> GenerationModel::check_generations(const Collector& collector,
                                                           std::span<const ObjectId> held,
                                                           std::span<const ObjectId> young,
                                                           int collected, bool walk) {
  ObjectView view;
  std::size_t promoted_into_oldest = 0, in_oldest = 0;
  for (ObjectId x : held) {
    if (!walk && collected >= 0 && generation_[x] > collected) continue;
    if (std::find(young.begin(), young.end(), x) != young.end()) continue;
    collector.inspect(x, view);
    if (!view.tracked) {
      generation_[x] = kUntracked;
      continue;
    }
    const int before = std::max(generation_[x], 0);  // an untracked object comes back young
    const int now = view.generation;
    std::string wrong;
    if (collected >= 0 && before <= collected && now != std::min(collected + 1, oldest_)) {
      wrong = "survived a collection of " + generation_text(collected) + " from " +
              generation_text(before) + " but is in " + generation_text(now) + ", not " +
              generation_text(std::min(collected + 1, oldest_));
    } else if (collected >= 0 && before > collected && now != before) {
      wrong = "moved from " + generation_text(before) + " to " + generation_text(now) +
              " during a collection of " + generation_text(collected);
    } else if (now < before) {
      wrong = "went from " + generation_text(before) + " back to " + generation_text(now);
    } else if (collected == kNoCollection && now != before) {
      wrong = "moved from " + generation_text(before) + " to " + generation_text(now) +
              ", though no collection of " + generation_text(before) + " ran since";
    }
    if (!wrong.empty()) return Violation::of(ViolationKind::WrongGeneration, {x}, wrong);
    promoted_into_oldest += before < oldest_ && now == oldest_;
    in_oldest += now == oldest_;
    generation_[x] = now;
  }
  if (collected == oldest_ - 1) long_lived_pending_ += promoted_into_oldest;
  if (collected == oldest_) {
    long_lived_pending_ = 0;
    long_lived_total_ = in_oldest;
  }
  return std::nullopt;
}

}  // namespace cyclefuzz
