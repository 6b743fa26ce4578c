#include "tools/cyclefuzz/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <optional>

namespace cyclefuzz {

namespace {

using namespace std::chrono_literals;

// Back to the start of the line and erase it (ANSI "erase in line"), so a shorter line leaves
// nothing of a longer one behind.
constexpr const char* kEraseLine = "\r\033[K";

/// "0:07", "12:30", "1:02:03".
std::string clock_time(std::chrono::seconds t) {
  const long long s = t.count();
  char text[32];
  if (s >= 3600) {
    std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  } else {
    std::snprintf(text, sizeof text, "%lld:%02lld", s / 60, s % 60);
  }
  return text;
}

}  // namespace

std::string duration_text(double seconds) {
  char text[48];
  if (seconds < 60) {
    std::snprintf(text, sizeof text, "%g s", seconds);
    return text;
  }
  const long long s = std::llround(seconds);
  const long long h = s / 3600, m = s / 60 % 60, rest = s % 60;
  std::string out = h > 0 ? std::to_string(h) + " h" : "";
  if (m > 0) out += (out.empty() ? "" : " ") + std::to_string(m) + " min";
  if (rest > 0 && h == 0) out += (out.empty() ? "" : " ") + std::to_string(rest) + " s";
  return out.empty() ? "1 h" : out;
}

Progress::Progress(std::string unit, Goal goal)
    : Progress(std::move(unit), goal, isatty(STDERR_FILENO) ? &std::cerr : nullptr, 500ms, 200ms) {}

Progress::Progress(std::string unit, Goal goal, std::ostream* terminal, Clock::duration delay,
                   Clock::duration interval)
    : unit_(std::move(unit)),
      goal_(goal),
      terminal_(terminal),
      delay_(delay),
      interval_(interval),
      start_(Clock::now()) {}

Progress::~Progress() { clear(); }

void Progress::advance(std::size_t runs, std::size_t findings) {
  runs_ += runs;
  findings_ += findings;
  if (terminal_ == nullptr) return;
  const Clock::time_point now = Clock::now();
  if (now - start_ < delay_ || (drawn_ && now - last_drawn_ < interval_)) return;
  *terminal_ << kEraseLine << progress_line(unit_, goal_, runs_, findings_, now - start_)
             << std::flush;
  drawn_ = true;
  last_drawn_ = now;
}

void Progress::clear() {
  if (!drawn_) return;
  *terminal_ << kEraseLine << std::flush;
  drawn_ = false;
}

std::string progress_line(std::string_view unit, const Progress::Goal& goal, std::size_t runs,
                          std::size_t findings, Progress::Clock::duration elapsed) {
  std::string line = std::to_string(runs);
  if (goal.runs > 0) line += "/" + std::to_string(goal.runs);
  line += " ";
  line += unit;

  const double seconds = std::chrono::duration<double>(elapsed).count();
  if (seconds > 0) {
    const double rate = static_cast<double>(runs) / seconds;
    char text[32];
    std::snprintf(text, sizeof text, rate < 10 ? "%.1f/s" : "%.0f/s", rate);
    line += "  ";
    line += text;
  }

  line += "  " + std::to_string(findings) + (findings == 1 ? " finding" : " findings");

  // Time left: by the rate so far towards the number of runs, by the clock towards the budget,
  // whichever ends first.
  std::optional<Progress::Clock::duration> left;
  if (goal.runs > 0 && runs > 0) {
    const std::size_t remaining = goal.runs > runs ? goal.runs - runs : 0;
    left = std::chrono::duration_cast<Progress::Clock::duration>(
        elapsed * (static_cast<double>(remaining) / static_cast<double>(runs)));
  }
  if (goal.time > Progress::Clock::duration::zero()) {
    const auto budget_left = std::max(goal.time - elapsed, Progress::Clock::duration::zero());
    left = left ? std::min(*left, budget_left) : budget_left;
  }
  if (left) {
    const auto whole = std::chrono::duration_cast<std::chrono::seconds>(*left + 999ms);
    line += "  " + clock_time(whole) + " left";
  }
  return line;
}

}  // namespace cyclefuzz
