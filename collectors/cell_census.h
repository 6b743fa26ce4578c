// The cells a built-in collector holds, counted for its check_invariants(): whether a pointer
// leads to one of them, and how many references lead to each. A walk must know a pointer leads
// to a held cell before it reads through it (a freed cell is not the walk's to touch), so it
// looks each reference up here.
//
// An open-addressing table that the collector keeps from walk to walk, rather than a hash map
// built for each: the walks run after collections, and a map's node per cell was an allocation
// per cell per walk, a sorted vector a binary search per reference (docs/performance.md). Once
// the heap's size has been seen, a walk allocates nothing.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <vector>

namespace cyclefuzz {

template <class Cell>
class CellCensus {
 public:
  /// A new census of about `cells` cells: add() every held cell once, then look up.
  void begin(std::size_t cells) {
    size_ = 0;
    slots_.assign(std::bit_ceil(std::max<std::size_t>(16, 2 * cells)), Slot{});
  }
  void add(const Cell* c) {
    if (2 * (size_ + 1) > slots_.size()) grow();
    place(c, 0);
    ++size_;
  }

  /// The references counted to c so far (count_reference_to), or nullptr if c is no held cell.
  std::uint64_t* referrers(const Cell* c) {
    for (std::size_t i = home(c);; i = (i + 1) & (slots_.size() - 1)) {
      if (slots_[i].cell == c) return &slots_[i].referrers;
      if (slots_[i].cell == nullptr) return nullptr;
    }
  }
  bool holds(const Cell* c) { return c != nullptr && referrers(c) != nullptr; }
  /// Counts one more reference to c; false (and nothing counted) if c is no held cell.
  bool count_reference_to(const Cell* c) {
    std::uint64_t* n = c != nullptr ? referrers(c) : nullptr;
    if (n != nullptr) ++*n;
    return n != nullptr;
  }

 private:
  struct Slot {
    const Cell* cell = nullptr;
    std::uint64_t referrers = 0;
  };

  std::size_t home(const Cell* c) const {  // (Fibonacci hashing of the address)
    const auto bits = static_cast<unsigned>(std::countr_zero(slots_.size()));
    return static_cast<std::size_t>((reinterpret_cast<std::uintptr_t>(c) >> 4) *
                                    0x9E3779B97F4A7C15ull >> (64 - bits));
  }
  void place(const Cell* c, std::uint64_t referrers) {
    std::size_t i = home(c);
    while (slots_[i].cell != nullptr) i = (i + 1) & (slots_.size() - 1);
    slots_[i] = {c, referrers};
  }
  void grow() {
    std::vector<Slot> old(2 * slots_.size());
    old.swap(slots_);
    for (const Slot& s : old) {
      if (s.cell != nullptr) place(s.cell, s.referrers);
    }
  }

  std::vector<Slot> slots_;
  std::size_t size_ = 0;
};

}  // namespace cyclefuzz
