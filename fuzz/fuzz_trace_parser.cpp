// fuzz_trace_parser: the text parser and checker never crash, hang or leak on any input. A bad
// trace must end in InvalidTrace (the file:line: problem the user sees), nothing else; a good one
// must print back to text that parses to the same ops.
#include <cstdlib>
#include <string_view>

#include "language/trace.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cyclefuzz;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  TraceLimits limits;
  limits.max_objects = 4096;  // keep each input's work bounded
  Trace trace;
  try {
    trace = parse_trace(text, "input", limits);
  } catch (const InvalidTrace&) {
    return 0;
  }
  if (parse_trace(to_text(trace), "round-trip", limits).ops != trace.ops) std::abort();
  return 0;
}
