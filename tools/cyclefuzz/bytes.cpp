// cyclefuzz decode / encode: between fuzzer inputs and text traces (runners/fuzz_input.h).
#include <fstream>
#include <stdexcept>
#include <iostream>
#include <iterator>
#include <memory>

#include "runners/fuzz_input.h"
#include "tools/cyclefuzz/commands.h"

namespace cyclefuzz::cli {

namespace {

struct Paths {
  std::string input;
  std::string output;
  Distribution distribution;
};

int decode(const Paths& p) {
  std::ifstream in(p.input, std::ios::binary);
  if (!in) {
    std::cerr << "cyclefuzz decode: " << p.input << ": cannot read the file\n";
    return kBadInput;
  }
  const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                        std::istreambuf_iterator<char>());
  const std::string text = "# decoded from " + p.input + " (" + std::to_string(bytes.size()) +
                           " bytes" + max_build_flag(p.distribution) + ")\n" +
                           to_text(decode_fuzz_input(bytes, p.distribution));
  if (p.output.empty()) {
    std::cout << text;
    return kPass;
  }
  std::ofstream out(p.output);
  out << text;
  return out ? kPass : (std::cerr << "cyclefuzz decode: cannot write " << p.output << "\n", kBadInput);
}

int encode(const Paths& p) {
  Trace trace;
  try {
    trace = load_trace(p.input);
  } catch (const InvalidTrace& e) {
    std::cerr << "cyclefuzz encode: " << e.what() << "\n";
    return kBadInput;
  }
  std::vector<std::uint8_t> bytes;
  try {
    bytes = encode_fuzz_input(trace, p.distribution);
  } catch (const std::invalid_argument& e) {
    std::cerr << "cyclefuzz encode: " << e.what() << "\n";
    return kBadInput;
  }
  std::ofstream file;
  if (!p.output.empty()) file.open(p.output, std::ios::binary);
  std::ostream& out = p.output.empty() ? std::cout : file;
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  out.flush();
  if (!out) {
    std::cerr << "cyclefuzz encode: cannot write " << (p.output.empty() ? "stdout" : p.output) << "\n";
    return kBadInput;
  }
  return kPass;
}

}  // namespace

Subcommand add_decode(CLI::App& app) {
  auto paths = std::make_shared<Paths>();
  CLI::App* sub = app.add_subcommand("decode", "Print the trace a fuzzer input stands for");
  sub->add_option("input", paths->input, "A fuzzer input (a crash file, a corpus entry)")->required();
  sub->add_option("-o,--output", paths->output, "Write the trace to this file");
  add_max_build_option(sub, paths->distribution);
  return {sub, [paths] { return decode(*paths); }};
}

Subcommand add_encode(CLI::App& app) {
  auto paths = std::make_shared<Paths>();
  CLI::App* sub = app.add_subcommand(
      "encode", "Write the fuzzer input that decodes to a trace (objects become o0, o1, ...)");
  sub->add_option("trace", paths->input, "A text trace")->required();
  sub->add_option("-o,--output", paths->output, "Write to this file instead of stdout");
  add_max_build_option(sub, paths->distribution);
  return {sub, [paths] { return encode(*paths); }};
}

}  // namespace cyclefuzz::cli
