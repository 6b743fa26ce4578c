#include "collectors/mutants/mutants.h"

#include "collectors/trial_deletion/trial_deletion.h"

namespace cyclefuzz {

namespace {

// ================================================================================================
// Trial deletion
// ================================================================================================

/// Scan finds an object externally reachable and recolours it and everything below it black, but
/// never gives back the counts MarkGray took away. The next decrement that should leave such an
/// object alive brings its count to zero: a premature free, long after the collection that broke
/// it. (The class of bug: a phase that undoes only part of what an earlier phase did.)
class ScanForgetsRestore final : public TrialDeletion {
 public:
  using TrialDeletion::TrialDeletion;

 protected:
  void scan_black(Cell* s) override {
    recolor(s, Color::Black);
    std::vector<Cell*> stack{s};
    while (!stack.empty()) {
      Cell* c = stack.back();
      stack.pop_back();
      for (Cell* t : c->references) {
        // BUG: the correct ScanBlack increments t's count here.
        if (t->color != Color::Black) {
          recolor(t, Color::Black);
          stack.push_back(t);
        }
      }
    }
  }
};

template <class Mutant>
CollectorEntry mutant(const char* name, const char* summary) {
  return {std::string("mutant:") + name, summary,
          [](FreeListener& l, const CollectorOptions&) { return std::make_unique<Mutant>(l); },
          false};
}

}  // namespace

const std::vector<CollectorEntry>& mutant_catalogue() {
  static const std::vector<CollectorEntry> kMutants = {
      mutant<ScanForgetsRestore>("scan-forgets-restore",
                                 "trial deletion whose ScanBlack does not restore counts"),
  };
  return kMutants;
}

}  // namespace cyclefuzz
