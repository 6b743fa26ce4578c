// The trace language: every form parses, show() reads back, every broken rule names its line.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <map>
#include <set>

#include "runners/generator.h"
#include "language/trace.h"

namespace cyclefuzz {
namespace {

const std::string kFinalizerUsage =
    "finalizer NAME [STEP...], each STEP one of: new NAME, link FROM TO, resurrect [NAME], "
    "collect, unlink FROM TO, deref WEAK, release [NAME], finalizer NAME, weak WEAK NAME "
    "[callback] in HOLDER, entry MAP KEY VALUE, unentry MAP KEY";

/// The error a text gives, as "line: problem", or "" if it parses.
std::string error_of(const std::string& text, TraceLimits limits = {}) {
  try {
    parse_trace(text, "t.trace", limits);
  } catch (const InvalidTrace& e) {
    EXPECT_EQ(e.file(), "t.trace");
    return std::to_string(e.line()) + ": " + e.problem();
  }
  return "";
}

TEST(TraceParser, ReadsEveryOperation) {
  const Trace t = parse_trace(
      "# a comment\n"
      "new a\n"
      "\n"
      "new b_2   # trailing comment\n"
      "link a b_2\n"
      "  link\tb_2 a\n"
      "root b_2\n"
      "unroot b_2\n"
      "unlink a b_2\n"
      "collect\n"
      "collect 0\n"
      "collect 1\n"
      "unroot a\n",
      "t.trace");
  const std::vector<Op> expected = {Op::make_new(0), Op::make_new(1), Op::link(0, 1),
                                    Op::link(1, 0),  Op::root(1),     Op::unroot(1),
                                    Op::unlink(0, 1), Op::collect(),  Op::collect(0),
                                    Op::collect(1),  Op::unroot(0)};
  EXPECT_EQ(t.ops, expected);
  EXPECT_EQ(t.lines, (std::vector<std::uint32_t>{2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}));
  EXPECT_EQ(t.names[1], "b_2");
}

TEST(TraceParser, ShowPrintsTheLineTheParserReadsBack) {
  const Trace generated = generate_trace(7, 500);
  const Trace reread = parse_trace(to_text(generated), "round-trip");
  EXPECT_EQ(reread.ops, generated.ops);
  EXPECT_EQ(show(Op::collect(kOldestGeneration), generated.names), "collect");
  EXPECT_EQ(show(Op::collect(1), generated.names), "collect 1");
  EXPECT_EQ(show(Op::link(0, 1), generated.names), "link o0 o1");
}

TEST(TraceParser, AcceptsCrLfLineEndsAndUtf8Comments) {
  const Trace t = parse_trace("new a\r\n# caf\xc3\xa9\r\nunroot a\r\n", "t.trace");
  EXPECT_EQ(t.ops.size(), 2u);
}

TEST(TraceParser, MessageIsFileLineProblem) {
  try {
    parse_trace("new a\nfrobnicate\n", "dir/x.trace");
    FAIL() << "no error";
  } catch (const InvalidTrace& e) {
    EXPECT_STREQ(e.what(), "dir/x.trace:2: unknown operation 'frobnicate'");
  }
}

TEST(TraceParser, RejectsUnknownOperation) {
  EXPECT_EQ(error_of("new a\nfree a\n"), "2: unknown operation 'free'");
}

TEST(TraceParser, RejectsWrongArgumentCounts) {
  EXPECT_EQ(error_of("new\n"),
            "1: wrong arguments (expected 'new NAME "
            "[list|record|dict|cell|acyclic|set|tuple NAME...]')");
  EXPECT_EQ(error_of("new a\nlink a\n"), "2: wrong arguments (expected 'link FROM TO')");
  EXPECT_EQ(error_of("new a\nroot a a\n"), "2: wrong arguments (expected 'root NAME')");
  EXPECT_EQ(error_of("collect 1 2\n"), "1: wrong arguments (expected 'collect [GENERATION]')");
}

TEST(TraceParser, RejectsNamesThatAreNotIdentifiers) {
  EXPECT_NE(error_of("new 1a\n").find("1: wrong arguments: '1a' is not a name"),
            std::string::npos);
  EXPECT_NE(error_of("new " + std::string(65, 'x') + "\n").find("is not a name"),
            std::string::npos);
  EXPECT_EQ(error_of("new " + std::string(64, 'x') + "\n"), "");
}

TEST(TraceParser, RejectsUnknownObject) {
  EXPECT_EQ(error_of("new a\nlink a b\n"), "2: unknown object 'b'");
}

TEST(TraceParser, RejectsUnreachableObject) {
  EXPECT_EQ(error_of("new a\nnew b\nunroot b\nlink a b\n"),
            "4: object 'b' is unreachable (the mutator can only touch what it reaches)");
  EXPECT_EQ(error_of("new a\nunroot a\nroot a\n"),
            "3: object 'a' is unreachable (the mutator can only touch what it reaches)");
}

TEST(TraceParser, RejectsMissingEdge) {
  EXPECT_EQ(error_of("new a\nnew b\nlink a b\nunlink a b\nunlink a b\n"),
            "5: 'a' holds no reference to 'b'");
}

TEST(TraceParser, RejectsDroppingAReferenceNotHeld) {
  EXPECT_EQ(error_of("new a\nnew b\nlink a b\nunroot b\nunroot b\n"),
            "5: no external reference to 'b' to drop");
}

TEST(TraceParser, RejectsBadGeneration) {
  EXPECT_EQ(error_of("collect 3\n"), "1: bad generation '3' (expected 0, 1 or 2)");
  EXPECT_EQ(error_of("collect -1\n"), "1: bad generation '-1' (expected 0, 1 or 2)");
  EXPECT_EQ(error_of("collect x\n"), "1: bad generation 'x' (expected 0, 1 or 2)");
}

TEST(TraceParser, ReadsThresholdsAndRejectsBadOnes) {
  const Trace t = parse_trace("threshold 700 10 0\n", "t.trace");
  EXPECT_EQ(t.ops, std::vector<Op>{Op::threshold(700, 10, 0)});
  EXPECT_EQ(show(t.ops[0], t.names), "threshold 700 10 0");
  EXPECT_EQ(error_of("threshold 1 2\n"), "1: wrong arguments (expected 'threshold T0 T1 T2')");
  EXPECT_EQ(error_of("threshold 1 2 x\n"),
            "1: bad threshold 'x' (expected a number from 0 to 1000000)");
  EXPECT_EQ(error_of("threshold 1 2 1000001\n"),
            "1: bad threshold '1000001' (expected a number from 0 to 1000000)");
}

TEST(TraceParser, ReadsTheGcModuleSwitches) {
  const Trace t = parse_trace("freeze\nunfreeze\ndisable\nenable\n", "t.trace");
  EXPECT_EQ(t.ops, (std::vector<Op>{Op{OpKind::Freeze}, Op{OpKind::Unfreeze},
                                    Op{OpKind::Disable}, Op{OpKind::Enable}}));
  EXPECT_EQ(to_text(t), "freeze\nunfreeze\ndisable\nenable\n");
  EXPECT_EQ(error_of("freeze now\n"), "1: wrong arguments (expected 'freeze')");
}

TEST(TraceParser, ReadsFinalizersWeakReferencesAndRelease) {
  const std::string text =
      "new a\nnew b\nlink a b\nfinalizer a resurrect b\nfinalizer b resurrect\nnew c\n"
      "finalizer c\nweak w a callback\nweak v b\nderef v\nrelease\n";
  const Trace t = parse_trace(text, "t.trace");
  ASSERT_EQ(t.ops.size(), 11u);
  EXPECT_EQ(t.ops[3], Op::finalizer(0, {Step::resurrect(1)}));
  EXPECT_EQ(t.ops[4], Op::finalizer(1, {Step::resurrect(1)}));
  EXPECT_EQ(t.ops[6], Op::finalizer(2));
  EXPECT_EQ(t.ops[7], Op::weak_ref(0, 0, true));
  EXPECT_EQ(t.ops[8], Op::weak_ref(1, 1, false));
  EXPECT_EQ(t.ops[9], Op::deref(1));
  EXPECT_EQ(t.ops[10], Op{OpKind::Release});
  EXPECT_EQ(to_text(t), text);
}

TEST(TraceParser, ReadsFinalizersThatUnlinkAndDeref) {
  const std::string text =
      "new a\nnew b\nlink a b\nweak w b in a\nfinalizer a unlink a b deref w\n";
  const Trace t = parse_trace(text, "t.trace");
  ASSERT_EQ(t.ops.size(), 5u);
  EXPECT_EQ(t.ops[4], Op::finalizer(0, {Step::unlink(0, 1), Step::deref(0)}));
  EXPECT_EQ(to_text(t), text);
  // A program derefs only a weak reference that an object it reaches holds.
  EXPECT_EQ(error_of("new a\nnew b\nweak w b\nfinalizer a deref w\n"),
            "4: the finalizer of 'a' names weak reference 'w', which no object 'a' reaches holds "
            "(a finalizer can only use what its object reaches)");
  EXPECT_EQ(error_of("new a\nfinalizer a deref w\n"), "2: unknown weak reference 'w'");
  EXPECT_EQ(error_of("new a\nnew b\nfinalizer a unlink a b\n"),
            "3: 'a' does not reach 'b' (a finalizer can only touch what its object reaches, and "
            "what it allocates itself)");
}

TEST(TraceParser, ReadsFinalizersThatReleaseGiveFinalizersAndTakeWeakReferences) {
  const std::string text =
      "new a\nnew b\nlink a b\nfinalizer a resurrect release resurrect b release b new x "
      "finalizer x weak v b callback in x\n"
      "weak w a callback new y weak u y in y in b\n";
  const Trace t = parse_trace(text, "t.trace");
  ASSERT_EQ(t.ops.size(), 5u);
  EXPECT_EQ(t.ops[3], Op::finalizer(0, {Step::resurrect(0), Step::release(0), Step::resurrect(1),
                                        Step::release(1), Step::make_new(2), Step::finalizer(2),
                                        Step::weak_ref_in(0, 1, true, 2)}));
  // A callback's `weak` step ends in its own `in`; the last `in` is the op's holder.
  Op callback = Op::weak_ref_in(1, 0, true, 1);
  callback.steps = {Step::make_new(3), Step::weak_ref_in(2, 3, false, 3)};
  EXPECT_EQ(t.ops[4], callback);
  EXPECT_EQ(to_text(t), text);
  EXPECT_EQ((std::vector<std::string>{"v", "w", "u"}),
            (std::vector<std::string>{t.weak_names[0], t.weak_names[1], t.weak_names[2]}));
  // Map entries, in what the finalizer's object reaches (a map: a list, a record or a dict).
  const Trace entries =
      parse_trace("new m\nnew k\nlink m k\nfinalizer m entry m k m unentry m k\n", "e.trace");
  EXPECT_EQ(entries.ops[3], Op::finalizer(0, {Step::entry(0, 1, 0), Step::unentry(0, 1)}));
  EXPECT_EQ(to_text(entries), "new m\nnew k\nlink m k\nfinalizer m entry m k m unentry m k\n");
  EXPECT_EQ(error_of("new m\nnew c cell\nlink m c\nfinalizer m entry c m m\n"),
            "4: 'c' is a cell: only lists, records and dicts hold map entries");
  // The mutator never holds what a program takes.
  EXPECT_EQ(error_of("new a\nfinalizer a new x weak v a in x\nderef v\n"),
            "3: weak reference 'v' is one a program takes: the mutator never holds it");
  EXPECT_EQ(error_of("new a\nnew b\nfinalizer a finalizer b\n"),
            "3: the finalizer step of 'b' names what the program did not allocate (a program "
            "gives a finalizer only to what its own earlier `new` step made)");
  EXPECT_EQ(error_of("new a\nfinalizer a new x finalizer x finalizer x\n"),
            "2: 'x' already has a finalizer");
  EXPECT_EQ(error_of("new a\nnew b\nfinalizer a weak v b in a\n"),
            "3: 'a' does not reach 'b' (a finalizer can only touch what its object reaches, and "
            "what it allocates itself)");
  EXPECT_EQ(error_of("new a\nweak w a\nfinalizer a weak w a in a\n"),
            "3: duplicate weak reference name 'w'");
  EXPECT_EQ(error_of("new a\nnew t tuple a\nlink a t\nfinalizer a weak v t in a\n"),
            "4: 't' is a tuple: it has no finalizer, takes no weak reference (so keys no weak-keyed "
            "map) and holds none (as CPython's tuples and atomic objects)");
  const std::string usage = "wrong arguments (expected '" + kFinalizerUsage + "')";
  EXPECT_EQ(error_of("new a\nfinalizer a weak v a\n"), "2: " + usage);
  EXPECT_EQ(error_of("new a\nfinalizer a new x in a\n"), "2: " + usage);
}

TEST(TraceParser, ReadsBuildsAndNamesTheirMembers) {
  const std::string text = "new x\nbuild s chain 3\nlink x s_2\nbuild c clique 4\nroot c_3\n";
  const Trace t = parse_trace(text, "t.trace");
  ASSERT_EQ(t.ops.size(), 5u);
  EXPECT_EQ(t.ops[1], Op::build(1, Shape::Chain, 3));
  EXPECT_EQ(t.ops[2], Op::link(0, 3));
  EXPECT_EQ(t.ops[3], Op::build(4, Shape::Clique, 4));
  EXPECT_EQ(to_text(t), text);
  EXPECT_EQ(t.names[5], "c_1");
  // The ops it stands for: every member made, linked in its shape, and only the first held.
  const auto parts_of_build = [](const Op& build) {
    std::vector<Op> parts;
    for_each_part_of_build(build, [&](const Op& part) { parts.push_back(part); });
    return parts;
  };
  const std::vector<Op> ring = parts_of_build(Op::build(0, Shape::Ring, 3));
  EXPECT_EQ(ring, (std::vector<Op>{Op::make_new(0), Op::make_new(1), Op::make_new(2),
                                   Op::link(0, 1), Op::link(1, 2), Op::link(2, 0), Op::unroot(1),
                                   Op::unroot(2)}));
  const std::vector<Op> tree = parts_of_build(Op::build(0, Shape::Tree, 4));
  EXPECT_EQ(std::vector<Op>(tree.begin() + 4, tree.begin() + 7),
            (std::vector<Op>{Op::link(0, 1), Op::link(0, 2), Op::link(1, 3)}));
  const std::vector<Op> star = parts_of_build(Op::build(0, Shape::Star, 3));
  EXPECT_EQ(std::vector<Op>(star.begin() + 3, star.end()),
            (std::vector<Op>{Op::link(0, 1), Op::link(1, 0), Op::link(0, 2), Op::link(2, 0),
                             Op::unroot(1), Op::unroot(2)}));
  EXPECT_EQ(error_of("build s wheel 3\n"), "1: unknown shape 'wheel' (expected 'build NAME "
                                           "chain|ring|tree|fan|clique|star SIZE')");
  const std::string sizes = "(expected 2 to 1000000 objects, or to 256 in a clique)";
  EXPECT_EQ(error_of("build s chain 1\n"), "1: bad size '1' " + sizes);
  EXPECT_EQ(error_of("build s chain many\n"), "1: bad size 'many' " + sizes);
  EXPECT_EQ(error_of("build s clique 300\n"), "1: bad size '300' " + sizes);
  EXPECT_EQ(error_of("new s_2\nbuild s fan 3\n"), "2: duplicate name 's_2'");
  EXPECT_EQ(error_of("new s\nbuild s fan 3\n"), "2: duplicate name 's'");
}

TEST(TraceParser, ReadsCallbackPrograms) {
  const std::string text =
      "new a\nnew h\nweak w a callback new x new y link x y resurrect x collect in h\n"
      "weak v a callback\n";
  const Trace t = parse_trace(text, "t.trace");
  ASSERT_EQ(t.ops.size(), 4u);
  Op expected = Op::weak_ref_in(0, 0, true, 1);
  expected.steps = {Step::make_new(2), Step::make_new(3), Step::link(2, 3), Step::resurrect(2),
                    Step::collect()};
  EXPECT_EQ(t.ops[2], expected);
  EXPECT_EQ(to_text(t), text);
  EXPECT_EQ(error_of("new a\nnew b\nweak w a callback link b b\n"),
            "3: the callback of weak reference 'w' names 'b', which it did not allocate (a "
            "callback can only touch what it allocates)");
  EXPECT_EQ(error_of("new a\nweak w a callback resurrect\n"),
            "2: the callback of weak reference 'w' names 'a', which it did not allocate (a "
            "callback can only touch what it allocates)");
  EXPECT_EQ(error_of("new a\nweak w a new x\n"),
            "2: wrong arguments (expected 'weak WEAK NAME [callback [STEP...]] [in HOLDER]')");
}

TEST(TraceParser, ReadsKindsOfObjects) {
  const std::string text =
      "new a\nnew r record\nnew d dict\nnew c cell\nnew x acyclic\nnew t tuple a x\nnew u tuple\n"
      "new s set\nlink s a\nlink s s\nunlink s a\nlink s a\n";
  const Trace t = parse_trace(text, "t.trace");
  ASSERT_EQ(t.ops.size(), 12u);
  EXPECT_EQ(t.ops[1], Op::make_new(1, ObjectKind::Record));
  EXPECT_EQ(t.ops[5], Op::make_new(5, ObjectKind::Tuple, {0, 4}));
  EXPECT_EQ(t.ops[6], Op::make_new(6, ObjectKind::Tuple));
  EXPECT_EQ(t.ops[7], Op::make_new(7, ObjectKind::Set));
  EXPECT_EQ(to_text(t), text);
  EXPECT_EQ(error_of("new a thing\n"),
            "1: unknown kind of object 'thing' (expected 'new NAME "
            "[list|record|dict|cell|acyclic|set|tuple NAME...]')");
  EXPECT_EQ(error_of("new a\nnew b record a\n"),
            "2: wrong arguments (expected 'new NAME "
            "[list|record|dict|cell|acyclic|set|tuple NAME...]')");
  EXPECT_EQ(error_of("new s set\nnew a\nlink s a\nlink s s\nlink s a\n"),
            "5: 's' is a set, and it already refers to 'a'");
  EXPECT_EQ(error_of("new s set\nentry s s s\n"),
            "2: 's' is a set: only lists, records and dicts hold map entries");
  EXPECT_EQ(error_of("new a\nnew s set\nlink a s\nfinalizer a link s a\n"),
            "4: the finalizer of 'a' links from 's', a set (a finalizer links only from lists, "
            "records and dicts)");
  EXPECT_EQ(error_of("new a\nnew t tuple a\nlink t a\n"),
            "3: 't' is a tuple: its references are fixed when it is made");
  EXPECT_EQ(error_of("new a\nnew t tuple a\nunlink t a\n"),
            "3: 't' is a tuple: its references are fixed when it is made");
  EXPECT_EQ(error_of("new c cell\nnew d\nlink c d\nlink c d\n"),
            "4: 'c' is a cell, and it already holds its one reference");
  EXPECT_EQ(error_of("new x acyclic\nnew y acyclic\nlink x y\n"),
            "3: 'x' is acyclic: it may refer only to acyclic objects made before it, not to 'y'");
  EXPECT_EQ(error_of("new x acyclic\nnew y\nlink y x\nlink x x\n"),
            "4: 'x' is acyclic: it may refer only to acyclic objects made before it, not to 'x'");
  EXPECT_EQ(error_of("new t tuple\nentry t t t\n"),
            "2: 't' is a tuple: only lists, records and dicts hold map entries");
  EXPECT_EQ(error_of("new a\nnew t tuple\nlink a t\nfinalizer a link t a\n"),
            "4: the finalizer of 'a' links from 't', a tuple (a finalizer links only from lists, "
            "records and dicts)");
  EXPECT_EQ(error_of("new t tuple\nfinalizer t\n"),
            "2: 't' is a tuple: it has no finalizer, takes no weak reference (so keys no weak-keyed "
            "map) and holds none (as CPython's tuples and atomic objects)");
  EXPECT_EQ(error_of("new m\nnew t tuple\nentry m t m\n"),
            "3: 't' is a tuple: it has no finalizer, takes no weak reference (so keys no weak-keyed "
            "map) and holds none (as CPython's tuples and atomic objects)");
  EXPECT_EQ(error_of("new x acyclic\nnew h\nweak w h in x\n"),
            "3: 'x' is an acyclic object: it has no finalizer, takes no weak reference (so keys no "
            "weak-keyed map) and holds none (as CPython's tuples and atomic objects)");
  EXPECT_EQ(error_of("new a\nunroot a\nnew t tuple a\n"),
            "3: object 'a' is unreachable (the mutator can only touch what it reaches)");
}

TEST(TraceParser, ReadsWeakReferencesThatObjectsHold) {
  const std::string text = "new a\nnew h\nweak w a callback in h\nweak v h in a\nderef w\n";
  const Trace t = parse_trace(text, "t.trace");
  ASSERT_EQ(t.ops.size(), 5u);
  EXPECT_EQ(t.ops[2], Op::weak_ref_in(0, 0, true, 1));
  EXPECT_EQ(t.ops[3], Op::weak_ref_in(1, 1, false, 0));
  EXPECT_EQ(object_arity(t.ops[3]), 2);  // the holder is one of the objects it names
  EXPECT_EQ(to_text(t), text);
}

TEST(TraceParser, RejectsBrokenFinalizersAndWeakReferences) {
  EXPECT_EQ(error_of("new a\nfinalizer a\nfinalizer a\n"), "3: 'a' already has a finalizer");
  EXPECT_EQ(error_of("new a\nnew b\nfinalizer a resurrect b\n"),
            "3: 'a' does not reach 'b' (a finalizer can only touch what its object reaches, and "
            "what it allocates itself)");
  EXPECT_EQ(error_of("new a\nfinalizer a resurrects\n"),
            "2: unknown program step 'resurrects' (expected '" + kFinalizerUsage + "')");
  EXPECT_EQ(error_of("new a\nweak w a\nweak w a\n"), "3: duplicate weak reference name 'w'");
  EXPECT_EQ(error_of("new a\nweak w a later\n"),
            "2: wrong arguments (expected 'weak WEAK NAME [callback [STEP...]] [in HOLDER]')");
  EXPECT_EQ(error_of("new a\nweak w a in\n"),
            "2: wrong arguments (expected 'weak WEAK NAME [callback [STEP...]] [in HOLDER]')");
  EXPECT_EQ(error_of("new a\nweak w a in b\n"), "2: unknown object 'b'");
  EXPECT_EQ(error_of("new a\nnew b\nunroot b\nweak w a in b\n"),
            "4: object 'b' is unreachable (the mutator can only touch what it reaches)");
  EXPECT_EQ(error_of("new a\nnew h\nweak w a in h\nunroot h\nderef w\n"),
            "5: weak reference 'w' is held by 'h', which is unreachable");
  EXPECT_EQ(error_of("new in\n"), "1: 'in' is a word of the language, not a name");
  EXPECT_EQ(error_of("deref w\n"), "1: unknown weak reference 'w'");
  EXPECT_EQ(error_of("new a\nunroot a\nweak w a\n"), "3: object 'a' is unreachable (the mutator can only touch what it reaches)");
  EXPECT_EQ(error_of("release now\n"), "1: wrong arguments (expected 'release')");
  EXPECT_EQ(error_of("new a\nfinalizer a collect now\n"),
            "2: unknown program step 'now' (expected '" + kFinalizerUsage + "')");
}

TEST(TraceParser, ReadsFinalizerPrograms) {
  const std::string text =
      "new a\nnew b\nlink a b\nfinalizer a new x link x a link a x resurrect x collect\n"
      "finalizer b link b b new y new z link y z resurrect\nnew c\n";
  const Trace t = parse_trace(text, "t.trace");
  ASSERT_EQ(t.ops.size(), 6u);
  EXPECT_EQ(t.ops[3], Op::finalizer(0, {Step::make_new(2), Step::link(2, 0), Step::link(0, 2),
                                        Step::resurrect(2), Step::collect()}));
  EXPECT_EQ(t.ops[4], Op::finalizer(1, {Step::link(1, 1), Step::make_new(3), Step::make_new(4),
                                        Step::link(3, 4), Step::resurrect(1)}));
  EXPECT_EQ(t.ops[5], Op::make_new(5));  // after the objects the finalizers named
  EXPECT_EQ(to_text(t), text);
}

TEST(TraceParser, RejectsBrokenFinalizerPrograms) {
  // A step names what the object reaches, or what an earlier step allocated.
  EXPECT_EQ(error_of("new a\nnew b\nfinalizer a link a b\n"),
            "3: 'a' does not reach 'b' (a finalizer can only touch what its object reaches, and "
            "what it allocates itself)");
  EXPECT_EQ(error_of("new a\nfinalizer a link a x new x\n"), "2: unknown object 'x'");
  EXPECT_EQ(error_of("new a\nfinalizer a new a\n"), "2: duplicate name 'a'");
  EXPECT_EQ(error_of("new a\nfinalizer a link a\n"),
            "2: wrong arguments (expected '" + kFinalizerUsage + "')");
  EXPECT_EQ(error_of("new a\nfinalizer a new link\n"),
            "2: wrong arguments (expected '" + kFinalizerUsage + "')");
  // The mutator never holds what a finalizer allocates.
  EXPECT_EQ(error_of("new a\nfinalizer a new x\nroot x\n"),
            "3: object 'x' is unreachable (the mutator can only touch what it reaches)");
  EXPECT_EQ(error_of("new a\nfinalizer a collect collect collect collect collect collect "
                     "collect collect collect\n"),
            "2: the finalizer of 'a' has 9 steps (at most 8)");
}

TEST(TraceParser, ReadsFinalizersThatAskForACollection) {
  const std::string text =
      "new a\nnew b\nlink a b\nfinalizer a resurrect b collect\nfinalizer b resurrect collect\n"
      "new c\nfinalizer c collect\n";
  const Trace t = parse_trace(text, "t.trace");
  EXPECT_EQ(t.ops[3], Op::finalizer(0, {Step::resurrect(1), Step::collect()}));
  EXPECT_EQ(t.ops[4], Op::finalizer(1, {Step::resurrect(1), Step::collect()}));
  EXPECT_EQ(t.ops[6], Op::finalizer(2, {Step::collect()}));
  EXPECT_EQ(to_text(t), text);
}

TEST(TraceParser, RejectsTheWordsThatFollowANameAsNames) {
  // So that `finalizer a resurrect collect` reads one way only.
  EXPECT_EQ(error_of("new collect\n"), "1: 'collect' is a word of the language, not a name");
  EXPECT_EQ(error_of("new resurrect\n"), "1: 'resurrect' is a word of the language, not a name");
  EXPECT_EQ(error_of("new a\nweak callback a\n"),
            "2: 'callback' is a word of the language, not a name");
}

TEST(TraceParser, RejectsDuplicateNameEvenAfterTheObjectDied) {
  EXPECT_EQ(error_of("new a\nunroot a\nnew a\n"), "3: duplicate name 'a'");
}

TEST(TraceParser, RejectsLineTooLong) {
  EXPECT_EQ(error_of("new a\n#" + std::string(1024, 'x') + "\n"),
            "2: line too long (1025 bytes, at most 1024)");
}

TEST(TraceParser, RejectsWhatIsNotText) {
  EXPECT_EQ(error_of(std::string("new a\nnew b\0\n", 13)), "2: not text (byte 0 at column 6)");
  EXPECT_EQ(error_of("# \xff\xfe\n"), "1: not text (byte 255 at column 3)");
  EXPECT_EQ(error_of("# \xc3\n"), "1: not text (byte 195 at column 3)");
}

TEST(TraceParser, RejectsTooManyObjects) {
  TraceLimits limits;
  limits.max_objects = 2;
  EXPECT_EQ(error_of("new a\nnew b\nnew c\n", limits), "3: too many objects (at most 2)");
}

TEST(TraceParser, ReportsUnreadableFile) {
  try {
    load_trace("/nonexistent/x.trace");
    FAIL() << "no error";
  } catch (const InvalidTrace& e) {
    EXPECT_EQ(e.line(), 0u);
    EXPECT_STREQ(e.what(), "/nonexistent/x.trace: cannot read the file");
  }
}

TEST(Generator, SameSeedSameTraceAndAlwaysValid) {
  for (std::uint64_t seed = 0; seed < 50; ++seed) {
    const Trace t = generate_trace(seed, 300);
    EXPECT_EQ(t.ops, generate_trace(seed, 300).ops);
    EXPECT_NO_THROW(check_trace(t)) << "seed " << seed;
  }
  EXPECT_NE(generate_trace(1, 300).ops, generate_trace(2, 300).ops);
}

TEST(Generator, GivesFinalizersAndWeakReferences) {
  std::size_t resurrecting = 0, allocating = 0, linking = 0, weak = 0, held = 0, deref = 0,
              release = 0, releasing = 0, finalizing = 0, taking = 0, mapping = 0;
  for (std::uint64_t seed = 0; seed < 40; ++seed) {
    for (const Op& op : generate_trace(seed, 300).ops) {
      for (const Step& step : op.steps) {
        resurrecting += step.kind == StepKind::Resurrect;
        allocating += step.kind == StepKind::New;
        linking += step.kind == StepKind::Link;
        releasing += step.kind == StepKind::Release;
        finalizing += step.kind == StepKind::Finalizer;
        taking += step.kind == StepKind::Weak;
        mapping += step.kind == StepKind::Entry || step.kind == StepKind::Unentry;
      }
      weak += op.kind == OpKind::Weak;
      held += op.kind == OpKind::Weak && op.held;
      deref += op.kind == OpKind::Deref;
      release += op.kind == OpKind::Release;
    }
  }
  EXPECT_GT(resurrecting, 50u);
  EXPECT_GT(allocating, 50u);
  EXPECT_GT(linking, 50u);
  EXPECT_GT(weak, 50u);
  EXPECT_GT(held, weak / 4);  // about half the weak references are an object's
  EXPECT_LT(held, weak * 3 / 4);
  EXPECT_GT(deref, 50u);
  EXPECT_GT(release, 50u);
  EXPECT_GT(releasing, 30u);
  EXPECT_GT(finalizing, 10u);
  EXPECT_GT(taking, 30u);
  EXPECT_GT(mapping, 30u);
}

/// Answers with recorded choices, checking that each is asked the same question (the same n).
class ReplayedChoices final : public Choices {
 public:
  explicit ReplayedChoices(std::vector<Choice> choices) : choices_(std::move(choices)) {}
  std::size_t choose(std::size_t n) override {
    if (next_ == choices_.size()) {
      ADD_FAILURE() << "asked one choice too many";
      return 0;
    }
    const Choice c = choices_[next_++];
    EXPECT_EQ(c.n, n) << "choice " << next_ - 1;
    return c.value;
  }
  bool used_up() const { return next_ == choices_.size(); }

 private:
  std::vector<Choice> choices_;
  std::size_t next_ = 0;
};

TEST(Generator, EveryOpIsValidAndItsChoicesGiveItBack) {
  std::size_t entries = 0, unentries = 0;
  for (std::uint64_t seed = 0; seed < 40; ++seed) {
    const Trace t = generate_trace(seed, 300);
    Oracle heap;
    for (std::size_t i = 0; i < t.ops.size(); ++i) {
      const Op& op = t.ops[i];
      ASSERT_FALSE(heap.refuse(op)) << "seed " << seed << ", op " << i << ": "
                                    << show(op, t.names);
      ReplayedChoices replayed(choices_for(heap, op));
      EXPECT_EQ(random_op(heap, replayed), op) << "seed " << seed << ", op " << i;
      EXPECT_TRUE(replayed.used_up()) << "seed " << seed << ", op " << i;
      heap.apply(op);
      entries += op.kind == OpKind::Entry;
      unentries += op.kind == OpKind::Unentry;
    }
  }
  EXPECT_GT(entries, 300u);  // so that the round trip went through maps
  EXPECT_GT(unentries, 50u);
}

/// Whether the mutator reaches k only through map entries' values: no external reference, no
/// reachable object refers to it by a plain reference.
bool reached_only_as_a_value(const Oracle& heap, ObjectId k) {
  if (heap.external_references(k) != 0) return false;
  for (auto [e, end] = boost::in_edges(k, heap.graph()); e != end; ++e) {
    const auto from = static_cast<ObjectId>(boost::source(*e, heap.graph()));
    if (heap.graph()[*e].key == Oracle::kNoKey && heap.reachable_from_roots(from)) return false;
  }
  return true;
}

/// Whether `link from to` makes a live entry's value refer to its key.
bool value_refers_to_its_key(const Oracle& heap, const Op& link) {
  const std::vector<ObjectId>& maps = heap.maps_keyed_by(link.b);
  return std::any_of(maps.begin(), maps.end(), [&](ObjectId map) {
    return heap.reachable_from_roots(map) && heap.entry_value(map, link.b) == link.a;
  });
}

TEST(Generator, GivesMapEntriesInTheShapesThatBreakEphemerons) {
  // A value that refers back to its key (which a strongly traced value keeps alive), and a key
  // that only another entry's value keeps (marked only once that entry is followed: a single
  // pass over the entries misses it: about 25 in 100 traces of 300 ops).
  std::size_t traces_with_entries = 0, unentries = 0, value_refers_to_key = 0, key_is_a_value = 0;
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    const Trace t = generate_trace(seed, 300);
    Oracle heap;
    bool has_entries = false;
    for (const Op& op : t.ops) {
      if (op.kind == OpKind::Entry) {
        has_entries = true;
        value_refers_to_key += heap.references(op.c, op.b) > 0;
        key_is_a_value += reached_only_as_a_value(heap, op.b);
      }
      if (op.kind == OpKind::Link) value_refers_to_key += value_refers_to_its_key(heap, op);
      unentries += op.kind == OpKind::Unentry;
      heap.apply(op);
    }
    traces_with_entries += has_entries;
  }
  EXPECT_EQ(traces_with_entries, 200u);
  EXPECT_GT(unentries, 400u);
  EXPECT_GT(value_refers_to_key, 400u);
  EXPECT_GT(key_is_a_value, 40u);
}

TEST(Generator, KeepsALongTracesLiveHeapAtTheCap) {
  // About one object in ten ops stays reachable: 10,000 ops would reach about 1,000 without it.
  const Distribution small{.max_build = 100};
  const Trace t = generate_trace(3, 10000, small);
  Oracle heap;
  std::size_t most = 0, second_half = 0, at_cap = 0;
  for (std::size_t i = 0; i < t.ops.size(); ++i) {
    // At the cap nothing is made; under it a build may go past it, by its size at most.
    const bool makes = t.ops[i].kind == OpKind::New || t.ops[i].kind == OpKind::Build;
    if (heap.reachable_count() >= kMaxReachable) {
      EXPECT_FALSE(makes) << "op " << i;
      ++at_cap;
    }
    heap.apply(t.ops[i]);
    most = std::max(most, heap.reachable_count());
    if (i >= t.ops.size() / 2) second_half += heap.reachable_count();
  }
  EXPECT_GT(at_cap, 100u);
  EXPECT_LT(most, kMaxReachable + small.max_build);
  // It hovers below the cap (on average: dropping the root of a large structure empties it now
  // and then).
  EXPECT_GT(second_half / (t.ops.size() / 2), kMaxReachable / 2);
}

TEST(Generator, DrawsBuildsOfEveryShapeUpToTheLargestAsked) {
  // Log-uniform: about as many builds in each octave (2^e .. 2^(e+1)), the top one included.
  for (const std::uint32_t largest : {std::uint32_t{100}, std::uint32_t{10'000}}) {
    std::map<std::size_t, std::size_t> per_octave;
    std::set<Shape> shapes;
    std::uint32_t most = 0;
    for (std::uint64_t seed = 0; seed < 200; ++seed) {
      for (const Op& op : generate_trace(seed, 500, {.max_build = largest}).ops) {
        if (op.kind != OpKind::Build) continue;
        shapes.insert(op.shape);
        if (op.shape == Shape::Clique) continue;  // (at most 32)
        most = std::max(most, op.size);
        ++per_octave[static_cast<std::size_t>(std::bit_width(op.size)) - 2];
      }
    }
    EXPECT_EQ(shapes.size(), 6u);
    EXPECT_EQ(most, largest);
    const std::size_t octaves = static_cast<std::size_t>(std::bit_width(largest)) - 1;
    EXPECT_EQ(per_octave.size(), octaves) << largest;
    for (const auto& [octave, builds] : per_octave) EXPECT_GT(builds, 10u) << octave;
  }
}

TEST(Generator, BuildsAndAbandonsCycles) {
  // Over many traces, full collections must find garbage cycles: the bias is working.
  std::size_t cyclic_garbage = 0;
  for (std::uint64_t seed = 0; seed < 100; ++seed) {
    const Trace t = generate_trace(seed, 300);
    Oracle heap;
    for (const Op& op : t.ops) heap.apply(op);
    const auto all = [](ObjectId) { return true; };
    std::vector<ObjectId> garbage;
    for (ObjectId x = 0; x < heap.object_count(); ++x) {
      if (!heap.reachable_from_roots(x)) garbage.push_back(x);
    }
    const auto unheld = heap.unheld_garbage(garbage, all);
    cyclic_garbage += garbage.size() - unheld.size();
  }
  // (About 1000 for 200 seeds when every object was a list, 780 since a fifth of the new objects
  // are of kinds that cycles cannot pass through: tuples, cells, acyclic objects; 343 for these
  // 100 since programs have eleven kinds of steps.)
  EXPECT_GT(cyclic_garbage, 300u);
}

}  // namespace
}  // namespace cyclefuzz
