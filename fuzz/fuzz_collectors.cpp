// fuzz_collectors: bytes -> a valid trace (runners/fuzz_input.h) -> every selected collector, with
// every check of the oracle after every op (each op run as soon as it is decoded). On a violation
// it prints the trace up to the failing op and the readable report, then aborts, so that
// libFuzzer keeps the input (unless every violation is known: CYCLEFUZZ_KNOWN,
// fuzz/fuzz_settings.h).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <random>
#include <utility>
#include <vector>

#include "collectors/transitions.h"
#include "fuzz/fuzz_settings.h"
#include "runners/fuzz_input.h"
#include "reports/report.h"

#ifdef CYCLEFUZZ_LIBFUZZER
// Coverage beyond code: each collector state transition (collectors/transitions.h) bumps one of
// these counters, which libFuzzer treats like edge counters.
namespace {
constexpr std::size_t kTransitionCounters = 1 << 12;
__attribute__((used, section("__libfuzzer_extra_counters")))
std::uint8_t transition_counters[kTransitionCounters];

void count_transition(std::uint32_t transition) {
  const std::uint32_t slot = (transition * 2654435761u) >> 20;  // spread ids over the counters
  std::uint8_t& counter = transition_counters[slot % kTransitionCounters];
  if (counter != 255) ++counter;
}
}  // namespace
#endif

#ifdef CYCLEFUZZ_LIBFUZZER
// libFuzzer's entropic schedule counts a feature as rare until it has been seen in 255 runs (its
// default threshold). At this target's few hundred runs a second nearly every feature stays rare
// for minutes, and libFuzzer searches its list of rare features for each feature of each run: a
// quarter of a run's time. A threshold of 16 keeps the schedule (inputs with features seen
// least get most mutations) at a fifth or more runs a second, and found the mutants libFuzzer
// finds slowest as soon or sooner (docs/fuzzing.md, "The entropic schedule"). It goes first
// among the flags, so that a -entropic_feature_frequency_threshold given on the command line
// (the last wins) replaces it; fork mode's jobs get it from the command line and again here.
namespace {
void prepend_libfuzzer_defaults(int* argc, char*** argv) {
  if (*argc < 1) return;
  static std::vector<char*> args;
  static char threshold[] = "-entropic_feature_frequency_threshold=16";
  args.assign(*argv, *argv + *argc);
  args.insert(args.begin() + 1, threshold);
  args.push_back(nullptr);
  *argc = static_cast<int>(args.size()) - 1;
  *argv = args.data();
}
}  // namespace
#endif

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
#ifdef CYCLEFUZZ_LIBFUZZER
  cyclefuzz::transitions::listener = count_transition;
  prepend_libfuzzer_defaults(argc, argv);
#else
  (void)argc, (void)argv;
#endif
  cyclefuzz::fuzz::settings();  // fail early on bad settings
  return 0;
}

#ifdef CYCLEFUZZ_LIBFUZZER
// Mutations: libFuzzer's own, and now and then a fresh draw. An input is the choices of the
// generator's distribution (runners/fuzz_input.h), so random bytes are a trace drawn from it, as
// `cyclefuzz check` draws its traces. libFuzzer's mutations grow an input a few bytes at a time
// from what it kept, and its length control holds them short for most of a run (a limit of some
// 100 bytes, 25 ops, after a minute): a bug that needs a dozen particular ops in a longer program
// (a finalizer that takes a weak reference to its garbage, which a later collection must
// clear) is then rarely met, although `check` meets it within a few hundred traces. So one
// mutation in kFreshDrawOneIn replaces the input by random bytes of a length up to
// kMaxInputBytes (about 200 ops, check's longest), which coverage then keeps or drops; the others
// are libFuzzer's, within the same length. (A custom mutator turns length control off:
// docs/fuzzing.md, "Mutations", measured against libFuzzer's mutations alone.)
namespace {
constexpr unsigned kFreshDrawOneIn = 8;
constexpr std::size_t kMaxInputBytes = 800;
}  // namespace

extern "C" std::size_t LLVMFuzzerMutate(std::uint8_t* data, std::size_t size, std::size_t max_size);

extern "C" std::size_t LLVMFuzzerCustomMutator(std::uint8_t* data, std::size_t size,
                                               std::size_t max_size, unsigned int seed) {
  max_size = std::min(max_size, kMaxInputBytes);
  std::minstd_rand random(seed + 1);  // (0 is no seed for it)
  if (random() % kFreshDrawOneIn != 0) {
    return LLVMFuzzerMutate(data, std::min(size, max_size), max_size);
  }
  const std::size_t n = 1 + random() % max_size;
  for (std::size_t i = 0; i < n; ++i) data[i] = static_cast<std::uint8_t>(random() >> 8);
  return n;
}
#endif

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cyclefuzz;
  const fuzz::Settings& s = fuzz::settings();
  Session session(s.collectors, s.options, s.checks);
  // (As session.run(decode_fuzz_input(...)) would, without a second oracle: runners/fuzz_input.h.)
  const Trace trace =
      decode_fuzz_input({data, size}, s.distribution, session.oracle(), [&session](const Op& op) {
        session.step(op);
        return !session.done();
      });
  session.finish();
  if (session.violations().empty()) return 0;
  // Only known failures (CYCLEFUZZ_KNOWN): no finding, and not an input to mutate further
  // (-1: libFuzzer keeps it out of the corpus, where it would meet them again and again). A
  // collector's failure is its first violation, as in a signature (more may come at its op).
  if (!s.known.empty()) {
    std::vector<char> judged(s.collectors.size(), 0);
    bool all_known = true;
    for (const Violation& v : session.violations()) {
      if (v.kind != ViolationKind::Disagreement && std::exchange(judged[v.collector], 1) != 0) {
        continue;
      }
      all_known = all_known && v.kind != ViolationKind::Disagreement &&
                  find_known(s.known, violation_signature(s.collectors[v.collector].name, v.kind,
                                                          v.detail)) < s.known.size();
    }
    if (all_known) return -1;
  }

  const std::size_t failing = session.violations().front().op_index;
  std::cerr << "\n==== cyclefuzz: violation ====\n# the trace up to the failing op:\n";
  for (std::size_t i = 0; i <= failing; ++i) std::cerr << show(trace.ops[i], trace) << "\n";
  std::cerr << "# report:\n";
  for (const Violation& v : session.violations()) print_violation(std::cerr, trace, session, v);
  std::cerr << "# (cyclefuzz decode INPUT prints this trace; cyclefuzz minimize shrinks it)\n";
  std::abort();
}
