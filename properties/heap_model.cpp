#include "properties/heap_model.h"

#include "properties/property_run.h"

namespace cyclefuzz::properties {

std::string label_name(Label label) { return Names::generated(label); }
std::string weak_label_name(Label label) { return Names('w')[label]; }

std::optional<Op> HeapModel::resolve(const LabeledOp& op) const {
  Op resolved{op.kind, 0, 0, op.generation, op.thresholds, 0, op.option, op.collects};
  if (op.kind == OpKind::Weak) {
    if (weak_id_of_.count(op.weak) != 0) return std::nullopt;
    resolved.weak = static_cast<WeakId>(heap_.weak_count());
  } else if (op.kind == OpKind::Deref) {
    const auto w = weak_id_of_.find(op.weak);
    if (w == weak_id_of_.end()) return std::nullopt;
    resolved.weak = w->second;
  }
  if (op.kind == OpKind::New) {
    if (id_of_.count(op.a) != 0) return std::nullopt;
    resolved.a = static_cast<ObjectId>(heap_.object_count());
  } else {
    const int arity = object_arity(resolved);
    const auto a = id_of_.find(op.a);
    const auto b = id_of_.find(op.b);
    if (arity >= 1 && a == id_of_.end()) return std::nullopt;
    if (arity >= 2 && b == id_of_.end()) return std::nullopt;
    if (arity >= 1) resolved.a = a->second;
    if (arity >= 2) resolved.b = b->second;
  }
  if (heap_.refuse(resolved)) return std::nullopt;
  return resolved;
}

LabeledOp HeapModel::label(const Op& op) const {
  LabeledOp labeled{op.kind, 0, 0, op.generation, op.thresholds, 0, op.option, op.collects};
  if (op.kind == OpKind::Weak) labeled.weak = next_weak_label_;
  if (op.kind == OpKind::Deref) labeled.weak = weak_label_of_[op.weak];
  const int arity = object_arity(op);
  if (op.kind == OpKind::New) {
    labeled.a = next_label_;
  } else {
    if (arity >= 1) labeled.a = label_of_[op.a];
    if (arity >= 2) labeled.b = label_of_[op.b];
  }
  return labeled;
}

void HeapModel::apply(const LabeledOp& op) {
  const Op resolved = *resolve(op);
  if (op.kind == OpKind::New) {
    label_of_.push_back(op.a);
    id_of_.emplace(op.a, resolved.a);
    next_label_ = std::max(next_label_, op.a + 1);
  }
  if (op.kind == OpKind::Weak) {
    weak_label_of_.push_back(op.weak);
    weak_id_of_.emplace(op.weak, resolved.weak);
    next_weak_label_ = std::max(next_weak_label_, op.weak + 1);
  }
  heap_.apply(resolved);
}

HeapCommand::HeapCommand(const HeapModel& model) {
  RapidCheckChoices choices;
  op_ = model.label(random_op(model.heap(), choices));
}

void HeapCommand::checkPreconditions(const HeapModel& model) const {
  RC_PRE(model.resolve(op_).has_value());
}

void HeapCommand::apply(HeapModel& model) const { model.apply(op_); }

void HeapCommand::run(const HeapModel& model, PropertyRun& run) const {
  run.step(*model.resolve(op_), label_name(op_.a));
}

void HeapCommand::show(std::ostream& os) const {
  Names names;
  const Op op{op_.kind, 0, 1, op_.generation, op_.thresholds, 0, op_.option, op_.collects};
  names.push_back(label_name(op_.a));
  names.push_back(label_name(op_.b));
  const Names weak_names({weak_label_name(op_.weak)}, 'w');
  os << cyclefuzz::show(op, names, weak_names);
}

}  // namespace cyclefuzz::properties
