#include "language/op.h"

namespace cyclefuzz {

int object_arity(const Op& op) {
  switch (op.kind) {
    case OpKind::Link:
    case OpKind::Unlink:
      return 2;
    case OpKind::Finalizer:
    case OpKind::New:
    case OpKind::Root:
    case OpKind::Unroot:
    case OpKind::Weak:
      return 1;
    case OpKind::Collect:
    case OpKind::Threshold:
    case OpKind::Freeze:
    case OpKind::Unfreeze:
    case OpKind::Disable:
    case OpKind::Enable:
    case OpKind::Release:
    case OpKind::Deref:
      return 0;
  }
  return 0;
}

const char* keyword(OpKind kind) {
  switch (kind) {
    case OpKind::New:
      return "new";
    case OpKind::Link:
      return "link";
    case OpKind::Unlink:
      return "unlink";
    case OpKind::Root:
      return "root";
    case OpKind::Unroot:
      return "unroot";
    case OpKind::Collect:
      return "collect";
    case OpKind::Threshold:
      return "threshold";
    case OpKind::Freeze:
      return "freeze";
    case OpKind::Unfreeze:
      return "unfreeze";
    case OpKind::Disable:
      return "disable";
    case OpKind::Enable:
      return "enable";
    case OpKind::Finalizer:
      return "finalizer";
    case OpKind::Release:
      return "release";
    case OpKind::Weak:
      return "weak";
    case OpKind::Deref:
      return "deref";
  }
  return "?";
}

std::string Names::operator[](std::uint32_t id) const {
  return id < names_.size() ? names_[id] : prefix_ + std::to_string(id);
}

std::vector<ObjectId> allocated_by(const Op& op) {
  std::vector<ObjectId> allocated;
  for (const Step& step : op.steps) {
    if (step.kind == StepKind::New) allocated.push_back(step.a);
  }
  return allocated;
}

std::string show(const Op& op, const Names& names, const Names& weak_names) {
  std::string line = keyword(op.kind);
  switch (op.kind) {
    case OpKind::Collect:
      if (op.generation != kOldestGeneration) line += ' ' + std::to_string(op.generation);
      return line;
    case OpKind::Threshold:
      for (std::uint32_t t : op.thresholds) line += ' ' + std::to_string(t);
      return line;
    case OpKind::Finalizer:
      line += ' ' + names[op.a];
      for (const Step& step : op.steps) {
        switch (step.kind) {
          case StepKind::New:
            line += " new " + names[step.a];
            break;
          case StepKind::Link:
            line += " link " + names[step.a] + ' ' + names[step.b];
            break;
          case StepKind::Resurrect:
            line += step.a == op.a ? " resurrect" : " resurrect " + names[step.a];
            break;
          case StepKind::Collect:
            line += " collect";
            break;
        }
      }
      return line;
    case OpKind::Weak:
      return line + ' ' + weak_names[op.weak] + ' ' + names[op.a] + (op.option ? " callback" : "");
    case OpKind::Deref:
      return line + ' ' + weak_names[op.weak];
    default:
      break;
  }
  const int arity = object_arity(op);
  if (arity >= 1) line += ' ' + names[op.a];
  if (arity >= 2) line += ' ' + names[op.b];
  return line;
}

}  // namespace cyclefuzz
