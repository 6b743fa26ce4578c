#include "fuzz/fuzz_settings.h"

#include "collectors/plugin/plugin_collector.h"

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

namespace cyclefuzz::fuzz {

namespace {

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, ',');) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

[[noreturn]] void bad(const std::string& message) {
  std::fprintf(stderr, "cyclefuzz fuzz target: %s\n", message.c_str());
  std::exit(2);
}

Settings read_settings() {
  Settings s;
  const char* names_variable = std::getenv("CYCLEFUZZ_COLLECTORS");
  const char* plugins_variable = std::getenv("CYCLEFUZZ_PLUGINS");
  const std::vector<std::string> names = split(names_variable ? names_variable : "");
  const std::vector<std::string> plugins = split(plugins_variable ? plugins_variable : "");
  for (const std::string& name :
       names.empty() && plugins.empty() ? default_collector_names() : names) {
    const CollectorEntry* entry = find_collector(name);
    if (entry == nullptr) {
      bad("CYCLEFUZZ_COLLECTORS names an unknown collector '" + name + "'" +
          (name.starts_with("plugin:") ? " (a plug-in is given by its file, in CYCLEFUZZ_PLUGINS)"
                                       : ""));
    }
    s.collectors.push_back(*entry);
  }
  for (const std::string& path : plugins) {
    try {
      s.collectors.push_back(load_plugin(path));
    } catch (const PluginError& e) {
      bad(std::string("CYCLEFUZZ_PLUGINS: ") + e.what());
    }
  }
  const std::uint32_t defaults[3] = {9, 4, 3};
  std::copy(defaults, defaults + 3, s.options.thresholds);
  if (const char* t = std::getenv("CYCLEFUZZ_THRESHOLDS"); t != nullptr && *t != '\0') {
    const std::vector<std::string> parts = split(t);
    if (parts.size() != 3) bad("CYCLEFUZZ_THRESHOLDS needs three numbers, as 700,10,10");
    for (int i = 0; i < 3; ++i) {
      try {
        s.options.thresholds[i] = static_cast<std::uint32_t>(std::stoul(parts[i]));
      } catch (const std::exception&) {
        bad("CYCLEFUZZ_THRESHOLDS: '" + parts[i] + "' is not a number");
      }
    }
  }
  if (const char* m = std::getenv("CYCLEFUZZ_MAX_BUILD"); m != nullptr && *m != '\0') {
    const std::string text = m;
    std::size_t end = 0;
    unsigned long value = 0;
    try {
      value = std::stoul(text, &end);
    } catch (const std::exception&) {
      end = 0;
    }
    if (end != text.size() || value < 2 || value > kMaxBuild) {
      bad("CYCLEFUZZ_MAX_BUILD is a number from 2 to " + std::to_string(kMaxBuild) + ", not '" +
          text + "'");
    }
    s.distribution.max_build = static_cast<std::uint32_t>(value);
  }
  const char* invariants = std::getenv("CYCLEFUZZ_INVARIANTS");
  const std::string walk = invariants == nullptr ? "1" : invariants;
  if (walk != "0" && walk != "1" && walk != "every-op") {
    bad("CYCLEFUZZ_INVARIANTS is 0, 1 or every-op, not '" + walk + "'");
  }
  s.checks.check_invariants = walk != "0";
  s.checks.invariants_every_op = walk == "every-op";
  if (const char* k = std::getenv("CYCLEFUZZ_KNOWN"); k != nullptr && *k != '\0') {
    std::vector<Trace> traces;
    try {
      traces = load_traces(split(k));
    } catch (const std::exception& e) {
      bad(std::string("CYCLEFUZZ_KNOWN: ") + e.what());
    }
    if (traces.empty()) bad("CYCLEFUZZ_KNOWN names no .trace files: '" + std::string(k) + "'");
    s.known = known_failures(traces, s.collectors, s.options);
  }
  return s;
}

}  // namespace

const Settings& settings() {
  static const Settings kSettings = read_settings();
  return kSettings;
}

}  // namespace cyclefuzz::fuzz
