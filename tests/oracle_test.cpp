// The oracle: reachability checked by hand on small heaps with multi-edges, self-loops and
// doubly rooted objects, and the questions the checks ask of it.
#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <random>
#include <tuple>

#include "runners/generator.h"
#include "checker/object_set.h"
#include "oracle/oracle.h"
#include "language/trace.h"

namespace cyclefuzz {
namespace {

/// Applies a trace's ops to a fresh oracle.
struct Heap {
  explicit Heap(const std::string& text) : trace(parse_trace(text, "heap")) {
    for (const Op& op : trace.ops) oracle.apply(op);
  }
  ObjectId id(const std::string& name) const {
    for (ObjectId x = 0; x < trace.names.size(); ++x) {
      if (trace.names[x] == name) return x;
    }
    throw std::out_of_range(name);
  }
  bool reachable(const std::string& name) const { return oracle.reachable_from_roots(id(name)); }
  void apply(const Op& op) { oracle.apply(op); }
  Trace trace;
  Oracle oracle;
};

std::vector<ObjectId> sorted(std::vector<ObjectId> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST(Oracle, NewObjectIsRootedAndReachable) {
  Heap h("new a\n");
  EXPECT_TRUE(h.reachable("a"));
  EXPECT_EQ(h.oracle.external_references(0), 1u);
  EXPECT_EQ(h.oracle.reachable_count(), 1u);
}

TEST(Oracle, MultiEdgeKeepsTargetReachableUntilTheLastReferenceGoes) {
  Heap h("new a\nnew b\nlink a b\nlink a b\nunroot b\n");
  EXPECT_EQ(h.oracle.references(0, 1), 2u);
  h.apply(Op::unlink(0, 1));
  EXPECT_TRUE(h.reachable("b"));
  EXPECT_EQ(h.oracle.references(0, 1), 1u);
  h.apply(Op::unlink(0, 1));
  EXPECT_FALSE(h.reachable("b"));
  EXPECT_EQ(h.oracle.newly_unreachable(), std::vector<ObjectId>{1});
}

TEST(Oracle, SelfLoopDoesNotKeepAnObjectReachable) {
  Heap h("new a\nlink a a\nlink a a\n");
  h.apply(Op::unroot(0));
  EXPECT_FALSE(h.reachable("a"));
  EXPECT_EQ(h.oracle.newly_unreachable(), std::vector<ObjectId>{0});
}

TEST(Oracle, DoublyRootedObjectStaysReachableUntilBothReferencesGo) {
  Heap h("new a\nroot a\nnew b\nlink a b\nunroot b\n");
  h.apply(Op::unroot(0));
  EXPECT_TRUE(h.reachable("a"));
  EXPECT_TRUE(h.reachable("b"));
  EXPECT_TRUE(h.oracle.newly_unreachable().empty());
  h.apply(Op::unroot(0));
  EXPECT_FALSE(h.reachable("a"));
  EXPECT_FALSE(h.reachable("b"));
  EXPECT_EQ(sorted(h.oracle.newly_unreachable()), (std::vector<ObjectId>{0, 1}));
}

TEST(Oracle, LosingAReferenceOnlyKillsWhatNoOtherPathReaches) {
  // a -> b -> c -> d, and e -> c; then drop a -> b: b dies, c and d live on through e.
  Heap h(
      "new a\nnew b\nnew c\nnew d\nnew e\n"
      "link a b\nlink b c\nlink c d\nlink e c\n"
      "unroot b\nunroot c\nunroot d\n");
  h.apply(Op::unlink(0, 1));
  EXPECT_FALSE(h.reachable("b"));
  EXPECT_TRUE(h.reachable("c"));
  EXPECT_TRUE(h.reachable("d"));
  EXPECT_EQ(h.oracle.newly_unreachable(), std::vector<ObjectId>{1});
  h.apply(Op::unroot(4));  // e goes, and c, d with it
  EXPECT_EQ(sorted(h.oracle.newly_unreachable()), (std::vector<ObjectId>{2, 3, 4}));
  EXPECT_EQ(h.oracle.reachable_count(), 1u);
}

TEST(Oracle, CycleReachableOnlyThroughItselfDies) {
  // a -> b <-> c; dropping a -> b must not be saved by c -> b.
  Heap h("new a\nnew b\nnew c\nlink a b\nlink b c\nlink c b\nunroot b\nunroot c\n");
  h.apply(Op::unlink(0, 1));
  EXPECT_FALSE(h.reachable("b"));
  EXPECT_FALSE(h.reachable("c"));
}

TEST(Oracle, ObjectWhoseSupportGoesStaysReachableThroughAnotherReferrer) {
  // b is first supported by a (the only referrer when b loses its external reference), then c
  // refers to it too; dropping a -> b must leave b reachable through c, and dropping c -> b then
  // must kill it.
  Heap h("new a\nnew b\nnew c\nlink a b\nunroot b\nlink c b\n");
  h.apply(Op::unlink(0, 1));
  EXPECT_TRUE(h.reachable("b"));
  EXPECT_TRUE(h.oracle.newly_unreachable().empty());
  h.apply(Op::unlink(2, 1));
  EXPECT_FALSE(h.reachable("b"));
  EXPECT_EQ(h.oracle.newly_unreachable(), std::vector<ObjectId>{1});
}

TEST(Oracle, RootedObjectBelowALostOneKeepsWhatHangsOffIt) {
  // a -> b -> c -> d with b rooted again after it was supported by a; a goes: b, c, d live on,
  // and once b goes too, they die.
  Heap h("new a\nnew b\nnew c\nnew d\nlink a b\nlink b c\nlink c d\n"
         "unroot b\nunroot c\nunroot d\nroot b\n");
  h.apply(Op::unroot(0));
  EXPECT_EQ(h.oracle.newly_unreachable(), std::vector<ObjectId>{0});
  EXPECT_TRUE(h.reachable("d"));
  h.apply(Op::unroot(1));
  EXPECT_EQ(h.oracle.newly_unreachable(), (std::vector<ObjectId>{1, 2, 3}));
}

/// The definition of reachable, restated as naively as it can be: the rooted objects, then, until
/// nothing changes, the targets of the mutator's references from reachable objects - of a map's
/// entry only once its key is reachable too.
std::vector<ObjectId> reachable_by_definition(const Oracle& oracle) {
  std::vector<char> in(oracle.object_count(), 0);
  for (ObjectId x : oracle.rooted_objects()) in[x] = 1;
  const Oracle::Graph& g = oracle.graph();
  for (bool grew = true; grew;) {
    grew = false;
    for (auto [e, end] = boost::edges(g); e != end; ++e) {
      const auto from = boost::source(*e, g);
      const auto to = boost::target(*e, g);
      const ObjectId key = g[*e].key;
      if (g[*e].owner != kMutatorView || !in[from] || in[to]) continue;
      if (key != Oracle::kNoKey && !in[key]) continue;
      in[to] = 1;
      grew = true;
    }
  }
  std::vector<ObjectId> out;
  for (ObjectId x = 0; x < in.size(); ++x) {
    if (in[x]) out.push_back(x);
  }
  return out;
}

/// After each op: the incremental bookkeeping against the definition, and what the op made
/// unreachable against the difference.
void expect_reachable_by_definition(const Oracle& oracle, std::vector<ObjectId>& before,
                                    const std::string& where) {
  std::vector<ObjectId> searched = reachable_by_definition(oracle);
  ASSERT_EQ(sorted(oracle.reachable_objects()), searched) << where;
  for (ObjectId x = 0; x < oracle.object_count(); ++x) {
    ASSERT_EQ(oracle.reachable_from_roots(x),
              std::binary_search(searched.begin(), searched.end(), x));
  }
  std::vector<ObjectId> lost;
  std::set_difference(before.begin(), before.end(), searched.begin(), searched.end(),
                      std::back_inserter(lost));
  ASSERT_EQ(sorted(oracle.newly_unreachable()), lost) << where;
  before = std::move(searched);
}

// The incremental bookkeeping against the definition, after every op of generated traces.
TEST(Oracle, ReachesIsWhetherDescendantsHoldTheObject) {
  Heap h("new a\nnew b\nnew c\nnew d\nlink a b\nlink b c\nlink c a\nlink d a\n");
  const auto all = [](ObjectId) { return true; };
  const auto not_b = [&](ObjectId x) { return x != h.id("b"); };
  for (const auto& [from, to, through, expected] :
       std::vector<std::tuple<std::string, std::string, AlivePredicate, bool>>{
           {"a", "c", all, true},      {"c", "b", all, true},   {"a", "d", all, false},
           {"a", "a", all, true},      {"a", "c", not_b, false}, {"d", "a", not_b, true},
           {"b", "b", not_b, false}}) {
    const ObjectId source[] = {h.id(from)};
    const std::vector<ObjectId> found = h.oracle.descendants(source, through);
    EXPECT_EQ(std::find(found.begin(), found.end(), h.id(to)) != found.end(), expected);
    EXPECT_EQ(h.oracle.reaches(h.id(from), h.id(to), through, kMutatorView), expected)
        << from << " -> " << to;
  }
}

TEST(Oracle, ReachableIsWhatASearchFromTheRootsFindsAfterEveryGeneratedOp) {
  for (std::uint64_t seed = 1; seed <= 30; ++seed) {
    SeededChoices choices(seed);
    Oracle oracle;
    std::vector<ObjectId> before;
    for (int i = 0; i < 1500; ++i) {
      const Op op = random_op(oracle, choices);
      oracle.apply(op);
      expect_reachable_by_definition(oracle, before,
                                     "seed " + std::to_string(seed) + " op " + std::to_string(i));
      if (HasFatalFailure()) return;
    }
  }
}

// Heaps dense in map entries, whose support runs through keys, values that refer back to their
// keys and chains of maps: ops drawn uniformly among the valid ones on a few objects.
TEST(Oracle, ReachableWithMapEntriesIsTheEphemeronFixpointAfterEveryOp) {
  std::mt19937 random(7);
  const auto pick = [&](std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(random);
  };
  for (int trace = 0; trace < 300; ++trace) {
    Oracle oracle;
    std::vector<ObjectId> before;
    for (int i = 0; i < 120; ++i) {
      const std::vector<ObjectId>& live = oracle.reachable_objects();
      const auto any = [&] { return live[pick(live.size())]; };
      Op op;
      switch (live.empty() ? 0 : pick(8)) {
        case 0: op = Op::make_new(static_cast<ObjectId>(oracle.object_count())); break;
        case 1: op = Op::link(any(), any()); break;
        case 2: {
          const ObjectId a = any();
          const std::vector<ObjectId> to = oracle.referents(a);
          if (to.empty()) continue;
          op = Op::unlink(a, to[pick(to.size())]);
          break;
        }
        case 3: op = Op::root(any()); break;
        case 4: case 5: op = Op::unroot(any()); break;
        case 6: op = Op::entry(any(), any(), any()); break;
        case 7: {
          const ObjectId m = any();
          std::vector<ObjectId> keys;
          oracle.for_each_entry(m, [&](ObjectId k, ObjectId) { keys.push_back(k); });
          if (keys.empty()) continue;
          op = Op::unentry(m, keys[pick(keys.size())]);
          break;
        }
      }
      if (oracle.refuse(op)) continue;
      oracle.apply(op);
      expect_reachable_by_definition(
          oracle, before, "trace " + std::to_string(trace) + " op " + std::to_string(i) + ": " +
                              show(op, Names()));
      if (HasFatalFailure()) return;
    }
  }
}

TEST(Oracle, AnEntryKeepsItsValueWhileBothItsMapAndItsKeyAreReachable) {
  Heap h("new m\nnew k\nnew v\nentry m k v\nunroot v\n");
  EXPECT_TRUE(h.reachable("v"));
  h.apply(Op::unroot(h.id("k")));
  EXPECT_FALSE(h.reachable("v"));
  EXPECT_EQ(sorted(h.oracle.newly_unreachable()), (std::vector<ObjectId>{1, 2}));
  // A value that refers to its own key does not keep it: both died together.
  Heap cycle("new m\nnew k\nnew v\nlink v k\nentry m k v\nunroot v\nunroot k\n");
  EXPECT_FALSE(cycle.reachable("k"));
  EXPECT_FALSE(cycle.reachable("v"));
  // A key reachable only through another map's value keeps the chain alive, then lets it go.
  Heap chain("new m\nnew k1\nnew k2\nnew v\nentry m k1 k2\nentry m k2 v\nunroot k2\nunroot v\n");
  EXPECT_TRUE(chain.reachable("v"));
  chain.apply(Op::unentry(chain.id("m"), chain.id("k1")));
  EXPECT_FALSE(chain.reachable("k2"));
  EXPECT_FALSE(chain.reachable("v"));
  EXPECT_EQ(chain.oracle.refuse(Op::unentry(0, 2))->reason, Refusal::Reason::Unreachable);
  EXPECT_EQ(chain.oracle.refuse(Op::unentry(0, 1))->reason, Refusal::Reason::NoEntry);
}

TEST(Oracle, RefusesWhatTheMutatorCannotDo) {
  Heap h("new a\nnew b\nunroot b\n");
  using R = Refusal::Reason;
  EXPECT_EQ(h.oracle.refuse(Op::link(0, 1))->reason, R::Unreachable);
  EXPECT_EQ(h.oracle.refuse(Op::unlink(0, 0))->reason, R::MissingEdge);
  EXPECT_EQ(h.oracle.refuse(Op::unroot(1))->reason, R::NoReference);
  EXPECT_EQ(h.oracle.refuse(Op::root(7))->reason, R::UnknownObject);
  EXPECT_EQ(h.oracle.refuse(Op::make_new(1))->reason, R::NotFresh);
  EXPECT_EQ(h.oracle.refuse(Op::collect(3))->reason, R::BadGeneration);
  EXPECT_FALSE(h.oracle.refuse(Op::make_new(2)));
  EXPECT_FALSE(h.oracle.refuse(Op::link(0, 0)));
}

TEST(Oracle, PathFromRootsIsShortest) {
  Heap h("new a\nnew b\nnew c\nnew d\nlink a b\nlink b c\nlink c d\nlink a d\n"
         "unroot b\nunroot c\nunroot d\n");
  EXPECT_EQ(h.oracle.path_from_roots(3), (std::vector<ObjectId>{0, 3}));
  EXPECT_EQ(h.oracle.path_from_roots(2), (std::vector<ObjectId>{0, 1, 2}));
  EXPECT_EQ(h.oracle.path_from_roots(0), (std::vector<ObjectId>{0}));
}

TEST(Oracle, UnheldGarbageIsWhatReferenceCountingWouldFree) {
  // Garbage: the cycle a <-> b holds c; d -> e is acyclic garbage.
  Heap h("new a\nnew b\nnew c\nnew d\nnew e\n"
         "link a b\nlink b a\nlink b c\nlink d e\n"
         "unroot a\nunroot b\nunroot c\nunroot e\nunroot d\n");
  const auto everything = [](ObjectId) { return true; };
  const std::vector<ObjectId> all = {0, 1, 2, 3, 4};
  EXPECT_EQ(sorted(h.oracle.unheld_garbage(all, everything)), (std::vector<ObjectId>{3, 4}));
  // Once a collector has freed the cycle, c is held by nothing.
  const auto without_cycle = [](ObjectId x) { return x > 1; };
  const std::vector<ObjectId> c = {2};
  EXPECT_EQ(h.oracle.unheld_garbage(c, without_cycle), std::vector<ObjectId>{2});
}

TEST(Oracle, AnEntryOfALiveMapHoldsItsValueUntilTheCollectorFreesItsKey) {
  // m lives; its entry k -> v keeps v from reference counting until k is freed (a collector's
  // view: the mutator's sees no entry whose key it no longer reaches).
  Heap h("new m\nnew k\nnew v\nentry m k v\nunroot v\nunroot k\n");
  const auto garbage = [](ObjectId x) { return x > 0; };
  const std::vector<ObjectId> both = {1, 2};
  const HeapView view = 0;
  EXPECT_EQ(h.oracle.unheld_garbage(both, garbage, view), std::vector<ObjectId>{1});
  h.oracle.key_freed(view, 1);
  const auto v_only = [](ObjectId x) { return x == 2; };
  EXPECT_EQ(h.oracle.unheld_garbage(both, v_only, view), std::vector<ObjectId>{2});
}

TEST(Oracle, CycleHoldingFindsTheCycleAndThePathToTheObject) {
  Heap h("new a\nnew b\nnew c\nnew d\nlink a b\nlink b c\nlink c a\nlink b d\n"
         "unroot a\nunroot b\nunroot c\nunroot d\n");
  const auto everything = [](ObjectId) { return true; };
  const auto held = h.oracle.cycle_holding(3, everything);
  ASSERT_EQ(held.cycle.size(), 4u);
  EXPECT_EQ(held.cycle.front(), held.cycle.back());
  EXPECT_EQ(sorted({held.cycle[0], held.cycle[1], held.cycle[2]}),
            (std::vector<ObjectId>{0, 1, 2}));
  EXPECT_EQ(held.path, (std::vector<ObjectId>{1, 3}));
  const auto self = h.oracle.cycle_holding(0, everything);
  EXPECT_EQ(self.path, std::vector<ObjectId>{0});
}

TEST(Oracle, CycleHoldingFindsSelfLoops) {
  Heap h("new a\nnew b\nlink a a\nlink a b\nunroot b\nunroot a\n");
  const auto held = h.oracle.cycle_holding(1, [](ObjectId) { return true; });
  EXPECT_EQ(held.cycle, (std::vector<ObjectId>{0, 0}));
  EXPECT_EQ(held.path, (std::vector<ObjectId>{0, 1}));
}

TEST(ObjectSet, ClearForgetsEveryMemberAndAssignCopiesThemInOrder) {
  ObjectSet set;
  EXPECT_FALSE(set.contains(0));
  set.insert(5);
  set.insert(70000);  // grows as it goes
  set.insert(5);      // once only
  EXPECT_TRUE(set.contains(5));
  EXPECT_TRUE(set.contains(70000));
  EXPECT_FALSE(set.contains(6));
  EXPECT_FALSE(set.contains(1000000));
  EXPECT_EQ(std::vector<ObjectId>(set.members().begin(), set.members().end()),
            (std::vector<ObjectId>{5, 70000}));

  ObjectSet copy;
  copy.insert(9);
  copy.assign(set);
  EXPECT_FALSE(copy.contains(9));
  EXPECT_TRUE(copy.contains(70000));
  EXPECT_EQ(copy.members().size(), 2u);

  set.clear();
  EXPECT_TRUE(set.empty());
  EXPECT_FALSE(set.contains(5));
  EXPECT_FALSE(set.contains(70000));
  set.insert(70000);
  EXPECT_TRUE(set.contains(70000));
  EXPECT_FALSE(set.contains(5));
  EXPECT_TRUE(copy.contains(5));  // a copy, not a view
}

}  // namespace
}  // namespace cyclefuzz
