// fuzz_collectors: bytes -> a valid trace (runners/fuzz_input.h) -> every selected collector, with
// every check of the oracle after every op. On a violation it prints the trace up to the failing
// op and the readable report, then aborts, so that libFuzzer keeps the input.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <vector>

#include "collectors/transitions.h"
#include "fuzz/fuzz_settings.h"
#include "runners/fuzz_input.h"
#include "runners/op_mutator.h"
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

// The input run last, with where its ops start: libFuzzer mostly mutates the input it has just
// run, and the op mutator would decode it again.
std::vector<std::uint8_t> last_input;
std::vector<std::size_t> last_offsets;
}  // namespace

// Mutations of the input's ops (runners/op_mutator.h), with libFuzzer's byte mutation as one of
// them; CYCLEFUZZ_MUTATOR=bytes leaves libFuzzer's own mutations alone (a cross-over that makes
// nothing makes libFuzzer pick another mutation).
extern "C" std::size_t LLVMFuzzerMutate(std::uint8_t* data, std::size_t size,
                                        std::size_t max_size);

extern "C" std::size_t LLVMFuzzerCustomMutator(std::uint8_t* data, std::size_t size,
                                               std::size_t max_size, unsigned int seed) {
  if (!cyclefuzz::fuzz::settings().op_mutations) return LLVMFuzzerMutate(data, size, max_size);
  std::vector<std::uint8_t> input(data, data + size);
  const bool known = input == last_input;
  cyclefuzz::OpMutator(seed, LLVMFuzzerMutate).mutate(input, max_size,
                                                      known ? &last_offsets : nullptr);
  if (!input.empty()) std::memcpy(data, input.data(), input.size());
  return input.size();
}

extern "C" std::size_t LLVMFuzzerCustomCrossOver(const std::uint8_t* a, std::size_t a_size,
                                                 const std::uint8_t* b, std::size_t b_size,
                                                 std::uint8_t* out, std::size_t max_size,
                                                 unsigned int seed) {
  if (!cyclefuzz::fuzz::settings().op_mutations || seed % 3 != 0) return 0;
  const std::vector<std::uint8_t> crossed =
      cyclefuzz::OpMutator(seed, LLVMFuzzerMutate).cross_over({a, a_size}, {b, b_size}, max_size);
  if (!crossed.empty()) std::memcpy(out, crossed.data(), crossed.size());
  return crossed.size();
}
#endif

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
#ifdef CYCLEFUZZ_LIBFUZZER
  cyclefuzz::transitions::listener = count_transition;
  // A custom mutator turns libFuzzer's length control off unless it is asked for; with it off,
  // inputs take the whole -max_len at once and run several times slower (measured: the first
  // inputs 4 KB, 186 exec/s against 1,457 with it on). Ask for libFuzzer's default, before
  // libFuzzer reads its flags, unless the command line says otherwise.
  static std::vector<char*> args(*argv, *argv + *argc);
  static char len_control[] = "-len_control=100";
  const bool given = std::any_of(args.begin(), args.end(), [](const char* arg) {
    return std::strncmp(arg, "-len_control=", 13) == 0;
  });
  if (!given) {
    args.push_back(len_control);
    *argc = static_cast<int>(args.size());
    args.push_back(nullptr);
    *argv = args.data();
  }
#else
  (void)argc;
  (void)argv;
#endif
  cyclefuzz::fuzz::settings();  // fail early on bad settings
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cyclefuzz;
  const fuzz::Settings& s = fuzz::settings();
#ifdef CYCLEFUZZ_LIBFUZZER
  last_input.assign(data, data + size);
  const Trace trace = decode_fuzz_input({data, size}, last_offsets);
#else
  const Trace trace = decode_fuzz_input({data, size});
#endif
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
