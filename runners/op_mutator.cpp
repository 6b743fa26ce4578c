#include "runners/op_mutator.h"

#include <algorithm>
#include <array>

#include "runners/fuzz_input.h"

namespace cyclefuzz {

namespace {

using Bytes = std::vector<std::uint8_t>;

// How often each mutation is tried, by weight. The edits of whole ops are most of it; byte
// mutation keeps a share, so that libFuzzer's own moves (and what they reach) stay.
constexpr std::array<std::size_t, kOpMutations> kWeights = {
    2,  // Erase
    1,  // Duplicate
    2,  // Repeat
    2,  // Insert
    2,  // Replace
    1,  // Resize (tried only where there is a build)
    3,  // OpBytes
    27,  // Bytes
};
constexpr std::size_t kBlockOctaves = 5;       // blocks of up to 2^4 = 16 ops
// A block repeated 2 to 127 times, log-uniformly: a structure past a few dozen objects, and
// most of the time a few copies. Larger repeats made every input thousands of ops long and the
// fuzzer ten times slower, for nothing: the generator allocates nothing past kMaxReachable
// reachable objects.
constexpr std::size_t kRepeatOctaves = 6;

/// An input's op segments: op i reads bytes [at[i], at[i + 1]), the last op up to the end.
struct Segments {
  std::vector<std::size_t> at;
  std::size_t size;

  explicit Segments(std::span<const std::uint8_t> bytes)
      : at(op_offsets(bytes)), size(bytes.size()) {}
  Segments(std::span<const std::uint8_t> bytes, const std::vector<std::size_t>* offsets)
      : at(offsets != nullptr ? *offsets : op_offsets(bytes)), size(bytes.size()) {}
  std::size_t ops() const { return at.size(); }
  /// Where op i starts; i == ops() is the end.
  std::size_t start(std::size_t i) const { return i < at.size() ? at[i] : size; }
};

/// The heap as the mutator leaves it before the op that reads from `offset`, an op boundary.
Oracle heap_before(std::span<const std::uint8_t> bytes, std::size_t offset) {
  Oracle heap;
  for (const Op& op : decode_fuzz_input(bytes.first(offset)).ops) heap.apply(op);
  return heap;
}

/// `input` with bytes [from, to) replaced by `with`.
Bytes replaced(const Bytes& input, std::size_t from, std::size_t to,
               std::span<const std::uint8_t> with) {
  Bytes out(input.begin(), input.begin() + static_cast<std::ptrdiff_t>(from));
  out.insert(out.end(), with.begin(), with.end());
  out.insert(out.end(), input.begin() + static_cast<std::ptrdiff_t>(to), input.end());
  return out;
}

}  // namespace

const char* name(OpMutation mutation) {
  switch (mutation) {
    case OpMutation::Erase: return "erase";
    case OpMutation::Duplicate: return "duplicate";
    case OpMutation::Repeat: return "repeat";
    case OpMutation::Insert: return "insert";
    case OpMutation::Replace: return "replace";
    case OpMutation::Resize: return "resize";
    case OpMutation::OpBytes: return "op-bytes";
    case OpMutation::Bytes: return "bytes";
  }
  return "?";
}

std::pair<std::size_t, std::size_t> OpMutator::block(std::size_t ops) {
  // Lengths 1, 2, 3-4, 5-8, 9-16 as likely as each other.
  const std::size_t octave = std::size_t{1} << below(kBlockOctaves);
  const std::size_t length = std::min(ops, octave / 2 + 1 + below(octave - octave / 2));
  const std::size_t first = below(ops - length + 1);
  return {first, first + length};
}

OpMutation OpMutator::mutate(Bytes& input, std::size_t max_size,
                             const std::vector<std::size_t>* offsets) {
  std::discrete_distribution<std::size_t> pick(kWeights.begin(), kWeights.end());
  for (;;) {
    const auto mutation = static_cast<OpMutation>(pick(random_));
    if (try_mutation(mutation, input, max_size, offsets)) return mutation;
  }
}

bool OpMutator::try_mutation(OpMutation mutation, Bytes& input, std::size_t max_size,
                             const std::vector<std::size_t>* offsets) {
  Bytes out;
  if (mutation == OpMutation::Bytes) {  // (the only one that needs no decoding)
    out = input;
    out.resize(max_size);
    out.resize(bytes_(out.data(), std::min(input.size(), max_size), max_size));
    input = std::move(out);
    return true;
  }
  const Segments segments(input, offsets);
  const std::size_t ops = segments.ops();
  switch (mutation) {
    case OpMutation::Erase: {
      if (ops == 0) return false;
      const auto [first, last] = block(ops);
      out = replaced(input, segments.start(first), segments.start(last), {});
      break;
    }
    case OpMutation::Duplicate:
    case OpMutation::Repeat: {
      if (ops == 0) return false;
      const auto [first, last] = block(ops);
      const Bytes copy(input.begin() + static_cast<std::ptrdiff_t>(segments.start(first)),
                       input.begin() + static_cast<std::ptrdiff_t>(segments.start(last)));
      std::size_t times = 1;
      if (mutation == OpMutation::Repeat) {
        const std::size_t octave = std::size_t{1} << (1 + below(kRepeatOctaves));
        times = std::min(octave + below(octave), (max_size - std::min(max_size, input.size())) /
                                                     std::max<std::size_t>(1, copy.size()));
        if (times == 0) return false;
      }
      const std::size_t at =
          mutation == OpMutation::Repeat ? segments.start(last) : segments.start(below(ops + 1));
      Bytes copies;
      for (std::size_t i = 0; i < times; ++i) copies.insert(copies.end(), copy.begin(), copy.end());
      out = replaced(input, at, at, copies);
      break;
    }
    case OpMutation::Insert:
    case OpMutation::Replace: {
      if (mutation == OpMutation::Replace && ops == 0) return false;
      const std::size_t i = below(mutation == OpMutation::Insert ? ops + 1 : ops);
      const Oracle heap = heap_before(input, segments.start(i));
      SeededChoices source(random_());
      Bytes op;
      RecordingChoices choices(source, op);
      random_op(heap, choices);
      const std::size_t end = mutation == OpMutation::Insert ? segments.start(i)
                                                             : segments.start(i + 1);
      out = replaced(input, segments.start(i), end, op);
      break;
    }
    case OpMutation::Resize: {
      const Trace trace = decode_fuzz_input(input);
      std::vector<std::size_t> builds;
      for (std::size_t i = 0; i < trace.ops.size(); ++i) {
        if (trace.ops[i].kind == OpKind::Build) builds.push_back(i);
      }
      if (builds.empty()) return false;
      const std::size_t i = builds[below(builds.size())];
      Op op = trace.ops[i];
      const std::size_t octave = std::size_t{2} << below(7);
      const std::array<std::size_t, 3> sizes = {op.size / 2, op.size * 2, octave + below(octave)};
      op.size = static_cast<std::uint32_t>(std::max<std::size_t>(2, sizes[below(3)]));
      Bytes encoded;
      encode_op(heap_before(input, segments.start(i)), op, encoded);
      out = replaced(input, segments.start(i), segments.start(i + 1), encoded);
      break;
    }
    case OpMutation::OpBytes: {
      if (ops == 0) return false;
      const std::size_t i = below(ops);
      Bytes op(input.begin() + static_cast<std::ptrdiff_t>(segments.start(i)),
               input.begin() + static_cast<std::ptrdiff_t>(segments.start(i + 1)));
      const std::size_t room = op.size() + max_size - std::min(max_size, input.size());
      op.resize(std::min(room, 2 * op.size() + 8));
      op.resize(bytes_(op.data(), segments.start(i + 1) - segments.start(i), op.size()));
      out = replaced(input, segments.start(i), segments.start(i + 1), op);
      break;
    }
    case OpMutation::Bytes:
      break;  // (above)
  }
  if (out.size() > max_size) return false;
  input = std::move(out);
  return true;
}

Bytes OpMutator::cross_over(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b,
                            std::size_t max_size) {
  const Segments in_a(a);
  const Segments in_b(b);
  const Bytes whole_a(a.begin(), a.end());
  const std::size_t at = in_a.start(below(in_a.ops() + 1));
  Bytes out;
  if (in_b.ops() > 0 && below(2) == 0) {  // a block of b's ops between two of a's
    const auto [first, last] = block(in_b.ops());
    out = replaced(whole_a, at, at, b.subspan(in_b.start(first), in_b.start(last) -
                                                                     in_b.start(first)));
  } else {  // a's first ops, then b's last ones
    out = replaced(whole_a, at, whole_a.size(), b.subspan(in_b.start(below(in_b.ops() + 1))));
  }
  if (out.size() > max_size) out.resize(max_size);
  return out;
}

}  // namespace cyclefuzz
