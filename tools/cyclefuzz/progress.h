// Progress of a long run for a person watching a terminal: runs done (of how many, when known),
// rate, findings so far and time left, redrawn in place on one line of stderr. It writes nothing
// unless stderr is a terminal, so logs, pipes and CI get only the real output.
//
//     Progress progress("traces", {.runs = traces.size()});
//     for (...) { ...; progress.clear(); print(...); progress.advance(1, found); }
#pragma once

#include <chrono>
#include <cstddef>
#include <ostream>
#include <string>
#include <string_view>

namespace cyclefuzz {

class Progress {
 public:
  using Clock = std::chrono::steady_clock;

  /// Where a run ends, as far as it is known; time left is estimated from whichever is given.
  struct Goal {
    std::size_t runs = 0;                            // how many runs there will be (0: unknown)
    Clock::duration time = Clock::duration::zero();  // a time budget (zero: none)
  };

  /// Draws on stderr when it is a terminal, otherwise stays quiet. `unit` names what a run is
  /// ("traces", "runs").
  Progress(std::string unit, Goal goal);
  /// Draws on `terminal` (nullptr: quiet), first once `delay` has passed, so that quick runs
  /// show nothing, then at most once per `interval`.
  Progress(std::string unit, Goal goal, std::ostream* terminal, Clock::duration delay,
           Clock::duration interval);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  /// Counts `runs` more runs and `findings` more findings; redraws the line when it is time.
  void advance(std::size_t runs, std::size_t findings);
  /// Erases the line, so that other output to the same terminal is not mixed into it; the next
  /// `advance` draws it again.
  void clear();

  std::size_t runs() const { return runs_; }
  std::size_t findings() const { return findings_; }

 private:
  std::string unit_;
  Goal goal_;
  std::ostream* terminal_;
  Clock::duration delay_, interval_;
  Clock::time_point start_, last_drawn_;
  bool drawn_ = false;
  std::size_t runs_ = 0, findings_ = 0;
};

/// A duration as people write it: "0.5 s", "30 s", "2 min", "2 min 5 s", "1 h 30 min".
std::string duration_text(double seconds);

/// The progress line, e.g. "12/40 traces  6.0/s  1 finding  0:05 left".
std::string progress_line(std::string_view unit, const Progress::Goal& goal, std::size_t runs,
                          std::size_t findings, Progress::Clock::duration elapsed);

}  // namespace cyclefuzz
