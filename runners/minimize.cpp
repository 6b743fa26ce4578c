#include "runners/minimize.h"

#include <algorithm>
#include <array>
#include <optional>
#include <unordered_map>

#include "oracle/oracle.h"

namespace cyclefuzz {

Trace select_ops(const Trace& trace, const std::vector<bool>& keep) {
  Trace out;
  out.source = trace.source;
  Oracle heap;
  std::unordered_map<ObjectId, ObjectId> renamed;  // original id -> id in `out`
  std::unordered_map<WeakId, WeakId> renamed_weak;  // the same for weak references
  std::vector<std::pair<ObjectId, ObjectId>> born;  // a finalizer's new objects: original, id
  std::vector<std::pair<WeakId, WeakId>> taken;  // its steps' weak references: original, id
  const auto lookup = [&](ObjectId x) -> std::optional<ObjectId> {
    const auto it = renamed.find(x);
    return it == renamed.end() ? std::nullopt : std::optional<ObjectId>(it->second);
  };
  for (std::size_t i = 0; i < trace.ops.size(); ++i) {
    if (!keep[i]) continue;
    Op op = trace.ops[i];
    taken.clear();
    if (op.kind == OpKind::New || op.kind == OpKind::Build) {
      op.a = static_cast<ObjectId>(heap.object_count());  // always fresh: never refused
      std::erase_if(op.items, [&](ObjectId& x) {  // (a tuple without the items that are gone)
        const auto id = lookup(x);
        if (!id || !heap.reachable_from_roots(*id)) return true;
        x = *id;
        return false;
      });
      // (A build's members follow its first object; a smaller build drops the ops naming the
      // members it no longer makes.)
      for (std::uint32_t k = 0; k < objects_made(op); ++k) {
        renamed[trace.ops[i].a + k] = op.a + k;
        out.names.push_back(trace.names[trace.ops[i].a + k]);
      }
    } else {
      if (op.kind == OpKind::Weak) {
        op.weak = static_cast<WeakId>(heap.weak_count());
      } else if (op.kind == OpKind::Deref) {
        const auto w = renamed_weak.find(op.weak);
        if (w == renamed_weak.end()) continue;
        op.weak = w->second;
      }
      bool exists = true;
      for_each_own_object(op, [&](ObjectId& x, Slot) {
        const auto id = lookup(x);
        exists = exists && id.has_value();
        x = id.value_or(0);
      });
      if (!exists) continue;
      // A finalizer's steps: what it allocates, and the weak references it takes, get the next
      // ids; a step naming an object that is gone goes too.
      born.clear();
      const auto find = [&](ObjectId x) -> std::optional<ObjectId> {
        for (const auto& [original, id] : born) {
          if (original == x) return id;
        }
        return lookup(x);
      };
      std::erase_if(op.steps, [&](Step& step) {
        if (step.kind == StepKind::Deref) {
          const auto w = renamed_weak.find(step.weak);
          if (w == renamed_weak.end()) return true;
          step.weak = w->second;
          return false;
        }
        bool gone = false;
        for_each_object(step, [&](ObjectId& x, Slot slot) {
          if (slot == Slot::Allocates) {
            const auto id = static_cast<ObjectId>(heap.object_count() + born.size());
            born.emplace_back(x, id);
            x = id;
            return;
          }
          const auto id = find(x);
          gone = gone || !id;
          x = id.value_or(0);
        });
        if (!gone && step.kind == StepKind::Weak) {
          const auto id = static_cast<WeakId>(heap.weak_count() +
                                              (op.kind == OpKind::Weak ? 1 : 0) + taken.size());
          taken.emplace_back(step.weak, id);
          step.weak = id;
        }
        return gone;
      });
      if (heap.refuse(op)) continue;
      for (const auto& [original, id] : born) {
        renamed[original] = id;
        out.names.push_back(trace.names[original]);
      }
    }
    if (op.kind == OpKind::Weak) {
      renamed_weak[trace.ops[i].weak] = op.weak;
      out.weak_names.push_back(trace.weak_names[trace.ops[i].weak]);
    }
    for (const auto& [original, id] : taken) {
      renamed_weak[original] = id;
      out.weak_names.push_back(trace.weak_names[original]);
    }
    heap.apply(op);
    out.ops.push_back(op);
    if (const std::uint32_t line = trace.line_of(i)) out.lines.push_back(line);
  }
  if (out.lines.size() != out.ops.size()) out.lines.clear();
  return out;
}

namespace {

/// What drop_steps can take from a trace but builds' sizes: its ops, finalizers' steps, tuples'
/// items, objects that are not lists, weak references held by objects.
std::array<std::size_t, 5> complexity(const Trace& trace) {
  std::array<std::size_t, 5> c{trace.ops.size(), 0, 0, 0, 0};
  for (const Op& op : trace.ops) {
    c[1] += op.steps.size();
    c[2] += op.items.size();
    c[3] += op.kind == OpKind::New && op.object_kind != ObjectKind::List;
    c[4] += op.held;
  }
  return c;
}

}  // namespace

MinimizeBudget::MinimizeBudget(double seconds)
    : deadline_(std::chrono::steady_clock::now() +
                std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                    std::chrono::duration<double>(std::clamp(seconds, 0.0, 1e9)))) {}

bool MinimizeBudget::spent() {
  if (!ran_out_ && deadline_ && std::chrono::steady_clock::now() >= *deadline_) ran_out_ = true;
  return ran_out_;
}

Trace minimize_trace(const Trace& trace, const std::function<bool(const Trace&)>& interesting,
                     MinimizeBudget& budget) {
  std::vector<std::size_t> kept(trace.ops.size());  // indices into `trace`
  for (std::size_t i = 0; i < kept.size(); ++i) kept[i] = i;
  const auto build = [&](const std::vector<std::size_t>& indices) {
    std::vector<bool> keep(trace.ops.size(), false);
    for (std::size_t i : indices) keep[i] = true;
    return select_ops(trace, keep);
  };

  // The shortest interesting prefix: `high` ops are interesting, `low` are not known to be.
  std::size_t low = 0, high = kept.size();
  while (low + 1 < high && !budget.spent()) {
    const std::size_t middle = low + (high - low) / 2;
    if (interesting(build({kept.begin(), kept.begin() + static_cast<long>(middle)}))) {
      high = middle;
    } else {
      low = middle;
    }
  }
  kept.resize(high);

  // ddmin over complements: try dropping one of n chunks; on success keep the rest and go on
  // at granularity n - 1, else split finer.
  std::size_t chunks = 2;
  while (kept.size() >= 2 && !budget.spent()) {
    const std::size_t size = (kept.size() + chunks - 1) / chunks;
    bool reduced = false;
    for (std::size_t start = 0; start < kept.size() && !budget.spent(); start += size) {
      std::vector<std::size_t> rest(kept.begin(), kept.begin() + static_cast<long>(start));
      rest.insert(rest.end(), kept.begin() + static_cast<long>(std::min(start + size, kept.size())),
                  kept.end());
      if (interesting(build(rest))) {
        kept = std::move(rest);
        chunks = std::max<std::size_t>(chunks - 1, 2);
        reduced = true;
        break;
      }
    }
    if (reduced) continue;
    if (chunks >= kept.size()) break;
    chunks = std::min(kept.size(), chunks * 2);
  }
  // Simpler steps and holders may leave ops that only they needed (an object that only held a
  // weak reference): minimize again until nothing changes but builds' sizes. (A smaller build
  // alone is no reason: when whether a size fails varies from run to run - a stack that
  // overflows at about some depth - each round's bisection would find a slightly smaller one,
  // round after round, until the budget is spent.)
  const Trace reduced = build(kept);
  Trace simpler = drop_steps(reduced, interesting, budget);
  if (complexity(simpler) == complexity(reduced) || budget.spent()) return simpler;
  return minimize_trace(simpler, interesting, budget);
}

Trace minimize_trace(const Trace& trace, const std::function<bool(const Trace&)>& interesting) {
  MinimizeBudget unlimited;
  return minimize_trace(trace, interesting, unlimited);
}

namespace {

/// The smallest size of the build at op i that stays interesting, by bisection (as if a smaller
/// build failed no more often than a larger one: a heuristic, but every candidate is valid).
/// The later ops that named members it no longer makes name its last one instead (the end of a
/// chain stays its end); those that are no longer valid go.
/// Whether a size fails may vary from run to run near an edge (a stack that overflows at about
/// some depth: where the stack starts moves with address-space randomisation), and a trace
/// minimized to a lucky edge would not replay. So the edge found must hold kConfirmations more
/// runs - the size fails each time, one less passes each time - else the build keeps a
/// sixty-fourth more than the edge.
Trace shrink_build(Trace trace, std::size_t i,
                   const std::function<bool(const Trace&)>& interesting, MinimizeBudget& budget) {
  const ObjectId first = trace.ops[i].a;
  const std::uint32_t old_size = trace.ops[i].size;
  const auto with_size = [&](std::uint32_t size) {
    Trace smaller = trace;
    smaller.ops[i].size = size;
    for (std::size_t j = i + 1; j < smaller.ops.size(); ++j) {
      for_each_object(smaller.ops[j], [&](ObjectId& x, Slot) {
        if (x >= first + size && x < first + old_size) x = first + size - 1;
      });
    }
    return select_ops(smaller, std::vector<bool>(smaller.ops.size(), true));
  };
  std::uint32_t low = 2, high = trace.ops[i].size;  // high: interesting
  std::optional<Trace> best;
  while (low < high && !budget.spent()) {
    const std::uint32_t middle = low + (high - low) / 2;
    Trace candidate = with_size(middle);
    if (interesting(candidate)) {
      high = middle;
      best = std::move(candidate);
    } else {
      low = middle + 1;
    }
  }
  constexpr int kConfirmations = 5;
  const auto steady = [&] {
    const std::optional<Trace> below =
        high > 2 ? std::optional<Trace>(with_size(high - 1)) : std::nullopt;
    for (int k = 0; k < kConfirmations; ++k) {
      if (budget.spent() || !interesting(*best) || (below && interesting(*below))) return false;
    }
    return true;
  };
  if (best && !steady()) {
    high = std::min(old_size, high + high / 64 + 1);
    best = high < old_size ? std::optional<Trace>(with_size(high)) : std::nullopt;
  }
  return best ? std::move(*best) : std::move(trace);
}

}  // namespace

Trace grow_builds(Trace trace, const std::function<bool(const Trace&)>& interesting,
                  MinimizeBudget& budget) {
  for (std::size_t i = 0; i < trace.ops.size() && !budget.spent(); ++i) {
    const Op& build = trace.ops[i];
    if (build.kind != OpKind::Build) continue;
    const std::uint32_t most = build.shape == Shape::Clique ? kMaxClique : kMaxBuild;
    const std::uint32_t size = std::min(most, 2 * build.size);
    if (size <= build.size) continue;
    const ObjectId end = build.a + build.size;
    const ObjectId more = size - build.size;
    Trace larger = trace;
    larger.ops[i].size = size;
    ObjectId objects = end;
    for (std::size_t j = i + 1; j < larger.ops.size(); ++j) {
      for_each_object(larger.ops[j], [&](ObjectId& x, Slot) {
        objects = std::max(objects, x + 1);
        if (x >= end) x += more;
      });
      objects = std::max(objects, trace.ops[j].a + objects_made(trace.ops[j]));
    }
    // The names follow their objects; the new members are named as the parser names them.
    std::vector<std::string> names;
    for (ObjectId x = 0; x < objects + more; ++x) {
      names.push_back(x < end          ? trace.names[x]
                      : x < end + more ? Names::member(trace.names[build.a], x - build.a)
                                       : trace.names[x - more]);
    }
    larger.names = Names(std::move(names));
    Trace valid = select_ops(larger, std::vector<bool>(larger.ops.size(), true));
    if (interesting(valid)) trace = std::move(valid);
  }
  return trace;
}

// Then each finalizer's program, one step at a time (select_ops renumbers what the remaining
// steps allocate, and drops the steps naming what a dropped one allocated), each tuple's items,
// each other object's kind, and each weak reference's holder.
Trace drop_steps(Trace trace, const std::function<bool(const Trace&)>& interesting,
                 MinimizeBudget& budget) {
  const std::vector<bool> all(trace.ops.size(), true);
  for (std::size_t i = 0; i < trace.ops.size() && !budget.spent(); ++i) {
    for (std::size_t j = 0; j < trace.ops[i].steps.size() && !budget.spent();) {
      Trace shorter = trace;
      shorter.ops[i].steps.erase(shorter.ops[i].steps.begin() + static_cast<long>(j));
      shorter = select_ops(shorter, all);
      if (shorter.ops.size() == trace.ops.size() && interesting(shorter)) {
        trace = std::move(shorter);
      } else {
        ++j;
      }
    }
    if (trace.ops[i].kind == OpKind::New && trace.ops[i].object_kind != ObjectKind::List) {
      // A tuple with one item fewer; any other kind a list (a tuple stays a tuple: a list is not
      // made with references).
      Op& made = trace.ops[i];
      const std::size_t tries = made.object_kind == ObjectKind::Tuple ? made.items.size() : 1;
      for (std::size_t j = tries; j-- > 0;) {
        Trace simpler = trace;
        Op& op = simpler.ops[i];
        if (op.object_kind == ObjectKind::Tuple) {
          op.items.erase(op.items.begin() + static_cast<long>(j));
        } else {
          op.object_kind = ObjectKind::List;
        }
        simpler = select_ops(simpler, all);
        if (simpler.ops.size() == trace.ops.size() && interesting(simpler)) {
          trace = std::move(simpler);
        }
      }
    }
    if (trace.ops[i].kind == OpKind::Build) {
      trace = shrink_build(std::move(trace), i, interesting, budget);
    }
    if (trace.ops[i].held) {
      Trace unheld = trace;
      unheld.ops[i].held = false;
      unheld.ops[i].b = 0;
      unheld = select_ops(unheld, all);
      if (unheld.ops.size() == trace.ops.size() && interesting(unheld)) trace = std::move(unheld);
    }
  }
  return trace;
}

}  // namespace cyclefuzz
