#include "bench/shapes.h"

#include <random>

namespace cyclefuzz::bench {

const char* name(Shape shape) {
  switch (shape) {
    case Shape::Pairs:
      return "pairs";
    case Shape::Ring:
      return "ring";
    case Shape::LiveChain:
      return "live-chain";
    case Shape::Random4:
      return "random4";
    case Shape::Fan:
      return "fan";
  }
  return "?";
}

bool is_garbage(Shape shape) { return shape == Shape::Pairs || shape == Shape::Ring; }

std::vector<Op> build_shape(Shape shape, std::size_t n) {
  std::vector<Op> ops;
  const auto id = [](std::size_t i) { return static_cast<ObjectId>(i); };
  switch (shape) {
    case Shape::Pairs:
      for (std::size_t i = 0; i + 1 < n; i += 2) {
        ops.insert(ops.end(), {Op::make_new(id(i)), Op::make_new(id(i + 1)),
                               Op::link(id(i), id(i + 1)), Op::link(id(i + 1), id(i)),
                               Op::unroot(id(i)), Op::unroot(id(i + 1))});
      }
      break;
    case Shape::Ring:
    case Shape::LiveChain:
    case Shape::Random4: {
      for (std::size_t i = 0; i < n; ++i) ops.push_back(Op::make_new(id(i)));
      const bool closed = shape != Shape::LiveChain;
      for (std::size_t i = 0; i < n; ++i) {
        if (i + 1 < n || closed) ops.push_back(Op::link(id(i), id((i + 1) % n)));
      }
      if (shape == Shape::Random4) {
        std::mt19937_64 random(4);
        std::uniform_int_distribution<std::size_t> any(0, n - 1);
        for (std::size_t i = 0; i < n; ++i) {
          for (int k = 0; k < 3; ++k) ops.push_back(Op::link(id(i), id(any(random))));
        }
      }
      for (std::size_t i = shape == Shape::Ring ? 0 : 1; i < n; ++i) {
        ops.push_back(Op::unroot(id(i)));
      }
      break;
    }
    case Shape::Fan:
      ops.push_back(Op::make_new(0));
      for (std::size_t i = 1; i <= n; ++i) {
        ops.insert(ops.end(), {Op::make_new(id(i)), Op::link(0, id(i)), Op::unroot(id(i))});
      }
      break;
  }
  return ops;
}

}  // namespace cyclefuzz::bench
