// A cell's references, kept inside the cell while there are few of them.
//
// Objects mostly hold a handful of references. Kept inline, they share the cell's cache lines, so
// a collection that visits a cell and its references takes one cache miss where a separately
// allocated array took two, and allocating or freeing a cell is one allocation, not two. The
// cell is still one `new` of its own: a premature free stays a use-after-free AddressSanitizer
// sees.
#pragma once

#include <boost/container/small_vector.hpp>

namespace cyclefuzz {

template <class Cell>
using References = boost::container::small_vector<Cell*, 4>;

}  // namespace cyclefuzz
