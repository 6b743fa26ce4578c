// cyclefuzz: finds bugs in cycle collectors by differential testing against a reachability oracle.
#include <vector>

#include "tools/cyclefuzz/commands.h"

int main(int argc, char** argv) {
  using namespace cyclefuzz::cli;
  CLI::App app{
      "cyclefuzz: finds premature frees and leaks in cycle collectors by running heap traces on\n"
      "several collectors and checking each against a reachability oracle after every operation.\n"
      "Exit status: 0 nothing found, 1 a violation, 2 bad input."};
  app.require_subcommand(1);
  const std::vector<Subcommand> subcommands = {
      add_replay(app),   add_check(app),   add_gen(app),    add_explain(app),   add_minimize(app),
      add_promote(app),  add_decode(app),  add_encode(app), add_collectors(app)};
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kBadInput;
  }
  for (const Subcommand& sub : subcommands) {
    if (sub.app->parsed()) return sub.run();
  }
  return kBadInput;
}
