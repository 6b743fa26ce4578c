#include "runners/fuzz_input.h"

#include <stdexcept>
#include <string>

namespace cyclefuzz {

namespace {

std::size_t width(std::size_t n) {
  return n <= 1 ? 0 : n <= (1u << 8) ? 1 : n <= (1u << 16) ? 2 : 4;
}

void put(const Choice& c, std::vector<std::uint8_t>& out) {
  for (std::size_t i = 0; i < width(c.n); ++i) {
    out.push_back(static_cast<std::uint8_t>(c.value >> (8 * i)));
  }
}

/// Decodes `bytes`; `offsets`, if given, gets where each op starts.
Trace decode(std::span<const std::uint8_t> bytes, std::size_t max_ops,
             std::vector<std::size_t>* offsets) {
  Trace trace;
  trace.source = "<fuzz input>";
  ByteChoices choices(bytes);
  Oracle heap;
  while (!choices.exhausted() && trace.ops.size() < max_ops) {
    if (offsets != nullptr) offsets->push_back(choices.position());
    const Op op = random_op(heap, choices);
    heap.apply(op);
    trace.push_unnamed(op);
  }
  return trace;
}

}  // namespace

std::size_t ByteChoices::choose(std::size_t n) {
  std::uint32_t value = 0;
  const std::size_t w = width(n);
  for (std::size_t i = 0; i < w; ++i) {
    const std::uint32_t byte = at_ < bytes_.size() ? bytes_[at_] : 0;
    ++at_;
    value |= byte << (8 * i);
  }
  return n <= 1 ? 0 : value % n;
}

std::size_t RecordingChoices::choose(std::size_t n) {
  const std::size_t value = source_.choose(n);
  put({value, n}, out_);
  return value;
}

Trace decode_fuzz_input(std::span<const std::uint8_t> bytes, std::size_t max_ops) {
  return decode(bytes, max_ops, nullptr);
}

Trace decode_fuzz_input(std::span<const std::uint8_t> bytes, std::vector<std::size_t>& offsets) {
  offsets.clear();
  return decode(bytes, SIZE_MAX, &offsets);
}

std::vector<std::size_t> op_offsets(std::span<const std::uint8_t> bytes) {
  std::vector<std::size_t> offsets;
  decode(bytes, SIZE_MAX, &offsets);
  return offsets;
}

void encode_op(const Oracle& heap, const Op& op, std::vector<std::uint8_t>& out) {
  for (const Choice& c : choices_for(heap, op)) put(c, out);
}

std::vector<std::uint8_t> encode_fuzz_input(const Trace& trace) {
  std::vector<std::uint8_t> bytes;
  Oracle heap;
  for (std::size_t i = 0; i < trace.ops.size(); ++i) {
    const Op& op = trace.ops[i];
    try {
      encode_op(heap, op, bytes);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(trace.source + ":" + std::to_string(trace.line_of(i)) +
                                  ": no fuzzer input stands for this op: " + e.what());
    }
    heap.apply(op);
  }
  return bytes;
}

}  // namespace cyclefuzz
