// Delta debugging at the level of operations (Zeller and Hildebrandt's ddmin), always producing
// a valid trace.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <vector>

#include "language/trace.h"

namespace cyclefuzz {

/// The valid trace made of the ops of `trace` that `keep` selects: objects are renumbered, and
/// an op that no longer makes sense (it names an object whose `new` was dropped, or breaks a rule
/// now that earlier ops are gone) is dropped too.
Trace select_ops(const Trace& trace, const std::vector<bool>& keep);

/// How long a minimization may take. Every trace a minimization returns is valid and
/// interesting; one that ran out of time is smaller than it started, maybe not 1-minimal.
class MinimizeBudget {
 public:
  MinimizeBudget() = default;  // unlimited
  /// `seconds` from now (past 10^9 s, as good as unlimited).
  explicit MinimizeBudget(double seconds);
  /// Whether the time is up (and from then on, always).
  bool spent();
  bool ran_out() const { return ran_out_; }

 private:
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  bool ran_out_ = false;
};

/// A smaller trace for which `interesting` still holds. First the shortest interesting prefix,
/// by bisection (a prefix of a valid trace is valid, and a failure at op f is mostly the same
/// failure in every longer prefix: a long trace loses its tail in log2(n) runs); then ddmin over
/// chunks of ops, finer and finer. Unless the budget runs out, the result is 1-minimal: removing
/// any one op, any one step of a finalizer's program, any weak reference's holder or any one item
/// of a tuple, or making any other object a list, makes `interesting` false (or leaves an op that
/// has to go);
/// and each `build` is as small as bisection finds it (a chain of 1,000 that needs 41 is 41).
/// Pre: interesting(trace).
Trace minimize_trace(const Trace& trace, const std::function<bool(const Trace&)>& interesting,
                     MinimizeBudget& budget);
Trace minimize_trace(const Trace& trace, const std::function<bool(const Trace&)>& interesting);

/// The steps of `trace`'s finalizers that `interesting` does not need, dropped one at a time; then
/// tuples' items, other objects' kinds (each then a list), builds' sizes (bisected) and weak
/// references' holders (each then the mutator's).
Trace drop_steps(Trace trace, const std::function<bool(const Trace&)>& interesting,
                 MinimizeBudget& budget);

/// `trace` with each `build` twice as large (at most kMaxBuild, a clique kMaxClique) where
/// `interesting` still holds, one build at a time; the objects made after a build are renumbered
/// past it. For a failure that depends on how deep a recursion goes: a minimal trace sits at the
/// edge of the stack of the build and front end that minimized it, and another build's frames
/// (gcc's against clang's, with or without a sanitizer) may leave room to spare there.
Trace grow_builds(Trace trace, const std::function<bool(const Trace&)>& interesting,
                  MinimizeBudget& budget);

}  // namespace cyclefuzz
