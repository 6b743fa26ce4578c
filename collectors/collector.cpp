#include "collectors/collector.h"

namespace cyclefuzz {

void broken_invariant(const char* collector, ObjectId id, const std::string& what) {
  throw BrokenInvariant(std::string(collector) + ": object " + std::to_string(id) + " " + what);
}

void Collector::clear_weak_references(WeakReferences& weak, const std::vector<ObjectId>& targets,
                                      const std::function<bool(ObjectId)>& garbage) {
  std::vector<WeakId> cleared;
  for (ObjectId target : targets) {
    for (WeakId w : weak.clear(target)) {
      report_weak_cleared(w);
      cleared.push_back(w);
    }
  }
  for (WeakId w : cleared) {
    const std::optional<ObjectId> holder = weak.holder(w);
    if (weak.has_callback(w) && !(holder && garbage && garbage(*holder))) report_weak_callback(w);
  }
}

void Collector::clear_held_weak_references(WeakReferences& weak, ObjectId holder) {
  for (WeakId w : weak.clear_held_by(holder)) report_weak_cleared(w);
}

std::optional<std::size_t> apply(Collector& collector, const Op& op,
                                 std::optional<ObjectId> replaced) {
  switch (op.kind) {
    case OpKind::New:
      collector.allocate(op.a);
      if (op.object_kind != ObjectKind::List) collector.set_kind(op.a, op.object_kind);
      for (ObjectId item : op.items) collector.link(op.a, item);
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
    case OpKind::Finalizer:
      collector.set_finalizer(op.a);
      break;
    case OpKind::Weak:
      collector.weak_ref(op.weak, op.a, op.option);
      if (op.held && collector.capabilities().weak_reference_holders) {
        collector.weak_held_by(op.weak, op.b);
      }
      break;
    case OpKind::Entry:
      if (collector.capabilities().map_entries != MapEntries::Harness) {
        collector.set_entry(op.a, op.b, op.c);
      } else {
        collector.link(op.a, op.c);
        if (replaced) collector.unlink(op.a, *replaced);
      }
      break;
    case OpKind::Unentry:
      if (collector.capabilities().map_entries != MapEntries::Harness) {
        collector.remove_entry(op.a, op.b);
      } else if (replaced) {
        collector.unlink(op.a, *replaced);
      }
      break;
    case OpKind::Build:
      for_each_part_of_build(
          op, [&collector](const Op& part) { apply(collector, part, std::nullopt); });
      break;
    case OpKind::Release:  // the program's list is the Session's (checker/session.h)
    case OpKind::Deref:    // a question the Session asks (Collector::deref)
      break;
  }
  return std::nullopt;
}

}  // namespace cyclefuzz
