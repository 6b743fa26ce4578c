#include "oracle/op.h"

namespace cyclefuzz {

int object_arity(OpKind kind) {
  switch (kind) {
    case OpKind::Link:
    case OpKind::Unlink:
      return 2;
    case OpKind::New:
    case OpKind::Root:
    case OpKind::Unroot:
      return 1;
    case OpKind::Collect:
    case OpKind::Threshold:
    case OpKind::Freeze:
    case OpKind::Unfreeze:
    case OpKind::Disable:
    case OpKind::Enable:
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
  }
  return "?";
}

std::string Names::operator[](ObjectId id) const {
  return id < names_.size() ? names_[id] : generated(id);
}

std::string show(const Op& op, const Names& names) {
  std::string line = keyword(op.kind);
  const int arity = object_arity(op.kind);
  if (arity >= 1) line += ' ' + names[op.a];
  if (arity >= 2) line += ' ' + names[op.b];
  if (op.kind == OpKind::Collect && op.generation != kOldestGeneration) {
    line += ' ' + std::to_string(op.generation);
  }
  if (op.kind == OpKind::Threshold) {
    for (std::uint32_t t : op.thresholds) line += ' ' + std::to_string(t);
  }
  return line;
}

}  // namespace cyclefuzz
