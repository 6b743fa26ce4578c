#include "checker/session.h"

#include <algorithm>
#include <exception>
#include <iterator>
#include <span>

#include "checker/generation_checks.h"
#include "checker/object_set.h"

namespace cyclefuzz {

namespace {

enum class Status : std::uint8_t { Unallocated, Alive, Freed };
enum class WeakState : std::uint8_t { Set, Cleared, CalledBack };
constexpr std::size_t kNever = ~std::size_t{0};

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
    case ViolationKind::WrongFinalization:
      return "wrong finalization";
    case ViolationKind::WrongWeakReference:
      return "wrong weak reference";
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
    case ViolationKind::WrongFinalization:
      return "wrong-finalization";
    case ViolationKind::WrongWeakReference:
      return "wrong-weak-reference";
  }
  return "?";
}

/// One collector's run: the collector, what it has freed, and whether it is still trusted. It is
/// the program the collector calls back into: frees, finalizers, weak references.
struct Session::Lane final : CollectorHost {
  std::size_t index = 0;
  std::string name;
  Capabilities capabilities;
  const Oracle* oracle = nullptr;
  Oracle* mutable_oracle = nullptr;  // for the references this lane's finalizers make
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
  ObjectSet frozen;                            // frozen by the last freeze
  std::size_t frozen_count = 0;                // objects frozen (held or not)
  // Before a collection, what frozen objects kept: it may survive the collection, even if the
  // frozen object keeping it dies during it (reference counting frees it with the garbage that
  // held it; what it kept waits for the next collection, as in CPython).
  ObjectSet kept_before;

  // The program's list of resurrected objects; each entry is one external reference the
  // collector was given. `kept` is what the list reaches and the mutator does not, as of the
  // end of an op: every use asks "reachable from roots, or kept?", and the mutator's reachability
  // is the same when `kept` is used as when it was computed (only `collect` uses it before it is
  // recomputed, and a collection leaves the mutator's references alone).
  std::vector<ObjectId> resurrected;
  std::vector<ObjectId> releasing;  // during `release`: the entries not yet dropped
  std::vector<ObjectId> finalizer_locals;  // objects running finalizers allocated and still hold
  std::vector<ObjectId> born_now;  // during the current op: the objects finalizers allocated
  std::vector<ObjectId> linked_now;  // ... and those they added references from
  std::vector<ObjectId> released;   // during the current op: the entries `release` dropped
  std::vector<std::uint32_t> listed;  // by object id: its entries in the list
  ObjectSet kept;
  ObjectSet fresh;    // what born_now and linked_now reach, at the end of an op
  ObjectSet reached;  // the same during the op (reached_by_list)
  bool reached_valid = false;
  std::vector<std::uint8_t> finalized;  // by object id: its finalizer ran
  std::vector<WeakState> weak;          // by weak reference
  // During the current op: the finalizer runs and clears, numbered in the order they happened.
  std::size_t events = 0;
  std::size_t first_finalizer = kNever;
  std::size_t finalizers_now = 0;
  std::uint64_t nested_collections = 0;  // collections a finalizer asked for that ran
  std::vector<std::pair<WeakId, std::size_t>> cleared_now;
  std::vector<Violation> found_in_callbacks;
  // At the start of a full collection, the garbage it must find (for the order of weak-reference
  // clears and finalizers).
  ObjectSet garbage_at_start;

  bool holds(ObjectId id) const { return id < status.size() && status[id] == Status::Alive; }
  /// Its heap: the mutator's references and those its finalizers made.
  HeapView view() const { return static_cast<HeapView>(index); }

  void begin_op(std::size_t objects) {
    freed_now.clear();
    bad_frees.clear();
    events = 0;
    first_finalizer = kNever;
    finalizers_now = 0;
    nested_collections = 0;
    cleared_now.clear();
    found_in_callbacks.clear();
    released.clear();
    born_now.clear();
    linked_now.clear();
    reached_valid = false;
    if (status.size() < objects) {
      status.resize(objects, Status::Unallocated);
      listed.resize(objects, 0);
      finalized.resize(objects, 0);
    }
    weak.resize(oracle->weak_count(), WeakState::Set);
  }

  /// What the program's list reaches now and the mutator does not: searched again only after the
  /// list or the heap changed (a new op, a store, a release), however many callbacks ask. The
  /// search stops at objects the mutator reaches: all they reach, it reaches too (a finalizer
  /// only adds references from objects the mutator cannot reach), so a list that refers into the
  /// live heap costs what it reaches outside it, not the whole heap at every op.
  const ObjectSet& reached_by_list() {
    if (reached_valid) return reached;
    reached.clear();
    if (!resurrected.empty() || !releasing.empty() || !finalizer_locals.empty()) {
      std::vector<ObjectId> entries = resurrected;
      entries.insert(entries.end(), releasing.begin(), releasing.end());
      entries.insert(entries.end(), finalizer_locals.begin(), finalizer_locals.end());
      const auto unreachable = [this](ObjectId y) { return !oracle->reachable_from_roots(y); };
      for (ObjectId x : oracle->descendants(entries, unreachable, view())) {
        reached.insert(x);
      }
    }
    reached_valid = true;
    return reached;
  }

  /// Whether the program can still reach x, through the mutator's references or its list.
  bool live(ObjectId x) {
    if (oracle->reachable_from_roots(x)) return true;
    return reached_by_list().contains(x);
  }

  /// Recomputes `kept`, at the end of an op.
  void update_kept() { kept.assign(reached_by_list()); }
  bool is_kept(ObjectId x) const { return kept.contains(x); }

  /// Recomputes `fresh`, at the end of an op: what the objects its finalizers allocated or
  /// added references from during the op reach. They may outlive the collection they changed:
  /// a collector need not look again at what a finalizer changed under it (an object a finalizer
  /// allocates is no part of the garbage found; one that was untracked is tracked again young,
  /// outside the collection, as in CPython). The next full collection must free them.
  void update_fresh() {
    fresh.clear();
    if (born_now.empty() && linked_now.empty()) return;
    std::vector<ObjectId> changed = born_now;
    changed.insert(changed.end(), linked_now.begin(), linked_now.end());
    for (ObjectId x : oracle->descendants(changed, [this](ObjectId y) { return holds(y); },
                                          view())) {
      fresh.insert(x);
    }
  }
  bool is_fresh(ObjectId x) const { return fresh.contains(x); }

  void problem(ViolationKind kind, std::vector<ObjectId> objects, std::string detail,
               std::vector<WeakId> weak_refs = {}) {
    Violation v{kind, index, 0, 0, std::move(objects), {}, {}, std::move(detail)};
    v.weak = std::move(weak_refs);
    found_in_callbacks.push_back(std::move(v));
  }

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

  // Runs x's finalizer: checks that it may run, then does what the trace says it does.
  void finalize(ObjectId x) override {
    if (first_finalizer == kNever) first_finalizer = events;
    ++events;
    ++finalizers_now;
    const auto wrong = [&](const char* detail) {
      problem(ViolationKind::WrongFinalization, {x}, detail);
    };
    if (!holds(x)) return wrong("ran the finalizer of an object already freed");
    if (!capabilities.finalizers || !oracle->has_finalizer(x)) {
      return wrong("ran a finalizer the object does not have");
    }
    if (finalized[x]) return wrong("ran its finalizer a second time");
    finalized[x] = 1;
    // (Reachable from the mutator, that is: as in PEP 442, a finalizer of a collection's garbage
    // runs even when another finalizer of that garbage has just resurrected its object.)
    if (oracle->reachable_from_roots(x)) return wrong("ran its finalizer while still reachable");
    run_program(x);
  }

  // The finalizer's program, in this lane's heap. A step acts only where the mutator cannot look
  // (op.h): a step naming an object that x no longer reaches when it runs - the mutator changed
  // the heap before this collector got to x - or a link from an object the mutator still reaches
  // is skipped, and the collector never sees it.
  void run_program(ObjectId x) {
    std::vector<ObjectId> locals;  // what its `new` steps allocated: held until it returns
    std::vector<ObjectId> from_x;  // what x reaches in this lane's heap, when a step asks
    bool from_x_valid = false;
    const auto reaches = [&](ObjectId y) {
      if (std::find(locals.begin(), locals.end(), y) != locals.end()) return holds(y);
      if (!from_x_valid) {
        const ObjectId from[] = {x};
        from_x = oracle->descendants(from, [this](ObjectId z) { return holds(z); }, view());
        from_x_valid = true;
      }
      return std::find(from_x.begin(), from_x.end(), y) != from_x.end();
    };
    for (const Step& step : oracle->finalizer_program(x)) {
      switch (step.kind) {
        case StepKind::New:
          status[step.a] = Status::Alive;
          ++alive;
          allocated.insert(std::upper_bound(allocated.begin(), allocated.end(), step.a), step.a);
          born_now.push_back(step.a);
          locals.push_back(step.a);
          ++listed[step.a];  // the finalizer's own reference, an external one
          finalizer_locals.push_back(step.a);
          reached_valid = false;
          collector->allocate(step.a);
          break;
        case StepKind::Link:
          if (!reaches(step.a) || !reaches(step.b) || oracle->reachable_from_roots(step.a)) break;
          mutable_oracle->add_finalizer_reference(view(), step.a, step.b);
          linked_now.push_back(step.a);
          from_x_valid = false;
          reached_valid = false;
          collector->link(step.a, step.b);
          break;
        case StepKind::Resurrect:
          if (!reaches(step.a)) break;
          resurrected.push_back(step.a);
          reached_valid = false;
          ++listed[step.a];
          collector->root(step.a);
          break;
        case StepKind::Collect: {  // it must refuse it or survive it
          const std::uint64_t before = collector->collections();
          collector->collect(kOldestGeneration);
          nested_collections += collector->collections() - before;
          break;
        }
      }
    }
    // It returns: its locals go.
    for (ObjectId y : locals) {
      finalizer_locals.erase(std::find(finalizer_locals.begin(), finalizer_locals.end(), y));
      --listed[y];
      reached_valid = false;
      if (!holds(y)) {
        problem(ViolationKind::PrematureFree, {y},
                "freed while the finalizer that allocated it still held it");
        continue;
      }
      collector->unroot(y);
    }
  }

  void weak_cleared(WeakId w) override {
    ++events;
    if (w >= weak.size()) {
      return problem(ViolationKind::WrongWeakReference, {}, "cleared a weak reference never taken");
    }
    const ObjectId target = oracle->weak_target(w);
    const auto wrong = [&](const char* detail) {
      problem(ViolationKind::WrongWeakReference, {target}, detail, {w});
    };
    if (!capabilities.weak_references) {
      wrong("cleared a weak reference it does not keep");
    } else if (weak[w] != WeakState::Set) {
      wrong("cleared a weak reference to it a second time");
    } else if (!holds(target)) {
      wrong("cleared a weak reference to it only after freeing it");
    } else if (live(target)) {
      wrong("cleared a weak reference to it while the program could still reach it");
    }
    weak[w] = WeakState::Cleared;
    cleared_now.emplace_back(w, events);
  }

  void weak_callback(WeakId w) override {
    if (w >= weak.size()) {
      return problem(ViolationKind::WrongWeakReference, {},
                     "ran the callback of a weak reference never taken");
    }
    const ObjectId target = oracle->weak_target(w);
    const auto wrong = [&](const char* detail) {
      problem(ViolationKind::WrongWeakReference, {target}, detail, {w});
    };
    if (!oracle->weak_has_callback(w)) {
      wrong("ran a callback for a weak reference to it that has none");
    } else if (weak[w] == WeakState::Set) {
      wrong("ran a weak reference's callback before clearing it");
    } else if (weak[w] == WeakState::CalledBack) {
      wrong("ran a weak reference's callback a second time");
    } else if (holds(target) && live(target)) {
      wrong("ran a weak reference's callback while the program could still reach it");
    }
    weak[w] = WeakState::CalledBack;
  }
};

Session::Session(const std::vector<CollectorEntry>& collectors, const CollectorOptions& options,
                 CheckOptions checks)
    : options_(options), checks_(checks) {
  for (const CollectorEntry& entry : collectors) {
    auto lane = std::make_unique<Lane>();
    lane->index = lanes_.size();
    lane->name = entry.name;
    lane->oracle = &oracle_;
    lane->mutable_oracle = &oracle_;
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
bool Session::changed_by_finalizers(std::size_t i, ObjectId x) const {
  return lanes_[i]->is_fresh(x);
}
bool Session::allocated(std::size_t i, ObjectId x) const {
  const Lane& lane = *lanes_[i];
  return x < lane.status.size() ? lane.status[x] != Status::Unallocated
                                : !oracle_.born_in_finalizer(x);
}
std::uint32_t Session::listed(std::size_t i, ObjectId x) const {
  return x < lanes_[i]->listed.size() ? lanes_[i]->listed[x] : 0;
}

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
    lane.begin_op(oracle_.object_count());
    // Before the op, every live object is alive in the lane (else it would be retired).
    const bool had_list = !lane.resurrected.empty();
    const std::size_t garbage_before = lane.alive - reachable_before;  // when the list is empty
    lane.kept_before.clear();
    if (lane.frozen_count > 0 && op.kind == OpKind::Collect) keep_by_frozen(lane);
    const bool full = op.kind == OpKind::Collect && lane.capabilities.is_full_collection(op.generation);
    lane.garbage_at_start.clear();
    if (full && lane.capabilities.weak_references_cleared_before_finalizers &&
        oracle_.weak_count() > 0) {
      for (ObjectId x : lane.held_objects()) {
        const bool kept = lane.is_kept(x) || lane.kept_before.contains(x);
        if (!oracle_.reachable_from_roots(x) && !kept) lane.garbage_at_start.insert(x);
      }
    }
    const std::uint64_t collections_before = lane.collector->collections();
    lane.forget_freed_that_died(oracle_.newly_unreachable());
    if (op.kind == OpKind::New) {
      lane.status[op.a] = Status::Alive;
      ++lane.alive;
      lane.allocated.push_back(op.a);  // ids are allocated in increasing order
    }
    const AlivePredicate kept = [&lane](ObjectId x) { return lane.is_kept(x); };
    if (lane.generations) {
      lane.generations->before(op, *lane.collector, oracle_, lane.view(),
                               [&lane](ObjectId x) { return lane.holds(x); }, kept,
                               lane.held_objects());
    }
    std::optional<std::size_t> collected;
    try {
      collected = apply(*lane.collector, op);
      if (op.kind == OpKind::Release) release_resurrected(lane);
    } catch (const std::exception& e) {
      check_frees(lane);  // what it freed before it threw still counts
      report(lane, {ViolationKind::BrokenInvariant, lane.index, 0, ops_run_, {}, {}, {},
                    std::string("the collector threw: ") + e.what()});
      lane.retired = true;  // reported or not, its heap can no longer be trusted
      continue;
    }
    if (had_list || !lane.resurrected.empty()) lane.update_kept();
    lane.update_fresh();
    if (checks_.record_frees) lane.frees_per_op.back() = lane.freed_now;
    if (lane.capabilities.freezes && op.kind == OpKind::Freeze) {
      // As gc.freeze(): the objects the collector tracks (an untracked one, with no references,
      // is tracked again young when it gains one, and is not frozen).
      lane.frozen.clear();
      lane.frozen_count = 0;
      ObjectView view;
      for (ObjectId x : lane.held_objects()) {
        lane.collector->inspect(x, view);
        if (!view.tracked) continue;
        lane.frozen.insert(x);
        ++lane.frozen_count;
      }
    } else if (op.kind == OpKind::Unfreeze) {
      lane.frozen.clear();
      lane.frozen_count = 0;
    }
    // (A count of what a collection found is only known beforehand when no finalizer can change
    // the garbage while it runs.)
    const bool count_known = !had_list && lane.finalizers_now == 0;
    check_lane(lane, op, collected, count_known ? std::optional(garbage_before) : std::nullopt,
               lane.collector->collections() - collections_before);
  }
  if (op.kind == OpKind::Collect) check_agreement(op);
  ++ops_run_;
}

// `release`: the program empties its list of resurrected objects, dropping each entry's
// reference. A finalizer that runs meanwhile may store new entries: those stay.
void Session::release_resurrected(Lane& lane) {
  lane.releasing.swap(lane.resurrected);
  while (!lane.releasing.empty()) {
    const ObjectId x = lane.releasing.back();
    lane.releasing.pop_back();
    lane.reached_valid = false;
    --lane.listed[x];
    lane.released.push_back(x);
    lane.collector->unroot(x);
  }
}

// The frees of the current op, as they happened: of objects not alive (double free), or of
// objects the program still reaches or the collector's own garbage still refers to (premature
// free). Returns whether they were all sound.
bool Session::check_frees(Lane& lane) {
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
    if (lane.is_kept(x)) {
      if (premature.empty()) how = "freed while the program's list of resurrected objects reaches it";
      premature.push_back(x);
      continue;
    }
    if (lane.capabilities.free_is_finalization) continue;
    std::optional<ObjectId> holder;
    oracle_.for_each_referrer(x, lane.view(), [&](ObjectId referrer) {
      if (!holder && lane.holds(referrer)) holder = referrer;
    });
    if (!holder) continue;
    if (premature.empty()) {
      path = {*holder, x};
      how = "freed while garbage it still holds refers to it";
    }
    premature.push_back(x);
  }
  if (!premature.empty()) {
    report(lane, {ViolationKind::PrematureFree, lane.index, 0, ops_run_, premature, path, {}, how});
  }
  return premature.empty();
}


// Pre: the oracle and the lane's collector have both applied `op`; `garbage_before` is how many
// unreachable objects the lane held before it, when that fixes what a collection must find.
void Session::check_lane(Lane& lane, const Op& op, std::optional<std::size_t> collected,
                         std::optional<std::size_t> garbage_before, std::uint64_t collections) {
  const AlivePredicate holds = [&lane](ObjectId x) { return lane.holds(x); };
  // Garbage, as this lane's program sees it: held, and reached neither by the mutator nor by the
  // list of resurrected objects.
  const AlivePredicate holds_unkept = [&lane](ObjectId x) {
    return lane.holds(x) && !lane.is_kept(x);
  };

  const bool premature = !check_frees(lane);

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
    } else if (full && lane.frozen_count == 0 && garbage_before &&
               *collected != *garbage_before) {
      // (With frozen objects the number is not known beforehand: a frozen object the garbage
      // alone held dies with it, by reference counting, and takes what only it held.)
      detail = "collect returned " + std::to_string(*collected) + " but " +
               std::to_string(*garbage_before) + " objects it held were unreachable";
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
  if (full && lane.alive > oracle_.reachable_count() && !premature) {
    std::vector<ObjectId> leaked;
    for (ObjectId x : lane.held_objects()) {
      const bool kept = lane.kept_before.contains(x) || lane.is_kept(x) || lane.is_fresh(x);
      if (!oracle_.reachable_from_roots(x) && !kept) {
        leaked.push_back(x);
      }
    }
    if (!leaked.empty()) {
      const auto holder = oracle_.cycle_holding(leaked.front(), holds_unkept, lane.view());
      report(lane, {ViolationKind::Leak, lane.index, 0, ops_run_, leaked, holder.path,
                    holder.cycle, "still alive after a full collection"});
    }
  }

  // Late free: only the objects this op made garbage, or whose referrers it freed, can have
  // become freeable.
  if (lane.capabilities.reference_counting) {
    // (And the objects finalizers allocated, which they dropped as they returned.)
    std::vector<ObjectId> candidates = oracle_.newly_unreachable();
    for (ObjectId x : lane.freed_now) {
      oracle_.for_each_referent(x, lane.view(), [&](ObjectId r) { candidates.push_back(r); });
    }
    for (ObjectId x : lane.released) {
      if (!oracle_.reachable_from_roots(x)) candidates.push_back(x);
    }
    candidates.insert(candidates.end(), lane.born_now.begin(), lane.born_now.end());
    std::erase_if(candidates, [&lane](ObjectId x) { return lane.is_kept(x); });
    const std::vector<ObjectId> late = oracle_.unheld_garbage(candidates, holds_unkept, lane.view());
    if (!late.empty()) {
      report(lane, {ViolationKind::LateFree, lane.index, 0, ops_run_, late, {}, {},
                    "unreachable, held by no garbage cycle, and still alive"});
    }
  }

  check_finalizers_and_weak_references(lane, op, full);
  check_bookkeeping(lane, op, op.kind == OpKind::Collect || collections > 0);

  // (A nested collection, or a finalizer that allocated or linked objects in the middle of an
  // op, leave the model's counts and generations behind: it reads them again from the collector.)
  if (lane.generations && !lane.retired &&
      (lane.nested_collections > 0 || !lane.born_now.empty() || !lane.linked_now.empty())) {
    lane.generations->adopt(*lane.collector, oracle_, lane.held_objects());
  } else if (lane.generations && !lane.retired) {
    if (auto finding = lane.generations->after(
            op, *lane.collector, oracle_, holds, [&lane](ObjectId x) { return lane.is_kept(x); },
            lane.held_objects(), collections, lane.freed_now.size())) {
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

// Finalizers and weak references at the end of an op: first what the callbacks found as they
// happened, then what must hold once the op is over.
void Session::check_finalizers_and_weak_references(Lane& lane, const Op& op, bool full) {
  if (lane.retired) return;
  if (!lane.found_in_callbacks.empty()) {
    Violation v = std::move(lane.found_in_callbacks.front());
    v.op_index = ops_run_;
    report(lane, std::move(v));
    return;
  }
  if (lane.capabilities.finalizers) {
    std::vector<ObjectId> unfinalized;
    for (ObjectId x : lane.freed_now) {
      if (oracle_.has_finalizer(x) && !lane.finalized[x]) unfinalized.push_back(x);
    }
    if (!unfinalized.empty()) {
      report(lane, {ViolationKind::WrongFinalization, lane.index, 0, ops_run_, unfinalized, {}, {},
                    "freed without its finalizer running"});
      return;
    }
  }
  if (!lane.capabilities.weak_references) return;
  const auto wrong = [&](ObjectId target, WeakId w, std::string detail) {
    Violation v{ViolationKind::WrongWeakReference, lane.index, 0, ops_run_, {target}, {}, {},
                std::move(detail)};
    v.weak = {w};
    report(lane, std::move(v));
  };
  for (ObjectId x : lane.freed_now) {
    for (WeakId w : oracle_.weak_references_to(x)) {
      if (lane.weak[w] == WeakState::Set) {
        return wrong(x, w, "freed, but a weak reference still points to it");
      }
    }
  }
  for (const auto& [w, when] : lane.cleared_now) {
    if (oracle_.weak_has_callback(w) && lane.weak[w] != WeakState::CalledBack) {
      return wrong(oracle_.weak_target(w), w, "a weak reference to it was cleared, but its "
                   "callback never ran");
    }
  }
  if (op.kind == OpKind::Deref) {
    const ObjectId target = oracle_.weak_target(op.weak);
    const std::optional<ObjectId> expected =
        lane.weak[op.weak] == WeakState::Set ? std::optional(target) : std::nullopt;
    const std::optional<ObjectId> got = lane.collector->deref(op.weak);
    if (got != expected) {
      return wrong(target, op.weak, std::string("deref ") +
                                        (got ? "found an object" : "found it cleared") +
                                        (expected ? ", but it was never cleared"
                                                  : ", but the collector cleared it"));
    }
  }
  if (full && !lane.garbage_at_start.empty() && lane.first_finalizer != kNever) {
    for (const auto& [w, when] : lane.cleared_now) {
      const ObjectId target = oracle_.weak_target(w);
      if (when > lane.first_finalizer && lane.garbage_at_start.contains(target)) {
        return wrong(target, w, "garbage of a full collection whose weak reference was cleared "
                     "only after a finalizer of that collection ran");
      }
    }
  }
}

// Only the garbage among them matters (every use asks "reachable from roots, or kept?", and a
// collection leaves the mutator's references alone), and nothing the mutator reaches leads to
// garbage: so the search starts at frozen garbage and stops at the live heap.
void Session::keep_by_frozen(Lane& lane) const {
  const AlivePredicate held_garbage = [&](ObjectId y) {
    return lane.holds(y) && !oracle_.reachable_from_roots(y);
  };
  std::vector<ObjectId> frozen;
  for (ObjectId x : lane.frozen.members()) {
    if (held_garbage(x)) frozen.push_back(x);
  }
  for (ObjectId x : oracle_.descendants(frozen, held_garbage, lane.view())) {
    lane.kept_before.insert(x);
  }
}

// A collection may not free a frozen object, but reference counting may, during it: when the
// garbage it clears held the last references to a frozen object. So a frozen object freed during
// a collection is a violation unless, among what the collector held before minus the unfrozen
// objects it freed, nothing - no cycle, no surviving object - still held it.
void Session::check_frozen_frees(Lane& lane) {
  std::vector<ObjectId> frozen_freed;
  for (ObjectId x : lane.freed_now) {
    if (lane.frozen.contains(x)) frozen_freed.push_back(x);
  }
  if (frozen_freed.empty()) return;
  std::vector<ObjectId> sorted_frozen_freed = frozen_freed;
  std::sort(sorted_frozen_freed.begin(), sorted_frozen_freed.end());
  const AlivePredicate held_after_clearing = [&](ObjectId x) {
    return lane.holds(x) ||
           std::binary_search(sorted_frozen_freed.begin(), sorted_frozen_freed.end(), x);
  };
  std::vector<ObjectId> may_go =
      oracle_.unheld_garbage(frozen_freed, held_after_clearing, lane.view());
  std::sort(may_go.begin(), may_go.end());
  std::vector<ObjectId> collected;
  for (ObjectId x : frozen_freed) {
    if (!std::binary_search(may_go.begin(), may_go.end(), x)) collected.push_back(x);
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
  const int arity = object_arity(op);
  if (arity >= 1 && !view_matches(lane, op.a)) return;
  if (arity >= 2 && !view_matches(lane, op.b)) return;
  for (ObjectId x : lane.freed_now) {
    for (ObjectId r : oracle_.referents(x, lane.view())) {
      if (!view_matches(lane, r)) return;
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
  expected_.clear();
  oracle_.for_each_referent(x, lane.view(), [this](ObjectId to) { expected_.push_back(to); });
  bool same = view_.references == expected_;
  if (!same) {
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
             " held, " + std::to_string(expected_.size()) + " expected)";
  } else if (lane.capabilities.count != CountMeaning::None) {
    // (Each entry in the program's list is one more external reference.)
    const std::uint64_t count =
        expected_count(oracle_, lane.capabilities.count, x, lane.view(),
                       [&lane](ObjectId y) { return lane.holds(y); }) +
        lane.listed[x];
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
  // So are the objects a collector's list of resurrected objects keeps: each collector runs
  // finalizers at its own time.
  // And so are the objects its finalizers allocated during this collection, and what they reach.
  const auto is_kept = [&](std::size_t i, ObjectId x) {
    return compared[i]->kept_before.contains(x) || compared[i]->is_kept(x) ||
           compared[i]->is_fresh(x);
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
