// What `cyclefuzz explain` draws: the heap of one collector at a violation (or at a chosen op, or
// at every op up to there, for the step-through page), with the collectors run in child processes
// so that a collector that crashes is drawn - as the heap just before the op that crashed - rather
// than taking explain down with it.
//
// Contract: explain never runs a collector in its own process, and a picture never asks a
// collector about an object it no longer holds (reports/heap_picture.h); a frame whose asking
// crashes all the same is drawn again without asking. Runs are deterministic, so the ops before a
// crash replay safely in a second child.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "checker/session.h"
#include "collectors/registry.h"
#include "language/trace.h"
#include "reports/heap_picture.h"

namespace cyclefuzz {

/// One picture: the heap after `ops` ops, as Graphviz DOT.
struct Frame {
  std::size_t ops = 0;               // ops run when it was drawn
  std::string dot;                   // the picture (write_dot)
  std::vector<std::string> caption;  // what it says, line by line (the DOT's caption too)
  std::vector<std::string> freed;    // the names the last op freed, in order
  bool violation = false;            // the drawn collector broke a rule at the last op
  bool crash = false;                // the drawn collector crashed during the next op
};

struct ExplainRequest {
  const Trace* trace = nullptr;
  std::vector<CollectorEntry> collectors;
  CollectorOptions options;
  bool check_invariants = false;
  std::size_t at = 0;        // draw after this op (1-based); 0: at the first violation, or the end
  std::size_t limit = kDefaultPictureLimit;
  bool every_op = false;     // a frame after every op up to the last, not only the last
};

struct Explanation {
  std::vector<Frame> frames;           // in op order; the last is the one the command is about
  std::string collector;               // the collector drawn
  bool violation = false;              // a violation or a crash is drawn
  std::optional<std::size_t> stopped;  // the op (1-based) it stopped at before `at`, if it did
};

/// Draws as the request says. Throws std::runtime_error if a child cannot be run, or if the ops
/// before a crash do not replay (a collector that is not deterministic).
Explanation explain_isolated(const ExplainRequest& request);

}  // namespace cyclefuzz
