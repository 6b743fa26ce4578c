// Delta debugging over operations: the result is valid, smaller, and fails the same way.
#include <gtest/gtest.h>

#include "runners/generator.h"
#include "runners/isolated_run.h"
#include "runners/minimize.h"
#include "tests/test_support.h"

namespace cyclefuzz {
namespace {

/// How `trace` fails on `collector` alone, in a child process.
Outcome outcome(const Trace& trace, const CollectorEntry& collector) {
  return signature_of(trace, collector, {}).outcome;
}

TEST(SelectOps, DropsWhatNoLongerMakesSenseAndRenumbers) {
  const Trace t = parse_trace("new a\nnew b\nlink a b\nunroot b\nnew c\nlink c c\n", "t");
  // Without `new b`, `link a b` and `unroot b` name nothing; c becomes object 1.
  const Trace s = select_ops(t, {true, false, true, true, true, true});
  EXPECT_EQ(to_text(s), "new a\nnew c\nlink c c\n");
  EXPECT_NO_THROW(check_trace(s));
}

TEST(SelectOps, RenumbersMapEntriesAndDropsAnUnentryLeftWithoutItsEntry) {
  const Trace t = parse_trace(
      "new a\nnew m\nnew k\nnew v\nentry m k v\nunentry m k\nentry m k a\nunentry m k\n", "t");
  // Without `new a`, m, k and v are renumbered 0, 1, 2 and `entry m k a` names nothing, so the
  // second `unentry m k` has no entry left to drop.
  const Trace without_a = select_ops(t, {false, true, true, true, true, true, true, true});
  EXPECT_EQ(to_text(without_a), "new m\nnew k\nnew v\nentry m k v\nunentry m k\n");
  EXPECT_EQ(without_a.ops[3], Op::entry(0, 1, 2));
  EXPECT_NO_THROW(check_trace(without_a));
  // Without the entries, neither unentry has one to drop.
  const Trace without_entries = select_ops(t, {true, true, true, true, false, true, false, true});
  EXPECT_EQ(to_text(without_entries), "new a\nnew m\nnew k\nnew v\n");
}

TEST(SelectOps, DropsAWeakReferenceWhoseHolderIsGoneAndTheDerefsOfIt) {
  const Trace t = parse_trace("new a\nnew h\nweak w a in h\nderef w\n", "t");
  EXPECT_EQ(to_text(select_ops(t, {true, false, true, true})), "new a\n");
  EXPECT_EQ(to_text(select_ops(t, {false, true, true, true})), "new h\n");
}

TEST(Minimize, DropsAHolderThatTheFailureDoesNotNeed) {
  // Any trace with a weak reference "fails": the holder is not needed, so it goes.
  const Trace t = parse_trace("new a\nnew h\nweak w a in h\n", "t");
  const Trace minimal = minimize_trace(t, [](const Trace& candidate) {
    return std::any_of(candidate.ops.begin(), candidate.ops.end(),
                       [](const Op& op) { return op.kind == OpKind::Weak; });
  });
  EXPECT_EQ(to_text(minimal), "new a\nweak w a\n");
}

TEST(Minimize, ShrinksABuildToTheSizeTheFailureNeeds) {
  // Marking that stops four references below a root frees a chain's sixth object: a chain of
  // 1,000 shrinks to 6, and the op that named its end names the new end.
  const CollectorEntry mutant = *find_collector("mutant:mark-stops-at-depth-4");
  const Trace trace =
      parse_trace("build s chain 1000\nnew x\nlink s_999 x\nunroot x\ncollect\n", "t");
  const Outcome target = outcome(trace, mutant);
  ASSERT_NE(target.kind, Outcome::Kind::Pass);
  const Trace minimal = minimize_trace(trace, [&](const Trace& candidate) {
    return outcome(candidate, mutant).kind == target.kind;
  });
  EXPECT_EQ(to_text(minimal), "build s chain 6\ncollect\n");
}

TEST(Minimize, KeepsABuildClearOfAnEdgeThatMovesFromRunToRun) {
  // As a stack overflow's depth moves with address-space randomisation: a chain of 100 or more
  // always fails, of 98 or 99 one run in three. Bisection may end on such a lucky size, which
  // would not replay; the build keeps a margin past the edge instead.
  int runs = 0;
  const auto fails = [&](const Trace& candidate) {
    ++runs;
    const std::uint32_t size = candidate.ops.front().size;
    return size >= 100 || (size >= 98 && runs % 3 == 0);
  };
  for (int start = 0; start < 3; ++start) {
    runs = start;
    const Trace minimal = minimize_trace(parse_trace("build s chain 1000\n", "t"), fails);
    ASSERT_EQ(minimal.ops.size(), 1u);
    EXPECT_GE(minimal.ops.front().size, 100u) << "start " << start;
    EXPECT_LE(minimal.ops.front().size, 104u) << "start " << start;
  }
  // A failure that does not move is shrunk to its edge exactly (the test above).
}

TEST(Minimize, GrowsABuildWhereTheFailureStays) {
  // A stack overflow's minimal trace sits at the edge of one build's stack; grow_builds doubles
  // each build where the failure stays, the objects after it renumbered under their names.
  const Trace t = parse_trace("build s chain 6\nnew x\nlink x s_5\nunroot s\ncollect\n", "t");
  MinimizeBudget budget;
  const auto fails_up_to = [](std::uint32_t most) {
    return [most](const Trace& candidate) { return candidate.ops.front().size <= most; };
  };
  const Trace grown = grow_builds(t, fails_up_to(12), budget);
  EXPECT_EQ(to_text(grown), "build s chain 12\nnew x\nlink x s_5\nunroot s\ncollect\n");
  EXPECT_EQ(grown.ops[1].a, 12u);
  EXPECT_EQ(grown.ops[2].b, 5u);
  EXPECT_EQ(to_text(grow_builds(t, fails_up_to(11), budget)), to_text(t));
}

TEST(SelectOps, RenamesABuildsMembersAndKeepsTheirNames) {
  const Trace t = parse_trace("new a\nbuild s ring 3\nlink a s_2\nunroot s\n", "t");
  std::vector<bool> keep = {false, true, false, true};
  EXPECT_EQ(to_text(select_ops(t, keep)), "build s ring 3\nunroot s\n");
  EXPECT_EQ(show(Op::build(4, Shape::Tree, 3), Names()), "build o4 tree 3");
  Names generated;
  generated.name_build(4, 3);
  EXPECT_EQ(generated[6], "o4_2");
  EXPECT_EQ(generated[7], "o7");
}

TEST(Minimize, FindsTheSmallestTraceThatStillFails) {
  // A mutant bug buried in a long generated trace.
  const CollectorEntry mutant = *find_collector("mutant:scan-forgets-restore");
  Trace trace;
  Outcome target;
  for (std::uint64_t seed = 1;; ++seed) {
    trace = generate_trace(seed, 300);
    target = outcome(trace, mutant);
    if (target.kind != Outcome::Kind::Pass) break;
  }
  std::size_t runs = 0;
  const Trace minimal = minimize_trace(trace, [&](const Trace& candidate) {
    ++runs;
    return outcome(candidate, mutant) == target;
  });
  EXPECT_NO_THROW(check_trace(minimal));
  EXPECT_LE(minimal.ops.size(), 10u) << to_text(minimal);
  EXPECT_EQ(outcome(minimal, mutant), target);
  EXPECT_EQ(outcome(minimal, *find_collector("trial-deletion")).kind,
            Outcome::Kind::Pass);
  // 1-minimal: dropping any single op loses the failure.
  for (std::size_t i = 0; i < minimal.ops.size(); ++i) {
    std::vector<bool> keep(minimal.ops.size(), true);
    keep[i] = false;
    EXPECT_NE(outcome(select_ops(minimal, keep), mutant), target) << "op " << i;
  }
}

TEST(Minimize, ALongTraceLosesItsTailByBisectionFirst) {
  // 100,000 ops, and what "fails" is the first `freeze` (within the first few hundred ops): the
  // prefix bisection leaves a few hundred ops in 17 runs, then ddmin works on those alone.
  const Trace trace = generate_trace(3, 100'000);
  const auto freezes = [](const Trace& t) {
    return std::any_of(t.ops.begin(), t.ops.end(),
                       [](const Op& op) { return op.kind == OpKind::Freeze; });
  };
  std::size_t runs = 0;
  const Trace minimal = minimize_trace(trace, [&](const Trace& candidate) {
    ++runs;
    return freezes(candidate);
  });
  EXPECT_EQ(to_text(minimal), "freeze\n");
  EXPECT_LT(runs, 200u);
}

TEST(Minimize, StopsWhenTheBudgetIsSpentWithAnInterestingValidTrace) {
  const Trace trace = generate_trace(3, 2'000);
  MinimizeBudget spent(0.0);
  std::size_t runs = 0;
  const Trace smaller = minimize_trace(
      trace, [&](const Trace&) { return ++runs, true; }, spent);
  EXPECT_TRUE(spent.ran_out());
  EXPECT_EQ(runs, 0u);
  EXPECT_EQ(smaller.ops, trace.ops);

  MinimizeBudget unlimited;
  EXPECT_EQ(minimize_trace(trace, [](const Trace&) { return true; }, unlimited).ops.size(), 1u);
  EXPECT_FALSE(unlimited.ran_out());
}

/// Aborts at its first `link`.
struct Crashing : Collector {
  using Collector::Collector;
  const Capabilities& capabilities() const override {
    static const Capabilities c;
    return c;
  }
  void allocate(ObjectId) override {}
  void link(ObjectId, ObjectId) override { std::abort(); }
  void unlink(ObjectId, ObjectId) override {}
  void root(ObjectId) override {}
  void unroot(ObjectId) override {}
  std::size_t collect(int) override { return 0; }
  void inspect(ObjectId, ObjectView&) const override {}
  std::uint64_t collections() const override { return 0; }
  void check_invariants() const override {}
};

const CollectorEntry kCrashing{"crashing", "",
                               [](CollectorHost& l, const CollectorOptions&) {
                                 return std::make_unique<Crashing>(l);
                               },
                               false};

TEST(IsolatedRun, ReportsACrashInsteadOfDying) {
  const Outcome crash = outcome(parse_trace("new a\nlink a a\n", "t"), kCrashing);
  EXPECT_EQ(crash.kind, Outcome::Kind::Crash);
  EXPECT_EQ(describe(crash), "crash (signal 6)");
}

// Collectors replayed together share a child; when it crashes, each is replayed alone, so the
// crash is pinned to its collector and op and the others' verdicts still come out.
TEST(ReplayInChildren, ReplaysEachAloneWhenTheSharedChildCrashes) {
  const Trace trace = parse_trace("new a\nnew b\nlink a b\nunroot a\n", "t");
  const std::vector<ChildReplay> runs =
      replay_in_children(trace, {kCrashing, *find_collector("mark-sweep")}, {}, {});
  ASSERT_EQ(runs.size(), 2u);
  ASSERT_EQ(runs[0].collectors.size(), 1u);
  EXPECT_EQ(runs[0].collectors[0].name, "crashing");
  EXPECT_EQ(runs[0].run.outcome.kind, Outcome::Kind::Crash);
  EXPECT_EQ(runs[0].run.ops_started, 3u);  // during op 3, `link a b`
  ASSERT_EQ(runs[1].collectors.size(), 1u);
  EXPECT_EQ(runs[1].collectors[0].name, "mark-sweep");
  EXPECT_EQ(runs[1].run.verdicts, std::vector<std::string>{"pass"});

  // Without a crash they share one child, and each has its verdict.
  const std::vector<ChildReplay> together = replay_in_children(
      trace, {*find_collector("trial-deletion"), *find_collector("mark-sweep")}, {}, {});
  ASSERT_EQ(together.size(), 1u);
  EXPECT_EQ(together[0].run.verdicts, (std::vector<std::string>{"pass", "pass"}));
}

/// Shows the checker no reference (a violation at the first `link`), and aborts at a `link` made
/// before three objects were: a violation whose smaller traces may crash instead.
struct HidesOrAborts : Crashing {
  using Crashing::Crashing;
  void allocate(ObjectId) override { ++allocated; }
  void link(ObjectId, ObjectId) override {
    if (allocated < 3) std::abort();
  }
  int allocated = 0;
};

// A violation's candidates run one after another in one child (FailsAsViolation), which a
// candidate's crash ends: the minimization goes on in a new one, and finds what a child for
// each candidate finds.
TEST(MinimizeFailure, AViolationsCandidatesInOneChildGiveWhatAChildForEachGives) {
  const CollectorEntry hides_or_aborts{"hides-or-aborts", "",
                                       [](CollectorHost& l, const CollectorOptions&) {
                                         return std::make_unique<HidesOrAborts>(l);
                                       },
                                       false};
  const Trace trace =
      parse_trace("new a\nnew b\nnew c\nnew d\nlink a b\nlink b c\nunroot c\ncollect\n", "t");
  const Signature target = signature_of(trace, hides_or_aborts, {});
  ASSERT_EQ(target.outcome.kind, Outcome::Kind::Violation) << describe(target);
  std::size_t runs = 0;
  MinimizeBudget unlimited;
  const Trace minimal = minimize_failure(trace, hides_or_aborts, {}, target, unlimited, &runs);
  EXPECT_EQ(signature_of(minimal, hides_or_aborts, {}), target);
  // Three objects made, so that its link does not crash, then the link: "new a", "new b", "new
  // c" or "d", "link a b".
  EXPECT_EQ(minimal.ops.size(), 4u) << to_text(minimal);
  EXPECT_EQ(minimal.ops.back().kind, OpKind::Link) << to_text(minimal);
  EXPECT_GT(runs, 1u);
  const Trace each_alone = minimize_trace(trace, [&](const Trace& candidate) {
    return signature_of(candidate, hides_or_aborts, {}) == target;
  });
  EXPECT_EQ(to_text(minimal), to_text(each_alone));
}

// A signature names a crash by its op and what the sanitizer said, a violation by its detail:
// not by the numbers in it, nor by the op after which a walk found it.
TEST(Signature, NamesACrashByItsOpAndAViolationByItsDetailWithoutNumbers) {
  const Signature crash = signature_of(parse_trace("new a\nnew b\nlink a b\n", "t"), kCrashing, {});
  EXPECT_EQ(crash.outcome.kind, Outcome::Kind::Crash);
  EXPECT_EQ(crash.op, "link");
  EXPECT_EQ(describe(crash).rfind("crash (signal 6) during `link` on crashing", 0), 0u)
      << describe(crash);

  const CollectorEntry mutant = *find_collector("mutant:sweep-skips-last-object");
  const Signature small = signature_of(parse_trace("new a\nlink a a\nunroot a\ncollect\n", "t"),
                                       mutant, {});
  const Signature big = signature_of(
      parse_trace("new a\nnew b\nlink a a\nlink b b\nunroot a\nunroot b\ncollect\n", "t"),
      mutant, {});
  EXPECT_EQ(small.outcome.kind, Outcome::Kind::Violation);
  EXPECT_EQ(small.op, "");
  EXPECT_EQ(small.where.find_first_of("0123456789"), std::string::npos) << small.where;
  EXPECT_EQ(small, big) << describe(small) << "\n" << describe(big);
  const Signature other = signature_of(
      parse_trace("build a chain 8\ncollect\n", "t"),
      *find_collector("mutant:mark-stops-at-depth-4"), {});
  EXPECT_EQ(other.outcome.violation, ViolationKind::PrematureFree) << describe(other);
  EXPECT_NE(other, small);
}

/// Reads memory it has freed at its first `link`: a crash that only a sanitizer sees.
struct ReadsFreed : Crashing {
  using Crashing::Crashing;
  void link(ObjectId, ObjectId) override {
    int* volatile cell = new int(1);
    delete cell;
    read = *cell;
  }
  int read = 0;
};

// A sanitizer's crash is named by its functions, from the first crash on: the first leaves its
// symbolizer to the children after it (runners/child_process.cpp), which must name it the same.
TEST(Signature, NamesASanitizersCrashByItsFunctionsInEveryChild) {
#ifndef __SANITIZE_ADDRESS__
  GTEST_SKIP() << "built without AddressSanitizer: nothing reports the read";
#endif
  const CollectorEntry reads_freed{"reads-freed", "",
                                   [](CollectorHost& l, const CollectorOptions&) {
                                     return std::make_unique<ReadsFreed>(l);
                                   },
                                   false};
  const Trace trace = parse_trace("new a\nnew b\nlink a b\n", "t");
  const Signature first = signature_of(trace, reads_freed, {});
  EXPECT_EQ(first.outcome.kind, Outcome::Kind::Crash);
  EXPECT_EQ(first.where.rfind("heap-use-after-free in ", 0), 0u) << first.where;
  // (Its first frame: "link" as gcc's runtime names it, "...::ReadsFreed::link" as clang's.)
  const std::string frame = first.where.substr(23, first.where.find(" <") - 23);
  EXPECT_TRUE(frame == "link" || frame.ends_with("ReadsFreed::link")) << first.where;
  for (int again = 0; again < 3; ++again) {
    EXPECT_EQ(signature_of(trace, reads_freed, {}), first);
  }
}

TEST(Signature, ReadsTheKindAndFirstOwnFramesOfASanitizersReport) {
  const std::string asan =
      "AddressSanitizer:DEADLYSIGNAL\n"
      "==77==ERROR: AddressSanitizer: heap-use-after-free on address 0x6 at pc 0x7 bp 0x8\n"
      "READ of size 8 at 0x6 thread T0\n"
      "    #0 0x7f01 in __interceptor_memcpy ../../src/libsanitizer/asan_interceptors.cpp:1\n"
      "    #1 0x7f02 in PyObject_ClearWeakRefs (/lib/x86_64-linux-gnu/libpython3.11.so.1.0+0x1f)\n"
      "    #2 0x7f03  (/lib/x86_64-linux-gnu/libpython3.11.so.1.0+0x2f)\n"
      "    #3 0x7f04 in subtype_dealloc ../Objects/typeobject.c:1463\n"
      "    #4 0x7f05 in main tools/cyclefuzz/main.cpp:9\n";
  EXPECT_EQ(crash_site(asan),
            "heap-use-after-free in PyObject_ClearWeakRefs < libpython3.11.so.1.0+0x2f < "
            "subtype_dealloc");
  // clang's reports name a function with its namespaces and parameters.
  const std::string clang =
      "==9==ERROR: AddressSanitizer: SEGV on unknown address 0x000000000030\n"
      "    #0 0x7f01 in PyObject_ClearWeakRefs (/lib/libpython3.11.so.1.0+0x239140) (BuildId: 9c)\n"
      "    #1 0x55e1 in cyclefuzz::(anonymous namespace)::finalize_and_clear(_object*, bool) "
      "/work/main/collectors/cpython/cpython.cpp:225:5\n"
      "    #2 0x55e2 in std::function<int (int)>::operator()(int) const /usr/include/f.h:591:9\n";
  EXPECT_EQ(crash_site(clang), "SEGV in PyObject_ClearWeakRefs < cyclefuzz::(anonymous "
                               "namespace)::finalize_and_clear < std::function<int (int)>::"
                               "operator()");
  EXPECT_EQ(crash_site("collectors/x.cpp:12:5: runtime error: signed integer overflow: 2147483647 "
                       "+ 1 cannot be represented\n"),
            "runtime error at x.cpp:12: signed integer overflow: # + # cannot be represented");
  // A stack overflow: the function that recurs most, wherever the stack ran out; only the
  // first stack counts.
  const std::string overflow =
      "==9==ERROR: AddressSanitizer: stack-overflow on address 0x7ffd (pc 0x5 bp 0x6 sp 0x7)\n"
      "    #0 0x1 in memset ../sanitizer_common_interceptors.inc:799\n"
      "    #1 0x2 in resurrected_by_finalizer collectors/trial_deletion/trial_deletion.cpp:9\n"
      "    #2 0x3 in release collectors/mutants.cpp:40\n"
      "    #3 0x3 in release collectors/mutants.cpp:40\n"
      "    #4 0x3 in release collectors/mutants.cpp:40\n"
      "\n"
      "    #0 0x4 in other collectors/x.cpp:1\n"
      "    #1 0x4 in other collectors/x.cpp:1\n"
      "    #2 0x4 in other collectors/x.cpp:1\n"
      "    #3 0x4 in other collectors/x.cpp:1\n";
  EXPECT_EQ(crash_site(overflow), "stack-overflow in release");
  EXPECT_EQ(crash_site("Segmentation fault\n"), "");
}

}  // namespace
}  // namespace cyclefuzz
