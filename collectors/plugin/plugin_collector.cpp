#include "collectors/plugin/plugin_collector.h"

#include <dlfcn.h>

#include <filesystem>
#include <memory>

#include "collectors/plugin/cyclefuzz_plugin.h"

namespace cyclefuzz {

namespace {

static_assert(static_cast<std::uint32_t>(ObjectKind::List) == CF_KIND_LIST &&
                  static_cast<std::uint32_t>(ObjectKind::Record) == CF_KIND_RECORD &&
                  static_cast<std::uint32_t>(ObjectKind::Dict) == CF_KIND_DICT &&
                  static_cast<std::uint32_t>(ObjectKind::Cell) == CF_KIND_CELL &&
                  static_cast<std::uint32_t>(ObjectKind::Tuple) == CF_KIND_TUPLE &&
                  static_cast<std::uint32_t>(ObjectKind::Acyclic) == CF_KIND_ACYCLIC &&
                  static_cast<std::uint32_t>(ObjectKind::Set) == CF_KIND_SET,
              "the header's kinds are language/op.h's, in the same order");

/// A loaded library and the description it exported. The library stays loaded for the life of
/// the process: collectors made from it may be destroyed late.
struct LoadedPlugin {
  std::string path;
  const cf_plugin* plugin = nullptr;
};

/// The Collector that forwards to a plug-in's functions.
class PluginCollector final : public Collector {
 public:
  PluginCollector(CollectorHost& listener, const CollectorOptions& options,
                  std::shared_ptr<const LoadedPlugin> loaded)
      : Collector(listener), loaded_(std::move(loaded)), p_(*loaded_->plugin) {
    capabilities_.reference_counting = (p_.flags & CF_REFERENCE_COUNTING) != 0;
    capabilities_.automatic_collection = (p_.flags & CF_AUTOMATIC_COLLECTION) != 0;
    capabilities_.generations = static_cast<int>(p_.generations);
    capabilities_.count = p_.count_meaning == CF_COUNT_REFERENCES ? CountMeaning::References
                          : p_.count_meaning == CF_COUNT_EXTERNAL ? CountMeaning::External
                                                                  : CountMeaning::None;
    capabilities_.inspectable = p_.traverse != nullptr;
    if (p_.abi_version >= 2) {  // (a version 1 description ends before these fields)
      capabilities_.collect_count = p_.collect_count == CF_COLLECT_FOUND_IN_GENERATIONS
                                        ? CollectCount::FoundInGenerations
                                    : p_.collect_count == CF_COLLECT_NONE ? CollectCount::None
                                                                          : CollectCount::Freed;
      capabilities_.freezes = p_.freeze != nullptr;
      capabilities_.finalizers = p_.set_finalizer != nullptr;
      capabilities_.weak_references = p_.weak_ref != nullptr;
      capabilities_.weak_references_cleared_before_finalizers =
          (p_.flags & CF_WEAK_CLEARED_BEFORE_FINALIZERS) != 0;
      capabilities_.free_is_finalization = (p_.flags & CF_FREE_IS_FINALIZATION) != 0;
    }
    if (p_.abi_version >= 3) {
      capabilities_.weak_reference_holders = capabilities_.weak_references && p_.weak_held_by;
      if (p_.set_entry != nullptr) capabilities_.map_entries = MapEntries::Ephemerons;
    }
    host_.context = this;
    host_.freed = [](void* self, cf_object object) {
      static_cast<PluginCollector*>(self)->report_free(object);
    };
    host_.finalize = [](void* self, cf_object object) {
      static_cast<PluginCollector*>(self)->run_finalizer(object);
    };
    host_.weak_cleared = [](void* self, cf_weak weak) {
      static_cast<PluginCollector*>(self)->report_weak_cleared(weak);
    };
    host_.weak_callback = [](void* self, cf_weak weak) {
      static_cast<PluginCollector*>(self)->report_weak_callback(weak);
    };
    state_ = p_.create(&host_, options.thresholds);
    if (state_ == nullptr) throw PluginError(loaded_->path + ": create() returned NULL");
  }
  ~PluginCollector() override { p_.destroy(state_); }

  const Capabilities& capabilities() const override { return capabilities_; }
  void allocate(ObjectId id) override { p_.allocate(state_, id); }
  void link(ObjectId from, ObjectId to) override { p_.link(state_, from, to); }
  void unlink(ObjectId from, ObjectId to) override { p_.unlink(state_, from, to); }
  void root(ObjectId id) override { p_.root(state_, id); }
  void unroot(ObjectId id) override { p_.unroot(state_, id); }
  std::size_t collect(int generation) override {
    ++collect_calls_;
    return p_.collect(state_, generation);
  }
  void set_thresholds(const std::array<std::uint32_t, 3>& thresholds) override {
    if (p_.set_thresholds != nullptr) p_.set_thresholds(state_, thresholds.data());
  }
  void freeze() override {
    if (capabilities_.freezes) p_.freeze(state_);
  }
  void unfreeze() override {
    if (capabilities_.freezes) p_.unfreeze(state_);
  }
  void set_finalizer(ObjectId id) override {
    if (capabilities_.finalizers) p_.set_finalizer(state_, id);
  }
  void weak_ref(WeakId w, ObjectId target, bool callback) override {
    if (capabilities_.weak_references) p_.weak_ref(state_, w, target, callback ? 1 : 0);
  }
  void weak_held_by(WeakId w, ObjectId holder) override {
    if (capabilities_.weak_reference_holders) p_.weak_held_by(state_, w, holder);
  }
  void set_entry(ObjectId map, ObjectId key, ObjectId value) override {
    p_.set_entry(state_, map, key, value);  // (asked only of a collector that keeps ephemerons)
  }
  void remove_entry(ObjectId map, ObjectId key) override { p_.remove_entry(state_, map, key); }
  void set_kind(ObjectId id, ObjectKind kind) override {
    if (p_.abi_version >= 3 && p_.set_kind != nullptr) {
      p_.set_kind(state_, id, static_cast<std::uint32_t>(kind));
    }
  }
  std::optional<ObjectId> deref(WeakId w) const override {
    cf_object target = 0;
    if (!capabilities_.weak_references || p_.deref(state_, w, &target) == 0) return std::nullopt;
    return target;
  }

  void inspect(ObjectId id, ObjectView& view) const override {
    view.references.clear();
    if (p_.traverse != nullptr) {
      p_.traverse(
          state_, id,
          [](void* context, cf_object target) {
            static_cast<std::vector<ObjectId>*>(context)->push_back(target);
          },
          &view.references);
    }
    view.count = p_.count != nullptr ? p_.count(state_, id) : 0;
    view.generation = p_.generation_of != nullptr ? p_.generation_of(state_, id) : 0;
  }
  std::uint64_t collections() const override {
    return p_.collections != nullptr ? p_.collections(state_) : collect_calls_;
  }
  void check_invariants() const override {
    if (p_.check_invariants == nullptr) return;
    if (const char* problem = p_.check_invariants(state_)) {
      throw BrokenInvariant(p_.name + std::string(": ") + problem);
    }
  }

 private:
  std::shared_ptr<const LoadedPlugin> loaded_;
  const cf_plugin& p_;
  Capabilities capabilities_;
  cf_host host_{};
  cf_collector* state_ = nullptr;
  std::uint64_t collect_calls_ = 0;
};

/// What is wrong with a plug-in's description, or "".
std::string problem_with(const cf_plugin& p) {
  if (p.abi_version < 1 || p.abi_version > CYCLEFUZZ_PLUGIN_ABI_VERSION) {
    return "plug-in ABI version " + std::to_string(p.abi_version) + ", but cyclefuzz speaks 1 to " +
           std::to_string(CYCLEFUZZ_PLUGIN_ABI_VERSION) + " (rebuild it against this cyclefuzz's "
           "collectors/plugin/cyclefuzz_plugin.h)";
  }
  if (p.name == nullptr || *p.name == '\0' || std::string(p.name).find(' ') != std::string::npos) {
    return "its name is missing or has spaces";
  }
  const std::pair<const char*, const void*> required[] = {
      {"create", reinterpret_cast<const void*>(p.create)},
      {"destroy", reinterpret_cast<const void*>(p.destroy)},
      {"allocate", reinterpret_cast<const void*>(p.allocate)},
      {"link", reinterpret_cast<const void*>(p.link)},
      {"unlink", reinterpret_cast<const void*>(p.unlink)},
      {"root", reinterpret_cast<const void*>(p.root)},
      {"unroot", reinterpret_cast<const void*>(p.unroot)},
      {"collect", reinterpret_cast<const void*>(p.collect)}};
  for (const auto& [name, function] : required) {
    if (function == nullptr) return std::string("its '") + name + "' function is NULL";
  }
  if (p.generations < 1 || p.generations > 3) {
    return "generations is " + std::to_string(p.generations) + " (1 to 3)";
  }
  if (p.generations > 1 && p.generation_of == nullptr) {
    return "it has generations but no 'generation_of' function";
  }
  if ((p.flags & CF_AUTOMATIC_COLLECTION) != 0 && p.collections == nullptr) {
    return "it collects automatically but has no 'collections' function";
  }
  if (p.count_meaning > CF_COUNT_EXTERNAL) {
    return "count_meaning is " + std::to_string(p.count_meaning) + " (0 to 2)";
  }
  if (p.count_meaning != CF_COUNT_NONE && (p.count == nullptr || p.traverse == nullptr)) {
    return "it has a count_meaning but no 'count' or no 'traverse' function";
  }
  if (p.abi_version < 2) return "";
  if (p.collect_count > CF_COLLECT_NONE) {
    return "collect_count is " + std::to_string(p.collect_count) + " (0 to 2)";
  }
  if ((p.freeze == nullptr) != (p.unfreeze == nullptr)) {
    return p.freeze != nullptr ? "it has a 'freeze' function but no 'unfreeze'"
                               : "it has an 'unfreeze' function but no 'freeze'";
  }
  if ((p.weak_ref == nullptr) != (p.deref == nullptr)) {
    return p.weak_ref != nullptr ? "it has a 'weak_ref' function but no 'deref'"
                                 : "it has a 'deref' function but no 'weak_ref'";
  }
  if (p.abi_version < 3) return "";
  if (p.weak_held_by != nullptr && p.weak_ref == nullptr) {
    return "it has a 'weak_held_by' function but no 'weak_ref'";
  }
  if ((p.set_entry == nullptr) != (p.remove_entry == nullptr)) {
    return p.set_entry != nullptr ? "it has a 'set_entry' function but no 'remove_entry'"
                                  : "it has a 'remove_entry' function but no 'set_entry'";
  }
  return "";
}

}  // namespace

CollectorEntry load_plugin(const std::string& path) {
  if (!std::filesystem::exists(path)) throw PluginError(path + ": no such file");
  // RTLD_LOCAL: two plug-ins may use the same symbol names.
  void* handle = dlopen(std::filesystem::absolute(path).c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    throw PluginError(path + ": not a loadable shared library (" + dlerror() + ")");
  }
  using Entry = const cf_plugin* (*)();
  const auto entry = reinterpret_cast<Entry>(dlsym(handle, "cyclefuzz_plugin"));
  if (entry == nullptr) {
    throw PluginError(path +
                      ": exports no cyclefuzz_plugin() (the one entry point of "
                      "collectors/plugin/cyclefuzz_plugin.h)");
  }
  const cf_plugin* plugin = entry();
  if (plugin == nullptr) throw PluginError(path + ": cyclefuzz_plugin() returned NULL");
  if (const std::string problem = problem_with(*plugin); !problem.empty()) {
    throw PluginError(path + ": " + problem);
  }
  // A null where a handle was due is reported now, not in the middle of a run.
  const cf_host probe{nullptr, [](void*, cf_object) {}, [](void*, cf_object) {},
                      [](void*, cf_weak) {}, [](void*, cf_weak) {}};
  const std::uint32_t thresholds[3] = {700, 10, 10};
  cf_collector* state = plugin->create(&probe, thresholds);
  if (state == nullptr) throw PluginError(path + ": create() returned NULL");
  plugin->destroy(state);
  auto loaded = std::make_shared<const LoadedPlugin>(LoadedPlugin{path, plugin});
  return {std::string("plugin:") + plugin->name,
          "plug-in " + path,
          [loaded](CollectorHost& l, const CollectorOptions& o) -> std::unique_ptr<Collector> {
            return std::make_unique<PluginCollector>(l, o, loaded);
          },
          false,
          true,
          path};
}

}  // namespace cyclefuzz
