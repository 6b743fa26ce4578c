// The heap shapes of the collection benchmarks, as op sequences: collectors, the oracle and the
// checker all build exactly the same heap from them, and bench/vs-cpython builds the same
// shapes out of CPython objects.
#pragma once

#include <array>
#include <cstddef>
#include <vector>

#include "language/op.h"

namespace cyclefuzz::bench {

enum class Shape {
  Pairs,      // n/2 two-cycles, all garbage
  Ring,       // one garbage cycle of n objects
  LiveChain,  // n objects in a chain, the first one rooted
  Random4,    // n objects, each with four references: to the next one (the last to the first,
              // so that all are reachable from the first, which is rooted) and to three at random
  Fan,        // one rooted object referring to n others
};

inline constexpr std::array<Shape, 5> kShapes = {Shape::Pairs, Shape::Ring, Shape::LiveChain,
                                                 Shape::Random4, Shape::Fan};

/// "pairs", "ring", "live-chain", "random4", "fan".
const char* name(Shape shape);

/// Whether a full collection frees the whole shape.
bool is_garbage(Shape shape);

/// The ops that build the shape with n objects (n + 1 for fan, the extra one referring to the
/// others) and drop every external reference the definition does not keep. The mutator keeps
/// each object rooted until it is linked in, as a program holds what it is building.
std::vector<Op> build_shape(Shape shape, std::size_t n);

}  // namespace cyclefuzz::bench
