// Collectors' internal state transitions, for coverage beyond code.
//
// A fuzzer keeps an input when it reaches new code; many collector bugs need a new *state* on
// code already covered (an object turning white while buffered, a promotion into the oldest
// generation during an automatic collection). Collectors name such transitions here, and the
// fuzz targets count them as libFuzzer extra counters. Outside a fuzzer nobody listens and a
// transition costs one test of a null pointer.
#pragma once

#include <cstdint>

namespace cyclefuzz::transitions {

/// Which collector a transition belongs to: the high byte of its id.
enum class Family : std::uint32_t { MarkSweep = 1, TrialDeletion = 2, Generational = 3 };

/// Receives every transition; null unless a fuzzer listens.
using Listener = void (*)(std::uint32_t transition);
inline Listener listener = nullptr;

/// Reports transition `code` (any value below 2^16) of collector `family`.
inline void note(Family family, std::uint32_t code) {
  if (listener != nullptr) listener((static_cast<std::uint32_t>(family) << 16) | (code & 0xffff));
}

}  // namespace cyclefuzz::transitions
