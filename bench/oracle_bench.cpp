// The oracle: what keeping reachability up to date costs, what a premature-free check then costs
// (a lookup), and what a full reachability search costs, per object and reference.
#include <benchmark/benchmark.h>

#include <string>

#include "bench/shapes.h"
#include "runners/generator.h"
#include "oracle/oracle.h"

namespace cyclefuzz::bench {
namespace {

benchmark::Counter per(std::size_t items) {
  return benchmark::Counter(static_cast<double>(items),
                            benchmark::Counter::kIsIterationInvariantRate |
                                benchmark::Counter::kInvert);
}

std::size_t objects_and_references(const Oracle& oracle) {
  return oracle.object_count() + boost::num_edges(oracle.graph());
}

Oracle built(const std::vector<Op>& ops) {
  Oracle oracle;
  for (const Op& op : ops) oracle.apply(op);
  return oracle;
}

// Every op of a generated trace: the incremental upkeep behind every check, per op.
void apply_generated(benchmark::State& state, std::size_t ops) {
  const Trace trace = generate_trace(1, ops);
  for (auto _ : state) {
    Oracle oracle;
    for (const Op& op : trace.ops) oracle.apply(op);
    benchmark::DoNotOptimize(oracle.reachable_count());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * ops));
}

// The premature-free check of one freed object, asked of every object of the shape.
void premature_free_check(benchmark::State& state, Shape shape, std::size_t n) {
  const Oracle oracle = built(build_shape(shape, n));
  for (auto _ : state) {
    for (ObjectId x = 0; x < oracle.object_count(); ++x) {
      benchmark::DoNotOptimize(oracle.reachable_from_roots(x));
    }
  }
  state.counters["per_object"] = per(oracle.object_count());
}

// A search from every rooted object through the whole heap: what an oracle without incremental
// upkeep would pay after every op.
void full_reachability(benchmark::State& state, Shape shape, std::size_t n) {
  const Oracle oracle = built(build_shape(shape, n));
  const auto everything = [](ObjectId) { return true; };
  for (auto _ : state) {
    benchmark::DoNotOptimize(oracle.descendants(oracle.rooted_objects(), everything).size());
  }
  state.counters["per_object_and_reference"] = per(objects_and_references(oracle));
}

// Following a shape from its first op to its death (for live shapes, until the first object is
// unrooted): the incremental upkeep, per object and reference.
void upkeep(benchmark::State& state, Shape shape, std::size_t n) {
  std::vector<Op> ops = build_shape(shape, n);
  if (!is_garbage(shape)) ops.push_back(Op::unroot(0));
  std::size_t size = 0;
  for (auto _ : state) {
    Oracle oracle;
    for (const Op& op : ops) oracle.apply(op);
    size = objects_and_references(oracle);
    if (oracle.reachable_count() != 0) state.SkipWithError("the shape did not die");
  }
  state.counters["per_object_and_reference"] = per(size);
}

// Unlinking the last object of a long live chain (which then dies), and growing the chain back:
// the oracle must not walk the chain back to its rooted head each time.
void unlink_chain_tail(benchmark::State& state, std::size_t n) {
  Oracle oracle = built(build_shape(Shape::LiveChain, n));
  auto tail = static_cast<ObjectId>(n - 1);
  for (auto _ : state) {
    const auto fresh = static_cast<ObjectId>(oracle.object_count());
    oracle.apply(Op::make_new(fresh));
    oracle.apply(Op::link(tail, fresh));
    oracle.apply(Op::unroot(fresh));
    oracle.apply(Op::unlink(tail, fresh));
    benchmark::DoNotOptimize(oracle.newly_unreachable().size());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * 4));
}

constexpr std::size_t kSizes[] = {10'000, 100'000, 1'000'000};

int register_benchmarks() {
  for (std::size_t ops : {10'000, 100'000, 1'000'000}) {
    benchmark::RegisterBenchmark(("oracle/apply/generated/" + std::to_string(ops)).c_str(),
                                 apply_generated, ops)
        ->Unit(benchmark::kMillisecond);
  }
  for (Shape shape : kShapes) {
    for (std::size_t n : kSizes) {
      const std::string suffix = std::string(name(shape)) + "/" + std::to_string(n);
      benchmark::RegisterBenchmark(("oracle/premature-free-check/" + suffix).c_str(),
                                   premature_free_check, shape, n)
          ->Unit(benchmark::kMicrosecond);
      if (!is_garbage(shape)) {
        benchmark::RegisterBenchmark(("oracle/full-reachability/" + suffix).c_str(),
                                     full_reachability, shape, n)
            ->Unit(benchmark::kMicrosecond);
      }
      benchmark::RegisterBenchmark(("oracle/upkeep/" + suffix).c_str(), upkeep, shape, n)
          ->Unit(benchmark::kMillisecond);
    }
  }
  for (std::size_t n : kSizes) {
    benchmark::RegisterBenchmark(("oracle/unlink-chain-tail/" + std::to_string(n)).c_str(),
                                 unlink_chain_tail, n);
  }
  return 0;
}

const int registered = register_benchmarks();

}  // namespace
}  // namespace cyclefuzz::bench
