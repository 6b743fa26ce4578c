// What a fuzz target runs, from the environment (a fuzzer has no command line of its own):
//   CYCLEFUZZ_COLLECTORS=a,b,...   the collectors to target (default: every built-in one)
//   CYCLEFUZZ_PLUGINS=x.so,y.so    plug-ins to target too (collectors/plugin/cyclefuzz_plugin.h);
//                                  alone, they are the only targets
//   CYCLEFUZZ_THRESHOLDS=t0,t1,t2  generational thresholds (default 9,4,3: short inputs reach them)
//   CYCLEFUZZ_MAX_BUILD=n          the largest structure an input builds (default 1000; as
//                                  `--max-build` of gen, check, decode and encode)
//   CYCLEFUZZ_KNOWN=a,b            traces (or folders of them, as corpus/findings) whose failures
//                                  are known: an input that only violates the rules as one of
//                                  them does is no finding (as `check --known`; a crash still is)
//   CYCLEFUZZ_INVARIANTS=0         skip the collectors' own invariant checks (default: after
//                                  every op, the whole heap after collections, else what the op
//                                  touched; =every-op walks the whole heap after every op)
#pragma once

#include <vector>

#include "collectors/registry.h"
#include "checker/session.h"
#include "runners/generator.h"
#include "runners/random_check.h"

namespace cyclefuzz::fuzz {

struct Settings {
  std::vector<CollectorEntry> collectors;
  CollectorOptions options;
  CheckOptions checks;
  Distribution distribution;
  std::vector<KnownFailure> known;
};

/// Read once per process; exits with a message on a bad value.
const Settings& settings();

}  // namespace cyclefuzz::fuzz
