#include "tools/cyclefuzz/collector_choice.h"

#include <algorithm>

#include "collectors/plugin/plugin_collector.h"

namespace cyclefuzz::cli {

void CollectorChoice::add_options(CLI::App& app) {
  std::string known;
  for (const CollectorEntry& entry : collector_catalogue()) {
    known += "\n  " + entry.name + ": " + entry.summary;
  }
  app.add_option("--collector", names_,
                 "Run this collector (repeat for several; default: every built-in one):" + known);
  app.add_option("--plugin", plugins_,
                 "Also run the collector in this shared library, built against "
                 "collectors/plugin/cyclefuzz_plugin.h (repeat for several); it runs in a child "
                 "process, so a crash is reported with the trace that caused it");
  app.add_option("--thresholds", thresholds_,
                 "Automatic collection thresholds for generations 0,1,2 (default 700,10,10), as "
                 "gc.set_threshold(); small ones make short traces reach them")
      ->delimiter(',')
      ->expected(3);
}

std::vector<CollectorEntry> CollectorChoice::collectors() const {
  // Plug-ins alone are tested alone; with neither, the default set runs.
  const std::vector<std::string> names =
      names_.empty() && plugins_.empty() ? default_collector_names() : names_;
  std::vector<CollectorEntry> chosen;
  for (const std::string& name : names) {
    const CollectorEntry* entry = find_collector(name);
    if (entry == nullptr) {
      throw BadInput("unknown collector '" + name + "' (cyclefuzz replay --help lists them)");
    }
    if (std::none_of(chosen.begin(), chosen.end(), [&](const auto& c) { return c.name == name; })) {
      chosen.push_back(*entry);
    }
  }
  for (const std::string& path : plugins_) {
    try {
      chosen.push_back(load_plugin(path));
    } catch (const PluginError& e) {
      throw BadInput(e.what());
    }
  }
  return chosen;
}

CollectorOptions CollectorChoice::options() const {
  CollectorOptions options;
  if (!thresholds_.empty()) std::copy(thresholds_.begin(), thresholds_.end(), options.thresholds);
  return options;
}

}  // namespace cyclefuzz::cli
