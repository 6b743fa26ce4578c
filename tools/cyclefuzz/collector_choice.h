// The options every subcommand that runs collectors shares: which collectors, and their settings.
#pragma once

#include <CLI/CLI.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "collectors/registry.h"

namespace cyclefuzz::cli {

/// Bad command-line input that CLI11 cannot see (an unknown collector name, say).
class BadInput : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class CollectorChoice {
 public:
  /// Adds --collector, --plugin and --thresholds to `app`.
  void add_options(CLI::App& app);
  /// The chosen collectors and plug-ins (the default set when none was chosen). Throws BadInput.
  std::vector<CollectorEntry> collectors() const;
  CollectorOptions options() const;

 private:
  std::vector<std::string> names_;
  std::vector<std::string> plugins_;
  std::vector<std::uint32_t> thresholds_;
};

}  // namespace cyclefuzz::cli
