// The system under test of a property: a Session on the collector(s) a property checks, an
// optional observer for what the Session does not check itself, and the trace so far, which is
// printed (and written to a file) as a ready-to-replay counterexample when the property fails.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "checker/session.h"
#include "language/trace.h"

namespace cyclefuzz::properties {

/// Checks what the Session does not, around each op.
class Observer {
 public:
  virtual ~Observer() = default;
  virtual void before(const Session& /*session*/, const Op& /*op*/) {}
  /// Returns what is wrong, in words, or "" when the property holds. May step the session
  /// further (appending to `trace`), e.g. to collect a second time.
  virtual std::string after(Session& session, Trace& trace, const Op& op) = 0;
};

struct Property {
  std::string name;                  // what it proves, in CamelCase: the test's name
  std::uint32_t reported = 0;        // the Session checks that belong to it (CheckOptions)
  std::function<std::unique_ptr<Observer>()> observer;  // may be empty
  int copies = 1;                    // copies of the collector run side by side
  bool with_baseline = false;        // also run a reference collector beside it
};

/// The collector settings every property run uses: small thresholds, so that short traces reach
/// automatic collection.
CollectorOptions property_collector_options();

class PropertyRun {
 public:
  PropertyRun(const Property& property, const CollectorEntry& collector);
  /// Runs one op; on failure, logs the counterexample and fails the RapidCheck case. `labeled`
  /// is the same op over labels: what names the objects it allocates.
  void step(const Op& op, const Op& labeled);

 private:
  [[noreturn]] void fail(const std::string& what);

  const Property& property_;
  std::string collector_;
  Trace trace_;
  std::unique_ptr<Session> session_;
  std::unique_ptr<Observer> observer_;
};

/// Runs a property on a collector with RapidCheck (RC_PARAMS applies; `budget` multiplies its
/// max_success, for a shape the distribution makes rarely). Returns whether it held.
bool check_property(const Property& property, const CollectorEntry& collector, int budget = 1);

/// The trace text of the last counterexample found in this process ("" if none): after a failed
/// check, the minimal one.
const std::string& last_counterexample();

}  // namespace cyclefuzz::properties
