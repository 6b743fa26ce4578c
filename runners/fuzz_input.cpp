#include "runners/fuzz_input.h"

#include <stdexcept>
#include <string>

namespace cyclefuzz {

namespace {

std::size_t width(std::size_t n) {
  return n <= 1 ? 0 : n <= (1u << 8) ? 1 : n <= (1u << 16) ? 2 : 4;
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

Trace decode_fuzz_input(std::span<const std::uint8_t> bytes, const Distribution& distribution) {
  Oracle heap;
  return decode_fuzz_input(bytes, distribution, heap, [&heap](const Op& op) {
    heap.apply(op);
    return true;
  });
}

Trace decode_fuzz_input(std::span<const std::uint8_t> bytes, const Distribution& distribution,
                        const Oracle& heap, const std::function<bool(const Op&)>& take) {
  Trace trace;
  trace.source = "<fuzz input>";
  ByteChoices choices(bytes);
  bool more = true;
  while (more && !choices.exhausted()) {
    const Op op = random_op(heap, choices, distribution);
    more = take(op);
    trace.push_unnamed(op);
  }
  return trace;
}

std::vector<std::uint8_t> encode_fuzz_input(const Trace& trace, const Distribution& distribution) {
  std::vector<std::uint8_t> bytes;
  Oracle heap;
  for (std::size_t i = 0; i < trace.ops.size(); ++i) {
    const Op& op = trace.ops[i];
    std::vector<Choice> choices;
    try {
      choices = choices_for(heap, op, distribution);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(trace.source + ":" + std::to_string(trace.line_of(i)) +
                                  ": no fuzzer input stands for this op: " + e.what());
    }
    for (const Choice& c : choices) {
      for (std::size_t i = 0; i < width(c.n); ++i) {
        bytes.push_back(static_cast<std::uint8_t>(c.value >> (8 * i)));
      }
    }
    heap.apply(op);
  }
  return bytes;
}

}  // namespace cyclefuzz
