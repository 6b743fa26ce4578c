#include "language/trace.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <optional>
#include <sstream>
#include <unordered_map>

#include "oracle/oracle.h"

namespace cyclefuzz {

namespace {

std::string in_quotes(std::string_view s) { return "'" + std::string(s) + "'"; }

/// Where a byte sequence stops being text: the offset of the first NUL, control character (other
/// than tab, CR, LF) or malformed UTF-8 sequence, or npos.
std::size_t first_non_text(std::string_view line) {
  for (std::size_t i = 0; i < line.size();) {
    const auto c = static_cast<unsigned char>(line[i]);
    std::size_t continuation = 0;
    if (c < 0x80) {
      if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f) return i;
    } else if (c >= 0xc2 && c <= 0xdf) {
      continuation = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      continuation = 2;
    } else if (c >= 0xf0 && c <= 0xf4) {
      continuation = 3;
    } else {
      return i;
    }
    if (line.size() - i <= continuation) return i;
    for (std::size_t k = 1; k <= continuation; ++k) {
      if ((static_cast<unsigned char>(line[i + k]) & 0xc0) != 0x80) return i;
    }
    i += continuation + 1;
  }
  return std::string_view::npos;
}

constexpr StepKind kStepKinds[] = {StepKind::New,     StepKind::Link,    StepKind::Resurrect,
                                   StepKind::Collect, StepKind::Unlink,  StepKind::Deref,
                                   StepKind::Release, StepKind::Finalizer, StepKind::Weak,
                                   StepKind::Entry,   StepKind::Unentry};

/// The step a word starts in a finalizer's program, if it is one of their keywords.
std::optional<StepKind> step_named(std::string_view word) {
  for (StepKind kind : kStepKinds) {
    if (word == keyword(kind)) return kind;
  }
  return std::nullopt;
}

// The words that may follow a name in an op: never names themselves, so that an op reads one way.
bool is_reserved(std::string_view s) {
  return s == "callback" || s == "in" || step_named(s).has_value();
}

/// The whole word as a number of type T, or nothing.
template <class T>
std::optional<T> number(std::string_view word) {
  T value{};
  const auto [end, error] = std::from_chars(word.data(), word.data() + word.size(), value);
  if (error != std::errc() || end != word.data() + word.size()) return std::nullopt;
  return value;
}

bool is_name(std::string_view s) {
  if (s.empty() || s.size() > TraceLimits::kMaxNameLength) return false;
  const auto letter = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  };
  if (!letter(s[0])) return false;
  return std::all_of(s.begin(), s.end(),
                     [&](char c) { return letter(c) || (c >= '0' && c <= '9'); });
}

std::vector<std::string_view> split_words(std::string_view line) {
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
    if (i > start) words.push_back(line.substr(start, i - start));
  }
  return words;
}

/// Reads a trace line by line, building the ops and checking each against the heap so far.
class Parser {
 public:
  Parser(const std::string& source, const TraceLimits& limits) : limits_(limits) {
    trace_.source = source;
  }

  void line(std::string_view text, std::uint32_t number) {
    number_ = number;
    if (text.size() > limits_.max_line_length) {
      fail("line too long (" + std::to_string(text.size()) + " bytes, at most " +
           std::to_string(limits_.max_line_length) + ")");
    }
    if (const std::size_t at = first_non_text(text); at != std::string_view::npos) {
      fail("not text (byte " + std::to_string(static_cast<unsigned char>(text[at])) +
           " at column " + std::to_string(at + 1) + ")");
    }
    if (const std::size_t hash = text.find('#'); hash != std::string_view::npos) {
      text = text.substr(0, hash);
    }
    const std::vector<std::string_view> words = split_words(text);
    if (words.empty()) return;
    const Op op = parse_op(words);
    if (const auto refusal = heap_.refuse(op)) {
      fail(describe(*refusal, op, trace_.names, trace_.weak_names));
    }
    heap_.apply(op);
    trace_.ops.push_back(op);
    trace_.lines.push_back(number_);
  }

  Trace finish() { return std::move(trace_); }

 private:
  [[noreturn]] void fail(const std::string& problem) const {
    throw InvalidTrace(trace_.source, number_, problem);
  }

  Op parse_op(const std::vector<std::string_view>& words) {
    const auto kinds = op_kinds();
    const auto found = std::find_if(kinds.begin(), kinds.end(),
                                     [&](const OpKindInfo& k) { return words[0] == k.keyword; });
    if (found == kinds.end()) fail("unknown operation " + in_quotes(words[0]));
    const OpKind kind = found->kind;
    const std::size_t arguments = words.size() - 1;

    if (kind == OpKind::Collect) {
      if (arguments > 1) wrong_arguments(kind);
      if (arguments == 0) return Op::collect();
      // (Its range is the oracle's rule, as for a trace built in memory.)
      const auto generation = number<int>(words[1]);
      if (!generation) fail(bad_generation(words[1]));
      return Op::collect(*generation);
    }

    if (kind == OpKind::Threshold) {
      if (arguments != 3) wrong_arguments(kind);
      Op op = Op::threshold(0, 0, 0);
      for (std::size_t i = 0; i < 3; ++i) {
        const auto threshold = number<std::uint32_t>(words[i + 1]);
        if (!threshold) fail(bad_threshold(words[i + 1]));
        op.thresholds[i] = *threshold;
      }
      return op;
    }

    if (kind == OpKind::Build) return parse_build(words);
    for (std::size_t i = 1; i < words.size(); ++i) {
      if (!is_name(words[i])) {
        fail("wrong arguments: " + in_quotes(words[i]) +
             " is not a name (a letter or _, then letters, digits or _, at most " +
             std::to_string(TraceLimits::kMaxNameLength) + " characters)");
      }
    }
    if (kind == OpKind::New) {  // new A [KIND], new A tuple [ITEM...]
      if (arguments < 1) wrong_arguments(kind);
      std::optional<ObjectKind> object_kind;
      if (arguments >= 2) object_kind = object_kind_named(words[2]);
      if (arguments >= 2 && !object_kind) {
        fail("unknown kind of object " + in_quotes(words[2]) + " (expected '" + info(kind).usage +
             "')");
      }
      if (arguments > 2 && object_kind != ObjectKind::Tuple) wrong_arguments(kind);
      if (arguments - 2 > kMaxItems && object_kind == ObjectKind::Tuple) {
        fail("a tuple of " + std::to_string(arguments - 2) + " items (at most " +
             std::to_string(kMaxItems) + ")");
      }
      std::vector<ObjectId> items;
      for (std::size_t i = 3; i < words.size(); ++i) items.push_back(lookup(words[i]));
      return Op::make_new(define(words[1]), object_kind.value_or(ObjectKind::List),
                          std::move(items));
    }
    switch (kind) {
      case OpKind::Finalizer:
        return parse_finalizer(words);
      case OpKind::Weak: {  // weak W A [callback [STEP...]] [in H]
        if (words.size() < 3) wrong_arguments(kind);
        const WeakId w = define_weak(words[1]);
        const ObjectId target = lookup(words[2]);
        const bool callback = words.size() >= 4 && words[3] == "callback";
        Op op = Op::weak_ref(w, target, callback);
        // The callback's program reads up to an `in` that starts no step: its own `weak` steps
        // end in `in HOLDER` themselves, so what is left is the op's holder.
        const std::size_t end = callback ? parse_steps(words, 4, words.size(), op) : 3;
        if (end + 2 == words.size() && words[end] == "in") {
          op.held = true;
          op.b = lookup(name_at(words, end + 1, kind));
        } else if (end != words.size()) {
          wrong_arguments(kind);
        }
        return op;
      }
      case OpKind::Deref: {  // deref W
        if (arguments != 1) wrong_arguments(kind);
        const auto it = weak_ids_.find(std::string(words[1]));
        if (it == weak_ids_.end()) fail("unknown weak reference " + in_quotes(words[1]));
        return Op::deref(it->second);
      }
      default:
        break;
    }
    if (arguments != static_cast<std::size_t>(info(kind).objects)) wrong_arguments(kind);
    if (arguments == 0) return Op{kind};
    const ObjectId a = lookup(words[1]);
    const ObjectId b = arguments >= 2 ? lookup(words[2]) : 0;
    Op op{kind, a, b};
    if (arguments >= 3) op.c = lookup(words[3]);
    return op;
  }

  // build S SHAPE SIZE: S and its members S_1 .. S_(SIZE-1), named here (the size's range is the
  // oracle's rule).
  Op parse_build(const std::vector<std::string_view>& words) {
    if (words.size() != 4 || !is_name(words[1])) wrong_arguments(OpKind::Build);
    const std::optional<Shape> shape = shape_named(words[2]);
    if (!shape) {
      fail("unknown shape " + in_quotes(words[2]) + " (expected '" +
           info(OpKind::Build).usage + "')");
    }
    const auto size = number<std::uint32_t>(words[3]);
    if (!size) fail(bad_build_size(words[3]));
    if (*size > kMaxBuild) fail(bad_build_size(words[3]));
    if (trace_.names.size() + *size > limits_.max_objects) {
      fail("too many objects (at most " + std::to_string(limits_.max_objects) + ")");
    }
    const ObjectId first = define(words[1]);
    if (first + 1 == trace_.names.size()) {  // (a name used before: the oracle refuses it)
      for (std::uint32_t k = 1; k < *size; ++k) {
        const std::string member = Names::member(std::string(words[1]), k);
        if (ids_.count(member) != 0) fail("duplicate name " + in_quotes(member));
        define(member);
      }
    }
    return Op::build(first, *shape, *size);
  }

  // finalizer A [STEP...]: the steps read left to right; each starts with a reserved word.
  Op parse_finalizer(const std::vector<std::string_view>& words) {
    if (words.size() < 2 || is_reserved(words[1])) wrong_arguments(OpKind::Finalizer);
    Op op = Op::finalizer(lookup(words[1]));
    if (parse_steps(words, 2, words.size(), op) != words.size()) wrong_arguments(op.kind);
    return op;
  }

  /// The name at words[i], which must be there and not be a word of the language.
  std::string_view name_at(const std::vector<std::string_view>& words, std::size_t i,
                           OpKind kind) const {
    if (i >= words.size() || is_reserved(words[i])) wrong_arguments(kind);
    return words[i];
  }

  // A program's steps, from words[begin] up to `end` or to an `in` that starts no step, into
  // op.steps: a finalizer's, or a weak reference's callback's (a `resurrect` or `release` without
  // a name is of op.a: the finalizer's object, or the weak reference's target, which the oracle
  // refuses a callback). Returns where it stopped.
  std::size_t parse_steps(const std::vector<std::string_view>& words, std::size_t begin,
                          std::size_t end, Op& op) {
    const auto name_at = [&](std::size_t i) { return this->name_at(words, i, op.kind); };
    std::size_t i = begin;
    while (i < end && words[i] != "in") {
      const std::string_view word = words[i++];
      const std::optional<StepKind> step = step_named(word);
      if (!step) {
        fail("unknown program step " + in_quotes(word) + " (expected '" + info(op.kind).usage +
             "')");
      }
      switch (*step) {
        case StepKind::New:
          op.steps.push_back(Step::make_new(define(name_at(i++))));
          break;
        case StepKind::Link:
        case StepKind::Unlink: {
          const ObjectId from = lookup(name_at(i++));
          const ObjectId to = lookup(name_at(i++));
          op.steps.push_back(*step == StepKind::Link ? Step::link(from, to)
                                                     : Step::unlink(from, to));
          break;
        }
        case StepKind::Deref: {
          const std::string_view name = name_at(i++);
          const auto it = weak_ids_.find(std::string(name));
          if (it == weak_ids_.end()) fail("unknown weak reference " + in_quotes(name));
          op.steps.push_back(Step::deref(it->second));
          break;
        }
        case StepKind::Resurrect:
        case StepKind::Release: {  // of the dying object itself unless a name follows
          const bool named = i < end && !is_reserved(words[i]);
          const ObjectId x = named ? lookup(name_at(i++)) : op.a;
          op.steps.push_back(*step == StepKind::Resurrect ? Step::resurrect(x) : Step::release(x));
          break;
        }
        case StepKind::Collect:
          op.steps.push_back(Step::collect());
          break;
        case StepKind::Finalizer:
          op.steps.push_back(Step::finalizer(lookup(name_at(i++))));
          break;
        case StepKind::Entry: {
          const ObjectId map = lookup(name_at(i++));
          const ObjectId key = lookup(name_at(i++));
          op.steps.push_back(Step::entry(map, key, lookup(name_at(i++))));
          break;
        }
        case StepKind::Unentry: {
          const ObjectId map = lookup(name_at(i++));
          op.steps.push_back(Step::unentry(map, lookup(name_at(i++))));
          break;
        }
        case StepKind::Weak: {  // weak V B [callback] in H
          const WeakId w = define_weak(name_at(i++));
          const ObjectId target = lookup(name_at(i++));
          const bool callback = i < end && words[i] == "callback";
          if (callback) ++i;
          if (i >= end || words[i] != "in") wrong_arguments(op.kind);
          const ObjectId holder = lookup(name_at(++i));
          ++i;
          op.steps.push_back(Step::weak_ref_in(w, target, callback, holder));
          break;
        }
      }
    }
    return i;
  }

  // A new name for the next weak reference. A name used before keeps its weak reference, which
  // the oracle refuses to take again.
  WeakId define_weak(std::string_view word) {
    const std::string name(word);
    if (is_reserved(name)) fail(in_quotes(name) + " is a word of the language, not a name");
    const auto [it, added] =
        weak_ids_.emplace(name, static_cast<WeakId>(trace_.weak_names.size()));
    if (added) trace_.weak_names.push_back(name);
    return it->second;
  }

  // A new name for the next object. A name used before keeps its object, which the oracle refuses
  // to allocate again.
  ObjectId define(std::string_view word) {
    const std::string name(word);
    if (is_reserved(name)) fail(in_quotes(name) + " is a word of the language, not a name");
    if (const auto it = ids_.find(name); it != ids_.end()) return it->second;
    if (trace_.names.size() >= limits_.max_objects) {
      fail("too many objects (at most " + std::to_string(limits_.max_objects) + ")");
    }
    const auto id = static_cast<ObjectId>(trace_.names.size());
    ids_.emplace(name, id);
    trace_.names.push_back(name);
    return id;
  }

  ObjectId lookup(std::string_view name) const {
    const auto it = ids_.find(std::string(name));
    if (it == ids_.end()) fail("unknown object " + in_quotes(name));
    return it->second;
  }

  [[noreturn]] void wrong_arguments(OpKind kind) const {
    fail(std::string("wrong arguments (expected '") + info(kind).usage + "')");
  }

  const TraceLimits& limits_;
  Trace trace_;
  Oracle heap_;
  std::unordered_map<std::string, ObjectId> ids_;
  std::unordered_map<std::string, WeakId> weak_ids_;
  std::uint32_t number_ = 0;
};

}  // namespace

InvalidTrace::InvalidTrace(std::string file, std::uint32_t line, std::string problem)
    : std::runtime_error(file + ":" + (line > 0 ? std::to_string(line) + ":" : "") + " " +
                         problem),
      file_(std::move(file)),
      line_(line),
      problem_(std::move(problem)) {}

Trace parse_trace(std::string_view text, const std::string& source, const TraceLimits& limits) {
  Parser parser(source, limits);
  std::uint32_t number = 0;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    parser.line(text.substr(0, end), ++number);
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return parser.finish();
}

Trace load_trace(const std::filesystem::path& path, const TraceLimits& limits) {
  std::ifstream in(path, std::ios::binary);
  if (!in || std::filesystem::is_directory(path)) {
    throw InvalidTrace(path.string(), 0, "cannot read the file");
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_trace(text.str(), path.string(), limits);
}

void check_trace(const Trace& trace) {
  Oracle heap;
  for (std::size_t i = 0; i < trace.ops.size(); ++i) {
    if (const auto refusal = heap.refuse(trace.ops[i])) {
      throw InvalidTrace(trace.source, static_cast<std::uint32_t>(i + 1),
                         describe(*refusal, trace.ops[i], trace.names, trace.weak_names));
    }
    heap.apply(trace.ops[i]);
  }
}

std::string to_text(const Trace& trace) {
  std::string text;
  for (const Op& op : trace.ops) text += show(op, trace) + '\n';
  return text;
}

std::vector<std::filesystem::path> expand_trace_paths(const std::vector<std::string>& paths) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (const std::string& p : paths) {
    std::error_code error;
    if (fs::is_directory(p, error)) {
      std::vector<fs::path> found;
      for (const auto& entry : fs::recursive_directory_iterator(p)) {
        if (entry.is_regular_file() && entry.path().extension() == ".trace") {
          found.push_back(entry.path());
        }
      }
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else if (fs::exists(p, error)) {
      files.emplace_back(p);
    } else {
      throw InvalidTrace(p, 0, "no such file or directory");
    }
  }
  return files;
}

std::vector<Trace> load_traces(const std::vector<std::string>& paths, const TraceLimits& limits) {
  std::vector<Trace> traces;
  for (const auto& path : expand_trace_paths(paths)) traces.push_back(load_trace(path, limits));
  return traces;
}

}  // namespace cyclefuzz
