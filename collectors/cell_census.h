// The cells a built-in collector holds, counted for its check_invariants(): whether a pointer
// leads to one of them, and how many references lead to each. A walk must know a pointer leads
// to a held cell before it reads through it (a freed cell is not the walk's to touch), so it
// looks each reference up here.
//
// A sorted vector that the collector keeps from walk to walk, rather than a hash map built for
// each: the walks run after every collection, and a map's node per cell was an allocation per
// cell per walk (docs/performance.md). Once the heap's size has been seen, a walk allocates
// nothing.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <vector>

namespace cyclefuzz {

template <class Cell>
class CellCensus {
 public:
  /// A new census: add() every held cell once, then seal() before any lookup.
  void begin() { entries_.clear(); }
  void add(const Cell* c) { entries_.push_back({c, 0}); }
  void seal() {
    std::sort(entries_.begin(), entries_.end(),
              [](const Entry& a, const Entry& b) { return std::less<>{}(a.cell, b.cell); });
  }

  /// The references counted to c so far (count_reference_to), or nullptr if c is no held cell.
  std::uint64_t* referrers(const Cell* c) {
    const auto it = std::lower_bound(
        entries_.begin(), entries_.end(), c,
        [](const Entry& e, const Cell* x) { return std::less<>{}(e.cell, x); });
    return it != entries_.end() && it->cell == c ? &it->referrers : nullptr;
  }
  bool holds(const Cell* c) { return referrers(c) != nullptr; }
  /// Counts one more reference to c; false (and nothing counted) if c is no held cell.
  bool count_reference_to(const Cell* c) {
    std::uint64_t* n = referrers(c);
    if (n != nullptr) ++*n;
    return n != nullptr;
  }

 private:
  struct Entry {
    const Cell* cell;
    std::uint64_t referrers;
  };
  std::vector<Entry> entries_;
};

}  // namespace cyclefuzz
