#include "language/op.h"

#include <algorithm>
#include <iterator>

namespace cyclefuzz {

namespace {

constexpr OpKindInfo kOpKinds[] = {
    {OpKind::New, "new", "new NAME [list|record|dict|cell|acyclic|set|tuple NAME...]", 1},
    {OpKind::Link, "link", "link FROM TO", 2},
    {OpKind::Unlink, "unlink", "unlink FROM TO", 2},
    {OpKind::Root, "root", "root NAME", 1},
    {OpKind::Unroot, "unroot", "unroot NAME", 1},
    {OpKind::Collect, "collect", "collect [GENERATION]", 0},
    {OpKind::Threshold, "threshold", "threshold T0 T1 T2", 0},
    {OpKind::Freeze, "freeze", "freeze", 0},
    {OpKind::Unfreeze, "unfreeze", "unfreeze", 0},
    {OpKind::Disable, "disable", "disable", 0},
    {OpKind::Enable, "enable", "enable", 0},
    {OpKind::Finalizer, "finalizer",
     "finalizer NAME [STEP...], each STEP one of: new NAME, link FROM TO, resurrect [NAME], "
     "collect, unlink FROM TO, deref WEAK, release [NAME], finalizer NAME, "
     "weak WEAK NAME [callback] in HOLDER, entry MAP KEY VALUE, unentry MAP KEY",
     1},
    {OpKind::Release, "release", "release", 0},
    {OpKind::Weak, "weak", "weak WEAK NAME [callback [STEP...]] [in HOLDER]", 1},
    {OpKind::Deref, "deref", "deref WEAK", 0},
    {OpKind::Entry, "entry", "entry MAP KEY VALUE", 3},
    {OpKind::Unentry, "unentry", "unentry MAP KEY", 2},
    {OpKind::Build, "build", "build NAME chain|ring|tree|fan|clique|star SIZE", 1},
};

constexpr bool in_kind_order() {
  for (std::size_t i = 0; i < std::size(kOpKinds); ++i) {
    if (static_cast<std::size_t>(kOpKinds[i].kind) != i) return false;
  }
  return true;
}
static_assert(in_kind_order() && std::size(kOpKinds) == static_cast<std::size_t>(OpKind::Build) + 1,
              "kOpKinds has one row per OpKind, in OpKind's order");

}  // namespace

const OpKindInfo& info(OpKind kind) { return kOpKinds[static_cast<std::size_t>(kind)]; }
std::span<const OpKindInfo> op_kinds() { return kOpKinds; }

namespace {
constexpr std::pair<ObjectKind, const char*> kObjectKinds[] = {
    {ObjectKind::List, "list"},   {ObjectKind::Record, "record"}, {ObjectKind::Dict, "dict"},
    {ObjectKind::Cell, "cell"},   {ObjectKind::Tuple, "tuple"},   {ObjectKind::Acyclic, "acyclic"},
    {ObjectKind::Set, "set"},
};
}  // namespace

const char* keyword(ObjectKind kind) {
  for (const auto& [k, word] : kObjectKinds) {
    if (k == kind) return word;
  }
  return "?";
}

std::optional<ObjectKind> object_kind_named(std::string_view word) {
  for (const auto& [kind, w] : kObjectKinds) {
    if (word == w) return kind;
  }
  return std::nullopt;
}

namespace {
constexpr std::pair<Shape, const char*> kShapes[] = {
    {Shape::Chain, "chain"}, {Shape::Ring, "ring"},     {Shape::Tree, "tree"},
    {Shape::Fan, "fan"},     {Shape::Clique, "clique"}, {Shape::Star, "star"},
};
}  // namespace

const char* keyword(Shape shape) {
  for (const auto& [s, word] : kShapes) {
    if (s == shape) return word;
  }
  return "?";
}

std::optional<Shape> shape_named(std::string_view word) {
  for (const auto& [shape, w] : kShapes) {
    if (word == w) return shape;
  }
  return std::nullopt;
}

const char* keyword(StepKind kind) {
  switch (kind) {
    case StepKind::New:
      return "new";
    case StepKind::Link:
      return "link";
    case StepKind::Resurrect:
      return "resurrect";
    case StepKind::Collect:
      return "collect";
    case StepKind::Unlink:
      return "unlink";
    case StepKind::Deref:
      return "deref";
    case StepKind::Release:
      return "release";
    case StepKind::Finalizer:
      return "finalizer";
    case StepKind::Weak:
      return "weak";
    case StepKind::Entry:
      return "entry";
    case StepKind::Unentry:
      return "unentry";
  }
  return "?";
}

std::string bad_generation(std::string_view shown) {
  return "bad generation '" + std::string(shown) + "' (expected 0, 1 or " +
         std::to_string(kOldestGeneration) + ")";
}

std::string bad_threshold(std::string_view shown) {
  return "bad threshold '" + std::string(shown) + "' (expected a number from 0 to " +
         std::to_string(kMaxThreshold) + ")";
}

std::string bad_build_size(std::string_view shown) {
  return "bad size '" + std::string(shown) + "' (expected 2 to " + std::to_string(kMaxBuild) +
         " objects, or to " + std::to_string(kMaxClique) + " in a clique)";
}

std::string Names::operator[](std::uint32_t id) const {
  if (id < names_.size()) return names_[id];
  const auto after = std::upper_bound(builds_.begin(), builds_.end(), id,
                                      [](ObjectId x, const Build& b) { return x < b.first; });
  if (after != builds_.begin()) {
    const Build& b = *std::prev(after);
    if (id > b.first && id - b.first < b.size) return member((*this)[b.first], id - b.first);
  }
  return prefix_ + std::to_string(id);
}

std::vector<ObjectId> allocated_by(const Op& op) {
  std::vector<ObjectId> allocated;
  for (const Step& step : op.steps) {
    if (step.kind == StepKind::New) allocated.push_back(step.a);
  }
  return allocated;
}

std::size_t weak_references_taken(const Op& op) {
  const auto takes = [](const Step& s) { return s.kind == StepKind::Weak; };
  return (op.kind == OpKind::Weak ? 1 : 0) +
         static_cast<std::size_t>(std::count_if(op.steps.begin(), op.steps.end(), takes));
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
    case OpKind::Weak:
      if (op.kind == OpKind::Weak) {
        line += ' ' + weak_names[op.weak] + ' ' + names[op.a] + (op.option ? " callback" : "");
      } else {
        line += ' ' + names[op.a];
      }
      for (const Step& step : op.steps) {
        line += std::string(" ") + keyword(step.kind);
        switch (step.kind) {
          case StepKind::Link:
          case StepKind::Unlink:
          case StepKind::Unentry:
            line += ' ' + names[step.a] + ' ' + names[step.b];
            break;
          case StepKind::Entry:
            line += ' ' + names[step.a] + ' ' + names[step.b] + ' ' + names[step.c];
            break;
          case StepKind::New:
          case StepKind::Finalizer:
            line += ' ' + names[step.a];
            break;
          case StepKind::Resurrect:
          case StepKind::Release:  // (of the dying object itself when no name follows)
            if (step.a != op.a) line += ' ' + names[step.a];
            break;
          case StepKind::Deref:
            line += ' ' + weak_names[step.weak];
            break;
          case StepKind::Weak:
            line += ' ' + weak_names[step.weak] + ' ' + names[step.a] +
                    (step.callback ? " callback" : "") + " in " + names[step.b];
            break;
          case StepKind::Collect:
            break;
        }
      }
      if (op.kind == OpKind::Weak && op.held) line += " in " + names[op.b];
      return line;
    case OpKind::Deref:
      return line + ' ' + weak_names[op.weak];
    case OpKind::New:
      line += ' ' + names[op.a];
      if (op.object_kind != ObjectKind::List) line += std::string(" ") + keyword(op.object_kind);
      for (ObjectId x : op.items) line += ' ' + names[x];
      return line;
    case OpKind::Build:
      return line + ' ' + names[op.a] + ' ' + keyword(op.shape) + ' ' + std::to_string(op.size);
    default:
      break;
  }
  for_each_own_object(op, [&](ObjectId x, Slot) { line += ' ' + names[x]; });
  return line;
}

}  // namespace cyclefuzz
