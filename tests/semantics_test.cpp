// Finalizers, resurrection and weak references: what the built-in collectors do with them, and
// that the checker catches each way of getting them wrong.
#include <gtest/gtest.h>

#include <algorithm>

#include "collectors/generational/generational.h"
#include "runners/isolated_run.h"
#include "tests/test_support.h"

namespace cyclefuzz {
namespace {

using testing::entries;
using testing::names_of;
using testing::op_at_line;
using testing::scenario;

/// Replays `trace` on `collector` with every check and every free recorded.
std::unique_ptr<Session> replay(const Trace& trace, const std::vector<CollectorEntry>& collectors) {
  CheckOptions checks;
  checks.record_frees = true;
  checks.check_invariants = true;
  auto session = std::make_unique<Session>(collectors, CollectorOptions{}, checks);
  session->run(trace);
  return session;
}

std::vector<std::string> sorted_frees(const Session& session, const Trace& trace,
                                      std::size_t collector, std::uint32_t line) {
  auto names = names_of(trace, session.frees_per_op(collector)[op_at_line(trace, line)]);
  std::sort(names.begin(), names.end());
  return names;
}

class BuiltIn : public ::testing::TestWithParam<std::string> {};

TEST_P(BuiltIn, ResurrectionKeepsWhatTheStoredObjectReachesUntilRelease) {
  const Trace trace = scenario("resurrection-keeps-what-it-reaches");
  const auto session = replay(trace, entries({GetParam()}));
  EXPECT_TRUE(session->violations().empty());
  EXPECT_EQ(sorted_frees(*session, trace, 0, 17), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(sorted_frees(*session, trace, 0, 18).empty());
  EXPECT_EQ(sorted_frees(*session, trace, 0, 20), (std::vector<std::string>{"c", "d"}));
}

TEST_P(BuiltIn, ResurrectedObjectIsFreedAfterReleaseWithoutASecondFinalizer) {
  const Trace trace = scenario("finalizer-runs-once");
  const auto session = replay(trace, entries({GetParam()}));
  EXPECT_TRUE(session->violations().empty());
  EXPECT_TRUE(sorted_frees(*session, trace, 0, 11).empty());
  EXPECT_EQ(sorted_frees(*session, trace, 0, 13), (std::vector<std::string>{"a", "b"}));
}

TEST_P(BuiltIn, WeakReferencesFollowTheirTargets) {
  for (const char* name :
       {"weak-reference-cleared-when-freed", "weak-references-cleared-before-finalizers"}) {
    const Trace trace = scenario(name);
    const auto session = replay(trace, entries({GetParam()}));
    EXPECT_TRUE(session->violations().empty()) << name;
    EXPECT_FALSE(session->collector(0).deref(0)) << name << ": the first weak reference";
  }
}

/// Whether collector 0 of `session` holds no object at all.
bool holds_nothing(const Session& session) {
  for (ObjectId x = 0; x < session.oracle().object_count(); ++x) {
    if (session.holds(0, x)) return false;
  }
  return true;
}

TEST_P(BuiltIn, ObjectAFinalizerAllocatesAndStoresResurrectsWhatItRefersTo) {
  const Trace trace = scenario("finalizer-allocates-what-resurrects-it");
  const auto session = replay(trace, entries({GetParam()}));
  EXPECT_TRUE(session->violations().empty());
  EXPECT_TRUE(sorted_frees(*session, trace, 0, 11).empty());
  EXPECT_TRUE(sorted_frees(*session, trace, 0, 12).empty());
  // (Reference counting frees x at the release, which leaves only a and b's cycle.)
  auto freed = sorted_frees(*session, trace, 0, 13);
  const auto collected = sorted_frees(*session, trace, 0, 14);
  freed.insert(freed.end(), collected.begin(), collected.end());
  std::sort(freed.begin(), freed.end());
  EXPECT_EQ(freed, (std::vector<std::string>{"a", "b", "x"}));
}

TEST_P(BuiltIn, ReferencesAFinalizerAddsFromTheGarbageAreCountedAndTheGarbageStillGoes) {
  const Trace trace = scenario("finalizer-links-garbage");
  const auto session = replay(trace, entries({GetParam()}));
  EXPECT_TRUE(session->violations().empty());
  for (std::uint32_t line : {13u, 14u}) {
    const auto freed = sorted_frees(*session, trace, 0, line);
    EXPECT_TRUE(std::find(freed.begin(), freed.end(), "live") == freed.end()) << line;
  }
  EXPECT_TRUE(holds_nothing(*session));
}

TEST_P(BuiltIn, ReferenceAFinalizerGivesItsObjectMakesACycleThatACollectionFrees) {
  const Trace trace = scenario("finalizer-self-reference-outlives-refcount");
  const auto session = replay(trace, entries({GetParam()}));
  EXPECT_TRUE(session->violations().empty());
  EXPECT_EQ(sorted_frees(*session, trace, 0, 7), (std::vector<std::string>{"a"}));
  EXPECT_TRUE(holds_nothing(*session));
}

// Map entries: ephemerons (mark-sweep) free a value with its key; the harness's strong-value maps
// (the reference-counting collectors) drop the entry, and so the value, the moment the key is
// freed - and keep a value that refers back to its key for as long as the map lives.
TEST_P(BuiltIn, MapEntriesKeepTheirValuesAsTheCollectorDeclares) {
  bool ephemerons = false;
  {
    const Trace trace = scenario("map-entry-lives-while-its-key-does");
    const auto session = replay(trace, entries({GetParam()}));
    ephemerons = session->collector(0).capabilities().map_entries == MapEntries::Ephemerons;
    EXPECT_TRUE(session->violations().empty());
    EXPECT_TRUE(sorted_frees(*session, trace, 0, 8).empty());
    const std::vector<std::string> k_and_v{"k", "v"};
    EXPECT_EQ(sorted_frees(*session, trace, 0, ephemerons ? 10 : 9), k_and_v);
    // A key that is its own value: garbage for an ephemeron; a strong-value map keeps it.
    EXPECT_EQ(sorted_frees(*session, trace, 0, 14),
              ephemerons ? std::vector<std::string>{"w"} : std::vector<std::string>{});
  }
  {
    const Trace trace = scenario("map-value-refers-to-its-key");
    const auto session = replay(trace, entries({GetParam()}));
    EXPECT_TRUE(session->violations().empty());
    const std::vector<std::string> k_and_v{"k", "v"};
    EXPECT_EQ(sorted_frees(*session, trace, 0, 11),
              ephemerons ? k_and_v : std::vector<std::string>{});
    // The map goes: reference counting frees it, and with its entry what it kept.
    const std::vector<std::string> all{"k", "m", "v"};
    const std::vector<std::string> map{"m"};
    EXPECT_EQ(sorted_frees(*session, trace, 0, ephemerons ? 13 : 12), ephemerons ? map : all);
  }
  for (const char* name : {"map-key-marked-after-its-map", "map-key-held-by-another-map"}) {
    const auto session = replay(scenario(name), entries({GetParam()}));
    EXPECT_TRUE(session->violations().empty()) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Collectors, BuiltIn,
                         ::testing::ValuesIn(testing::builtin_collector_names()),
                         testing::collector_test_name);

/// The first violation of the only collector, or nullptr.
const Violation* first(const Session& session) { return session.first_violation(0); }

TEST(Mutants, FinalizerRunTwiceIsWrongFinalizationAtTheSecondCollection) {
  const Trace trace = scenario("finalizer-runs-once");
  const auto session = replay(trace, entries({"mutant:finalizer-run-twice"}));
  ASSERT_NE(first(*session), nullptr);
  EXPECT_EQ(first(*session)->kind, ViolationKind::WrongFinalization);
  EXPECT_EQ(first(*session)->op_index, op_at_line(trace, 13));
  EXPECT_EQ(first(*session)->detail, "ran its finalizer a second time");
}

TEST(Mutants, FinalizerReferencesCountedTwiceIsWrongBookkeeping) {
  const Trace trace = scenario("finalizer-links-garbage");
  const auto session = replay(trace, entries({"mutant:finalizer-references-counted-twice"}));
  ASSERT_NE(first(*session), nullptr);
  EXPECT_EQ(first(*session)->kind, ViolationKind::WrongBookkeeping);
  EXPECT_EQ(first(*session)->op_index, op_at_line(trace, 13));
}

TEST(Mutants, ResurrectedChildrenFreedIsCaught) {
  const Trace trace = scenario("resurrection-keeps-what-it-reaches");
  const auto session = replay(trace, entries({"mutant:resurrected-children-freed"}));
  ASSERT_NE(first(*session), nullptr);
  EXPECT_EQ(first(*session)->kind, ViolationKind::PrematureFree);
  EXPECT_EQ(names_of(trace, first(*session)->objects), (std::vector<std::string>{"d"}));
}

TEST(Mutants, WeakReferencesClearedAfterFinalizersAreCaught) {
  const Trace trace = scenario("weak-references-cleared-before-finalizers");
  const auto session = replay(trace, entries({"mutant:weakrefs-cleared-after-finalizers"}));
  ASSERT_NE(first(*session), nullptr);
  EXPECT_EQ(first(*session)->kind, ViolationKind::WrongWeakReference);
  EXPECT_EQ(first(*session)->op_index, op_at_line(trace, 15));
}

TEST(Mutants, CallbackForSurvivorIsCaught) {
  const Trace trace = scenario("weak-reference-cleared-when-freed");
  const auto session = replay(trace, entries({"mutant:callback-for-survivor"}));
  ASSERT_NE(first(*session), nullptr);
  EXPECT_EQ(first(*session)->kind, ViolationKind::WrongWeakReference);
  EXPECT_EQ(first(*session)->op_index, op_at_line(trace, 9));
  EXPECT_EQ(first(*session)->detail,
            "cleared a weak reference to it while the program could still reach it");
}

TEST(Mutants, EphemeronSinglePassFreesAValueWhoseKeyWasMarkedAfterItsMap) {
  const Trace trace = scenario("map-key-marked-after-its-map");
  const auto session = replay(trace, entries({"mutant:ephemeron-single-pass"}));
  ASSERT_NE(first(*session), nullptr);
  EXPECT_EQ(first(*session)->kind, ViolationKind::PrematureFree);
  EXPECT_EQ(first(*session)->op_index, op_at_line(trace, 12));
  EXPECT_EQ(names_of(trace, first(*session)->objects), (std::vector<std::string>{"v"}));
  EXPECT_EQ(names_of(trace, first(*session)->path), (std::vector<std::string>{"m", "v"}));
}

TEST(Mutants, EphemeronValueTracedStronglyKeepsAValueWhoseKeyIsGarbage) {
  const Trace trace = scenario("map-value-refers-to-its-key");
  const auto session = replay(trace, entries({"mutant:ephemeron-value-traced-strongly"}));
  ASSERT_NE(first(*session), nullptr);
  EXPECT_EQ(first(*session)->op_index, op_at_line(trace, 11));
  const auto& vs = session->violations();
  const auto leak = std::find_if(vs.begin(), vs.end(),
                                 [](const Violation& v) { return v.kind == ViolationKind::Leak; });
  ASSERT_NE(leak, vs.end());
  EXPECT_EQ(names_of(trace, leak->objects), (std::vector<std::string>{"k", "v"}));
}

TEST(Mutants, ACallbackOfAWeakReferenceThatGarbageHoldsIsCaught) {
  const Trace trace = scenario("weak-reference-held-by-garbage");
  for (const char* mutant :
       {"mutant:callback-of-garbage-weak-reference", "mutant:callback-of-trash-weakref"}) {
    const auto session = replay(trace, entries({mutant}));
    ASSERT_NE(first(*session), nullptr) << mutant;
    EXPECT_EQ(first(*session)->kind, ViolationKind::WrongWeakReference) << mutant;
    EXPECT_EQ(first(*session)->op_index, op_at_line(trace, 14)) << mutant;
    EXPECT_EQ(first(*session)->detail,
              "ran the callback of a weak reference that is itself garbage of the collection (its "
              "holder is): a callback must never see the garbage it belongs to")
        << mutant;
  }
}

TEST(Mutants, WeakReferencesThatGarbageHoldsLeftUnclearedForTheFinalizersAreCaught) {
  const Trace trace = scenario("weak-reference-held-by-garbage");
  const auto session = replay(trace, entries({"mutant:trash-weakrefs-not-cleared"}));
  ASSERT_NE(first(*session), nullptr);
  EXPECT_EQ(first(*session)->kind, ViolationKind::WrongWeakReference);
  EXPECT_EQ(first(*session)->op_index, op_at_line(trace, 14));
  EXPECT_EQ(names_of(trace, first(*session)->objects), (std::vector<std::string>{"t"}));
}

TEST(Mutants, AWeakReferenceClearedAfterItsHolderWasFreedIsCaught) {
  const Trace trace = scenario("weak-reference-goes-with-its-holder");
  const auto session = replay(trace, entries({"mutant:weak-reference-outlives-holder"}));
  ASSERT_NE(first(*session), nullptr);
  EXPECT_EQ(first(*session)->kind, ViolationKind::WrongWeakReference);
  EXPECT_EQ(first(*session)->op_index, op_at_line(trace, 14));
  EXPECT_EQ(first(*session)->detail,
            "cleared a weak reference after freeing the object that held it");
}

TEST(Mutants, AFinalizersDecrementThatFreesGarbageTheCollectionHoldsIsCaught) {
  // Either a crash (the collection walks the freed object: a use after free) or, where the freed
  // memory still reads as before, a wrong finalization or a double free; never a pass.
  const Trace trace = scenario("finalizer-drops-a-reference");
  for (const char* mutant :
       {"mutant:finalizer-decrement-frees-garbage", "mutant:finalizer-walks-freed-garbage"}) {
    const std::vector<ChildReplay> runs =
        replay_in_children(trace, entries({mutant}), {}, CheckOptions{});
    ASSERT_EQ(runs.size(), 1u);
    EXPECT_NE(runs[0].run.outcome.kind, Outcome::Kind::Pass) << mutant;
  }
}

TEST(Mutants, AFinalizerThatDerefsAnUnclearedWeakReferenceResurrectsGarbage) {
  // The weak references are cleared after the finalizers: h's finalizer finds t through w and
  // stores it, and the late clear of w is then a clear of a weak reference to a live object.
  const Trace trace = scenario("finalizer-derefs-a-weak-reference");
  const auto session = replay(trace, entries({"mutant:weakrefs-cleared-after-finalizers"}));
  ASSERT_NE(first(*session), nullptr);
  EXPECT_EQ(first(*session)->kind, ViolationKind::WrongWeakReference);
  EXPECT_EQ(first(*session)->op_index, op_at_line(trace, 13));
  EXPECT_EQ(names_of(trace, first(*session)->objects), (std::vector<std::string>{"t"}));
}

TEST(Mutants, ATupleUntrackedWithAListThatCanBeTrackedAgainIsCaught) {
  const Trace trace = scenario("tuple-holding-a-list-stays-tracked");
  const auto session = replay(trace, entries({"mutant:tuple-untracked-with-list-item"}));
  ASSERT_NE(first(*session), nullptr);
  EXPECT_EQ(first(*session)->kind, ViolationKind::WrongBookkeeping);
  EXPECT_EQ(first(*session)->op_index, op_at_line(trace, 8));
  EXPECT_EQ(names_of(trace, first(*session)->objects), (std::vector<std::string>{"t"}));
}

TEST(Mutants, RecordsTakenForAcyclicLeakTheirCycles) {
  // The collection finds nothing: the record cycle, and the acyclic objects it holds, stay.
  const Trace trace = scenario("kinds-cycle-alike");
  const auto session = replay(trace, entries({"mutant:record-treated-as-acyclic"}));
  ASSERT_NE(first(*session), nullptr);
  EXPECT_EQ(first(*session)->kind, ViolationKind::WrongCount);
  EXPECT_EQ(first(*session)->op_index, op_at_line(trace, 17));
  EXPECT_EQ(first(*session)->detail, "collect returned 0 but 4 objects it held were unreachable");
}

TEST(Mutants, WhatACallbackAllocatesDuringACollectionIsNotItsGarbage) {
  const Trace trace = scenario("callback-allocates-during-a-collection");
  const auto session = replay(trace, entries({"mutant:allocates-white-during-collection"}));
  ASSERT_NE(first(*session), nullptr);
  EXPECT_EQ(first(*session)->kind, ViolationKind::PrematureFree);
  EXPECT_EQ(first(*session)->op_index, op_at_line(trace, 11));
  EXPECT_EQ(names_of(trace, first(*session)->objects), (std::vector<std::string>{"x", "y"}));
}

TEST(Mutants, AWeakReferenceAFinalizerTookToTheGarbageIsClearedWhenItIsFreed) {
  const Trace trace = scenario("finalizer-takes-a-weak-reference-to-garbage");
  const auto session = replay(trace, entries({"mutant:weak-reference-taken-meanwhile-kept"}));
  ASSERT_NE(first(*session), nullptr);
  EXPECT_EQ(first(*session)->kind, ViolationKind::WrongWeakReference);
  EXPECT_EQ(first(*session)->op_index, op_at_line(trace, 12));
  EXPECT_EQ(first(*session)->detail, "freed, but a weak reference still points to it");
  EXPECT_EQ(names_of(trace, first(*session)->objects), (std::vector<std::string>{"b"}));
}

// ---- planted faults the mutants do not cover ------------------------------------------------

/// Forgets finalizers: objects that have one are freed without it.
class IgnoresFinalizers final : public Generational {
 public:
  using Generational::Generational;
  void set_finalizer(ObjectId) override {}
};

/// Forgets weak references: deref never finds the target, nothing is ever cleared.
class IgnoresWeakReferences final : public Generational {
 public:
  using Generational::Generational;
  void weak_ref(WeakId, ObjectId, bool) override {}
};

/// Runs a finalizer for every object it allocates, reachable as it is.
class FinalizesOnAllocation final : public Generational {
 public:
  using Generational::Generational;
  void allocate(ObjectId id) override {
    Generational::allocate(id);
    run_finalizer(id);
  }
};

template <class Planted>
std::vector<CollectorEntry> planted(const char* name) {
  return {{name, "planted fault",
           [](CollectorHost& host, const CollectorOptions& options) -> std::unique_ptr<Collector> {
             return std::make_unique<Planted>(host, options);
           },
           false}};
}

TEST(Checker, ObjectFreedWithoutItsFinalizerIsWrongFinalization) {
  const Trace trace = parse_trace("new a\nfinalizer a\nunroot a\n", "t.trace");
  const auto session = replay(trace, planted<IgnoresFinalizers>("ignores-finalizers"));
  ASSERT_NE(first(*session), nullptr);
  EXPECT_EQ(first(*session)->kind, ViolationKind::WrongFinalization);
  EXPECT_EQ(first(*session)->detail, "freed without its finalizer running");
}

TEST(Checker, FinalizerOfAReachableObjectIsWrongFinalization) {
  const Trace trace = parse_trace("new a\nfinalizer a\nnew b\n", "t.trace");
  const auto session = replay(trace, planted<FinalizesOnAllocation>("finalizes-on-allocation"));
  ASSERT_NE(first(*session), nullptr);
  EXPECT_EQ(first(*session)->kind, ViolationKind::WrongFinalization);
  EXPECT_EQ(first(*session)->op_index, 0u);  // a has no finalizer yet: "does not have"
  EXPECT_EQ(first(*session)->detail, "ran a finalizer the object does not have");
}

TEST(Checker, DerefOfALiveTargetThatFindsNothingIsWrongWeakReference) {
  const Trace trace = parse_trace("new a\nweak w a\nderef w\n", "t.trace");
  const auto session = replay(trace, planted<IgnoresWeakReferences>("ignores-weak"));
  ASSERT_NE(first(*session), nullptr);
  EXPECT_EQ(first(*session)->kind, ViolationKind::WrongWeakReference);
  EXPECT_EQ(first(*session)->op_index, 2u);
  EXPECT_EQ(first(*session)->weak, (std::vector<WeakId>{0}));
}

TEST(Checker, WeakReferenceLeftPointingAtAFreedObjectIsCaught) {
  const Trace trace = parse_trace("new a\nweak w a\nunroot a\n", "t.trace");
  const auto session = replay(trace, planted<IgnoresWeakReferences>("ignores-weak"));
  ASSERT_NE(first(*session), nullptr);
  EXPECT_EQ(first(*session)->kind, ViolationKind::WrongWeakReference);
  EXPECT_EQ(first(*session)->detail, "freed, but a weak reference still points to it");
}

TEST(Checker, ListOfResurrectedObjectsCountsAsExternalReferences) {
  // a resurrects itself: the collector's count for a is then one, the list's reference.
  const Trace trace = parse_trace("new a\nlink a a\nfinalizer a resurrect\nunroot a\ncollect\n",
                                  "t.trace");
  const auto session = replay(trace, entries({"generational"}));
  EXPECT_TRUE(session->violations().empty());
  ObjectView view;
  session->collector(0).inspect(0, view);
  EXPECT_EQ(view.count, 2u);  // the list's reference and its own
}

}  // namespace
}  // namespace cyclefuzz
