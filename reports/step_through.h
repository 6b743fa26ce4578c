// `cyclefuzz explain --html`: one self-contained page that steps through a counterexample op by
// op - the trace with the current op marked, the heap after it (the pictures of
// reports/heap_picture.h, as SVG), what the op freed, and the violation or crash at its op. A
// slider, two buttons and the arrow keys (Home and End too) move; it opens at the violation, or at
// the step its address names (page.html#step=2).
// Nothing is loaded from the network: the pictures, the style and the script are in the page.
//
// What a browser shows can be tested: the body carries data-steps (how many) and data-current
// (the step shown, 1-based), each frame data-op and, at the violation, data-violation.
#pragma once

#include <string>
#include <vector>

#include "language/trace.h"
#include "reports/explanation.h"

namespace cyclefuzz {

/// The page for `explanation`, whose frame i is drawn as `svgs[i]` (Graphviz's SVG output).
std::string step_through_page(const Trace& trace, const Explanation& explanation,
                              const std::vector<std::string>& svgs);

}  // namespace cyclefuzz
