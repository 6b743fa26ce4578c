#include "collectors/registry.h"

#include "collectors/generational/generational.h"
#include "collectors/mark_sweep/mark_sweep.h"
#include "collectors/mutants/mutants.h"
#include "collectors/trial_deletion/trial_deletion.h"

namespace cyclefuzz {

namespace {

std::vector<CollectorEntry> builtin_collectors() {
  return {
      {"mark-sweep", "naive mark-sweep: no counts, every collection full",
       [](FreeListener& l, const CollectorOptions&) { return std::make_unique<MarkSweep>(l); },
       true},
      {"trial-deletion", "reference counting + Bacon-Rajan synchronous cycle collection",
       [](FreeListener& l, const CollectorOptions&) { return std::make_unique<TrialDeletion>(l); },
       true},
      {"generational", "reference counting + CPython-style three-generation cycle collector",
       [](FreeListener& l, const CollectorOptions& o) {
         return std::make_unique<Generational>(l, o);
       },
       true},
  };
}

}  // namespace

const std::vector<CollectorEntry>& collector_catalogue() {
  static const std::vector<CollectorEntry> kCatalogue = [] {
    std::vector<CollectorEntry> all = builtin_collectors();
    for (const CollectorEntry& m : mutant_catalogue()) all.push_back(m);
    return all;
  }();
  return kCatalogue;
}

const CollectorEntry* find_collector(std::string_view name) {
  for (const CollectorEntry& entry : collector_catalogue()) {
    if (entry.name == name) return &entry;
  }
  return nullptr;
}

std::vector<std::string> default_collector_names() {
  std::vector<std::string> names;
  for (const CollectorEntry& entry : collector_catalogue()) {
    if (entry.in_default_set) names.push_back(entry.name);
  }
  return names;
}

}  // namespace cyclefuzz
