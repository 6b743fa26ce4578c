// Deliberately broken collectors: each is a correct one with one small, documented change that
// reproduces a class of bug real cycle collectors have had. They prove that cyclefuzz catches
// bugs (the harness's own self-test) and are never in the default collector set; choose one with
// `--collector mutant:NAME`. Each lives beside the collector it breaks
// (collectors/<collector>/mutants.cpp), as a subclass that overrides one phase with a copy that
// differs in the lines marked BUG.
#pragma once

#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "collectors/registry.h"

namespace cyclefuzz {

/// Every mutant, named "mutant:<bug>": trial deletion's, then mark-sweep's, then generational's.
const std::vector<CollectorEntry>& mutant_catalogue();

/// Each collector's mutants (collectors/<collector>/mutants.cpp).
std::vector<CollectorEntry> trial_deletion_mutants();
std::vector<CollectorEntry> mark_sweep_mutants();
std::vector<CollectorEntry> generational_mutants();

/// The catalogue entry of mutant class `Mutant`, made with the options if it takes them.
template <class Mutant>
CollectorEntry mutant(const char* name, const char* summary) {
  return {std::string("mutant:") + name, summary,
          [](CollectorHost& l, const CollectorOptions& o) -> std::unique_ptr<Collector> {
            if constexpr (std::is_constructible_v<Mutant, CollectorHost&, const CollectorOptions&>) {
              return std::make_unique<Mutant>(l, o);
            } else {
              return std::make_unique<Mutant>(l);
            }
          },
          false};
}

}  // namespace cyclefuzz
