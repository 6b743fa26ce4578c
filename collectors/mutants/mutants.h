// Deliberately broken collectors: each is a correct one with one small, documented change that
// reproduces a class of bug real cycle collectors have had. They prove that cyclefuzz catches
// bugs (the harness's own self-test) and are never in the default collector set; choose one with
// `--collector mutant:NAME`.
#pragma once

#include <vector>

#include "collectors/registry.h"

namespace cyclefuzz {

/// Every mutant, named "mutant:<bug>".
const std::vector<CollectorEntry>& mutant_catalogue();

}  // namespace cyclefuzz
