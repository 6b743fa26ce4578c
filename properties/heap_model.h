// The model of RapidCheck's stateful tests: the heap as the oracle sees it, and one command
// type, "apply an op", generated only over objects the model says the mutator can reach.
//
// Commands name objects by *label*, not by allocation index: when the shrinker removes a `new`,
// the objects allocated after it keep their labels, so the rest of the sequence still means the
// same thing (and a command naming the removed object fails its precondition and is regenerated
// or dropped).
#pragma once

#include <rapidcheck.h>
#include <rapidcheck/state.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "runners/generator.h"
#include "oracle/oracle.h"

namespace cyclefuzz::properties {

using Label = std::uint32_t;

/// An op whose objects and weak references are labels, not ids: what a command stores. (Shown
/// with default Names, a label reads as its name: "o3", "w3".)
struct LabeledOp {
  Op op;
};

/// The name a label gets in a counterexample trace ("o3"; "w3" for a weak reference).
std::string label_name(Label label);
std::string weak_label_name(Label label);

class HeapModel {
 public:
  /// The op over allocation indices that `op` means in this heap, or nothing if it names an
  /// object that does not exist or breaks a rule of the language.
  std::optional<Op> resolve(const LabeledOp& op) const;
  /// The same op over labels.
  LabeledOp label(const Op& op) const;
  /// Pre: resolve(op) succeeds.
  void apply(const LabeledOp& op);

  const Oracle& heap() const { return heap_; }

 private:
  Oracle heap_;
  std::vector<Label> label_of_;  // by object id
  std::unordered_map<Label, ObjectId> id_of_;
  Label next_label_ = 0;
  std::vector<Label> weak_label_of_;  // by weak reference
  std::unordered_map<Label, WeakId> weak_id_of_;
  Label next_weak_label_ = 0;
};

/// Choices drawn from RapidCheck, so that each one shrinks towards 0, the simplest option.
class RapidCheckChoices final : public Choices {
 public:
  std::size_t choose(std::size_t n) override {
    return n <= 1 ? 0 : *rc::gen::inRange<std::size_t>(0, n);
  }
};

class PropertyRun;

/// The one command: an op drawn from the shared distribution (runners/generator.h).
class HeapCommand final : public rc::state::Command<HeapModel, PropertyRun> {
 public:
  explicit HeapCommand(const HeapModel& model);
  void checkPreconditions(const HeapModel& model) const override;
  void apply(HeapModel& model) const override;
  void run(const HeapModel& model, PropertyRun& run) const override;
  void show(std::ostream& os) const override;

 private:
  LabeledOp op_;
};

}  // namespace cyclefuzz::properties
