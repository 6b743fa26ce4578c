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
  std::string output;
};

int gen(const GenOptions& o) {
  const Trace trace = generate_trace(o.seed, o.ops);
  const std::string header = "# cyclefuzz gen --ops " + std::to_string(o.ops) + " --seed " +
                             std::to_string(o.seed) + "\n";
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

Subcommand add_gen(CLI::App& app) {
  auto options = std::make_shared<GenOptions>();
  CLI::App* sub = app.add_subcommand(
      "gen", "Print a valid random trace, biased to build and abandon cycles; the same seed gives "
             "the same trace");
  sub->add_option("--ops", options->ops, "Number of operations")->capture_default_str();
  sub->add_option("--seed", options->seed, "Random seed")->capture_default_str();
  sub->add_option("-o,--output", options->output, "Write to this file instead of stdout");
  return {sub, [options] { return gen(*options); }};
}

}  // namespace cyclefuzz::cli
