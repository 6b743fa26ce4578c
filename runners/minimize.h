// Delta debugging at the level of operations (Zeller and Hildebrandt's ddmin), always producing
// a valid trace.
#pragma once

#include <functional>
#include <vector>

#include "language/trace.h"

namespace cyclefuzz {

/// The valid trace made of the ops of `trace` that `keep` selects: objects are renumbered, and
/// an op that no longer makes sense (it names an object whose `new` was dropped, or breaks a rule
/// now that earlier ops are gone) is dropped too.
Trace select_ops(const Trace& trace, const std::vector<bool>& keep);

/// A smaller trace for which `interesting` still holds, 1-minimal: removing any one op, any one
/// step of a finalizer's program, any weak reference's holder or any one item of a tuple, or
/// making any other object a list, makes `interesting` false (or leaves an op that has to go);
/// and each `build` is as small as bisection finds it (a chain of 1,000 that needs 41 is 41).
/// Pre: interesting(trace).
Trace minimize_trace(const Trace& trace, const std::function<bool(const Trace&)>& interesting);

/// The steps of `trace`'s finalizers that `interesting` does not need, dropped one at a time; then
/// tuples' items, other objects' kinds (each then a list), builds' sizes (bisected) and weak
/// references' holders (each then the mutator's).
Trace drop_steps(Trace trace, const std::function<bool(const Trace&)>& interesting);

}  // namespace cyclefuzz
