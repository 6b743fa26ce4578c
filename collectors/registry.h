// The collectors cyclefuzz can run, by name.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "collectors/collector.h"

namespace cyclefuzz {

using CollectorFactory =
    std::function<std::unique_ptr<Collector>(CollectorHost&, const CollectorOptions&)>;

struct CollectorEntry {
  std::string name;     // what --collector takes
  std::string summary;  // one line for --help
  CollectorFactory make;
  bool in_default_set;  // run when no --collector is given
  /// Run alone, in a child process of its own, wherever a front end can (replay, check,
  /// minimize): a plug-in that crashes must be reported, not take the report down with it (and
  /// must not take the other collectors' verdicts with it either).
  bool isolated = false;
  /// A plug-in's file: it is chosen with `--plugin PATH`, not by name (empty for the others).
  std::string plugin_path = {};
};

/// Every collector known by name, the built-in ones first.
const std::vector<CollectorEntry>& collector_catalogue();

/// The entry named `name`, or nullptr.
const CollectorEntry* find_collector(std::string_view name);

/// The names run when none is chosen.
std::vector<std::string> default_collector_names();

}  // namespace cyclefuzz
