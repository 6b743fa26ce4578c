// Helpers shared by the tests.
#pragma once

#include <cctype>
#include <filesystem>
#include <string>
#include <vector>

#include "collectors/collector.h"
#include "collectors/registry.h"
#include "checker/session.h"
#include "language/trace.h"

namespace cyclefuzz::testing {

inline std::filesystem::path source_dir() { return CYCLEFUZZ_SOURCE_DIR; }

inline Trace scenario(const std::string& name) {
  return load_trace(source_dir() / "corpus" / "scenarios" / (name + ".trace"));
}

/// The registry entries for `names`.
inline std::vector<CollectorEntry> entries(const std::vector<std::string>& names) {
  std::vector<CollectorEntry> out;
  for (const auto& name : names) out.push_back(*find_collector(name));
  return out;
}

/// Records every free, in order.
class RecordingListener : public CollectorHost {
 public:
  void freed(ObjectId id) override { frees.push_back(id); }
  std::vector<ObjectId> frees;
};

/// The built-in collectors: the catalogue's default set, so that a collector added to it is
/// tested by every suite that runs them all, without editing the suite.
inline std::vector<std::string> builtin_collector_names() { return default_collector_names(); }

/// Those of the built-in collectors that count references, as a fresh one of each says.
inline std::vector<std::string> reference_counting_collector_names() {
  std::vector<std::string> names;
  RecordingListener host;
  for (const std::string& name : builtin_collector_names()) {
    if (find_collector(name)->make(host, {})->capabilities().reference_counting) {
      names.push_back(name);
    }
  }
  return names;
}

/// A parameterized suite's test name for a collector: its name without what GoogleTest forbids
/// in one ("mark-sweep" -> "marksweep").
inline constexpr auto collector_test_name = [](const auto& info) {
  std::string name = info.param;
  std::erase_if(name, [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); });
  return name;
};

/// The names of `ids` in `trace`.
inline std::vector<std::string> names_of(const Trace& trace, const std::vector<ObjectId>& ids) {
  std::vector<std::string> out;
  for (ObjectId id : ids) out.push_back(trace.names[id]);
  return out;
}

/// The index of the op on source line `line`.
inline std::size_t op_at_line(const Trace& trace, std::uint32_t line) {
  for (std::size_t i = 0; i < trace.ops.size(); ++i) {
    if (trace.line_of(i) == line) return i;
  }
  throw std::out_of_range("no op on line " + std::to_string(line));
}

}  // namespace cyclefuzz::testing
