#include "collectors/collector.h"

namespace cyclefuzz {

std::optional<std::size_t> apply(Collector& collector, const Op& op) {
  switch (op.kind) {
    case OpKind::New:
      collector.allocate(op.a);
      break;
    case OpKind::Link:
      collector.link(op.a, op.b);
      break;
    case OpKind::Unlink:
      collector.unlink(op.a, op.b);
      break;
    case OpKind::Root:
      collector.root(op.a);
      break;
    case OpKind::Unroot:
      collector.unroot(op.a);
      break;
    case OpKind::Collect:
      return collector.collect(op.generation);
    case OpKind::Threshold:
      collector.set_thresholds(op.thresholds);
      break;
    case OpKind::Freeze:
      collector.freeze();
      break;
    case OpKind::Unfreeze:
      collector.unfreeze();
      break;
    case OpKind::Disable:
      collector.set_automatic_collection(false);
      break;
    case OpKind::Enable:
      collector.set_automatic_collection(true);
      break;
  }
  return std::nullopt;
}

}  // namespace cyclefuzz
