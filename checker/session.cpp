#include "checker/session.h"

#include <algorithm>
#include <exception>

#include "checker/lane.h"

namespace cyclefuzz {

Session::Session(const std::vector<CollectorEntry>& collectors, const CollectorOptions& options,
                 CheckOptions checks)
    : entries_(collectors), options_(options), checks_(checks) {
  for (const CollectorEntry& entry : collectors) {
    auto lane = std::make_unique<Lane>(lanes_.size(), entry.name, oracle_);
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
const Lane& Session::lane(std::size_t i) const { return *lanes_[i]; }
bool Session::holds(std::size_t i, ObjectId x) const { return lanes_[i]->holds(x); }
bool Session::allocated(std::size_t i, ObjectId x) const {
  const Lane& lane = *lanes_[i];
  return x < lane.status.size() ? lane.status[x] != Lane::Status::Unallocated
                                : !oracle_.born_in_finalizer(x);
}

void Session::run(const Trace& trace) {
  for (const Op& op : trace.ops) {
    if (done()) break;
    step(op);
  }
  finish();
}

bool Session::done() const {
  return std::all_of(lanes_.begin(), lanes_.end(), [](const auto& l) { return l->retired; });
}

// (What the walks find is reported at the last op, after which they run.)
void Session::finish() {
  if (ops_run_ == 0) return;
  --ops_run_;
  for (auto& lane_ptr : lanes_) {
    Lane& lane = *lane_ptr;
    if (lane.records_owed) check_bookkeeping(lane, true);
    if (lane.records_owed && lane.generations && !lane.retired) {
      if (auto finding = lane.generations->walk(*lane.collector, lane.held_objects())) {
        report(lane, std::move(*finding));
      }
    }
    if (lane.invariants_owed) check_invariants(lane, true);
    lane.records_owed = lane.invariants_owed = false;
  }
  ++ops_run_;
}

// ================================================================================================
// One op: read this to understand the checker.
// ================================================================================================

void Session::step(const Op& op) {
  const std::size_t reachable_before = oracle_.reachable_count();
  std::optional<ObjectId> replaced;  // (what the harness's maps unlink)
  if (op.kind == OpKind::Entry || op.kind == OpKind::Unentry) {
    replaced = oracle_.entry_value(op.a, op.b);
  }
  oracle_.apply(op);
  for (auto& lane_ptr : lanes_) {
    Lane& lane = *lane_ptr;
    if (checks_.record_frees) lane.frees_per_op.emplace_back();
    if (lane.retired) continue;
    if (auto facts = run_op(lane, op, reachable_before, replaced)) check_lane(lane, op, *facts);
  }
  if (op.kind == OpKind::Collect) check_agreement(op);
  ++ops_run_;
}

// Before the op, every live object is alive in the lane (else it would be retired), and the
// predicates (checker/lane.h) describe the heap before it: what this op's checks need from then
// is taken now.
std::optional<Session::OpFacts> Session::run_op(Lane& lane, const Op& op,
                                                std::size_t reachable_before,
                                                std::optional<ObjectId> replaced) {
  // (What the list reaches stops where the mutator's heap begins: it grows when the mutator lets
  // go of an object, and entries change what the harness's maps keep.)
  lane.begin_op(oracle_.object_count(), !oracle_.newly_unreachable().empty() ||
                                            op.kind == OpKind::Entry ||
                                            op.kind == OpKind::Unentry);
  OpFacts facts;
  facts.full = op.kind == OpKind::Collect && lane.capabilities.is_full_collection(op.generation);
  const bool had_list = !lane.resurrected.empty();
  const bool kept_any = lane.kept_any();
  const std::size_t garbage_before = lane.alive - reachable_before;  // when the list is empty
  if (lane.frozen_count > 0 && op.kind == OpKind::Collect) {
    keep_by_frozen(lane);
    if (!lane.kept_before.empty()) lane.reach_changed();  // (reached_by_list: frozen_keep)
  }
  if (facts.full && oracle_.weak_count() > 0 &&
      (lane.capabilities.weak_references_cleared_before_finalizers ||
       lane.capabilities.weak_reference_holders)) {
    for (ObjectId x : lane.held_objects()) {
      if (lane.must_be_freed(x)) lane.garbage_at_start.insert(x);
    }
  }
  const std::uint64_t collections_before = lane.collector->collections();
  lane.forget_freed_that_died(oracle_.newly_unreachable());
  for (std::uint32_t k = 0; k < objects_made(op); ++k) lane.allocate(op.a + k);
  if (lane.generations) {
    lane.generations->before(op, *lane.collector, oracle_, lane.view(),
                             [&lane](ObjectId x) { return lane.holds(x); },
                             [&lane](ObjectId x) { return lane.kept(x); },
                             [&lane] { return lane.held_objects(); });
  }

  try {
    facts.collected = apply(*lane.collector, op, replaced);
    if (op.kind == OpKind::Release) lane.release_resurrected();
    facts.freed_by_collector = lane.freed_now.size();
    lane.drop_entries_of_freed_keys();
  } catch (const std::exception& e) {
    check_frees(lane);  // what it freed before it threw still counts
    report(lane, Violation::of(ViolationKind::BrokenInvariant, {},
                               std::string("the collector threw: ") + e.what()));
    lane.retired = true;  // reported or not, its heap can no longer be trusted
    return std::nullopt;
  }

  lane.end_op();
  // (What frozen objects keep after the collection may survive it too: a finalizer may have given
  // them more to keep, which a collector that marks again keeps.)
  if (lane.frozen_count > 0 && op.kind == OpKind::Collect) keep_by_frozen(lane);
  if (checks_.record_frees) lane.frees_per_op.back() = lane.freed_now;
  if (lane.capabilities.freezes && op.kind == OpKind::Freeze) {
    freeze(lane);
  } else if (op.kind == OpKind::Unfreeze) {
    lane.frozen.clear();
    lane.thawed.clear();
    lane.frozen_count = 0;
  } else if (lane.frozen_count > 0 && lane.capabilities.generations > 1) {
    thaw_finalized(lane, op);  // (only generations show where a frozen object is)
  }
  // (A count of what a collection found is only known beforehand when no finalizer's or
  // callback's program can change the garbage while it runs, and no map's entry keeps garbage.)
  if (!had_list && !kept_any && lane.programs_now == 0) facts.garbage_before = garbage_before;
  facts.collections = lane.collector->collections() - collections_before;
  return facts;
}

// As gc.freeze(): the objects the collector tracks (an untracked one, with no references, is
// tracked again young when it gains one, and is not frozen).
void Session::freeze(Lane& lane) {
  lane.frozen.clear();
  lane.thawed.clear();
  lane.frozen_count = 0;
  ObjectView view;
  for (ObjectId x : lane.held_objects()) {
    lane.collector->inspect(x, view);
    if (!view.tracked) continue;
    lane.frozen.insert(x);
    ++lane.frozen_count;
  }
}

// A frozen object whose finalizer ran may have been tracked again, young, to run it from its
// deallocation (CPython's subtype_dealloc): resurrected, it is frozen no more once its collector
// shows it in another generation. Outside `collect`, a collection that a finalizer asked for in
// the same op may even have freed it since.
void Session::thaw_finalized(Lane& lane, const Op& op) {
  ObjectView view;
  for (ObjectId x : lane.finalized_now) {
    if (!lane.frozen.contains(x)) continue;
    if (lane.holds(x)) {
      lane.collector->inspect(x, view);
      if (view.generation == kPermanentGeneration) continue;
    } else if (op.kind == OpKind::Collect) {
      continue;
    }
    lane.frozen.erase(x);
    lane.thawed.insert(x);
    --lane.frozen_count;
  }
}

// Every check of one lane after one op, in the order their reports should come: one op can break
// several rules (a leak after a full collection is also a wrong count).
void Session::check_lane(Lane& lane, const Op& op, const OpFacts& facts) {
  const bool sound_frees = check_frees(lane);
  check_count(lane, facts);
  if (lane.frozen_count > 0 && (op.kind == OpKind::Collect || facts.collections > 0)) {
    check_frozen_frees(lane);
  }
  if (facts.full && sound_frees) check_leak(lane);
  if (lane.capabilities.reference_counting) check_late_free(lane);
  check_finalizers_and_weak_references(lane, op, facts.full);
  const bool collected = op.kind == OpKind::Collect || facts.collections > 0;
  find_touched(lane, op);
  const Walks walks =
      walks_due(lane, collected, lane.finalizers_now > 0 || lane.programs_now > 0);
  check_bookkeeping(lane, walks.records);
  check_generations(lane, op, facts, walks.records);
  check_automatic_collection(lane, op, facts.collections);
  check_invariants(lane, walks.invariants);
}

void Session::report(Lane& lane, Violation violation) {
  const bool unsafe = violation.kind == ViolationKind::PrematureFree ||
                      violation.kind == ViolationKind::DoubleFree;
  if (!checks_.reports(violation.kind)) {
    lane.retired = lane.retired || unsafe;
    return;
  }
  violation.collector = lane.index;
  violation.op_index = ops_run_;
  if (!lane.first) lane.first = violations_.size();
  violations_.push_back(std::move(violation));
  lane.retired = true;
}

}  // namespace cyclefuzz
