// fuzz_collectors: bytes -> a valid trace (runners/fuzz_input.h) -> every selected collector, with
// every check of the oracle after every op. On a violation it prints the trace up to the failing
// op and the readable report, then aborts, so that libFuzzer keeps the input.
#include <cstdio>
#include <cstdlib>
#include <iostream>

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

extern "C" int LLVMFuzzerInitialize(int*, char***) {
#ifdef CYCLEFUZZ_LIBFUZZER
  cyclefuzz::transitions::listener = count_transition;
#endif
  cyclefuzz::fuzz::settings();  // fail early on bad settings
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cyclefuzz;
  const fuzz::Settings& s = fuzz::settings();
  const Trace trace = decode_fuzz_input({data, size}, s.distribution);
  Session session(s.collectors, s.options, s.checks);
  session.run(trace);
  if (session.violations().empty()) return 0;

  const std::size_t failing = session.violations().front().op_index;
  std::cerr << "\n==== cyclefuzz: violation ====\n# the trace up to the failing op:\n";
  for (std::size_t i = 0; i <= failing; ++i) std::cerr << show(trace.ops[i], trace) << "\n";
  std::cerr << "# report:\n";
  for (const Violation& v : session.violations()) print_violation(std::cerr, trace, session, v);
  std::cerr << "# (cyclefuzz decode INPUT prints this trace; cyclefuzz minimize shrinks it)\n";
  std::abort();
}
