// The real collectors - CPython 3.11, Lua 5.4 in both modes, Lua 5.3, LuaJIT 2.1, PHP 8.2,
// Duktape 2.7, mruby 3.1 in both modes, Nim 1.6's ORC - against the oracle on the scenarios and on
// generated traces, and when each one frees: at the moment its runtime does.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "collectors/cpython/cpython.h"
#include "collectors/duktape/duktape.h"
#include "collectors/lua/lua.h"
#include "collectors/mruby/mruby.h"
#include "collectors/nim/nim_orc.h"
#include "collectors/php/php.h"
#include "runners/generator.h"
#include "runners/isolated_run.h"
#include "runners/minimize.h"
#include "runners/random_check.h"
#include "reports/report.h"
#include "tests/test_support.h"

namespace cyclefuzz {
namespace {

using testing::entries;
using testing::names_of;
using testing::op_at_line;
using testing::RecordingListener;
using testing::scenario;

const std::vector<std::string> kRuntimes = {"cpython", "lua-incremental", "lua-generational",
                                            "lua5.3", "luajit", "php", "duktape",
                                            "mruby-incremental", "mruby-generational",
                                            "nim-orc"};

/// A trace's run on one collector, with frees recorded.
struct TraceRun {
  TraceRun(const Trace& t, const std::string& collector, CollectorOptions options = {},
           bool check_invariants = true)
      : trace(t),
        session(entries({collector}), options,
                {.check_invariants = check_invariants, .record_frees = true}) {
    session.run(trace);
  }
  TraceRun(const std::string& text, const std::string& collector, CollectorOptions options = {},
           bool check_invariants = true)
      : TraceRun(parse_trace(text, "t.trace"), collector, options, check_invariants) {}

  /// Names freed at the op on `line`.
  std::vector<std::string> freed_at(std::uint32_t line) const {
    return names_of(trace, session.frees_per_op(0)[op_at_line(trace, line)]);
  }
  std::set<std::string> freed_set_at(std::uint32_t line) const {
    const auto names = freed_at(line);
    return {names.begin(), names.end()};
  }
  std::string report() const {
    std::ostringstream out;
    print_trace_result(out, trace, session);
    return out.str();
  }
  Trace trace;
  Session session;
};

std::string failure(const TraceRun& run, std::uint64_t seed) {
  return "seed " + std::to_string(seed) + "\n" + run.report() + to_text(run.trace);
}

/// What `runtime` gets wrong (corpus/findings/, FINDINGS.md): the signatures of the findings'
/// traces on it, with these options. A generated trace may meet one: that is the runtime's known
/// bug, not a disagreement.
const std::vector<KnownFailure>& known_findings(const std::string& runtime,
                                                const CollectorOptions& options) {
  static std::map<std::pair<std::string, std::vector<std::uint32_t>>, std::vector<KnownFailure>>
      cache;
  const auto key = std::pair(runtime, std::vector<std::uint32_t>(std::begin(options.thresholds),
                                                                 std::end(options.thresholds)));
  if (const auto it = cache.find(key); it != cache.end()) return it->second;
  const std::vector<Trace> traces = load_traces({testing::source_dir() / "corpus" / "findings"});
  return cache[key] = known_failures(traces, {*find_collector(runtime)}, options);
}

/// Runs `trace` on `runtime` in a child process. Success if it agrees with the oracle, or if it
/// fails as one of the runtime's known findings does (counted in `known`).
::testing::AssertionResult agrees_unless_known(const Trace& trace, const std::string& runtime,
                                               const CollectorOptions& options,
                                               std::uint64_t seed, int& known) {
  std::string report;
  const Signature signature = signature_of(trace, *find_collector(runtime), options, &report);
  if (signature.outcome.kind == Outcome::Kind::Pass) return ::testing::AssertionSuccess();
  const std::vector<KnownFailure>& findings = known_findings(runtime, options);
  if (find_known(findings, signature) < findings.size()) {
    ++known;
    return ::testing::AssertionSuccess();
  }
  if (signature.outcome.kind == Outcome::Kind::Crash) {
    return ::testing::AssertionFailure() << "seed " << seed << ": " << describe(signature) << "\n"
                                         << report << to_text(trace);
  }
  return ::testing::AssertionFailure() << describe(signature) << "\n"
                                       << failure(TraceRun(trace, runtime, options), seed);
}

CollectorOptions small_thresholds() {
  CollectorOptions small;  // so that CPython collects by itself in short traces
  small.thresholds[0] = 7;
  small.thresholds[1] = 3;
  small.thresholds[2] = 2;
  return small;
}

// A reference counting runtime that keeps each kind's references in a place of its own: through
// each place, unlink releases (c goes at once) and the collector traverses (a <-> b goes only at
// the collection).
void expect_each_kind_keeps_its_references(const std::string& runtime) {
  for (const char* kind : {"list", "dict", "record", "cell", "set"}) {
    SCOPED_TRACE(kind);
    TraceRun run(std::string("new a ") + kind + "\nnew b " + kind +
                     "\nnew c\nlink b a\nlink a c\nunroot c\nunlink a c\nlink a b\n"
                     "unroot b\nunroot a\ncollect\n",
                 runtime);
    EXPECT_EQ(run.freed_at(7), std::vector<std::string>{"c"});
    EXPECT_TRUE(run.freed_at(10).empty());
    EXPECT_EQ(run.freed_set_at(11), (std::set<std::string>{"a", "b"}));
    EXPECT_TRUE(run.session.violations().empty()) << run.report();
  }
}

// ================================================================================================
// Every runtime, against the oracle
// ================================================================================================

class EveryRuntime : public ::testing::TestWithParam<std::string> {};

// (Not corpus/findings/: what a runtime gets wrong, which CMake replays on it apart.)
TEST_P(EveryRuntime, PassesEveryScenario) {
  const std::filesystem::path corpus = testing::source_dir() / "corpus";
  for (const auto& file : expand_trace_paths({(corpus / "scenarios").string(),
                                              (corpus / "regressions").string()})) {
    TraceRun run(load_trace(file), GetParam());
    EXPECT_TRUE(run.session.violations().empty()) << run.report();
  }
}

// As `cyclefuzz check --collector RUNTIME --known corpus/findings` runs them: in child processes
// (a trace may reach a runtime's known crash now and then), a batch of traces to a child (a child
// per trace cost some 40 ms of page faults in the sanitized build, most of this test's time), a
// failing trace run alone again to tell a known finding from a new one.
TEST_P(EveryRuntime, AgreesWithTheOracleOnGeneratedTraces) {
  std::size_t known = 0;
  for (const bool small : {false, true}) {
    RandomCheckOptions o;
    o.collectors = {*find_collector(GetParam())};
    if (small) o.collector_options = small_thresholds();
    o.seed = small ? 2 : 1;
    o.runs = 150;
    o.max_ops = 500;  // (lengths up to 10 + run * 5: some 170 ops a trace on average)
    o.known = known_findings(GetParam(), o.collector_options);
    o.keep_going = true;
    o.minimize_seconds = 60;  // (a failure's message shows it minimized, within a minute)
    const RandomCheckResult result = random_check(o, [](const RandomCheckFinding& f) {
      ADD_FAILURE() << "gen --seed " << f.trace_seed << " --ops " << f.ops << ": "
                    << describe(f.signature) << "\n"
                    << f.crash_report << "minimal:\n" << to_text(f.minimal);
    });
    EXPECT_EQ(result.runs, o.runs);
    for (const std::size_t met : result.known_met) known += met;
  }
  EXPECT_LT(known, 10u);
}

// Without `collect` until the end, every free but the last op's comes from the runtime's own
// automatic collections (or reference counting).
TEST_P(EveryRuntime, AgreesWithTheOracleWhenItCollectsOnlyByItself) {
  int known = 0;
  for (std::uint64_t seed = 0; seed < 100; ++seed) {
    Trace trace = generate_trace(seed, 300);
    std::erase_if(trace.ops, [](const Op& op) { return op.kind == OpKind::Collect; });
    trace.ops.push_back(Op::collect());
    ASSERT_TRUE(agrees_unless_known(trace, GetParam(), small_thresholds(), seed, known));
  }
  EXPECT_LT(known, 5);
}

// A collector torn down with live objects and garbage cycles reports none of the frees that its
// runtime makes on the way: they are not the trace's.
TEST_P(EveryRuntime, ReportsNoFreeAtTeardown) {
  RecordingListener listener;
  {
    const auto collector = find_collector(GetParam())->make(listener, {});
    for (ObjectId x = 0; x < 4; ++x) collector->allocate(x);
    collector->link(0, 1);
    collector->link(1, 0);
    collector->link(2, 3);
    collector->unroot(0);
    collector->unroot(1);
    collector->root(2);
  }
  EXPECT_TRUE(listener.frees.empty());
}

INSTANTIATE_TEST_SUITE_P(Runtime, EveryRuntime, ::testing::ValuesIn(kRuntimes),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::erase_if(name, [](char c) { return c == '-' || c == '.'; });
                           return name;
                         });

// ================================================================================================
// CPython: reference counting frees at once, the collector frees cycles
// ================================================================================================

TEST(CPython, FreesAnAcyclicObjectWhenItsLastReferenceGoes) {
  TraceRun run("new a\nnew b\nlink a b\nunroot b\nunroot a\n", "cpython");
  EXPECT_TRUE(run.freed_at(4).empty());
  EXPECT_EQ(run.freed_set_at(5), (std::set<std::string>{"a", "b"}));
  EXPECT_TRUE(run.session.violations().empty()) << run.report();
}

TEST(CPython, FreesACycleOnlyWhenItCollects) {
  TraceRun run(scenario("two-cycle"), "cpython");
  EXPECT_TRUE(run.freed_at(7).empty());
  EXPECT_EQ(run.freed_set_at(8), (std::set<std::string>{"a", "b"}));
}

// gc.collect(0) counts the young cycle it found, not the old object that freeing it frees: what
// CollectCount::FoundInGenerations allows.
TEST(CPython, CountsWhatAYoungCollectionFoundNotWhatItFreed) {
  RecordingListener listener;
  CPythonCollector gc(listener, {});
  gc.allocate(0);  // old
  EXPECT_EQ(gc.collect(2), 0u);
  gc.allocate(1);  // young
  gc.link(1, 0);
  gc.link(1, 1);
  gc.unroot(0);
  gc.unroot(1);
  EXPECT_TRUE(listener.frees.empty());
  EXPECT_EQ(gc.collect(0), 1u);
  EXPECT_EQ(std::set<ObjectId>(listener.frees.begin(), listener.frees.end()),
            (std::set<ObjectId>{0, 1}));
  EXPECT_EQ(gc.capabilities().collect_count, CollectCount::FoundInGenerations);
}

// The generation in the view is the list of CPython's collector that holds the object.
TEST(CPython, ShowsTheGenerationItsCollectorKeepsTheObjectIn) {
  RecordingListener listener;
  CollectorOptions options;
  options.thresholds[0] = 0;  // no automatic collection to move things meanwhile
  CPythonCollector gc(listener, options);
  const auto generation = [&](ObjectId id) {
    ObjectView view;
    gc.inspect(id, view);
    return view.generation;
  };
  gc.allocate(0);
  EXPECT_EQ(generation(0), 0);
  gc.collect(0);
  EXPECT_EQ(generation(0), 1);
  gc.allocate(1);
  gc.collect(1);
  EXPECT_EQ(generation(0), 2);
  EXPECT_EQ(generation(1), 2);
  gc.collect(2);
  EXPECT_EQ(generation(0), 2);
  gc.check_invariants();
}

// Each object is one allocation of CPython's: the collection that an allocation past the
// threshold starts runs before the new object is tracked, so the object is young after it
// (corpus/regressions/cpython-weakref-promotes-new-object.trace: when the adapter made a weak
// reference per object, that second allocation could promote the object it had just made).
TEST(CPython, KeepsANewObjectYoungWhenItsAllocationStartsACollection) {
  RecordingListener listener;
  CollectorOptions options;
  options.thresholds[0] = 3;
  CPythonCollector gc(listener, options);
  gc.collect(0);  // allocation count 0
  for (ObjectId x = 0; x < 3; ++x) gc.allocate(x);  // counts 1, 2, 3: not past the threshold
  EXPECT_EQ(gc.collections(), 1u);
  gc.allocate(3);  // 4: a collection of generation 0 first
  EXPECT_EQ(gc.collections(), 2u);
  ObjectView view;
  for (ObjectId x = 0; x < 3; ++x) {
    gc.inspect(x, view);
    EXPECT_EQ(view.generation, 1) << "object " << x;
  }
  gc.inspect(3, view);
  EXPECT_EQ(view.generation, 0);
  gc.check_invariants();
}

TEST(CPython, CollectsByItselfPastTheThreshold) {
  RecordingListener listener;
  CollectorOptions options;
  options.thresholds[0] = 20;
  CPythonCollector gc(listener, options);
  gc.collect(0);  // allocation count 0
  // Garbage self-loops: the youngest generation passes 20 allocations at the 21st object.
  for (ObjectId x = 0; x < 21; ++x) {
    gc.allocate(x);
    gc.link(x, x);
    gc.unroot(x);
  }
  EXPECT_EQ(listener.frees.size(), 20u);
  EXPECT_EQ(gc.collections(), 2u);
  gc.check_invariants();
}

TEST(CPython, NeverCollectsByItselfWithAThresholdOfZero) {
  RecordingListener listener;
  CollectorOptions options;
  options.thresholds[0] = 0;
  CPythonCollector gc(listener, options);
  for (ObjectId x = 0; x < 2000; ++x) {
    gc.allocate(x);
    gc.link(x, x);
    gc.unroot(x);
  }
  EXPECT_TRUE(listener.frees.empty());
  EXPECT_EQ(gc.collections(), 0u);
  EXPECT_EQ(gc.collect(2), 2000u);
  EXPECT_EQ(listener.frees.size(), 2000u);
}

// The `threshold` op is gc.set_threshold(): automatic collection starts when it is turned on.
TEST(CPython, TakesNewThresholdsFromTheTrace) {
  TraceRun run("threshold 0 10 10\nnew a\nlink a a\nunroot a\nnew b\nnew c\n"
               "threshold 1 10 10\nnew d\n",
               "cpython");
  EXPECT_TRUE(run.freed_at(5).empty());
  EXPECT_TRUE(run.freed_at(6).empty());
  EXPECT_EQ(run.freed_at(8), std::vector<std::string>{"a"});
  EXPECT_TRUE(run.session.violations().empty()) << run.report();
}

TEST(CPython, RefusesASecondCollectorWhileOneIsAlive) {
  RecordingListener listener;
  CPythonCollector first(listener, {});
  try {
    CPythonCollector second(listener, {});
    FAIL() << "a second cpython collector was made";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("only one can be checked at a time"), std::string::npos)
        << e.what();
  }
  first.allocate(0);  // the first is unharmed
  first.unroot(0);
  EXPECT_EQ(listener.frees, std::vector<ObjectId>{0});
}

// gc.freeze() puts the heap in the permanent generation, which no collection looks at;
// gc.unfreeze() gives it back to the oldest. gc.disable() stops automatic collection.
TEST(CPython, CollectsFrozenGarbageOnlyOnceUnfrozen) {
  TraceRun run("new a\nnew b\nlink a b\nlink b a\nfreeze\nunroot a\nunroot b\ncollect\n"
               "unfreeze\ncollect\n",
               "cpython");
  EXPECT_TRUE(run.freed_at(8).empty());
  EXPECT_EQ(run.freed_set_at(10), (std::set<std::string>{"a", "b"}));
  EXPECT_TRUE(run.session.violations().empty()) << run.report();
}

TEST(CPython, NeverCollectsByItselfWhileDisabled) {
  CollectorOptions options;
  options.thresholds[0] = 1;
  TraceRun run("disable\nnew a\nlink a a\nunroot a\nnew b\nnew c\nenable\nnew d\n",
               "cpython", options);
  for (std::uint32_t line = 1; line <= 7; ++line) EXPECT_TRUE(run.freed_at(line).empty()) << line;
  EXPECT_EQ(run.freed_at(8), std::vector<std::string>{"a"});
  EXPECT_TRUE(run.session.violations().empty()) << run.report();
}

// PEP 442 through the adapter's Node type: the finalizer of a collection's garbage runs before
// anything is freed, what it resurrects survives the collection, and the object goes when the
// program lets it go (its finalizer never runs again).
TEST(CPython, KeepsWhatAFinalizerResurrectsInACollection) {
  TraceRun run("new a\nnew b\nlink a b\nlink b a\nfinalizer a resurrect\n"
               "unroot a\nunroot b\ncollect\nrelease\ncollect\n",
               "cpython");
  EXPECT_TRUE(run.freed_at(8).empty());
  EXPECT_EQ(run.freed_set_at(10), (std::set<std::string>{"a", "b"}));
  EXPECT_TRUE(run.session.violations().empty()) << run.report();
}

// Reference counting runs the finalizer from tp_dealloc: a resurrected object is not freed.
TEST(CPython, RunsAFinalizerBeforeReferenceCountingFreesItsObject) {
  TraceRun run("new a\nnew b\nlink a b\nunroot b\nfinalizer a resurrect\nunroot a\nrelease\n",
               "cpython");
  EXPECT_TRUE(run.freed_at(6).empty());
  EXPECT_EQ(run.freed_set_at(7), (std::set<std::string>{"a", "b"}));
  EXPECT_TRUE(run.session.violations().empty()) << run.report();
}

// CPython tracks an object again, in generation 0, to run its finalizer from its deallocation
// (subtype_dealloc does, and so does the adapter's tp_dealloc): an old object that the finalizer
// resurrects is young again. The generation checks accept that (younger is never unsafe); they
// reported it as a wrong generation before (cyclefuzz check --collector cpython --seed 1).
TEST(CPython, MakesAnObjectResurrectedInItsDeallocationYoungAgain) {
  TraceRun run("new a\nfinalizer a resurrect\ncollect\nunroot a\ncollect 0\n", "cpython");
  EXPECT_TRUE(run.session.violations().empty()) << run.report();
  ObjectView view;
  run.session.collector(0).inspect(0, view);
  EXPECT_EQ(view.generation, 1);  // 2, then 0 when resurrected, then 1 after `collect 0`
}

// Each kind is one of CPython's own objects, whose references are where CPython keeps them: a
// list's and a cell's in the adapter's Node type, a record's in a Python instance's attributes, a
// dict's as values of a dict subclass, a set's as members of a set subclass. The collector
// traverses them all, and unlink releases through each.
TEST(CPython, KeepsEachKindsReferencesInItsOwnPlaceAndCollectsThroughThem) {
  expect_each_kind_keeps_its_references("cpython");
}

// What Python cannot hash - an acyclic object (an exact dict), a tuple of one - a set keeps as an
// attribute, as a record does; the collector traverses both places.
TEST(CPython, KeepsASetsUnhashableMembersAsAttributes) {
  TraceRun run("new s set\nnew x acyclic\nnew t tuple x\nnew n\nlink s x\nlink s t\nlink s n\n"
               "link s s\nlink n s\nunroot x\nunroot t\nunroot n\nunlink s t\nunroot s\n"
               "collect\n",
               "cpython");
  EXPECT_EQ(run.freed_at(13), std::vector<std::string>{"t"});
  EXPECT_TRUE(run.freed_at(14).empty());
  EXPECT_EQ(run.freed_set_at(15), (std::set<std::string>{"s", "x", "n"}));
  EXPECT_TRUE(run.session.violations().empty()) << run.report();
}

// A record's, dict's or set's finalizer is a __del__ (its class becomes one that has it): run by
// the collector on garbage, or from the deallocation by reference counting; what it resurrects
// lives.
TEST(CPython, RunsTheDelOfARecordADictOrASetAndKeepsWhatItResurrects) {
  for (const char* kind : {"record", "dict", "set"}) {
    SCOPED_TRACE(kind);
    {
      TraceRun cycle(std::string("new a ") + kind +
                         "\nnew b\nlink a b\nlink b a\nfinalizer a resurrect\n"
                         "unroot a\nunroot b\ncollect\nrelease\ncollect\n",
                     "cpython");
      EXPECT_TRUE(cycle.freed_at(8).empty());
      EXPECT_EQ(cycle.freed_set_at(10), (std::set<std::string>{"a", "b"}));
      EXPECT_TRUE(cycle.session.violations().empty()) << cycle.report();
    }
    TraceRun counted(std::string("new a ") + kind + "\nfinalizer a resurrect\nunroot a\nrelease\n",
                     "cpython");
    EXPECT_TRUE(counted.freed_at(3).empty());
    EXPECT_EQ(counted.freed_at(4), std::vector<std::string>{"a"});
    EXPECT_TRUE(counted.session.violations().empty()) << counted.report();
  }
}

// A record's __del__ comes with a __dict__ (3.11 makes one at the __class__ assignment), which
// keeps the attributes and a generation of its own: a record that its __del__ resurrects in its
// deallocation is young again, its dict not, so the record is as old as its dict (a Node would be
// young: MakesAnObjectResurrectedInItsDeallocationYoungAgain).
TEST(CPython, ShowsARecordResurrectedInItsDeallocationAsOldAsItsDict) {
  TraceRun run("new a record\nnew b\nlink a b\nfinalizer a link a a\ncollect 1\nunroot a\n",
               "cpython");
  EXPECT_TRUE(run.session.violations().empty()) << run.report();
  ObjectView view;
  run.session.collector(0).inspect(0, view);
  EXPECT_EQ(view.generation, 2);
  EXPECT_EQ(view.references, (std::vector<ObjectId>{1, 0}));
}

// An acyclic object is an exact dict: CPython leaves it untracked while it holds nothing it
// must track, tracks it once it holds a container, and untracks it again at a full collection
// once it is empty.
TEST(CPython, LeavesAnAcyclicObjectUntrackedWhileItHoldsNothingAsCPythonDoesADict) {
  ObjectView view;
  {
    TraceRun run("new x acyclic\nnew y acyclic\nlink y x\n", "cpython");
    run.session.collector(0).inspect(0, view);
    EXPECT_FALSE(view.tracked);
    run.session.collector(0).inspect(1, view);
    EXPECT_TRUE(view.tracked);
    EXPECT_EQ(view.references, std::vector<ObjectId>{0});
  }
  TraceRun emptied("new x acyclic\nnew y acyclic\nlink y x\nunlink y x\ncollect\n", "cpython");
  emptied.session.collector(0).inspect(1, view);
  EXPECT_FALSE(view.tracked);
  EXPECT_TRUE(emptied.session.violations().empty()) << emptied.report();
}

// A tuple is an exact tuple of its items, freed before them.
TEST(CPython, MakesATupleOfItsItems) {
  {
    TraceRun run("new a\nnew t tuple a a\nunroot a\nunroot t\n", "cpython");
    EXPECT_TRUE(run.freed_at(3).empty());
    EXPECT_EQ(run.freed_at(4), (std::vector<std::string>{"t", "a"}));
    EXPECT_TRUE(run.session.violations().empty()) << run.report();
  }
  TraceRun kept("new a\nnew t tuple a a\n", "cpython");
  ObjectView view;
  kept.session.collector(0).inspect(1, view);
  EXPECT_EQ(view.references, (std::vector<ObjectId>{0, 0}));
  EXPECT_EQ(view.count, 1u);
}

// gc.collect counts what it found: a record's __dict__ too (CPython makes one past 30 or so
// attributes), and not the untracked dicts that go with the garbage. The adapter counts the
// trace's objects: the checker demands exactly what was freed.
TEST(CPython, CountsTheTracesObjectsNotARecordsDictButItsUntrackedOnes) {
  std::string text = "new r record\nnew e acyclic\nlink r e\nunroot e\n";
  for (int i = 0; i < 40; ++i) {
    text += "new x" + std::to_string(i) + "\nlink r x" + std::to_string(i) + "\nunroot x" +
            std::to_string(i) + "\n";
  }
  text += "link x0 r\nunroot r\ncollect\n";
  TraceRun run(text, "cpython");
  EXPECT_EQ(run.freed_at(127).size(), 42u);
  EXPECT_TRUE(run.session.violations().empty()) << run.report();
}

// A weak reference that a record, dict or set holds is one of its attributes or values: it goes
// with its holder, uncalled when both are garbage of one collection, called back when its target
// dies alone.
TEST(CPython, KeepsTheWeakReferencesARecordDictOrSetHolds) {
  for (const char* kind : {"record", "dict", "set"}) {
    SCOPED_TRACE(kind);
    {
      TraceRun garbage(std::string("new h ") + kind +
                           "\nnew t\nlink h t\nlink t h\nweak w t callback in h\n"
                           "unroot h\nunroot t\ncollect\n",
                       "cpython");
      EXPECT_EQ(garbage.freed_set_at(8), (std::set<std::string>{"h", "t"}));
      EXPECT_TRUE(garbage.session.violations().empty()) << garbage.report();
    }
    TraceRun alone(std::string("new h ") + kind + "\nnew t\nweak w t callback in h\nunroot t\n"
                       "deref w\n",
                   "cpython");
    EXPECT_EQ(alone.freed_at(4), std::vector<std::string>{"t"});
    EXPECT_TRUE(alone.session.violations().empty()) << alone.report();
  }
}

// A dict keeps a weak reference without callback as a program keeps weak values: in a
// weakref.WeakValueDictionary of its own, whose KeyedRef drops the entry as CPython clears it (by
// reference counting, or in handle_weakrefs while the dict lives); the dictionary goes with the
// dict. gc.collect counts the KeyedRef that handle_weakrefs' callback frees, and what a garbage
// dict's dictionary is made of: the adapter counts the trace's objects, exactly.
TEST(CPython, KeepsADictsWeakReferencesWithoutCallbackInAWeakValueDictionary) {
  const struct {
    const char* trace;
    std::uint32_t op;
    std::set<std::string> freed;
  } cases[] = {
      {"new h dict\nnew t\nweak w t in h\nderef w\nunroot t\nderef w\n", 5, {"t"}},
      {"new h dict\nnew t\nweak w t in h\nnew u\nlink t u\nlink u t\nweak v u in h\n"
       "unroot u\nunroot t\ncollect\n",
       10,
       {"t", "u"}},
      {"new h dict\nnew t\nlink h t\nlink t h\nweak w t in h\nweak v h in h\nunroot h\n"
       "unroot t\ncollect\n",
       9,
       {"h", "t"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.trace);
    TraceRun run(c.trace, "cpython");
    EXPECT_EQ(run.freed_set_at(c.op), c.freed);
    EXPECT_TRUE(run.session.violations().empty()) << run.report();
  }
}

// A map's entries are in a weakref.WeakKeyDictionary that the map holds: CPython's collector
// traverses its values as the map's, a value that refers back to its key keeps both while the
// map lives, and they go with it.
TEST(CPython, KeepsAMapsEntriesInAWeakKeyDictionaryItHolds) {
  for (const char* kind : {"list", "record", "dict"}) {
    SCOPED_TRACE(kind);
    {
      TraceRun run(std::string("new m ") + kind +
                       "\nnew k\nnew v\nlink v k\nentry m k v\nunroot v\nunroot k\ncollect\n"
                       "unroot m\n",
                   "cpython");
      EXPECT_TRUE(run.freed_at(8).empty());
      EXPECT_EQ(run.freed_set_at(9), (std::set<std::string>{"m", "k", "v"}));
      EXPECT_TRUE(run.session.violations().empty()) << run.report();
    }
    TraceRun kept(std::string("new m ") + kind + "\nnew k\nnew v\nentry m k v\n", "cpython");
    ObjectView view;
    kept.session.collector(0).inspect(0, view);
    EXPECT_EQ(view.references, std::vector<ObjectId>{2});
    kept.session.collector(0).inspect(2, view);
    EXPECT_EQ(view.count, 2u);
  }
}

// CPython drops the entry of a garbage key as it clears the key's weak references
// (handle_weakrefs calls the WeakKeyDictionary's _remove), before any finalizer runs: a key that a
// finalizer then resurrects has lost its entry, and the value goes at once
// (MapEntries::StrongValuesUntilKeyCleared; the harness's maps would keep it).
TEST(CPython, DropsAGarbageKeysEntryBeforeAFinalizerResurrectsTheKey) {
  TraceRun run("new m\nnew k\nnew f\nlink k f\nlink f k\nfinalizer f resurrect k\nnew v\n"
               "entry m k v\nunroot v\nunroot f\nunroot k\ncollect\n",
               "cpython");
  EXPECT_EQ(run.freed_at(12), std::vector<std::string>{"v"});
  EXPECT_TRUE(run.session.violations().empty()) << run.report();
}

// gc.collect counts what a garbage map's WeakKeyDictionary is made of (the instance, its dict,
// its functions, a weakref.ref per key): the adapter counts the trace's objects, which the
// checker demands exactly of a full collection.
TEST(CPython, CountsTheTracesObjectsNotWhatAGarbageMapsEntriesAreMadeOf) {
  for (const char* kind : {"list", "record", "dict"}) {
    SCOPED_TRACE(kind);
    TraceRun run(std::string("new m ") + kind +
                     "\nnew k\nnew j\nnew v\nentry m k v\nentry m j v\nlink v m\nunroot v\n"
                     "unroot m\ncollect\n",
                 "cpython");
    EXPECT_EQ(run.freed_set_at(10), (std::set<std::string>{"m", "v"}));
    EXPECT_TRUE(run.session.violations().empty()) << run.report();
  }
}

// ================================================================================================
// Lua: nothing is freed outside the collector's cycles
// ================================================================================================

const std::vector<std::string> kLuas = {"lua-incremental", "lua-generational", "lua5.3",
                                        "luajit"};

std::unique_ptr<Collector> make_lua(const std::string& name, CollectorHost& host) {
  return find_collector(name)->make(host, {});
}

TEST(Lua, FreesNothingWhenTheLastReferenceGoesOnlyWhenItCollects) {
  for (const std::string& lua : kLuas) {
    TraceRun run("new a\nnew b\nlink a b\nunroot b\nunroot a\ncollect\n", lua);
    EXPECT_TRUE(run.freed_at(5).empty()) << lua;  // luaL_unref allocates nothing: no step
    EXPECT_EQ(run.freed_set_at(6), (std::set<std::string>{"a", "b"})) << lua;
    EXPECT_TRUE(run.session.violations().empty()) << run.report();
  }
}

TEST(Lua, ReturnsNoCountFromCollect) {
  for (const std::string& name : kLuas) {
    RecordingListener listener;
    const auto lua = make_lua(name, listener);
    lua->allocate(0);
    lua->link(0, 0);
    lua->unroot(0);
    EXPECT_EQ(lua->collect(2), 0u) << name;
    EXPECT_EQ(listener.frees, std::vector<ObjectId>{0}) << name;
    EXPECT_EQ(lua->capabilities().collect_count, CollectCount::None) << name;
  }
}

// Lua 5.4, 5.3 and LuaJIT define the same C names; each adapter is linked with its own library
// privately (CMakeLists.txt). All at once in one process, their operations interleaved, each
// collects its own cycles.
TEST(Lua, TheVersionsRunSideBySide) {
  std::vector<RecordingListener> listeners(kLuas.size());
  std::vector<std::unique_ptr<Collector>> luas;
  for (std::size_t i = 0; i < kLuas.size(); ++i) luas.push_back(make_lua(kLuas[i], listeners[i]));
  for (const auto& lua : luas) lua->allocate(0);
  for (const auto& lua : luas) lua->allocate(1);
  for (const auto& lua : luas) lua->link(0, 1);
  for (const auto& lua : luas) lua->link(1, 0);
  for (const auto& lua : luas) lua->unroot(0);
  for (const auto& lua : luas) lua->unroot(1);
  for (std::size_t i = 0; i < kLuas.size(); ++i) {
    luas[i]->collect(2);
    std::vector<ObjectId> frees = listeners[i].frees;
    std::sort(frees.begin(), frees.end());
    EXPECT_EQ(frees, (std::vector<ObjectId>{0, 1})) << kLuas[i];
    luas[i]->check_invariants();
  }
}

// A map entry whose value refers to its key: Lua's ephemerons free both once the key is
// unreachable otherwise; LuaJIT's weak-keyed tables would keep them (Lua 5.1's strong values), so
// its adapter leaves maps to the harness, whose strong-value maps keep them too.
TEST(Lua, KeepsMapsInEphemeronsButLuaJitLeavesThemToTheHarness) {
  const char* trace = "new m\nnew k\nnew v\nentry m k v\nlink v k\nunroot k\nunroot v\ncollect\n";
  for (const std::string& lua : kLuas) {
    RecordingListener listener;
    const bool luajit = lua == "luajit";
    EXPECT_EQ(make_lua(lua, listener)->capabilities().map_entries,
              luajit ? MapEntries::Harness : MapEntries::Ephemerons);
    TraceRun run(trace, lua);
    const std::set<std::string> freed = luajit ? std::set<std::string>{}
                                               : std::set<std::string>{"k", "v"};
    EXPECT_EQ(run.freed_set_at(8), freed) << lua;
    EXPECT_TRUE(run.session.violations().empty()) << run.report();
  }
}

// A record's and a dict's references are fields of its table ("p1", "k1": the hash part), a
// list's its sequence (the array part); a tuple is a closure whose upvalues are its items, made
// again one longer at each of its links; a Lua 5.4 cell is a userdata whose user values are its
// referent and its table of weak references; an acyclic object's first reference is its
// metatable (but in LuaJIT, whose objects are userdata); a set's members are keys of its table.
// The collector traverses them all.
TEST(Lua, KeepsEachKindsReferencesWhereLuaKeepsThem) {
  for (const std::string& name : kLuas) {
    SCOPED_TRACE(name);
    RecordingListener listener;
    const auto lua = make_lua(name, listener);
    lua->allocate(0);
    lua->set_kind(0, ObjectKind::Record);
    lua->allocate(1);
    lua->set_kind(1, ObjectKind::Dict);
    lua->allocate(2);
    lua->set_kind(2, ObjectKind::Tuple);
    lua->link(2, 0);
    lua->link(2, 1);
    lua->link(0, 1);
    lua->link(0, 1);
    lua->link(1, 0);
    lua->unlink(0, 1);
    ObjectView view;
    lua->inspect(0, view);
    EXPECT_EQ(view.references, std::vector<ObjectId>{1});
    lua->inspect(2, view);
    EXPECT_EQ(view.references, (std::vector<ObjectId>{0, 1}));
    lua->allocate(3);
    lua->set_kind(3, ObjectKind::Cell);
    lua->link(3, 0);
    lua->weak_ref(0, 1, false);
    lua->weak_held_by(0, 3);
    lua->inspect(3, view);
    EXPECT_EQ(view.references, std::vector<ObjectId>{0});
    EXPECT_EQ(lua->deref(0), std::optional<ObjectId>{1});
    lua->allocate(4);
    lua->set_kind(4, ObjectKind::Acyclic);
    lua->allocate(5);
    lua->set_kind(5, ObjectKind::Acyclic);
    lua->link(5, 4);  // (Lua 5.3 and 5.4: its metatable)
    lua->link(5, 4);
    lua->unlink(5, 4);
    lua->inspect(5, view);
    EXPECT_EQ(view.references, std::vector<ObjectId>{4});
    lua->allocate(6);
    lua->set_kind(6, ObjectKind::Set);
    lua->link(6, 0);
    lua->link(6, 1);
    lua->link(6, 6);
    lua->unlink(6, 0);
    lua->inspect(6, view);
    std::sort(view.references.begin(), view.references.end());
    EXPECT_EQ(view.references, (std::vector<ObjectId>{1, 6}));
    lua->check_invariants();
    lua->unroot(6);
    lua->unroot(5);
    lua->unroot(4);
    lua->unlink(3, 0);
    lua->unroot(3);
    lua->unroot(0);
    lua->unroot(1);
    lua->collect(2);
    std::vector<ObjectId> frees = listener.frees;
    std::sort(frees.begin(), frees.end());
    EXPECT_EQ(frees, (std::vector<ObjectId>{3, 4, 5, 6}));  // (the tuple holds 0 and 1)
    lua->unroot(2);
    lua->collect(2);
    frees = listener.frees;
    std::sort(frees.begin(), frees.end());
    EXPECT_EQ(frees, (std::vector<ObjectId>{0, 1, 2, 3, 4, 5, 6}));
    lua->check_invariants();
  }
}

TEST(Lua, FinalizesGarbageInAutomaticStepsWhileTheProgramAllocates) {
  for (const std::string& name : kLuas) {
    RecordingListener listener;
    const auto lua = make_lua(name, listener);
    lua->allocate(0);
    lua->unroot(0);
    // (A cycle counts once its finalizers ran, after the sweep that frees 0: until both.)
    for (ObjectId x = 1; x <= 200 && (listener.frees.empty() || lua->collections() == 0); ++x) {
      lua->allocate(x);
    }
    EXPECT_EQ(listener.frees, std::vector<ObjectId>{0}) << name;
    EXPECT_GE(lua->collections(), 1u) << name;
    lua->check_invariants();
  }
}

// `collect 0` is one step of Lua's own work (young_collections_are_steps): in 5.4's generational
// mode a young collection, which frees a young cycle there and then; in the incremental modes a
// part of a cycle, after which a full collection frees what is left.
TEST(Lua, TakesAStepForAYoungCollect) {
  const std::string trace =
      "collect\nnew a\nnew b\nlink a b\nlink b a\nunroot a\nunroot b\ncollect 0\ncollect\n";
  for (const std::string& lua : kLuas) {
    TraceRun run(trace, lua);
    EXPECT_TRUE(run.session.violations().empty()) << run.report();
    std::set<std::string> freed = run.freed_set_at(8);
    if (lua == "lua-generational") {
      EXPECT_EQ(freed, (std::set<std::string>{"a", "b"}));
    }
    freed.merge(run.freed_set_at(9));
    EXPECT_EQ(freed, (std::set<std::string>{"a", "b"})) << lua;
  }
}

/// A Lua collector whose host records frees and weak-reference clears, and whose finalizers
/// resurrect their object (a root of it).
struct WeakLua : RecordingListener {
  explicit WeakLua(const std::string& name) : lua(make_lua(name, *this)) {}
  void finalize(ObjectId id) override { lua->root(id); }
  void weak_cleared(WeakId w) override { cleared.push_back(w); }
  std::unique_ptr<Collector> lua;
  std::vector<WeakId> cleared;
};

// A weak reference is a slot of a table with __mode "v" (the adapter's for the mutator's, the
// holder's own for one an object holds), which Lua empties when the target dies.
TEST(Lua, ClearsWeakReferencesToWhatItFrees) {
  for (const std::string& name : kLuas) {
    WeakLua listener(name);
    Collector* lua = listener.lua.get();
    lua->allocate(0);
    lua->allocate(1);
    lua->weak_ref(0, 0, false);  // the mutator's
    lua->weak_ref(1, 0, false);
    lua->weak_held_by(1, 1);     // object 1's
    EXPECT_EQ(lua->deref(0), std::optional<ObjectId>(0)) << name;
    EXPECT_EQ(lua->deref(1), std::optional<ObjectId>(0)) << name;
    lua->unroot(0);
    lua->collect(2);
    EXPECT_EQ(listener.frees, std::vector<ObjectId>{0}) << name;
    std::sort(listener.cleared.begin(), listener.cleared.end());
    EXPECT_EQ(listener.cleared, (std::vector<WeakId>{0, 1})) << name;
    EXPECT_EQ(lua->deref(0), std::nullopt) << name;
    EXPECT_EQ(lua->deref(1), std::nullopt) << name;
    lua->check_invariants();
    const Capabilities& c = lua->capabilities();
    EXPECT_TRUE(c.weak_references && c.weak_reference_holders) << name;
    EXPECT_FALSE(c.weak_reference_callbacks) << name;
  }
}

// A weak reference that h holds to a, where only a (with a finalizer) reaches h: Lua 5.3 and 5.4
// clear no value of h's table that is kept for finalization with it, so a's finalizer finds a
// there and resurrects it (weak_references_of_garbage_outlive_finalizers); LuaJIT drops the
// finalized userdata from the weak values first, and frees a. The checks pass on both.
TEST(Lua, LeavesAWeakTableThatOnlyFinalizedObjectsReachUncleared) {
  const std::string trace =
      "new a\nnew h\nlink a h\nweak w a in h\nfinalizer a deref w\nunroot h\nunroot a\n"
      "collect\ncollect\n";
  for (const std::string& lua : kLuas) {
    TraceRun run(trace, lua);
    EXPECT_TRUE(run.session.violations().empty()) << run.report();
    const std::set<std::string> freed = lua == "luajit" ? std::set<std::string>{"a", "h"}
                                                        : std::set<std::string>{};
    EXPECT_EQ(run.freed_set_at(9), freed) << lua;
  }
}

// LuaJIT keeps Lua 5.1's mark of a finalized userdata for good, and drops such a userdata from
// weak values at every cycle, even while the program reaches it
// (weak_references_cleared_once_finalized); Lua 5.3 and 5.4 keep the weak reference.
TEST(Lua, LuaJitClearsWeakReferencesToWhatItOnceFinalized) {
  for (const std::string& name : kLuas) {
    WeakLua listener(name);
    Collector* lua = listener.lua.get();
    lua->allocate(0);
    lua->set_finalizer(0);
    lua->unroot(0);
    lua->collect(2);  // its finalizer resurrects it
    lua->weak_ref(0, 0, false);
    lua->collect(2);
    const bool luajit = name == "luajit";
    EXPECT_EQ(lua->deref(0), luajit ? std::nullopt : std::optional<ObjectId>(0)) << name;
    EXPECT_EQ(listener.cleared, luajit ? std::vector<WeakId>{0} : std::vector<WeakId>{}) << name;
    EXPECT_TRUE(listener.frees.empty()) << name;
    EXPECT_EQ(lua->capabilities().weak_references_cleared_once_finalized, luajit) << name;
  }
}

// ================================================================================================
// PHP: reference counting frees at once, gc_collect_cycles frees cycles
// ================================================================================================

TEST(Php, FreesAnAcyclicObjectWhenItsLastReferenceGoes) {
  TraceRun run("new a\nnew b\nlink a b\nunroot b\nunroot a\n", "php");
  EXPECT_TRUE(run.freed_at(4).empty());
  EXPECT_EQ(run.freed_set_at(5), (std::set<std::string>{"a", "b"}));
}

TEST(Php, FreesACycleOnlyWhenItCollectsAndCountsIt) {
  RecordingListener listener;
  PhpCollector php(listener);
  php.allocate(0);
  php.allocate(1);
  php.link(0, 1);
  php.link(1, 0);
  php.unroot(0);
  php.unroot(1);
  EXPECT_TRUE(listener.frees.empty());
  // (gc_collect_cycles counts every value it destroys: the two objects and their arrays $r.)
  EXPECT_EQ(php.collect(2), 4u);
  EXPECT_EQ(std::set<ObjectId>(listener.frees.begin(), listener.frees.end()),
            (std::set<ObjectId>{0, 1}));
}

// Each kind keeps its references in its own place of PHP's: a list's in the array $r, a dict's
// under string keys of it, a record's in dynamic properties, a cell's in $c, a set's in the
// SplObjectStorage in $s. PHP's collector traverses them all (zend_std_get_gc, and the storage's
// get_gc), and unlink releases through each place.
TEST(Php, KeepsEachKindsReferencesInItsOwnPlaceAndCollectsThroughThem) {
  expect_each_kind_keeps_its_references("php");
}

// A WeakReference is cleared as PHP frees its target, by reference counting or by a collection;
// one that an object holds (in its $w) goes with it. PHP has no weak-reference callbacks.
TEST(Php, ClearsWeakReferencesAsItFreesTheirTargets) {
  TraceRun run("new a\nnew b\nnew h\nlink a b\nlink b a\nweak w a callback\nweak v b in h\n"
               "deref w\nunroot a\nunroot b\ncollect\nderef w\nderef v\n",
               "php");
  EXPECT_EQ(run.freed_set_at(11), (std::set<std::string>{"a", "b"}));
  EXPECT_TRUE(run.session.violations().empty()) << run.report();
  EXPECT_FALSE(run.session.collector(0).capabilities().weak_reference_callbacks);
}

// PHP 8.2's WeakMap keeps its values strongly (its get_gc returns them): a value that refers to
// its key keeps both while the map lives, and they go with the map (MapEntries::StrongValues).
TEST(Php, KeepsAWeakMapsValueThatRefersToItsKeyWhileTheMapLives) {
  TraceRun run("new m\nnew k\nnew v\nlink v k\nentry m k v\nunroot v\nunroot k\ncollect\n"
               "unroot m\ncollect\n",
               "php");
  EXPECT_TRUE(run.freed_at(8).empty());
  EXPECT_EQ(run.freed_set_at(9), (std::set<std::string>{"m", "k", "v"}));  // by counting
  EXPECT_TRUE(run.session.violations().empty()) << run.report();
}

// An entry goes when PHP frees its key: its value, which only the entry held, is freed with it.
TEST(Php, DropsAWeakMapEntryAsItFreesTheKey) {
  TraceRun run("new m\nnew k\nnew v\nentry m k v\nunroot v\nunroot k\n", "php");
  EXPECT_EQ(run.freed_at(6), (std::vector<std::string>{"k", "v"}));
  EXPECT_TRUE(run.session.violations().empty()) << run.report();
}

// 6,000 abandoned two-cycles buffer 12,000 possible roots: past the root buffer's threshold of
// 10,000, PHP collects by itself during an unroot.
// A finalizer is a destructor (dtor_obj): PHP calls it once, before the free, by reference
// counting or from gc_collect_cycles, and keeps what it resurrects.
TEST(Php, KeepsWhatADestructorResurrects) {
  TraceRun run("new a\nnew b\nlink a b\nlink b a\nfinalizer a resurrect\n"
               "unroot a\nunroot b\ncollect\nrelease\ncollect\n",
               "php");
  EXPECT_TRUE(run.freed_at(8).empty());
  EXPECT_EQ(run.freed_set_at(10), (std::set<std::string>{"a", "b"}));
  EXPECT_TRUE(run.session.violations().empty()) << run.report();
}

// A userland __destruct's frame holds its object while it runs and releases it after, so an
// object its destructor makes a cycle is a possible root that the next collection finds.
TEST(Php, CollectsAnObjectItsDestructorMadeACycle) {
  TraceRun run("new a\nfinalizer a link a a\nunroot a\ncollect\n", "php");
  EXPECT_TRUE(run.freed_at(3).empty());
  EXPECT_EQ(run.freed_at(4), std::vector<std::string>{"a"});
  EXPECT_TRUE(run.session.violations().empty()) << run.report();
}

// gc_collect_cycles leaves an object with a destructor, and what it holds, to reference counting
// as it destroys the rest of the garbage, and does not count them (as in plain PHP); it counts
// the arrays it destroys as well: no count of objects (CollectCount::None).
TEST(Php, CountsOnlyTheGarbageThatNoDestructorHolds) {
  RecordingListener listener;
  PhpCollector php(listener);
  for (ObjectId x = 0; x < 4; ++x) php.allocate(x);
  php.link(0, 1);  // a cycle of two, 0 <-> 1 ...
  php.link(1, 0);
  php.link(1, 2);  // ... holding 2, which has a destructor and holds 3
  php.link(2, 3);
  php.set_finalizer(2);
  for (ObjectId x = 0; x < 4; ++x) php.unroot(x);
  EXPECT_EQ(php.collect(0), 4u);  // 0, 1 and their arrays $r
  EXPECT_EQ(listener.frees.size(), 4u);
  EXPECT_EQ(php.capabilities().collect_count, CollectCount::None);
}

TEST(Php, CollectsByItselfWhenTheRootBufferFills) {
  std::string text;
  for (int i = 0; i < 6000; ++i) {
    const std::string a = "a" + std::to_string(i);
    const std::string b = "b" + std::to_string(i);
    text += "new " + a + "\nnew " + b + "\nlink " + a + " " + b + "\nlink " + b + " " + a +
            "\nunroot " + a + "\nunroot " + b + "\n";
  }
  text += "collect\n";
  // Invariants after every op would cost the heap each time: the checks of the oracle suffice.
  TraceRun run(text, "php", {}, /*check_invariants=*/false);
  EXPECT_TRUE(run.session.violations().empty()) << run.report();
  std::size_t automatic = 0;
  for (std::size_t op = 0; op + 1 < run.trace.ops.size(); ++op) {
    automatic += run.session.frees_per_op(0)[op].size();
  }
  EXPECT_GE(automatic, 2u);
  EXPECT_EQ(automatic + run.session.frees_per_op(0).back().size(), 12000u);
}

// PHP frees by recursion (free_obj releases references, which frees the next object, ...), so a
// chain is freed only as deep as the C stack allows; 10,000 is well within it (FINDINGS.md).
TEST(Php, FreesAChainOfTenThousandByReferenceCounting) {
  RecordingListener listener;
  PhpCollector php(listener);
  constexpr ObjectId kLength = 10'000;
  for (ObjectId x = 0; x < kLength; ++x) php.allocate(x);
  for (ObjectId x = 0; x + 1 < kLength; ++x) php.link(x, x + 1);
  for (ObjectId x = kLength - 1; x > 0; --x) php.unroot(x);
  EXPECT_TRUE(listener.frees.empty());
  php.unroot(0);
  EXPECT_EQ(listener.frees.size(), kLength);
}

TEST(Php, RefusesASecondCollectorWhileOneIsAlive) {
  RecordingListener listener;
  PhpCollector first(listener);
  EXPECT_THROW(PhpCollector second(listener), std::runtime_error);
  first.allocate(0);
  first.unroot(0);
  EXPECT_EQ(listener.frees, std::vector<ObjectId>{0});
}

// ================================================================================================
// Duktape: reference counting frees at once, mark-and-sweep frees the rest
// ================================================================================================

TEST(Duktape, FreesAnAcyclicObjectWhenItsLastReferenceGoes) {
  TraceRun run("new a\nnew b\nlink a b\nunroot b\nunroot a\n", "duktape");
  EXPECT_TRUE(run.freed_at(4).empty());
  EXPECT_EQ(run.freed_set_at(5), (std::set<std::string>{"a", "b"}));
  EXPECT_TRUE(run.session.violations().empty()) << run.report();
}

// The count is Duktape's own (h_refcount): external references and elements of other arrays.
TEST(Duktape, CountsEveryReferenceAndFreesACycleOnlyWhenItCollects) {
  RecordingListener listener;
  DuktapeCollector duktape(listener);
  duktape.allocate(0);
  duktape.allocate(1);
  duktape.link(0, 1);
  duktape.link(1, 0);
  duktape.root(1);
  ObjectView view;
  duktape.inspect(1, view);
  EXPECT_EQ(view.count, 3u);
  EXPECT_EQ(view.references, std::vector<ObjectId>{0});
  duktape.unroot(0);
  duktape.unroot(1);
  duktape.unroot(1);
  EXPECT_TRUE(listener.frees.empty());
  const std::uint64_t rounds = duktape.collections();
  EXPECT_EQ(duktape.collect(0), 0u);  // duk_gc() counts nothing
  EXPECT_EQ(std::set<ObjectId>(listener.frees.begin(), listener.frees.end()),
            (std::set<ObjectId>{0, 1}));
  EXPECT_EQ(duktape.collections(), rounds + 1);
  duktape.check_invariants();
}

// Mark-and-sweep runs a cycle's finalizer and keeps the cycle (and what it reaches) until its
// next round, which frees what is still unreachable.
TEST(Duktape, FreesAFinalizedCycleOnlyAtTheNextRound) {
  TraceRun run("new a\nnew b\nlink a b\nlink b a\nfinalizer a\nunroot a\nunroot b\n"
               "collect\ncollect\n",
               "duktape");
  EXPECT_TRUE(run.freed_at(8).empty());
  EXPECT_EQ(run.freed_set_at(9), (std::set<std::string>{"a", "b"}));
  EXPECT_TRUE(run.session.violations().empty()) << run.report();
}

// A finalizer that reference counting ran, and after which something still refers to its object,
// is armed again: a collection runs it again (Capabilities::finalizers_may_run_again), and keeps
// the object until its next round.
TEST(Duktape, RunsTheFinalizerOfAnObjectThatSurvivedItAgain) {
  TraceRun run("new a\nfinalizer a link a a\nunroot a\ncollect\ncollect\n", "duktape");
  EXPECT_TRUE(run.freed_at(3).empty());
  EXPECT_TRUE(run.freed_at(4).empty());
  EXPECT_EQ(run.freed_at(5), std::vector<std::string>{"a"});
  EXPECT_TRUE(run.session.violations().empty()) << run.report();
}


// FINDINGS.md: a round of mark-and-sweep marks what garbage waiting for its finalizer reaches, and
// takes a finalized object marked that way for one the program rescued: it arms its finalizer
// again, though nothing reachable ever refers to it. Here o0's finalizer makes o1, garbage with a
// finalizer of its own, that refers to o0: o0 is finalized a second time, and freed a round later
// than it would be. (Each run making a new o1, as a JavaScript finalizer would, o0 is never
// freed.) This test passes while Duktape does so.
TEST(Duktape, RunsAgainTheFinalizerOfAnObjectOnlyGarbageRefersTo) {
  struct Host : RecordingListener {
    void finalize(ObjectId id) override {
      if (++runs[id] > 1 || id != 0) return;
      collector->allocate(1);
      collector->set_finalizer(1);
      collector->link(1, 0);
      collector->link(1, 1);
      collector->unroot(1);
    }
    Collector* collector = nullptr;
    std::map<ObjectId, int> runs;
  } host;
  DuktapeCollector duktape(host);
  host.collector = &duktape;
  duktape.allocate(0);
  duktape.set_finalizer(0);
  duktape.link(0, 0);
  duktape.unroot(0);
  duktape.collect(0);  // o0 finalized: o1 -> o0 made
  duktape.collect(0);  // o1 finalized; marking o1 marks o0, which counts as rescued
  duktape.collect(0);  // o1 freed; o0 finalized again
  EXPECT_EQ(host.runs[0], 2);
  EXPECT_EQ(host.frees, std::vector<ObjectId>{1});
  duktape.collect(0);
  EXPECT_EQ(host.frees, (std::vector<ObjectId>{1, 0}));
}

// ================================================================================================
// mruby: nothing is freed outside the collector's cycles, which it runs in steps by itself
// ================================================================================================

TEST(Mruby, FreesNothingWhenTheLastReferenceGoesOnlyWhenItCollects) {
  for (const char* mode : {"mruby-incremental", "mruby-generational"}) {
    TraceRun run("new a\nnew b\nlink a b\nunroot b\nunroot a\ncollect\n", mode);
    EXPECT_TRUE(run.freed_at(5).empty()) << mode;  // mrb_gc_unregister allocates nothing
    EXPECT_EQ(run.freed_set_at(6), (std::set<std::string>{"a", "b"})) << mode;
    EXPECT_TRUE(run.session.violations().empty()) << run.report();
  }
}

// Each external reference is one registration: the object lives until the last one goes.
TEST(Mruby, KeepsAnObjectRegisteredTwiceUntilBothGo) {
  TraceRun run("new a\nroot a\nunroot a\ncollect\nunroot a\ncollect\n", "mruby-incremental");
  EXPECT_TRUE(run.freed_at(4).empty());
  EXPECT_EQ(run.freed_at(6), std::vector<std::string>{"a"});
  EXPECT_TRUE(run.session.violations().empty()) << run.report();
}

TEST(Mruby, CollectsGarbageInAutomaticStepsWhileTheProgramAllocates) {
  for (MrubyMode mode : {MrubyMode::Incremental, MrubyMode::Generational}) {
    RecordingListener listener;
    MrubyCollector mruby(listener, mode);
    mruby.allocate(0);
    mruby.unroot(0);
    for (ObjectId x = 1; x <= 5000 && listener.frees.empty(); ++x) mruby.allocate(x);
    EXPECT_EQ(listener.frees, std::vector<ObjectId>{0});
    EXPECT_GE(mruby.collections(), 1u);
    mruby.check_invariants();
  }
}

// ================================================================================================
// Nim's ORC: reference counting frees at once, its cycle collector frees cycles
// ================================================================================================

TEST(NimOrc, FreesAChainWhenItsLastReferenceGoes) {
  TraceRun run("new a\nnew b\nlink a b\nunroot b\nunroot a\n", "nim-orc");
  EXPECT_TRUE(run.freed_at(4).empty());
  EXPECT_EQ(run.freed_set_at(5), (std::set<std::string>{"a", "b"}));
  EXPECT_TRUE(run.session.violations().empty()) << run.report();
}

// GC_fullCollect returns nothing: the adapter counts the frees reported during the call.
TEST(NimOrc, FreesACycleOnlyWhenItCollectsAndCountsIt) {
  RecordingListener listener;
  NimOrcCollector nim(listener);
  nim.allocate(0);
  nim.allocate(1);
  nim.link(0, 1);
  nim.link(1, 0);
  nim.unroot(0);
  nim.unroot(1);
  EXPECT_TRUE(listener.frees.empty());
  nim.check_invariants();
  EXPECT_EQ(nim.collect(0), 2u);
  EXPECT_EQ(std::set<ObjectId>(listener.frees.begin(), listener.frees.end()),
            (std::set<ObjectId>{0, 1}));
  EXPECT_EQ(nim.collections(), 1u);
}

// ORC does not trace references to an {.acyclic.} type: an acyclic object that only garbage held
// goes by reference counting as the garbage's sequences are destroyed, in the same collection,
// which counts it too.
TEST(NimOrc, FreesWhatTheGarbageHeldOfAcyclicObjectsInTheSameCollection) {
  TraceRun run("new s acyclic\nnew t acyclic\nlink t s\nnew a\nlink a a\nlink a t\n"
               "unroot s\nunroot t\nunroot a\ncollect\n",
               "nim-orc");
  EXPECT_TRUE(run.freed_at(9).empty());
  EXPECT_EQ(run.freed_set_at(10), (std::set<std::string>{"a", "s", "t"}));
  EXPECT_TRUE(run.session.violations().empty()) << run.report();
}

// 200 abandoned two-cycles make 400 possible roots: past ORC's threshold (128 at first), it
// collects by itself during an unroot.
TEST(NimOrc, CollectsByItselfPastTheThreshold) {
  std::string text;
  for (int i = 0; i < 200; ++i) {
    const std::string a = "a" + std::to_string(i);
    const std::string b = "b" + std::to_string(i);
    text += "new " + a + "\nnew " + b + "\nlink " + a + " " + b + "\nlink " + b + " " + a +
            "\nunroot " + a + "\nunroot " + b + "\n";
  }
  text += "collect\n";
  TraceRun run(text, "nim-orc");
  EXPECT_TRUE(run.session.violations().empty()) << run.report();
  std::size_t automatic = 0;
  for (std::size_t op = 0; op + 1 < run.trace.ops.size(); ++op) {
    automatic += run.session.frees_per_op(0)[op].size();
  }
  EXPECT_GE(automatic, 2u);
  EXPECT_EQ(automatic + run.session.frees_per_op(0).back().size(), 400u);
}

// A `threshold` op sets ORC's threshold of possible roots: at 2, the second cycle abandoned makes
// the second possible root, and ORC collects both cycles there.
TEST(NimOrc, CollectsByItselfAtTheTracesThreshold) {
  TraceRun run("threshold 2 1 1\nnew a\nlink a a\nunroot a\nnew b\nlink b b\nunroot b\n",
               "nim-orc");
  EXPECT_TRUE(run.freed_at(4).empty());
  EXPECT_EQ(run.freed_set_at(7), (std::set<std::string>{"a", "b"}));
  EXPECT_TRUE(run.session.violations().empty()) << run.report();
}

TEST(NimOrc, NeverCollectsByItselfWhileDisabled) {
  RecordingListener listener;
  NimOrcCollector nim(listener);
  nim.set_automatic_collection(false);
  for (ObjectId x = 0; x < 400; x += 2) {
    nim.allocate(x);
    nim.allocate(x + 1);
    nim.link(x, x + 1);
    nim.link(x + 1, x);
    nim.unroot(x);
    nim.unroot(x + 1);
  }
  EXPECT_TRUE(listener.frees.empty());
  EXPECT_EQ(nim.collections(), 0u);
  nim.check_invariants();
  EXPECT_EQ(nim.collect(0), 400u);
}

// ORC frees by recursion (a destructor destroys the sequence, which frees the next object...),
// as PHP does; 10,000 is well within the stack.
TEST(NimOrc, FreesAChainOfTenThousandByReferenceCounting) {
  RecordingListener listener;
  NimOrcCollector nim(listener);
  constexpr ObjectId kLength = 10'000;
  for (ObjectId x = 0; x < kLength; ++x) nim.allocate(x);
  for (ObjectId x = 0; x + 1 < kLength; ++x) nim.link(x, x + 1);
  for (ObjectId x = kLength - 1; x > 0; --x) nim.unroot(x);
  EXPECT_TRUE(listener.frees.empty());
  nim.unroot(0);
  EXPECT_EQ(listener.frees.size(), kLength);
}

TEST(NimOrc, RefusesASecondCollectorWhileOneIsAlive) {
  RecordingListener listener;
  NimOrcCollector first(listener);
  EXPECT_THROW(NimOrcCollector second(listener), std::runtime_error);
  first.allocate(0);
  first.unroot(0);
  EXPECT_EQ(listener.frees, std::vector<ObjectId>{0});
}

}  // namespace
}  // namespace cyclefuzz
