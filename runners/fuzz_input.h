// Between fuzzer bytes and traces.
//
// A fuzzer input is the sequence of choices that random_op (runners/generator.h) makes: the bytes
// drive the same biased distribution as `cyclefuzz gen`, so random bytes already build and
// abandon cycles, and every input decodes to a valid trace. Each choose(n) reads the fewest
// bytes that can hold n values (none for n = 1, one for n <= 256, two for n <= 65536, else four,
// little-endian) and takes the value modulo n. The decoder is stable: changing one byte changes
// one choice, and the ops before it stay the same.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "runners/generator.h"
#include "language/trace.h"

namespace cyclefuzz {

/// Choices read from fuzzer bytes. Once the bytes run out, every choice is 0.
class ByteChoices final : public Choices {
 public:
  explicit ByteChoices(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}
  std::size_t choose(std::size_t n) override;
  bool exhausted() const { return at_ >= bytes_.size(); }

 private:
  std::span<const std::uint8_t> bytes_;
  std::size_t at_ = 0;
};

/// The trace a fuzzer input stands for: ops are drawn until the bytes run out.
Trace decode_fuzz_input(std::span<const std::uint8_t> bytes, const Distribution& distribution = {});

/// The same trace, drawn against a heap that someone else keeps: `take(op)` must apply each op
/// to `heap` before the next is drawn, and says whether to go on. fuzz_collectors decodes against
/// its session's oracle (Session::oracle), which applies every op anyway, and saves a second
/// oracle (docs/performance.md). The ops are decode_fuzz_input's, cut where `take` stops: the
/// generator reads only the mutator's heap, which the lanes' finalizers never change (they add
/// references only from garbage, and what they add to the lists of keys is read as a set).
Trace decode_fuzz_input(std::span<const std::uint8_t> bytes, const Distribution& distribution,
                        const Oracle& heap, const std::function<bool(const Op&)>& take);

/// A fuzzer input that decodes to `trace`'s ops (objects are renamed o0, o1, ...). Pre: the trace
/// is valid. Throws std::invalid_argument (naming the op's line) for an op the generator never
/// draws where it stands (a `build` before anything is reachable): no input stands for it.
std::vector<std::uint8_t> encode_fuzz_input(const Trace& trace,
                                            const Distribution& distribution = {});

}  // namespace cyclefuzz
