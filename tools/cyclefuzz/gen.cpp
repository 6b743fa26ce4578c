// cyclefuzz gen: a valid random trace, the same for the same seed.
#include <fstream>
#include <iostream>
#include <memory>

#include "runners/generator.h"
#include "tools/cyclefuzz/commands.h"

namespace cyclefuzz::cli {

namespace {

struct GenOptions {
  std::size_t ops = 100;
  std::uint64_t seed = 1;
  Distribution distribution;
  std::string output;
};

int gen(const GenOptions& o) {
  const Trace trace = generate_trace(o.seed, o.ops, o.distribution);
  const std::string header =
      "# cyclefuzz gen --ops " + std::to_string(o.ops) + " --seed " + std::to_string(o.seed) +
      max_build_flag(o.distribution) + "\n";
  if (o.output.empty()) {
    std::cout << header << to_text(trace);
    return kPass;
  }
  std::ofstream out(o.output);
  out << header << to_text(trace);
  if (!out) {
    std::cerr << "cyclefuzz gen: cannot write " << o.output << "\n";
    return kBadInput;
  }
  return kPass;
}

}  // namespace

void add_max_build_option(CLI::App* sub, Distribution& distribution) {
  sub->add_option("--max-build", distribution.max_build,
                  "Largest structure a generated `build` makes (sizes are log-uniform from 2)")
      ->check(CLI::Range(std::uint32_t{2}, kMaxBuild))
      ->capture_default_str();
}

std::string max_build_flag(const Distribution& distribution) {
  return distribution == Distribution{} ? ""
                                        : " --max-build " + std::to_string(distribution.max_build);
}

Subcommand add_gen(CLI::App& app) {
  auto options = std::make_shared<GenOptions>();
  CLI::App* sub = app.add_subcommand(
      "gen", "Print a valid random trace, biased to build and abandon cycles; the same seed gives "
             "the same trace");
  sub->add_option("--ops", options->ops, "Number of operations")->capture_default_str();
  sub->add_option("--seed", options->seed, "Random seed")->capture_default_str();
  add_max_build_option(sub, options->distribution);
  sub->add_option("-o,--output", options->output, "Write to this file instead of stdout");
  return {sub, [options] { return gen(*options); }};
}

}  // namespace cyclefuzz::cli
