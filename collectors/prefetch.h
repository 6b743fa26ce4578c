// Prefetching for the collections' worklists.
//
// A collection of a large live heap is a walk over cells scattered far beyond the caches: each
// step reads a cell and then the counts of the cells it refers to, and a depth-first walk in
// pointer order waits for each of those misses in turn. The collectors instead keep their
// worklists as vectors processed in order (first in, first out) and ask for the cells a few steps
// ahead, so that many misses are under way at once. Prefetching is only a hint: it changes no
// result, and AddressSanitizer does not check it (a prefetch of a freed cell is not a read).
#pragma once

#include <cstddef>
#include <vector>

namespace cyclefuzz {

/// Heaps of more cells than this (about 400 KiB of them) are walked with prefetching. Measured on
/// the benchmark machine (L2 1 MiB): a collection of random4 at 10^4 (1 MiB of cells) is about a
/// tenth faster with it, a generated trace whose heap holds a thousand objects a tenth slower.
inline constexpr std::size_t kPrefetchAbove = std::size_t{1} << 12;

/// Asks for the cache line holding `p`, to be written soon.
inline void prefetch(const void* p) { __builtin_prefetch(p, 1, 3); }

/// Calls visit(queue[i]) for i from `next` on, while `visit` may append to `queue` (a breadth-first
/// walk when it appends the referents it finds). Meanwhile it asks for what `visit` will read:
/// fetch_cell(c) for the cell `kCellsAhead` places ahead (its references), and
/// fetch_referents(c) for the cell `kReferentsAhead` places ahead, whose references have arrived
/// by then (the counts and colours of the cells it refers to).
///
/// Without `fetch_ahead` it only walks: on a heap that fits in the caches the prefetches are
/// instructions for nothing (about a tenth of a collection of a thousand objects).
///
/// With `Keep::Visited`, `queue` ends up holding everything visited; with `Keep::Nothing`, what
/// was visited is dropped from the front as the walk goes, so that the queue holds about as much
/// as the walk's frontier (a chain of a million is a queue of one, not a vector of a million,
/// whose fresh memory costs more than the walk: the kernel's page faults).
enum class Keep { Visited, Nothing };

template <Keep keep, class Cell, class Visit, class FetchCell, class FetchReferents>
void drain(std::vector<Cell*>& queue, std::size_t next, bool fetch_ahead, Visit visit,
           FetchCell fetch_cell, FetchReferents fetch_referents) {
  constexpr std::size_t kCellsAhead = 16;
  constexpr std::size_t kReferentsAhead = 8;
  constexpr std::size_t kDropAfter = 4096;
  for (; next < queue.size(); ++next) {
    if constexpr (keep == Keep::Nothing) {
      if (next >= kDropAfter && next * 2 >= queue.size()) {
        queue.erase(queue.begin(), queue.begin() + static_cast<std::ptrdiff_t>(next));
        next = 0;
      }
    }
    if (fetch_ahead) {
      if (next + kCellsAhead < queue.size()) fetch_cell(queue[next + kCellsAhead]);
      if (next + kReferentsAhead < queue.size()) fetch_referents(queue[next + kReferentsAhead]);
    }
    visit(queue[next]);
  }
  if constexpr (keep == Keep::Nothing) queue.clear();
}

}  // namespace cyclefuzz
