// cyclefuzz explain TRACE: draws the heap at a collector's first violation, or at a given op.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>

#include "reports/explanation.h"
#include "reports/step_through.h"
#include "tools/cyclefuzz/collector_choice.h"
#include "tools/cyclefuzz/commands.h"

extern char** environ;

namespace cyclefuzz::cli {

namespace {

struct ExplainOptions {
  std::string trace;
  CollectorChoice choice;
  std::size_t at = 0;  // 1-based; 0: the first violation, or the end of the trace
  std::size_t limit = kDefaultPictureLimit;
  bool check_invariants = false;
  std::string dot, svg, png, html;
};

/// A file that is removed when it goes out of scope.
class TemporaryFile {
 public:
  explicit TemporaryFile(const std::string& suffix) {
    path_ = (std::filesystem::temp_directory_path() / ("cyclefuzz-XXXXXX" + suffix)).string();
    const int fd = mkstemps(path_.data(), static_cast<int>(suffix.size()));
    if (fd < 0) throw BadInput("cannot create a temporary file: " + std::string(strerror(errno)));
    close(fd);
  }
  ~TemporaryFile() { std::filesystem::remove(path_); }
  TemporaryFile(const TemporaryFile&) = delete;
  TemporaryFile& operator=(const TemporaryFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) throw BadInput("cannot write " + path);
}

/// Has Graphviz's `dot` draw `dot_text` into `output` as `format` (svg, png). Throws BadInput when
/// dot is missing or fails.
void render(const std::string& dot_text, const std::string& format, const std::string& output) {
  const TemporaryFile source(".dot");
  write_file(source.path(), dot_text);
  std::string program = "dot", type = "-T" + format, flag = "-o", out = output, in = source.path();
  char* argv[] = {program.data(), type.data(), flag.data(), out.data(), in.data(), nullptr};
  pid_t pid = 0;
  // posix_spawnp searches PATH as a shell would, with no shell to quote for.
  const int error = posix_spawnp(&pid, "dot", nullptr, nullptr, argv, environ);
  if (error == ENOENT) {
    throw BadInput(
        "Graphviz's 'dot' is not installed, so no " + format +
        " can be drawn: install it (tools/ensure-deps explain, or apt-get install graphviz), "
        "or write the picture as text with --dot FILE");
  }
  if (error != 0) throw BadInput("cannot run Graphviz's dot: " + std::string(strerror(error)));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw BadInput("Graphviz's dot could not draw " + output + " (its message is above)");
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) throw BadInput("cannot read " + path);
  return text.str();
}

/// Each frame drawn as SVG, by Graphviz's dot.
std::vector<std::string> svgs_of(const Explanation& explanation) {
  std::vector<std::string> svgs;
  const TemporaryFile svg(".svg");
  for (const Frame& frame : explanation.frames) {
    render(frame.dot, "svg", svg.path());
    svgs.push_back(read_file(svg.path()));
  }
  return svgs;
}

int explain(const ExplainOptions& o) {
  Trace trace;
  ExplainRequest request;
  try {
    request.collectors = o.choice.collectors();
    trace = load_trace(o.trace);
    if (trace.ops.empty()) throw BadInput(o.trace + ": no operations to draw");
    if (o.at > trace.ops.size()) {
      throw BadInput("--at " + std::to_string(o.at) + ": " + o.trace + " has only " +
                     std::to_string(trace.ops.size()) + " ops");
    }
  } catch (const std::exception& e) {
    std::cerr << "cyclefuzz explain: " << e.what() << "\n";
    return kBadInput;
  }
  request.trace = &trace;
  request.options = o.choice.options();
  request.check_invariants = o.check_invariants;
  request.at = o.at;
  request.limit = o.limit;
  request.every_op = !o.html.empty();

  // The collectors run in child processes: a crash is drawn, not suffered. Run to the op asked
  // for, but stop at the first violation: after it a collector's heap can no longer be trusted,
  // and the picture must show both heaps at the same moment.
  const std::string& output = !o.dot.empty()   ? o.dot
                              : !o.svg.empty() ? o.svg
                              : !o.png.empty() ? o.png
                                               : o.html;
  Explanation explanation;
  try {
    explanation = explain_isolated(request);
    if (!o.dot.empty()) {
      write_file(o.dot, explanation.frames.back().dot);
    } else if (!o.html.empty()) {
      write_file(o.html, step_through_page(trace, explanation, svgs_of(explanation)));
    } else {
      render(explanation.frames.back().dot, !o.svg.empty() ? "svg" : "png", output);
    }
  } catch (const std::exception& e) {
    std::cerr << "cyclefuzz explain: " << e.what() << "\n";
    return kBadInput;
  }
  std::cout << "wrote " << output << ": " << explanation.frames.back().caption.at(1) << "\n";
  if (explanation.stopped) {
    std::cout << "stopped at op " << *explanation.stopped << " of "
              << (o.at > 0 ? o.at : trace.ops.size())
              << ": the collector broke a rule there, so its heap is not trusted after it\n";
  }
  return explanation.violation ? kViolation : kPass;
}

}  // namespace

Subcommand add_explain(CLI::App& app) {
  auto options = std::make_shared<ExplainOptions>();
  CLI::App* sub = app.add_subcommand(
      "explain",
      "Draw the heap at a collector's first violation (or at --at OP): the oracle's heap against "
      "the collector's own view of it, cut to what explains the violation. With several "
      "collectors, the first to break a rule is drawn (else the first); one that crashes is "
      "drawn as its heap just before the op that crashed (collectors run in child processes). "
      "Colours: docs/diagnostics.md. Exit 0 nothing found, 1 a violation or crash drawn, 2 bad "
      "input.");
  sub->add_option("trace", options->trace, "The trace file")->required();
  options->choice.add_options(*sub);
  sub->add_option("--at", options->at,
                  "Draw the heap after this op (1-based, as reports number them) instead of at "
                  "the first violation; a violation before it still stops the run there")
      ->check(CLI::PositiveNumber);
  sub->add_option("--limit", options->limit, "Draw at most this many objects")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_flag("--check-invariants", options->check_invariants,
                "Check each collector's own invariants after every operation: its whole heap "
                "after collections, else the objects the operation touched (always on in "
                "checked builds)");
  CLI::Option_group* output = sub->add_option_group("output", "Where to draw: exactly one");
  output->add_option("--dot", options->dot, "Write the picture as Graphviz DOT text to FILE");
  output->add_option("--svg", options->svg, "Draw SVG into FILE (needs Graphviz's dot)");
  output->add_option("--png", options->png, "Draw PNG into FILE (needs Graphviz's dot)");
  output->add_option("--html", options->html,
                     "Write one self-contained page to FILE that steps through the trace op by op "
                     "up to the violation: the heap after each op, what it freed, the violation "
                     "(needs Graphviz's dot)");
  output->require_option(1);
  return {sub, [options] { return explain(*options); }};
}

}  // namespace cyclefuzz::cli
