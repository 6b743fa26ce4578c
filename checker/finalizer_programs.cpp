// The program's code as it runs inside a collector: a finalizer's program (language/op.h: Step), a
// weak reference's callback's, and `release`, which empties the program's list of resurrected
// objects. Each runs in one lane's heap, when that lane's collector calls it, and acts on the
// collector as the mutator would.
#include <algorithm>
#include <iterator>

#include "checker/lane.h"

namespace cyclefuzz {

// A step acts only where the mutator cannot look (language/op.h): a step naming an object that x
// no longer reaches when it runs - the mutator changed the heap before this collector got to x -
// or a link from an object the mutator still reaches is skipped, and the collector never sees it.
// A callback has no x: it reaches only what it allocates.
void Lane::run_program(const std::vector<Step>& program, std::optional<ObjectId> x) {
  if (x || !program.empty()) ++programs_now;
  std::vector<ObjectId> locals;  // what its `new` steps allocated: held until it returns
  // (Searched at each step, from x to the object it names: a step may have changed what x
  // reaches, or a free since - by a `collect` step's collection, a `release` - cut it.)
  const auto reaches = [&](ObjectId y) {
    if (std::find(locals.begin(), locals.end(), y) != locals.end()) return holds(y);
    return x && oracle.reaches(*x, y, [this](ObjectId z) { return holds(z); }, view());
  };
  for (const Step& step : program) {
    switch (step.kind) {
      case StepKind::New:
        allocate(step.a);
        born_now.push_back(step.a);
        locals.push_back(step.a);
        ++listed[step.a];  // the finalizer's own reference, an external one
        finalizer_locals_.push_back(step.a);
        reach_changed();
        collector->allocate(step.a);
        break;
      case StepKind::Link:
        if (!reaches(step.a) || !reaches(step.b) || oracle.reachable_from_roots(step.a)) break;
        oracle.add_finalizer_reference(view(), step.a, step.b);
        linked_now.push_back(step.a);
        reach_changed();
        collector->link(step.a, step.b);
        break;
      case StepKind::Resurrect:
        if (!reaches(step.a)) break;
        resurrected.push_back(step.a);
        reach_changed();
        ++listed[step.a];
        collector->root(step.a);
        break;
      case StepKind::Collect: {  // it must refuse it or survive it
        const std::uint64_t before = collector->collections();
        collector->collect(kOldestGeneration);
        nested_collections += collector->collections() - before;
        break;
      }
      case StepKind::Unlink:
        if (!reaches(step.a) || !reaches(step.b) || oracle.reachable_from_roots(step.a)) break;
        if (!oracle.drop_finalizer_reference(view(), step.a, step.b)) break;
        unlinked_now.insert(unlinked_now.end(), {step.a, step.b});
        reach_changed();
        collector->unlink(step.a, step.b);  // (which may free step.b there and then)
        break;
      case StepKind::Deref: {
        const std::optional<ObjectId> holder = holder_of(step.weak);
        if (!holder || weak[step.weak] == WeakState::NotTaken || weak_gone(step.weak) ||
            !reaches(*holder)) {
          break;
        }
        deref_in_program(step.weak);
        break;
      }
      case StepKind::Release:  // (what the list holds is the program's, whoever reaches it)
        if (release_one(step.a)) ++other_steps_now;
        break;
      case StepKind::Finalizer:  // (of what it allocated, which it still holds)
        ++other_steps_now;
        collector->set_finalizer(step.a);
        break;
      case StepKind::Entry: {  // on a map the mutator no longer reaches, as a link
        if (!reaches(step.a) || !reaches(step.b) || !reaches(step.c) ||
            oracle.reachable_from_roots(step.a)) {
          break;
        }
        const std::optional<ObjectId> replaced = oracle.entry_value(step.a, step.b, view());
        if (!oracle.set_finalizer_entry(view(), step.a, step.b, step.c)) break;
        linked_now.push_back(step.a);
        ++entries_set_now;
        if (replaced) unlinked_now.insert(unlinked_now.end(), {step.a, *replaced});
        reach_changed();
        if (keeps_maps()) {
          collector->set_entry(step.a, step.b, step.c);
        } else {  // (the harness's strong-value map, as for the mutator's `entry`)
          collector->link(step.a, step.c);
          if (replaced) collector->unlink(step.a, *replaced);
        }
        break;
      }
      case StepKind::Unentry: {
        if (!reaches(step.a) || !reaches(step.b) || oracle.reachable_from_roots(step.a)) break;
        const std::optional<ObjectId> value = oracle.entry_value(step.a, step.b, view());
        if (!value || !oracle.drop_finalizer_entry(view(), step.a, step.b)) break;
        unlinked_now.insert(unlinked_now.end(), {step.a, *value});
        reach_changed();
        if (keeps_maps()) {
          collector->remove_entry(step.a, step.b);
        } else {
          collector->unlink(step.a, *value);
        }
        break;
      }
      case StepKind::Weak:
        // Taken from, and held by, what the mutator no longer reaches: it never sees it.
        if (!reaches(step.a) || !reaches(step.b) || oracle.reachable_from_roots(step.b)) break;
        weak[step.weak] = WeakState::Set;
        taken_now.push_back(step.weak);
        ++other_steps_now;
        collector->weak_ref(step.weak, step.a, step.callback);
        if (capabilities.weak_reference_holders) collector->weak_held_by(step.weak, step.b);
        break;
    }
  }
  // It returns: its locals go.
  for (ObjectId y : locals) {
    finalizer_locals_.erase(std::find(finalizer_locals_.begin(), finalizer_locals_.end(), y));
    --listed[y];
    reach_changed();
    if (!holds(y)) {
      problem(Violation::of(ViolationKind::PrematureFree, {y},
                            x ? "freed while the finalizer that allocated it still held it"
                              : "freed while the callback that allocated it still held it"));
      continue;
    }
    collector->unroot(y);
  }
}

// What the collector's weak reference yields must be what its clears say; an object it yields is
// stored in the list, and must not be one the collector freed (a finalizer handed an object
// already torn down).
void Lane::deref_in_program(WeakId w) {
  const ObjectId target = oracle.weak_target(w);
  const std::optional<ObjectId> expected =
      weak[w] == WeakState::Set ? std::optional(target) : std::nullopt;
  const std::optional<ObjectId> got = collector->deref(w);
  if (got != expected) {
    problem(Violation::of(ViolationKind::WrongWeakReference, {target},
                          std::string("a finalizer's deref ") +
                              (got ? "found an object" : "found it cleared") +
                              (expected ? ", but it was never cleared"
                                        : ", but the collector cleared it"))
                .of_weak(w));
    return;
  }
  if (!got) return;
  if (!holds(target)) {
    problem(Violation::of(ViolationKind::PrematureFree, {target},
                          "a finalizer's deref was handed it after it was freed")
                .of_weak(w));
    return;
  }
  resurrected.push_back(target);
  reach_changed();
  ++listed[target];
  collector->root(target);
}

// The newest entry for x goes; none, and the step is skipped (false).
bool Lane::release_one(ObjectId x) {
  const auto entry = std::find(resurrected.rbegin(), resurrected.rend(), x);
  if (entry == resurrected.rend()) return false;
  resurrected.erase(std::next(entry).base());
  reach_changed();
  --listed[x];
  released.push_back(x);
  collector->unroot(x);  // (which may free x there and then)
  return true;
}

// A finalizer that runs meanwhile may store new entries: those stay.
void Lane::release_resurrected() {
  releasing_.swap(resurrected);
  while (!releasing_.empty()) {
    const ObjectId x = releasing_.back();
    releasing_.pop_back();
    reach_changed();
    --listed[x];
    released.push_back(x);
    collector->unroot(x);
  }
}

}  // namespace cyclefuzz
