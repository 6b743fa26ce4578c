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
  /// How many bytes the choices so far read (past the end too: those read as 0).
  std::size_t position() const { return at_; }

 private:
  std::span<const std::uint8_t> bytes_;
  std::size_t at_ = 0;
};

/// The trace a fuzzer input stands for: ops are drawn until the bytes run out (or `max_ops`).
Trace decode_fuzz_input(std::span<const std::uint8_t> bytes, std::size_t max_ops = SIZE_MAX);

/// The same, and in `offsets` where each op starts reading (as op_offsets).
Trace decode_fuzz_input(std::span<const std::uint8_t> bytes, std::vector<std::size_t>& offsets);

/// Where each op of decode_fuzz_input(bytes) starts reading: op i reads from offsets[i] up to
/// offsets[i + 1], the last one up to the end (or past it, reading zeros). Every op reads at least
/// one byte, so the offsets increase.
std::vector<std::size_t> op_offsets(std::span<const std::uint8_t> bytes);

/// The bytes whose choices make random_op produce `op` in `heap` (a valid op there), appended to
/// `out`. Throws std::invalid_argument for an op the generator never draws there.
void encode_op(const Oracle& heap, const Op& op, std::vector<std::uint8_t>& out);

/// Choices drawn from `source`, each also written to `out` as the bytes ByteChoices reads it
/// from: the bytes of what a generator made with them.
class RecordingChoices final : public Choices {
 public:
  RecordingChoices(Choices& source, std::vector<std::uint8_t>& out) : source_(source), out_(out) {}
  std::size_t choose(std::size_t n) override;

 private:
  Choices& source_;
  std::vector<std::uint8_t>& out_;
};

/// A fuzzer input that decodes to `trace`'s ops (objects are renamed o0, o1, ...). Pre: the trace
/// is valid. Throws std::invalid_argument (naming the op's line) for an op the generator never
/// draws where it stands (a `build` before anything is reachable): no input stands for it.
std::vector<std::uint8_t> encode_fuzz_input(const Trace& trace);

}  // namespace cyclefuzz
