// The subcommands of the `cyclefuzz` tool. Each registers itself and its options on the CLI11
// app; its run function returns the process exit code.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "runners/generator.h"

namespace cyclefuzz::cli {

/// Exit codes shared by every subcommand.
enum Exit : int {
  kPass = 0,       // nothing found
  kViolation = 1,  // a collector broke a rule
  kBadInput = 2,   // invalid trace, unknown collector, bad option
  kKnown = 3,      // minimize --known: it fails as a known trace does
};

/// A subcommand: its CLI11 app, and what runs when it is chosen.
struct Subcommand {
  CLI::App* app;
  std::function<int()> run;
};

/// `--max-build N`: the largest structure the distribution builds (runners/generator.h). Every
/// command that draws ops or turns bytes into ops takes it, so that a run's finding decodes as
/// it ran.
void add_max_build_option(CLI::App* sub, Distribution& distribution);
/// " --max-build N" when it is not the default, else "": for the commands a tool prints.
std::string max_build_flag(const Distribution& distribution);

Subcommand add_replay(CLI::App& app);
Subcommand add_gen(CLI::App& app);
Subcommand add_decode(CLI::App& app);
Subcommand add_encode(CLI::App& app);
Subcommand add_minimize(CLI::App& app);
Subcommand add_promote(CLI::App& app);
Subcommand add_explain(CLI::App& app);
Subcommand add_check(CLI::App& app);
Subcommand add_collectors(CLI::App& app);

}  // namespace cyclefuzz::cli
