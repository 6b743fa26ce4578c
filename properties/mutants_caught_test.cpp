// The properties catch a broken collector, and the counterexample they print is short and
// replays: the proof that a green property run means something.
#include <gtest/gtest.h>

#include "reports/report.h"
#include "properties/property_run.h"

namespace cyclefuzz::properties {
namespace {

/// Runs a trace text on one collector, reporting only violations of `kind`.
std::vector<Violation> replay(const std::string& text, const std::string& collector,
                              ViolationKind kind) {
  const Trace trace = parse_trace(text, "counterexample");
  CheckOptions checks;
  checks.reported = CheckOptions::only(kind);
  Session session({*find_collector(collector)}, property_collector_options(), checks);
  session.run(trace);
  return session.violations();
}

TEST(PropertiesCatch, ScanThatForgetsToRestoreCountsWithAShortTrace) {
  const Property property{"NoPrematureFreeAfterAnyOp",
                          CheckOptions::only(ViolationKind::PrematureFree)};
  EXPECT_FALSE(check_property(property, *find_collector("mutant:scan-forgets-restore")));

  const std::string& counterexample = last_counterexample();
  ASSERT_FALSE(counterexample.empty());
  const Trace minimal = parse_trace(counterexample, "counterexample");
  EXPECT_LE(minimal.ops.size(), 12u) << counterexample;

  // The trace replays: a premature free on the mutant, nothing on the correct collector.
  constexpr auto kPremature = ViolationKind::PrematureFree;
  EXPECT_FALSE(replay(counterexample, "mutant:scan-forgets-restore", kPremature).empty());
  EXPECT_TRUE(replay(counterexample, "trial-deletion", kPremature).empty()) << counterexample;
}

TEST(PropertiesCatch, TheSameBugAsWrongBookkeepingRightAfterTheCollection) {
  const Property property{"BookkeepingMatchesTheOracle",
                          CheckOptions::only(ViolationKind::WrongBookkeeping)};
  EXPECT_FALSE(check_property(property, *find_collector("mutant:scan-forgets-restore")));
  const Trace minimal = parse_trace(last_counterexample(), "counterexample");
  EXPECT_LE(minimal.ops.size(), 8u) << last_counterexample();
  EXPECT_EQ(minimal.ops.back().kind, OpKind::Collect) << last_counterexample();
}

TEST(PropertiesCatch, CallbackForASurvivorWithAReadableWeakReference) {
  // The counterexample names weak references as well as objects, and reads back as it printed.
  const Property property{"WeakReferencesAreClearedExactlyWhenTheirTargetsAreFreed",
                          CheckOptions::only(ViolationKind::WrongWeakReference)};
  EXPECT_FALSE(check_property(property, *find_collector("mutant:callback-for-survivor")));
  const std::string& counterexample = last_counterexample();
  const Trace minimal = parse_trace(counterexample, "counterexample");
  EXPECT_LE(minimal.ops.size(), 6u) << counterexample;
  EXPECT_NE(counterexample.find("weak w"), std::string::npos) << counterexample;
  constexpr auto kWeak = ViolationKind::WrongWeakReference;
  EXPECT_FALSE(replay(counterexample, "mutant:callback-for-survivor", kWeak).empty());
  EXPECT_TRUE(replay(counterexample, "generational", kWeak).empty()) << counterexample;
}

TEST(PropertiesCatch, CallbackOfAWeakReferenceThatIsItselfGarbage) {
  // The weak reference's holder dies in the same collection as its target: the mutant calls it
  // back all the same. The counterexample shows the holder (`in`).
  const Property property{"WeakReferencesAreClearedExactlyWhenTheirTargetsAreFreed",
                          CheckOptions::only(ViolationKind::WrongWeakReference)};
  const CollectorEntry mutant = *find_collector("mutant:callback-of-garbage-weak-reference");
  EXPECT_FALSE(check_property(property, mutant));
  const std::string& counterexample = last_counterexample();
  const Trace minimal = parse_trace(counterexample, "counterexample");
  EXPECT_LE(minimal.ops.size(), 8u) << counterexample;
  EXPECT_NE(counterexample.find(" in "), std::string::npos) << counterexample;
  constexpr auto kWeak = ViolationKind::WrongWeakReference;
  EXPECT_FALSE(replay(counterexample, mutant.name, kWeak).empty());
  EXPECT_TRUE(replay(counterexample, "mark-sweep", kWeak).empty()) << counterexample;
}

TEST(PropertiesCatch, FinalizerRunTwiceOnceItsResurrectedObjectIsGarbageAgain) {
  // The object comes back through its finalizer (a store, or a reference from itself or from
  // an object the finalizer allocates) and becomes garbage again: the mutant finalizes it again.
  const Property property{"FinalizersRunOnceAndOnlyForUnreachableObjects",
                          CheckOptions::only(ViolationKind::WrongFinalization)};
  EXPECT_FALSE(check_property(property, *find_collector("mutant:finalizer-run-twice")));
  const std::string& counterexample = last_counterexample();
  const Trace minimal = parse_trace(counterexample, "counterexample");
  EXPECT_LE(minimal.ops.size(), 8u) << counterexample;
  EXPECT_NE(counterexample.find("ran its finalizer a second time"), std::string::npos)
      << counterexample;
  constexpr auto kWrong = ViolationKind::WrongFinalization;
  EXPECT_FALSE(replay(counterexample, "mutant:finalizer-run-twice", kWrong).empty());
  EXPECT_TRUE(replay(counterexample, "generational", kWrong).empty()) << counterexample;
}

TEST(PropertiesCatch, EphemeronValueKeptAfterItsKeyIsGarbage) {
  // Marking follows an entry whatever its key: a value that only the entry of a garbage key
  // holds survives a full collection.
  const Property property{"NoLeakAfterFullCollection", CheckOptions::only(ViolationKind::Leak)};
  EXPECT_FALSE(check_property(property, *find_collector("mutant:ephemeron-value-traced-strongly")));
  const std::string& counterexample = last_counterexample();
  const Trace minimal = parse_trace(counterexample, "counterexample");
  EXPECT_LE(minimal.ops.size(), 10u) << counterexample;
  EXPECT_NE(counterexample.find("entry "), std::string::npos) << counterexample;
  constexpr auto kLeak = ViolationKind::Leak;
  EXPECT_FALSE(replay(counterexample, "mutant:ephemeron-value-traced-strongly", kLeak).empty());
  EXPECT_TRUE(replay(counterexample, "mark-sweep", kLeak).empty()) << counterexample;
}

TEST(PropertiesCatch, EphemeronWhoseKeyIsMarkedAfterItsMapIsNeverFollowed) {
  // The key is marked only after its map was scanned (through an older root, or through another
  // entry's value): a single pass over the entries frees a value the mutator still reaches. (The
  // shape takes five ops in order - the key held by references, the entry, its value dropped, a
  // collection - so CI's budget of 100 cases found it for about 7 seeds in 10, and the fixed
  // seed lost it when sets came into the distribution: three times the budget.
  // runners/generator.cpp's entry modes are what make it that likely.)
  const Property property{"NoPrematureFreeAfterAnyOp",
                          CheckOptions::only(ViolationKind::PrematureFree)};
  EXPECT_FALSE(check_property(property, *find_collector("mutant:ephemeron-single-pass"), 3));
  const std::string& counterexample = last_counterexample();
  const Trace minimal = parse_trace(counterexample, "counterexample");
  EXPECT_LE(minimal.ops.size(), 12u) << counterexample;
  EXPECT_NE(counterexample.find("entry "), std::string::npos) << counterexample;
  constexpr auto kPremature = ViolationKind::PrematureFree;
  EXPECT_FALSE(replay(counterexample, "mutant:ephemeron-single-pass", kPremature).empty());
  EXPECT_TRUE(replay(counterexample, "mark-sweep", kPremature).empty()) << counterexample;
}

}  // namespace
}  // namespace cyclefuzz::properties
