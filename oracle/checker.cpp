#include "oracle/checker.h"

#include <algorithm>
#include <exception>
#include <iterator>
#include <span>

#include "oracle/generation_checks.h"

namespace cyclefuzz {

namespace {

enum class Status : std::uint8_t { Unallocated, Alive, Freed };

}  // namespace

const char* describe(ViolationKind kind) {
  switch (kind) {
    case ViolationKind::PrematureFree:
      return "premature free";
    case ViolationKind::Leak:
      return "leak";
    case ViolationKind::WrongCount:
      return "wrong count";
    case ViolationKind::LateFree:
      return "late free";
    case ViolationKind::Disagreement:
      return "disagreement";
    case ViolationKind::WrongBookkeeping:
      return "wrong bookkeeping";
    case ViolationKind::BrokenInvariant:
      return "broken invariant";
    case ViolationKind::DoubleFree:
      return "double free";
    case ViolationKind::WrongGeneration:
      return "wrong generation";
    case ViolationKind::MissedGarbage:
      return "missed garbage";
    case ViolationKind::WrongAutomaticCollection:
      return "wrong automatic collection";
    case ViolationKind::FrozenCollected:
      return "frozen object collected";
    case ViolationKind::WrongStatistics:
      return "wrong statistics";
  }
  return "?";
}

const char* slug(ViolationKind kind) {
  switch (kind) {
    case ViolationKind::PrematureFree:
      return "premature-free";
    case ViolationKind::Leak:
      return "leak";
    case ViolationKind::WrongCount:
      return "wrong-count";
    case ViolationKind::LateFree:
      return "late-free";
    case ViolationKind::Disagreement:
      return "disagreement";
    case ViolationKind::WrongBookkeeping:
      return "wrong-bookkeeping";
    case ViolationKind::BrokenInvariant:
      return "broken-invariant";
    case ViolationKind::DoubleFree:
      return "double-free";
    case ViolationKind::WrongGeneration:
      return "wrong-generation";
    case ViolationKind::MissedGarbage:
      return "missed-garbage";
    case ViolationKind::WrongAutomaticCollection:
      return "wrong-automatic-collection";
    case ViolationKind::FrozenCollected:
      return "frozen-object-collected";
    case ViolationKind::WrongStatistics:
      return "wrong-statistics";
  }
  return "?";
}

/// One collector's run: the collector, what it has freed, and whether it is still trusted.
struct Session::Lane final : FreeListener {
  const Oracle* oracle = nullptr;
  std::size_t index = 0;
  std::string name;
  Capabilities capabilities;
  std::unique_ptr<Collector> collector;  // declared after the listener state it reports into
  std::vector<Status> status;            // by object id
  std::size_t alive = 0;
  /// The objects it allocated, in increasing order, less those it freed before the last
  /// held_objects(): so that a walk after a collection costs what it holds, not every object
  /// the trace ever made.
  std::vector<ObjectId> allocated;
  /// Reachable objects it has freed: with `alive`, it tells in O(1) whether the lane holds
  /// exactly the reachable objects.
  std::size_t freed_reachable = 0;
  std::vector<ObjectId> freed_now;  // during the current op, in order
  std::vector<ObjectId> bad_frees;  // frees of objects not alive, during the current op
  std::vector<std::vector<ObjectId>> frees_per_op;
  bool retired = false;
  std::optional<std::size_t> first;  // index of its first violation
  std::optional<GenerationModel> generations;  // for collectors with generations or statistics
  std::vector<std::uint8_t> frozen;            // by object id: frozen by the last freeze
  std::size_t frozen_count = 0;                // objects frozen (held or not)
  // Before a collection, what frozen objects kept: it may survive the collection, even if the
  // frozen object keeping it dies during it (reference counting frees it with the garbage that
  // held it; what it kept waits for the next collection, as in CPython).
  std::vector<std::uint8_t> kept_before;

  void freed(ObjectId id) override {
    if (id >= status.size() || status[id] != Status::Alive) {
      bad_frees.push_back(id);
      return;
    }
    status[id] = Status::Freed;
    --alive;
    freed_reachable += oracle->reachable_from_roots(id);
    freed_now.push_back(id);
  }
  bool holds(ObjectId id) const { return id < status.size() && status[id] == Status::Alive; }
  /// The objects it holds, in increasing order.
  std::span<const ObjectId> held_objects() {
    if (allocated.size() != alive) {
      std::erase_if(allocated, [this](ObjectId x) { return !holds(x); });
    }
    return allocated;
  }
  /// Pre: called after the oracle applied the op and before the collector does.
  void forget_freed_that_died(const std::vector<ObjectId>& newly_unreachable) {
    if (freed_reachable == 0) return;
    for (ObjectId x : newly_unreachable) freed_reachable -= status[x] == Status::Freed;
  }
  bool holds_exactly_the_reachable() const {
    return freed_reachable == 0 && alive == oracle->reachable_count();
  }
};

Session::Session(const std::vector<CollectorEntry>& collectors, const CollectorOptions& options,
                 CheckOptions checks)
    : options_(options), checks_(checks) {
  for (const CollectorEntry& entry : collectors) {
    auto lane = std::make_unique<Lane>();
    lane->oracle = &oracle_;
    lane->index = lanes_.size();
    lane->name = entry.name;
    lane->collector = entry.make(*lane, options);
    lane->capabilities = lane->collector->capabilities();
    if (lane->capabilities.generations > 1 || lane->collector->statistics()) {
      lane->generations.emplace(lane->capabilities, options);
    }
    lanes_.push_back(std::move(lane));
  }
}

Session::~Session() = default;

std::size_t Session::collector_count() const { return lanes_.size(); }
const std::string& Session::collector_name(std::size_t i) const { return lanes_[i]->name; }
bool Session::retired(std::size_t i) const { return lanes_[i]->retired; }
const Violation* Session::first_violation(std::size_t i) const {
  return lanes_[i]->first ? &violations_[*lanes_[i]->first] : nullptr;
}
const std::vector<std::vector<ObjectId>>& Session::frees_per_op(std::size_t i) const {
  return lanes_[i]->frees_per_op;
}
const Collector& Session::collector(std::size_t i) const { return *lanes_[i]->collector; }
bool Session::holds(std::size_t i, ObjectId x) const { return lanes_[i]->holds(x); }

void Session::run(const Trace& trace) {
  for (const Op& op : trace.ops) {
    if (std::all_of(lanes_.begin(), lanes_.end(), [](const auto& l) { return l->retired; })) {
      return;
    }
    step(op);
  }
}

// ================================================================================================
// One op: read this to understand the checker.
// ================================================================================================

void Session::step(const Op& op) {
  const std::size_t reachable_before = oracle_.reachable_count();
  oracle_.apply(op);
  for (auto& lane_ptr : lanes_) {
    Lane& lane = *lane_ptr;
    if (checks_.record_frees) lane.frees_per_op.emplace_back();
    if (lane.retired) continue;
    // Before the op, every reachable object is alive in the lane (else it would be retired).
    const std::size_t garbage_before = lane.alive - reachable_before;
    lane.kept_before = lane.frozen_count > 0 && op.kind == OpKind::Collect
                           ? kept_by_frozen(lane)
                           : std::vector<std::uint8_t>();
    const std::uint64_t collections_before = lane.collector->collections();
    lane.forget_freed_that_died(oracle_.newly_unreachable());
    lane.freed_now.clear();
    lane.bad_frees.clear();
    if (op.kind == OpKind::New) {
      if (lane.status.size() <= op.a) lane.status.resize(op.a + 1, Status::Unallocated);
      lane.status[op.a] = Status::Alive;
      ++lane.alive;
      lane.allocated.push_back(op.a);  // ids are allocated in increasing order
    }
    if (lane.generations) {
      lane.generations->before(op, *lane.collector, oracle_,
                               [&lane](ObjectId x) { return lane.holds(x); },
                               lane.held_objects());
    }
    std::optional<std::size_t> collected;
    try {
      collected = apply(*lane.collector, op);
    } catch (const std::exception& e) {
      report(lane, {ViolationKind::BrokenInvariant, lane.index, 0, ops_run_, {}, {}, {},
                    std::string("the collector threw: ") + e.what()});
      continue;
    }
    if (checks_.record_frees) lane.frees_per_op.back() = lane.freed_now;
    if (lane.capabilities.freezes && op.kind == OpKind::Freeze) {
      // As gc.freeze(): the objects the collector tracks (an untracked one, with no references,
      // is tracked again young when it gains one, and is not frozen).
      lane.frozen.assign(lane.status.size(), 0);
      lane.frozen_count = 0;
      ObjectView view;
      for (ObjectId x : lane.held_objects()) {
        lane.collector->inspect(x, view);
        lane.frozen[x] = view.tracked;
        lane.frozen_count += view.tracked;
      }
    } else if (op.kind == OpKind::Unfreeze) {
      lane.frozen.clear();
      lane.frozen_count = 0;
    }
    check_lane(lane, op, collected, garbage_before,
               lane.collector->collections() - collections_before);
  }
  if (op.kind == OpKind::Collect) check_agreement(op);
  ++ops_run_;
}

// Pre: the oracle and the lane's collector have both applied `op`; `garbage_before` is how many
// unreachable objects the lane held before it.
void Session::check_lane(Lane& lane, const Op& op, std::optional<std::size_t> collected,
                         std::size_t garbage_before, std::uint64_t collections) {
  const AlivePredicate holds = [&lane](ObjectId x) { return lane.holds(x); };

  // Frees of objects that were not alive.
  if (!lane.bad_frees.empty()) {
    report(lane, {ViolationKind::DoubleFree, lane.index, 0, ops_run_, lane.bad_frees, {}, {},
                  "freed an object that was already freed or never allocated"});
  }

  // Premature free: an object freed while reachable, or while an object the collector still holds
  // (uncollected garbage) refers to it - a dangling reference inside the collector's own heap.
  // Cheap when nothing is wrong: the oracle keeps reachability up to date, and a freed object's
  // referrers are its in-edges.
  std::vector<ObjectId> premature;
  std::vector<ObjectId> path;
  std::string how;
  for (ObjectId x : lane.freed_now) {
    if (oracle_.reachable_from_roots(x)) {
      if (premature.empty()) {
        path = oracle_.path_from_roots(x);
        how = kFreedWhileReachable;
      }
      premature.push_back(x);
      continue;
    }
    if (lane.capabilities.free_is_finalization) continue;
    for (auto [e, end] = boost::in_edges(x, oracle_.graph()); e != end; ++e) {
      const auto referrer = static_cast<ObjectId>(boost::source(*e, oracle_.graph()));
      if (!lane.holds(referrer)) continue;
      if (premature.empty()) {
        path = {referrer, x};
        how = "freed while garbage it still holds refers to it";
      }
      premature.push_back(x);
      break;
    }
  }
  if (!premature.empty()) {
    report(lane, {ViolationKind::PrematureFree, lane.index, 0, ops_run_, premature, path, {}, how});
  }

  const bool full = op.kind == OpKind::Collect && lane.capabilities.is_full_collection(op.generation);
  const CollectCount promise = lane.capabilities.collect_count;
  if (collected && promise != CollectCount::None) {
    // A count of what a partial collection found may fall short of its frees, never exceed them.
    const bool exact = full || promise == CollectCount::Freed;
    const std::size_t freed = lane.freed_now.size();
    std::string detail;
    if (exact ? *collected != freed : *collected > freed) {
      detail = "collect returned " + std::to_string(*collected) + " but freed " +
               (exact ? "" : "only ") + std::to_string(freed) + " objects";
    } else if (full && lane.frozen_count == 0 && *collected != garbage_before) {
      // (With frozen objects the number is not known beforehand: a frozen object the garbage
      // alone held dies with it, by reference counting, and takes what only it held.)
      detail = "collect returned " + std::to_string(*collected) + " but " +
               std::to_string(garbage_before) + " objects it held were unreachable";
    }
    if (!detail.empty()) {
      report(lane, {ViolationKind::WrongCount, lane.index, 0, ops_run_, {}, {}, {}, detail});
    }
  }

  if (lane.frozen_count > 0 && (op.kind == OpKind::Collect || collections > 0)) {
    check_frozen_frees(lane);
  }

  // Leak: after a full collection the lane holds exactly the reachable objects (and what its
  // frozen objects keep).
  if (full && lane.alive > oracle_.reachable_count() && premature.empty()) {
    std::vector<ObjectId> leaked;
    for (ObjectId x : lane.held_objects()) {
      const bool kept = x < lane.kept_before.size() && lane.kept_before[x];
      if (!oracle_.reachable_from_roots(x) && !kept) {
        leaked.push_back(x);
      }
    }
    if (!leaked.empty()) {
      const auto holder = oracle_.cycle_holding(leaked.front(), holds);
      report(lane, {ViolationKind::Leak, lane.index, 0, ops_run_, leaked, holder.path,
                    holder.cycle, "still alive after a full collection"});
    }
  }

  // Late free: only the objects this op made garbage, or whose referrers it freed, can have
  // become freeable.
  if (lane.capabilities.reference_counting) {
    std::vector<ObjectId> candidates = oracle_.newly_unreachable();
    for (ObjectId x : lane.freed_now) {
      for (ObjectId r : oracle_.referents(x)) candidates.push_back(r);
    }
    const std::vector<ObjectId> late = oracle_.unheld_garbage(candidates, holds);
    if (!late.empty()) {
      report(lane, {ViolationKind::LateFree, lane.index, 0, ops_run_, late, {}, {},
                    "unreachable, held by no garbage cycle, and still alive"});
    }
  }

  check_bookkeeping(lane, op, op.kind == OpKind::Collect || collections > 0);

  if (lane.generations && !lane.retired) {
    if (auto finding = lane.generations->after(op, *lane.collector, oracle_, holds,
                                               lane.held_objects(), collections,
                                               lane.freed_now.size())) {
      report(lane, {finding->kind, lane.index, 0, ops_run_, finding->objects, {}, {},
                    finding->detail});
    }
  }

  if (checks_.check_invariants && !lane.retired) {
    try {
      lane.collector->check_invariants();
    } catch (const std::exception& e) {
      report(lane, {ViolationKind::BrokenInvariant, lane.index, 0, ops_run_, {}, {}, {},
                    e.what()});
    }
  }
}

std::vector<std::uint8_t> Session::kept_by_frozen(Lane& lane) const {
  std::vector<ObjectId> frozen;
  for (ObjectId x : lane.held_objects()) {
    if (x < lane.frozen.size() && lane.frozen[x]) frozen.push_back(x);
  }
  std::vector<std::uint8_t> kept(lane.status.size(), 0);
  for (ObjectId x : oracle_.descendants(frozen, [&lane](ObjectId y) { return lane.holds(y); })) {
    kept[x] = 1;
  }
  return kept;
}

// A collection may not free a frozen object, but reference counting may, during it: when the
// garbage it clears held the last references to a frozen object. So a frozen object freed during
// a collection is a violation unless, among what the collector held before minus the unfrozen
// objects it freed, nothing - no cycle, no surviving object - still held it.
void Session::check_frozen_frees(Lane& lane) {
  std::vector<ObjectId> frozen_freed;
  for (ObjectId x : lane.freed_now) {
    if (x < lane.frozen.size() && lane.frozen[x]) frozen_freed.push_back(x);
  }
  if (frozen_freed.empty()) return;
  std::vector<std::uint8_t> freed_now(lane.status.size(), 0);
  for (ObjectId x : lane.freed_now) freed_now[x] = 1;
  const AlivePredicate held_after_clearing = [&](ObjectId x) {
    const bool frozen = x < lane.frozen.size() && lane.frozen[x];
    return lane.holds(x) || (freed_now[x] && frozen);
  };
  const std::vector<ObjectId> unheld = oracle_.unheld_garbage(frozen_freed, held_after_clearing);
  std::vector<std::uint8_t> may_go(lane.status.size(), 0);
  for (ObjectId x : unheld) may_go[x] = 1;
  std::vector<ObjectId> collected;
  for (ObjectId x : frozen_freed) {
    if (!may_go[x]) collected.push_back(x);
  }
  if (!collected.empty()) {
    report(lane, {ViolationKind::FrozenCollected, lane.index, 0, ops_run_, collected, {}, {},
                  "frozen, and freed by a collection while something it did not free held it"});
  }
}

// The collector's view of an object against the oracle's: its references (as a multiset) and its
// count. After a collection anything may have changed, so every object is compared; otherwise
// only those the op touched and the referents of what it freed. Stops at the first difference.
void Session::check_bookkeeping(Lane& lane, const Op& op, bool everything) {
  if (lane.retired || !lane.capabilities.inspectable) return;
  if (everything) {
    for (ObjectId x : lane.held_objects()) {
      if (!view_matches(lane, x)) return;
    }
    return;
  }
  const int arity = object_arity(op.kind);
  if (arity >= 1 && !view_matches(lane, op.a)) return;
  if (arity >= 2 && !view_matches(lane, op.b)) return;
  for (ObjectId x : lane.freed_now) {
    for (auto [r, end] = boost::adjacent_vertices(x, oracle_.graph()); r != end; ++r) {
      if (!view_matches(lane, static_cast<ObjectId>(*r))) return;
    }
  }
}

// Reports and returns false when the lane holds x and its view of x differs from the oracle's.
bool Session::view_matches(Lane& lane, ObjectId x) {
  if (!lane.holds(x)) return true;
  // view_ is shared by every lane: reset what a collector's inspect may leave as it found it.
  view_.references.clear();
  view_.count = 0;
  view_.generation = 0;
  view_.tracked = true;
  lane.collector->inspect(x, view_);
  // Collectors usually keep references in the order they were made, as the oracle does: compare
  // in order first, and as multisets (sorted) only when that fails.
  const auto [first, last] = boost::adjacent_vertices(x, oracle_.graph());
  bool same = std::equal(view_.references.begin(), view_.references.end(), first, last);
  if (!same) {
    expected_.assign(first, last);
    std::sort(expected_.begin(), expected_.end());
    std::sort(view_.references.begin(), view_.references.end());
    same = view_.references == expected_;
  }
  std::string detail;
  if (!view_.tracked && !view_.references.empty()) {
    detail = "untracked, yet it holds " + std::to_string(view_.references.size()) +
             " references: it must be tracked again the moment it gains one";
  } else if (!same) {
    detail = "its references differ from the oracle's (" + std::to_string(view_.references.size()) +
             " held, " + std::to_string(boost::out_degree(x, oracle_.graph())) + " expected)";
  } else if (lane.capabilities.count != CountMeaning::None) {
    const std::uint64_t count = expected_count(oracle_, lane.capabilities.count, x,
                                               [&lane](ObjectId y) { return lane.holds(y); });
    if (view_.count != count) {
      detail = "its count is " + std::to_string(view_.count) + ", expected " + std::to_string(count);
    }
  }
  if (detail.empty()) return true;
  report(lane, {ViolationKind::WrongBookkeeping, lane.index, 0, ops_run_, {x}, {}, {}, detail});
  return false;
}

// Differential check, independent of the oracle: after a full collection, collectors must hold
// the same objects.
void Session::check_agreement(const Op& op) {
  std::vector<Lane*> compared;
  for (auto& lane : lanes_) {
    const bool was_running =
        !lane->retired || (lane->first && violations_[*lane->first].op_index == ops_run_);
    if (was_running && lane->capabilities.is_full_collection(op.generation)) {
      compared.push_back(lane.get());
    }
  }
  // What a collector's frozen objects kept before the collection may differ between collectors
  // (reference counting frees frozen garbage that a tracing collector keeps): it is left out.
  const auto is_kept = [&](std::size_t i, ObjectId x) {
    return x < compared[i]->kept_before.size() && compared[i]->kept_before[x];
  };
  for (std::size_t i = 0; i < compared.size(); ++i) {
    for (std::size_t j = i + 1; j < compared.size(); ++j) {
      // Two lanes that each hold exactly the reachable objects agree, without a look at every
      // object.
      if (compared[i]->holds_exactly_the_reachable() &&
          compared[j]->holds_exactly_the_reachable()) {
        continue;
      }
      std::vector<ObjectId> differ;
      const std::span<const ObjectId> first = compared[i]->held_objects();
      const std::span<const ObjectId> second = compared[j]->held_objects();
      std::set_symmetric_difference(first.begin(), first.end(), second.begin(), second.end(),
                                    std::back_inserter(differ));
      std::erase_if(differ, [&](ObjectId x) { return is_kept(i, x) || is_kept(j, x); });
      if (!differ.empty() && checks_.reports(ViolationKind::Disagreement)) {
        violations_.push_back({ViolationKind::Disagreement, compared[i]->index,
                               compared[j]->index, ops_run_, differ, {}, {},
                               "held by one collector and not the other"});
      }
    }
  }
}

void Session::report(Lane& lane, Violation violation) {
  const bool unsafe = violation.kind == ViolationKind::PrematureFree ||
                      violation.kind == ViolationKind::DoubleFree;
  if (!checks_.reports(violation.kind)) {
    lane.retired = lane.retired || unsafe;
    return;
  }
  if (!lane.first) lane.first = violations_.size();
  violations_.push_back(std::move(violation));
  lane.retired = true;
}

}  // namespace cyclefuzz
