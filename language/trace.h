// Traces: the text language, and the rules that make a trace valid.
//
//     # comment to end of line; blank lines ignored
//     new a          # allocate a; the mutator holds one external reference to it
//     link a b       # a gains one reference to b (repeat it for several references)
//     unlink a b     # a drops one of its references to b
//     root a         # the mutator takes one more external reference to a
//     unroot a       # the mutator drops one of its external references to a
//     collect        # full collection
//     collect 1      # collect generations 0..1
//     finalizer a new x link a x resurrect   # a finalizer and its program (op.h: Step)
//     ... and threshold, freeze, unfreeze, disable, enable, release, weak, deref (docs/trace-language.md)
//
// A trace is checked whole before anything runs: the parser applies every op to an `Oracle`, which
// is where the rules that need the heap (reachability, edges, references) are decided.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "language/op.h"

namespace cyclefuzz {

struct Trace {
  std::string source = "<generated>";  // file name, for messages
  std::vector<Op> ops;
  std::vector<std::uint32_t> lines;  // lines[i] is the source line of ops[i]; empty if generated
  Names names;
  Names weak_names{'w'};

  /// The source line of op `i`, or 0 when the trace was not read from text.
  std::uint32_t line_of(std::size_t i) const { return i < lines.size() ? lines[i] : 0; }
  /// Appends an op of a trace without names (generated, decoded): a `build`'s members get the
  /// names the parser would give them.
  void push_unnamed(const Op& op) {
    if (op.kind == OpKind::Build) names.name_build(op.a, op.size);
    ops.push_back(op);
  }
};

struct TraceLimits {
  static constexpr std::size_t kMaxNameLength = 64;
  std::size_t max_line_length = 1024;    // bytes, comment included
  std::size_t max_objects = 1u << 24;    // `new`s in one trace
};

/// A trace that breaks a rule. `what()` is "file:line: problem" (or "file: problem" when the
/// problem is not on one line).
class InvalidTrace : public std::runtime_error {
 public:
  InvalidTrace(std::string file, std::uint32_t line, std::string problem);
  const std::string& file() const { return file_; }
  std::uint32_t line() const { return line_; }
  const std::string& problem() const { return problem_; }

 private:
  std::string file_;
  std::uint32_t line_;
  std::string problem_;
};

/// Parses and checks a whole trace. Throws `InvalidTrace` at the first broken rule.
Trace parse_trace(std::string_view text, const std::string& source, const TraceLimits& limits = {});

/// Reads and parses a trace file. Throws `InvalidTrace` (also when the file cannot be read).
Trace load_trace(const std::filesystem::path& path, const TraceLimits& limits = {});

/// Checks a trace built in memory (generated, decoded, shrunk) against the rules that need the
/// heap. Throws `InvalidTrace` naming the op's index as its line.
void check_trace(const Trace& trace);

/// An op of `trace` as its line.
inline std::string show(const Op& op, const Trace& trace) {
  return show(op, trace.names, trace.weak_names);
}

/// The text of a trace: one `show(op)` line per op. parse_trace(to_text(t)) has t's ops.
std::string to_text(const Trace& trace);

/// The trace files named by `paths`: files as given, directories searched recursively for
/// `*.trace`, in sorted order. Throws `InvalidTrace` for a path that does not exist.
std::vector<std::filesystem::path> expand_trace_paths(const std::vector<std::string>& paths);
/// Every trace in `paths` (expand_trace_paths), each loaded whole (load_trace: throws on the first
/// bad one, naming its file and line).
std::vector<Trace> load_traces(const std::vector<std::string>& paths,
                               const TraceLimits& limits = {});

}  // namespace cyclefuzz
