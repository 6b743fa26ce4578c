// Collectors and the checker: collection time per object on the heap shapes, and operations per
// second on generated traces, each collector alone and under every check.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <map>
#include <string>

#include "bench/shapes.h"
#include "collectors/registry.h"
#include "checker/session.h"
#include "runners/generator.h"

namespace cyclefuzz::bench {
namespace {

/// Counts frees; collectors report every one.
class CountingListener final : public CollectorHost {
 public:
  void freed(ObjectId) override { ++frees; }
  std::size_t frees = 0;
};

/// Time per item, as Google Benchmark's inverted rate: seconds per object (or per op).
benchmark::Counter per(std::size_t items) {
  return benchmark::Counter(static_cast<double>(items),
                            benchmark::Counter::kIsIterationInvariantRate |
                                benchmark::Counter::kInvert);
}

// One full collection of a freshly built shape; only the collection is timed (building and
// destroying the heap are not). No automatic collection while the shape is built (thresholds
// 0), as with CPython's gc.disable().
void collect_shape(benchmark::State& state, const CollectorEntry& entry, Shape shape,
                   std::size_t n) {
  const std::vector<Op> ops = build_shape(shape, n);
  CollectorOptions options;
  std::fill(std::begin(options.thresholds), std::end(options.thresholds), 0);
  for (auto _ : state) {
    state.PauseTiming();
    CountingListener listener;
    auto collector = entry.make(listener, options);
    for (const Op& op : ops) apply(*collector, op);
    state.ResumeTiming();
    benchmark::DoNotOptimize(collector->collect(kOldestGeneration));
    state.PauseTiming();
    collector.reset();
    if (listener.frees != (is_garbage(shape) ? n : 0)) state.SkipWithError("wrong frees");
    state.ResumeTiming();
  }
  state.counters["per_object"] = per(n);
}

/// The generated trace of the throughput benchmarks.
const Trace& generated(std::size_t ops) {
  static std::map<std::size_t, Trace> traces;
  auto [it, fresh] = traces.try_emplace(ops);
  if (fresh) it->second = generate_trace(1, ops);
  return it->second;
}

// A generated trace on one collector, without the oracle or any check.
void collector_alone(benchmark::State& state, const CollectorEntry& entry, std::size_t ops) {
  const Trace& trace = generated(ops);
  for (auto _ : state) {
    CountingListener listener;
    const auto collector = entry.make(listener, {});
    for (const Op& op : trace.ops) apply(*collector, op);
    benchmark::DoNotOptimize(listener.frees);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * ops));
}

// A generated trace through the checker: the oracle and every check after every op, as
// `cyclefuzz replay` runs it (check_invariants() as the build says).
void checked(benchmark::State& state, const std::vector<CollectorEntry>& entries,
             std::size_t ops) {
  const Trace& trace = generated(ops);
  for (auto _ : state) {
    Session session(entries, {});
    session.run(trace);
    if (!session.violations().empty()) state.SkipWithError("a violation");
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * ops));
}

constexpr std::size_t kSizes[] = {10'000, 100'000, 1'000'000};
constexpr std::size_t kTraceOps = 10'000;

int register_benchmarks() {
  std::vector<CollectorEntry> everyone;
  for (const std::string& name : default_collector_names()) everyone.push_back(*find_collector(name));
  for (const CollectorEntry& entry : everyone) {
    for (Shape shape : kShapes) {
      for (std::size_t n : kSizes) {
        const std::string title =
            "collect/" + entry.name + "/" + name(shape) + "/" + std::to_string(n);
        benchmark::RegisterBenchmark(title.c_str(), collect_shape, entry, shape, n)
            ->Unit(benchmark::kMicrosecond)
            ->Iterations(static_cast<benchmark::IterationCount>(std::max<std::size_t>(1, 200'000 / n)))
            ->Repetitions(5)
            ->ReportAggregatesOnly(true);
      }
    }
  }
  for (const CollectorEntry& entry : everyone) {
    benchmark::RegisterBenchmark(("ops/" + entry.name).c_str(), collector_alone, entry, kTraceOps)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("checked/" + entry.name).c_str(), checked,
                                 std::vector<CollectorEntry>{entry}, kTraceOps)
        ->Unit(benchmark::kMillisecond);
  }
  benchmark::RegisterBenchmark("checked/all", checked, everyone, kTraceOps)
      ->Unit(benchmark::kMillisecond);
  return 0;
}

const int registered = register_benchmarks();

}  // namespace
}  // namespace cyclefuzz::bench
