// Users' collectors, loaded from shared libraries that implement the C plug-in ABI
// (collectors/plugin/cyclefuzz_plugin.h), behind the same Collector interface as the built-ins.
#pragma once

#include <stdexcept>
#include <string>

#include "collectors/registry.h"

namespace cyclefuzz {

/// A plug-in that cannot be used: the message names the file and what is wrong with it.
class PluginError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Loads and checks the plug-in at `path`. The entry is named "plugin:<its name>", is never in
/// the default set, and asks to be run in a child process. Throws PluginError.
CollectorEntry load_plugin(const std::string& path);

}  // namespace cyclefuzz
