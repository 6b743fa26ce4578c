// The rules of the trace language that need the heap: what the mutator may do, and why not.
#include <algorithm>
#include <string>

#include "oracle/oracle.h"

namespace cyclefuzz {

namespace {

std::string in_quotes(const std::string& name) { return "'" + name + "'"; }

/// "a tuple", "an acyclic object", ...
std::string a_kind(ObjectKind kind) {
  return kind == ObjectKind::Acyclic ? "an acyclic object" : std::string("a ") + keyword(kind);
}

}  // namespace

// ================================================================================================
// The mutator's rules
// ================================================================================================

std::string describe(const Refusal& refusal, const Op& op, const Names& names,
                     const Names& weak_names) {
  const std::string name = in_quotes(names[refusal.object]);
  switch (refusal.reason) {
    case Refusal::Reason::UnknownObject:
      return "unknown object " + name;
    case Refusal::Reason::NotFresh:
      return "duplicate name " + name;
    case Refusal::Reason::Unreachable:
      return "object " + name + " is unreachable (the mutator can only touch what it reaches)";
    case Refusal::Reason::MissingEdge:
      return name + " holds no reference to " + in_quotes(names[op.b]);
    case Refusal::Reason::NoReference:
      return "no external reference to " + name + " to drop";
    case Refusal::Reason::BadGeneration:
      return bad_generation(std::to_string(op.generation));
    case Refusal::Reason::BadThreshold:
      return bad_threshold(std::to_string(op.thresholds[refusal.object]));
    case Refusal::Reason::SecondFinalizer:
      return name + " already has a finalizer";
    case Refusal::Reason::LongProgram:
      return "the finalizer of " + name + " has " + std::to_string(op.steps.size()) +
             " steps (at most " + std::to_string(kMaxSteps) + ")";
    case Refusal::Reason::NotReachedFrom:
      return name + " does not reach " + in_quotes(names[refusal.other]) + " (a finalizer can "
             "only touch what its object reaches, and what it allocates itself)";
    case Refusal::Reason::UnknownWeak:
      return "unknown weak reference " +
             in_quotes(weak_names[op.kind == OpKind::Finalizer ? refusal.other : op.weak]);
    case Refusal::Reason::NotFreshWeak:
      return "duplicate weak reference name " + in_quotes(weak_names[refusal.other]);
    case Refusal::Reason::BadSize:
      return bad_build_size(std::to_string(op.size));
    case Refusal::Reason::NotAllocatedByProgram:
      return "the finalizer step of " + in_quotes(names[refusal.other]) +
             " names what the program did not allocate (a program gives a finalizer only to "
             "what its own earlier `new` step made)";
    case Refusal::Reason::ProgramWeak:
      return "weak reference " + in_quotes(weak_names[op.weak]) +
             " is one a program takes: the mutator never holds it";
    case Refusal::Reason::NoEntry:
      return name + " has no entry for the key " + in_quotes(names[op.b]);
    case Refusal::Reason::WeakNotReached:
      return "the finalizer of " + name + " names weak reference " +
             in_quotes(weak_names[refusal.other]) + ", which no object " + name +
             " reaches holds (a finalizer can only use what its object reaches)";
    case Refusal::Reason::Immutable:
      return name + " is a tuple: its references are fixed when it is made";
    case Refusal::Reason::FullCell:
      return name + " is a cell, and it already holds its one reference";
    case Refusal::Reason::AlreadyInSet:
      return name + " is a set, and it already refers to " + in_quotes(names[refusal.other]);
    case Refusal::Reason::AcyclicReference:
      return name + " is acyclic: it may refer only to acyclic objects made before it, not to " +
             in_quotes(names[refusal.other]);
    case Refusal::Reason::NotAMap:
      return name + " is " + a_kind(refusal.kind) +
             ": only lists, records and dicts hold map entries";
    case Refusal::Reason::ProgramLink:
      return "the finalizer of " + name + " links from " + in_quotes(names[refusal.other]) +
             ", " + a_kind(refusal.kind) +
             " (a finalizer links only from lists, records and dicts)";
    case Refusal::Reason::LongTuple:
      return "a tuple of " + std::to_string(op.items.size()) + " items (at most " +
             std::to_string(kMaxItems) + ")";
    case Refusal::Reason::NotAllocatedByCallback:
      return "the callback of weak reference " + in_quotes(weak_names[op.weak]) + " names " +
             in_quotes(names[refusal.other]) + ", which it did not allocate (a callback can only "
             "touch what it allocates)";
    case Refusal::Reason::NotAnInstance:
      return name + " is " + a_kind(refusal.kind) +
             ": it has no finalizer, takes no weak reference (so keys no weak-keyed map) and holds "
             "none (as CPython's tuples and atomic objects)";
    case Refusal::Reason::NoCallback:
      return "weak reference " + in_quotes(weak_names[op.weak]) + " has a program but no callback";
    case Refusal::Reason::HolderGone:
      return "weak reference " + in_quotes(weak_names[op.weak]) + " is held by " + name +
             ", which is unreachable";
  }
  return "invalid operation";
}

std::optional<Refusal> Oracle::refuse_reference(ObjectId from, ObjectId to) const {
  using R = Refusal::Reason;
  switch (kinds_[from]) {
    case ObjectKind::Tuple:
      return Refusal{R::Immutable, from};
    case ObjectKind::Cell:
      if (references(from) > 0) return Refusal{R::FullCell, from};
      break;
    case ObjectKind::Acyclic:
      if (to >= from || kinds_[to] != ObjectKind::Acyclic) {
        return Refusal{R::AcyclicReference, from, to};
      }
      break;
    case ObjectKind::Set:
      if (references(from, to) > 0) return Refusal{R::AlreadyInSet, from, to};
      break;
    case ObjectKind::List:
    case ObjectKind::Record:
    case ObjectKind::Dict:
      break;
  }
  return std::nullopt;
}

// What a finalizer's or a callback's program may name (language/op.h, Step).
std::optional<Refusal> Oracle::refuse_program(const Op& op) const {
  using R = Refusal::Reason;
  if (op.steps.size() > kMaxSteps) return Refusal{R::LongProgram, op.a};
  // Its steps name what a reaches now (the finalizer skips what a no longer reaches when it runs)
  // or what an earlier step allocated; a callback's, only what it allocated.
  const bool callback = op.kind == OpKind::Weak;
  std::vector<ObjectId> usable;
  bool searched = false;
  ObjectId next = static_cast<ObjectId>(object_count());
  // The weak references it takes follow the op's own (a `weak` op's).
  WeakId next_weak = static_cast<WeakId>(weak_count() + (callback ? 1 : 0));
  std::vector<ObjectId> given_finalizers;
  const auto refuse_name = [&](ObjectId x) -> std::optional<Refusal> {
    if (x >= next) return Refusal{R::UnknownObject, x};
    if (x >= object_count()) return std::nullopt;  // allocated by an earlier step
    if (callback) return Refusal{R::NotAllocatedByCallback, op.a, x};
    if (!searched) {
      usable = reached_through(op.a);
      searched = true;
    }
    if (std::find(usable.begin(), usable.end(), x) == usable.end()) {
      return Refusal{R::NotReachedFrom, op.a, x};
    }
    return std::nullopt;
  };
  for (const Step& step : op.steps) {
    std::optional<Refusal> refusal;
    switch (step.kind) {
      case StepKind::New:
        if (step.a < next) return Refusal{R::NotFresh, step.a};
        if (step.a > next) return Refusal{R::UnknownObject, step.a};
        ++next;
        break;
      case StepKind::Link:
      case StepKind::Unlink:
        refusal = refuse_name(step.a);
        if (!refusal) refusal = refuse_name(step.b);
        if (!refusal && step.a < object_count()) {  // (what a program allocates is a list)
          const ObjectKind from = kinds_[step.a];
          if (from == ObjectKind::Tuple ||
              (step.kind == StepKind::Link && from != ObjectKind::List &&
               from != ObjectKind::Record && from != ObjectKind::Dict)) {
            refusal = Refusal{R::ProgramLink, op.a, step.a, from};
          }
        }
        break;
      case StepKind::Resurrect:
      case StepKind::Release:
        refusal = refuse_name(step.a);
        break;
      case StepKind::Collect:
        break;
      case StepKind::Finalizer:  // of what it allocated, once
        if (step.a < object_count() || step.a >= next) {
          return Refusal{R::NotAllocatedByProgram, op.a, step.a};
        }
        if (std::find(given_finalizers.begin(), given_finalizers.end(), step.a) !=
            given_finalizers.end()) {
          return Refusal{R::SecondFinalizer, step.a};
        }
        given_finalizers.push_back(step.a);
        break;
      case StepKind::Entry:
      case StepKind::Unentry:
        for (ObjectId x : {step.a, step.b, step.kind == StepKind::Entry ? step.c : step.a}) {
          if (!refusal) refusal = refuse_name(x);
        }
        if (!refusal && step.a < object_count() && !holds_entries(step.a)) {
          refusal = Refusal{R::NotAMap, step.a, 0, kinds_[step.a]};
        }
        if (!refusal && step.kind == StepKind::Entry && step.b < object_count() &&
            !is_instance(step.b)) {  // (what a program allocates is a list)
          refusal = Refusal{R::NotAnInstance, step.b, 0, kinds_[step.b]};
        }
        break;
      case StepKind::Weak:
        if (step.weak != next_weak++) return Refusal{R::NotFreshWeak, 0, step.weak};
        refusal = refuse_name(step.a);
        if (!refusal) refusal = refuse_name(step.b);
        for (ObjectId x : {step.a, step.b}) {  // (what a program allocates is a list)
          if (!refusal && x < object_count() && !is_instance(x)) {
            refusal = Refusal{R::NotAnInstance, x, 0, kinds_[x]};
          }
        }
        break;
      case StepKind::Deref: {
        if (step.weak >= weak_count()) return Refusal{R::UnknownWeak, 0, step.weak};
        const std::optional<ObjectId> holder = weak_holder(step.weak);
        if (callback) return Refusal{R::NotAllocatedByCallback, op.a, holder.value_or(op.a)};
        if (!holder || refuse_name(*holder)) {
          return Refusal{R::WeakNotReached, op.a, step.weak};
        }
        break;
      }
    }
    if (refusal) return refusal;
  }
  return std::nullopt;
}

std::optional<Refusal> Oracle::refuse(const Op& op) const {
  using R = Refusal::Reason;
  if (op.kind == OpKind::Build) {
    if (op.a < object_count()) return Refusal{R::NotFresh, op.a};
    if (op.a > object_count()) return Refusal{R::UnknownObject, op.a};
    if (op.size < 2 || op.size > (op.shape == Shape::Clique ? kMaxClique : kMaxBuild)) {
      return Refusal{R::BadSize, op.a};
    }
    return std::nullopt;
  }
  if (op.kind == OpKind::New) {
    if (op.a < object_count()) return Refusal{R::NotFresh, op.a};
    if (op.a > object_count()) return Refusal{R::UnknownObject, op.a};
    if (op.object_kind != ObjectKind::Tuple && !op.items.empty()) {
      return Refusal{R::Immutable, op.a};  // (only a tuple is made with references)
    }
    if (op.items.size() > kMaxItems) return Refusal{R::LongTuple, op.a};
    for (ObjectId item : op.items) {
      if (item >= object_count()) return Refusal{R::UnknownObject, item};
      if (!reachable_from_roots(item)) return Refusal{R::Unreachable, item};
    }
    return std::nullopt;
  }
  std::optional<Refusal> unknown;
  for_each_own_object(op, [&](ObjectId x, Slot) {
    if (!unknown && x >= object_count()) unknown = Refusal{R::UnknownObject, x};
  });
  if (unknown) return unknown;
  switch (op.kind) {
    case OpKind::Link:
      if (!reachable_from_roots(op.a)) return Refusal{R::Unreachable, op.a};
      if (!reachable_from_roots(op.b)) return Refusal{R::Unreachable, op.b};
      return refuse_reference(op.a, op.b);
    case OpKind::Unlink:
      if (!reachable_from_roots(op.a)) return Refusal{R::Unreachable, op.a};
      if (references(op.a, op.b) == 0) return Refusal{R::MissingEdge, op.a};
      if (kinds_[op.a] == ObjectKind::Tuple) return Refusal{R::Immutable, op.a};
      break;
    case OpKind::Root:
      if (!reachable_from_roots(op.a)) return Refusal{R::Unreachable, op.a};
      break;
    case OpKind::Unroot:
      if (external_[op.a] == 0) return Refusal{R::NoReference, op.a};
      break;
    case OpKind::Collect:
      if (op.generation < 0 || op.generation > kOldestGeneration) {
        return Refusal{R::BadGeneration, 0};
      }
      break;
    case OpKind::Threshold:
      for (ObjectId g = 0; g < op.thresholds.size(); ++g) {
        if (op.thresholds[g] > kMaxThreshold) return Refusal{R::BadThreshold, g};
      }
      break;
    case OpKind::Finalizer: {
      if (!reachable_from_roots(op.a)) return Refusal{R::Unreachable, op.a};
      if (has_finalizer(op.a)) return Refusal{R::SecondFinalizer, op.a};
      if (!is_instance(op.a)) return Refusal{R::NotAnInstance, op.a, 0, kinds_[op.a]};
      if (auto refusal = refuse_program(op)) return refusal;
      break;
    }
    case OpKind::Weak:
      if (op.weak != weak_targets_.size()) return Refusal{R::NotFreshWeak, 0, op.weak};
      if (!reachable_from_roots(op.a)) return Refusal{R::Unreachable, op.a};
      if (op.held && !reachable_from_roots(op.b)) return Refusal{R::Unreachable, op.b};
      for (ObjectId x : {op.a, op.held ? op.b : op.a}) {
        if (!is_instance(x)) return Refusal{R::NotAnInstance, x, 0, kinds_[x]};
      }
      if (!op.option && !op.steps.empty()) return Refusal{R::NoCallback, op.a};
      return refuse_program(op);
    case OpKind::Deref:
      if (op.weak >= weak_targets_.size()) return Refusal{R::UnknownWeak, 0};
      if (weak_in_program(op.weak)) return Refusal{R::ProgramWeak, 0};
      if (const auto holder = weak_holder(op.weak); holder && !reachable_from_roots(*holder)) {
        return Refusal{R::HolderGone, *holder};
      }
      break;
    case OpKind::Entry:
    case OpKind::Unentry: {
      std::optional<Refusal> unreachable;
      for_each_own_object(op, [&](ObjectId x, Slot) {
        if (!unreachable && !reachable_from_roots(x)) unreachable = Refusal{R::Unreachable, x};
      });
      if (unreachable) return unreachable;
      if (op.kind == OpKind::Unentry && !entry_edge(op.a, op.b)) return Refusal{R::NoEntry, op.a};
      if (op.kind == OpKind::Entry && !holds_entries(op.a)) {
        return Refusal{R::NotAMap, op.a, 0, kinds_[op.a]};
      }
      if (op.kind == OpKind::Entry && !is_instance(op.b)) {
        return Refusal{R::NotAnInstance, op.b, 0, kinds_[op.b]};
      }
      break;
    }
    case OpKind::New:
    case OpKind::Build:
    case OpKind::Freeze:
    case OpKind::Unfreeze:
    case OpKind::Disable:
    case OpKind::Enable:
    case OpKind::Release:
      break;
  }
  return std::nullopt;
}

}  // namespace cyclefuzz
