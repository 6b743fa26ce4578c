// cyclefuzz promote: a finding becomes a regression test, kept forever in corpus/regressions/.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include "language/trace.h"
#include "tools/cyclefuzz/commands.h"

namespace cyclefuzz::cli {

namespace {

struct PromoteOptions {
  std::string trace;
  std::string name;
  std::string caught;
  std::string corpus = "corpus/regressions";
};

int promote(const PromoteOptions& o) {
  namespace fs = std::filesystem;
  Trace trace;
  try {
    trace = load_trace(o.trace);
  } catch (const InvalidTrace& e) {
    std::cerr << "cyclefuzz promote: " << e.what() << "\n";
    return kBadInput;
  }
  if (!fs::is_directory(o.corpus)) {
    std::cerr << "cyclefuzz promote: " << o.corpus
              << " is not a directory (run from the repository root, or give --corpus)\n";
    return kBadInput;
  }
  const fs::path target = fs::path(o.corpus) / (o.name + ".trace");
  if (fs::exists(target)) {
    std::cerr << "cyclefuzz promote: " << target.string() << " exists; choose another --name\n";
    return kBadInput;
  }
  std::ofstream out(target);
  out << "# " << o.caught << "\n# promoted from " << o.trace << "\n" << to_text(trace);
  if (!out) {
    std::cerr << "cyclefuzz promote: cannot write " << target.string() << "\n";
    return kBadInput;
  }
  std::cout << "wrote " << target.string() << " (" << trace.ops.size()
            << " ops); CTest now replays it on every collector as its own test\n";
  return kPass;
}

}  // namespace

Subcommand add_promote(CLI::App& app) {
  auto options = std::make_shared<PromoteOptions>();
  CLI::App* sub = app.add_subcommand(
      "promote", "Keep a (minimized) finding as a regression trace in corpus/regressions/");
  sub->add_option("trace", options->trace, "The trace to keep")->required();
  sub->add_option("--name", options->name, "File name in the corpus, without .trace")
      ->required()
      ->check([](const std::string& n) {
        return n.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-_") == std::string::npos
                   ? std::string()
                   : std::string("use lower-case letters, digits, - and _");
      });
  sub->add_option("--caught", options->caught,
                  "What bug it caught, in words: the trace's first comment")
      ->required();
  sub->add_option("--corpus", options->corpus, "The regression directory")->capture_default_str();
  return {sub, [options] { return promote(*options); }};
}

}  // namespace cyclefuzz::cli
