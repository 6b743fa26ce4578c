#include "properties/heap_model.h"

#include "properties/property_run.h"

namespace cyclefuzz::properties {

std::string label_name(Label label) { return Names::generated(label); }
std::string weak_label_name(Label label) { return Names('w')[label]; }

std::optional<Op> HeapModel::resolve(const LabeledOp& labeled) const {
  Op resolved = labeled.op;
  const Op& op = labeled.op;
  if (op.kind == OpKind::Weak) {
    if (weak_id_of_.count(op.weak) != 0) return std::nullopt;
    resolved.weak = static_cast<WeakId>(heap_.weak_count());
  } else if (op.kind == OpKind::Deref) {
    const auto w = weak_id_of_.find(op.weak);
    if (w == weak_id_of_.end()) return std::nullopt;
    resolved.weak = w->second;
  }
  // The weak references its steps take get the next ids after the op's own; their labels must
  // be new.
  auto next_weak = static_cast<WeakId>(heap_.weak_count() + (op.kind == OpKind::Weak ? 1 : 0));
  for (Step& step : resolved.steps) {
    if (step.kind == StepKind::Weak) {
      if (weak_id_of_.count(step.weak) != 0) return std::nullopt;
      step.weak = next_weak++;
    }
    if (step.kind != StepKind::Deref) continue;
    const auto w = weak_id_of_.find(step.weak);
    if (w == weak_id_of_.end()) return std::nullopt;
    step.weak = w->second;
  }
  // The objects this op allocates get the next ids; their labels must be new.
  std::unordered_map<Label, ObjectId> fresh;
  const auto allocate = [&](Label label) -> std::optional<ObjectId> {
    if (id_of_.count(label) != 0 || fresh.count(label) != 0) return std::nullopt;
    const auto id = static_cast<ObjectId>(heap_.object_count() + fresh.size());
    fresh.emplace(label, id);
    return id;
  };
  const auto id_of = [&](Label label) -> std::optional<ObjectId> {
    if (const auto it = id_of_.find(label); it != id_of_.end()) return it->second;
    if (const auto it = fresh.find(label); it != fresh.end()) return it->second;
    return std::nullopt;
  };
  bool exists = true;
  for_each_object(resolved, [&](ObjectId& x, Slot slot) {
    const auto id = slot == Slot::Allocates ? allocate(x) : id_of(x);
    exists = exists && id.has_value();
    x = id.value_or(0);
  });
  // A build's members: the labels after its first one, new too.
  for (std::uint32_t k = 1; exists && k < objects_made(op); ++k) {
    exists = allocate(op.a + k).has_value();
  }
  if (!exists) return std::nullopt;
  if (heap_.refuse(resolved)) return std::nullopt;
  return resolved;
}

LabeledOp HeapModel::label(const Op& op) const {
  LabeledOp labeled{op};
  Op& out = labeled.op;
  if (op.kind == OpKind::Weak) out.weak = next_weak_label_;
  if (op.kind == OpKind::Deref) out.weak = weak_label_of_[op.weak];
  // Weak references its steps take (ids from weak_count() on, after the op's own) get the next.
  Label next_weak = next_weak_label_ + (op.kind == OpKind::Weak ? 1 : 0);
  for (Step& step : out.steps) {
    if (step.kind == StepKind::Deref) step.weak = weak_label_of_[step.weak];
    if (step.kind == StepKind::Weak) step.weak = next_weak++;
  }
  // Objects the op allocates (ids from object_count() on) get the next labels.
  const auto label_of = [&](ObjectId x) {
    return x < label_of_.size() ? label_of_[x]
                                : next_label_ + static_cast<Label>(x - heap_.object_count());
  };
  for_each_object(out, [&](ObjectId& x, Slot) { x = label_of(x); });
  return labeled;
}

void HeapModel::apply(const LabeledOp& labeled) {
  const Op resolved = *resolve(labeled);
  const Op& op = labeled.op;
  const auto name = [this](Label label, ObjectId id) {
    label_of_.push_back(label);
    id_of_.emplace(label, id);
    next_label_ = std::max(next_label_, label + 1);
  };
  // (The same walk over both, so that their slots line up.)
  std::vector<ObjectId> allocated;
  for_each_object(resolved, [&](ObjectId id, Slot slot) {
    if (slot == Slot::Allocates) allocated.push_back(id);
  });
  std::size_t next = 0;
  for_each_object(op, [&](Label label, Slot slot) {
    if (slot == Slot::Allocates) name(label, allocated[next++]);
  });
  for (std::uint32_t k = 1; k < objects_made(op); ++k) name(op.a + k, resolved.a + k);
  const auto name_weak = [this](Label label, WeakId id) {
    weak_label_of_.push_back(label);
    weak_id_of_.emplace(label, id);
    next_weak_label_ = std::max(next_weak_label_, label + 1);
  };
  if (op.kind == OpKind::Weak) name_weak(op.weak, resolved.weak);
  for (std::size_t i = 0; i < op.steps.size(); ++i) {
    if (op.steps[i].kind == StepKind::Weak) name_weak(op.steps[i].weak, resolved.steps[i].weak);
  }
  heap_.apply(resolved);
}

HeapCommand::HeapCommand(const HeapModel& model) {
  RapidCheckChoices choices;
  Op op = random_op(model.heap(), choices);
  // No builds here: RapidCheck copies the model for every command it draws, and the model's
  // oracle holds every object ever made, so a build's hundreds of objects made the properties
  // three times slower. `check` and the fuzzers draw them.
  if (op.kind == OpKind::Build) op = Op::make_new(op.a);
  op_ = model.label(op);
}

void HeapCommand::checkPreconditions(const HeapModel& model) const {
  RC_PRE(model.resolve(op_).has_value());
}

void HeapCommand::apply(HeapModel& model) const { model.apply(op_); }

void HeapCommand::run(const HeapModel& model, PropertyRun& run) const {
  run.step(*model.resolve(op_), op_.op);
}

// (Names without entries show label l as "o<l>" and "w<l>": label_name, weak_label_name.)
void HeapCommand::show(std::ostream& os) const { os << cyclefuzz::show(op_.op, Names()); }

}  // namespace cyclefuzz::properties
