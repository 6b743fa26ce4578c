#include "collectors/registry.h"

#include "collectors/generational/generational.h"
#include "collectors/mark_sweep/mark_sweep.h"
#include "collectors/mutants.h"
#include "collectors/trial_deletion/trial_deletion.h"
#if CYCLEFUZZ_RUNTIMES
#include "collectors/cpython/cpython.h"
#include "collectors/duktape/duktape.h"
#include "collectors/lua/lua.h"
#include "collectors/mruby/mruby.h"
#include "collectors/nim/nim_orc.h"
#include "collectors/php/php.h"
#endif

namespace cyclefuzz {

namespace {

std::vector<CollectorEntry> builtin_collectors() {
  return {
      {"mark-sweep", "naive mark-sweep: no counts, every collection full",
       [](CollectorHost& l, const CollectorOptions&) { return std::make_unique<MarkSweep>(l); },
       true},
      {"trial-deletion", "reference counting + Bacon-Rajan synchronous cycle collection",
       [](CollectorHost& l, const CollectorOptions&) { return std::make_unique<TrialDeletion>(l); },
       true},
      {"generational", "reference counting + CPython-style three-generation cycle collector",
       [](CollectorHost& l, const CollectorOptions& o) {
         return std::make_unique<Generational>(l, o);
       },
       true},
  };
}

#if CYCLEFUZZ_RUNTIMES
// The real runtimes: not in the default set (each embeds a whole runtime), chosen by name.
std::vector<CollectorEntry> runtime_collectors() {
  return {
      {"cpython", "CPython 3.11's gc (libpython3.11): reference counting + three generations",
       [](CollectorHost& l, const CollectorOptions& o) {
         return std::make_unique<CPythonCollector>(l, o);
       },
       false},
      {"lua-incremental", "Lua 5.4's incremental collector (liblua5.4): tables, __gc finalizers",
       [](CollectorHost& l, const CollectorOptions&) {
         return lua54::make_collector(l, LuaMode::Incremental);
       },
       false},
      {"lua-generational", "Lua 5.4's generational collector (liblua5.4)",
       [](CollectorHost& l, const CollectorOptions&) {
         return lua54::make_collector(l, LuaMode::Generational);
       },
       false},
      {"lua5.3", "Lua 5.3's incremental collector (liblua5.3): tables, __gc finalizers",
       [](CollectorHost& l, const CollectorOptions&) { return lua53::make_collector(l); }, false},
      {"luajit", "LuaJIT 2.1's incremental collector (libluajit-5.1): userdata, __gc finalizers",
       [](CollectorHost& l, const CollectorOptions&) { return luajit::make_collector(l); },
       false},
      {"php", "PHP 8.2's Zend collector (libphp8.2 embed): refcounting + Bacon-Rajan cycles",
       [](CollectorHost& l, const CollectorOptions&) { return std::make_unique<PhpCollector>(l); },
       false},
      {"duktape", "Duktape 2.7's collector (libduktape): refcounting + mark-and-sweep, finalizers",
       [](CollectorHost& l, const CollectorOptions&) {
         return std::make_unique<DuktapeCollector>(l);
       },
       false},
      {"mruby-incremental", "mruby 3.1's incremental collector (libmruby): tri-colour, barriers",
       [](CollectorHost& l, const CollectorOptions&) {
         return std::make_unique<MrubyCollector>(l, MrubyMode::Incremental);
       },
       false},
      {"mruby-generational", "mruby 3.1's generational collector (libmruby)",
       [](CollectorHost& l, const CollectorOptions&) {
         return std::make_unique<MrubyCollector>(l, MrubyMode::Generational);
       },
       false},
      {"nim-orc", "Nim 1.6's ORC (nim --mm:orc): refcounting + Bacon-Rajan cycle collection",
       [](CollectorHost& l, const CollectorOptions&) {
         return std::make_unique<NimOrcCollector>(l);
       },
       false},
  };
}
#endif

}  // namespace

const std::vector<CollectorEntry>& collector_catalogue() {
  static const std::vector<CollectorEntry> kCatalogue = [] {
    std::vector<CollectorEntry> all = builtin_collectors();
#if CYCLEFUZZ_RUNTIMES
    for (const CollectorEntry& r : runtime_collectors()) all.push_back(r);
#endif
    for (const CollectorEntry& m : mutant_catalogue()) all.push_back(m);
    return all;
  }();
  return kCatalogue;
}

const std::vector<CollectorEntry>& mutant_catalogue() {
  static const std::vector<CollectorEntry> kMutants = [] {
    std::vector<CollectorEntry> all;
    for (auto* mutants : {trial_deletion_mutants, mark_sweep_mutants, generational_mutants}) {
      for (CollectorEntry& m : mutants()) all.push_back(std::move(m));
    }
    return all;
  }();
  return kMutants;
}

const CollectorEntry* find_collector(std::string_view name) {
  for (const CollectorEntry& entry : collector_catalogue()) {
    if (entry.name == name) return &entry;
  }
  return nullptr;
}

std::vector<std::string> default_collector_names() {
  std::vector<std::string> names;
  for (const CollectorEntry& entry : collector_catalogue()) {
    if (entry.in_default_set) names.push_back(entry.name);
  }
  return names;
}

}  // namespace cyclefuzz
