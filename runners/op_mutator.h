// Mutation of fuzzer inputs as traces: libFuzzer's custom mutator and cross-over
// (fuzz/fuzz_collectors.cpp) for the bytes of runners/fuzz_input.h.
//
// A fuzzer input is the generator's choices, op after op, and any bytes decode to a valid trace.
// So an input splits into op segments (the bytes each op's choices read: op_offsets), and an edit
// of whole segments is an edit of the trace: drop a block of ops, copy a block elsewhere, repeat a
// block k times, insert or replace an op (drawn by the generator for the heap at that point, so
// its bytes decode to exactly that op), grow or cut a `build`, or put in a block of another
// input. Choices are relative to the heap they meet (the newest object, a referent of a recent
// one), so a moved or repeated block does the same kind of thing to whatever heap is there: a
// block that allocates an object and links the one before it to it, repeated 500 times, is a
// chain 500 deep, which byte mutations alone almost never write. Whatever the edit, the result
// decodes to a valid trace. libFuzzer's byte mutation stays as one of the mutations (of the whole
// input or of one op's bytes), so nothing it could reach is lost.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <random>
#include <span>
#include <vector>

namespace cyclefuzz {

enum class OpMutation : std::uint8_t {
  Erase,      // drop a block of ops
  Duplicate,  // copy a block of ops to another place
  Repeat,     // repeat a block of ops k times where it is (k log-uniform up to 127)
  Insert,     // insert an op the generator draws for the heap there
  Replace,    // replace an op by one the generator draws for the heap there
  Resize,     // give a `build` another size
  OpBytes,    // libFuzzer's byte mutation of one op's bytes
  Bytes,      // libFuzzer's byte mutation of the whole input
};
constexpr std::size_t kOpMutations = static_cast<std::size_t>(OpMutation::Bytes) + 1;
const char* name(OpMutation mutation);

/// libFuzzer's LLVMFuzzerMutate: mutates data[0, size) in place, up to max_size bytes; returns
/// the new size.
using ByteMutator = std::function<std::size_t(std::uint8_t*, std::size_t, std::size_t)>;

class OpMutator {
 public:
  OpMutator(std::uint32_t seed, ByteMutator bytes) : random_(seed), bytes_(std::move(bytes)) {}

  /// Mutates `input` into an input of at most `max_size` bytes; returns the mutation made.
  /// `offsets`, if given, are op_offsets(input), known already (decoding costs about as much as
  /// a small input's run). Post: input.size() <= max_size.
  OpMutation mutate(std::vector<std::uint8_t>& input, std::size_t max_size,
                    const std::vector<std::size_t>* offsets = nullptr);

  /// An input made of `a` and `b`: a block of b's ops put between two of a's, or a's first ops
  /// followed by b's last ones. Post: at most max_size bytes.
  std::vector<std::uint8_t> cross_over(std::span<const std::uint8_t> a,
                                       std::span<const std::uint8_t> b, std::size_t max_size);

  /// Whether `mutation` could apply to `input` (the same input and mutation); for tests.
  bool try_mutation(OpMutation mutation, std::vector<std::uint8_t>& input, std::size_t max_size,
                    const std::vector<std::size_t>* offsets = nullptr);

 private:
  std::size_t below(std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(random_);
  }
  /// A block of 1 to 16 ops (short blocks likelier) among `ops`: [first, last).
  std::pair<std::size_t, std::size_t> block(std::size_t ops);

  std::mt19937 random_;
  ByteMutator bytes_;
};

}  // namespace cyclefuzz
