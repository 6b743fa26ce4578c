#include "collectors/nim/nim_orc.h"

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <utility>

// collectors/nim/nodes.nim, compiled to C. Its objects are pointers to a Node or an Acyclic (the
// bool says which); ids are Nim ints.
extern "C" {
void cyclefuzzNimMain();
void* cyclefuzz_nim_new(std::int64_t id, bool acyclic);
void cyclefuzz_nim_ref(void* object, bool acyclic);
void cyclefuzz_nim_unref(void* object, bool acyclic);
void cyclefuzz_nim_link(void* from, bool from_acyclic, void* to, bool to_acyclic);
bool cyclefuzz_nim_unlink(void* from, bool from_acyclic, void* to, bool to_acyclic);
void cyclefuzz_nim_collect();
std::int64_t cyclefuzz_nim_roots();
std::int64_t cyclefuzz_nim_count(void* object);
std::int64_t cyclefuzz_nim_flags(void* object);
std::int64_t cyclefuzz_nim_root_index(void* object);
std::int64_t cyclefuzz_nim_id(void* object, bool acyclic);
std::int64_t cyclefuzz_nim_reference_count(void* object, bool acyclic);
void* cyclefuzz_nim_reference(void* object, bool acyclic, std::int64_t i);
void cyclefuzz_nim_freed(void* object, std::int64_t id, bool by_cycle_collector);  // below
// orc.nim's rootsThreshold, private to Nim's system module: CMake finds its name in the C.
extern std::int64_t CYCLEFUZZ_NIM_ROOTS_THRESHOLD;
}

namespace cyclefuzz {

namespace {

/// What `inspect` shows for a reference to something that is not one of the adapter's objects.
constexpr ObjectId kNotAnObject = std::numeric_limits<ObjectId>::max();

/// The id of the object that tests ORC's header at start.
constexpr std::int64_t kHeaderTest = -1;

// orc.nim's defaultThreshold, which GC_enableOrc sets, and what GC_disableOrc sets.
constexpr std::int64_t kDefaultThreshold = 128;
constexpr std::int64_t kNoThreshold = std::numeric_limits<std::int64_t>::max();

/// The one adapter allowed at a time (the destructors report to it).
NimOrcCollector* active = nullptr;

// The adapter reads ORC's counts and root indices from arc.nim's RefHeader, which is private to
// Nim's system module: one object, held once, then twice, then once again (which makes it a
// possible root, the last in ORC's buffer), shows whether it reads them where they are.
bool header_reads_right() {
  void* o = cyclefuzz_nim_new(kHeaderTest, false);
  bool right = cyclefuzz_nim_count(o) == 1 && cyclefuzz_nim_flags(o) == 0 &&
               cyclefuzz_nim_root_index(o) == 0;
  cyclefuzz_nim_ref(o, false);
  right = right && cyclefuzz_nim_count(o) == 2;
  cyclefuzz_nim_unref(o, false);
  right = right && cyclefuzz_nim_count(o) == 1 &&
          cyclefuzz_nim_root_index(o) == cyclefuzz_nim_roots();
  cyclefuzz_nim_unref(o, false);  // frees it, and takes it out of the buffer
  return right && cyclefuzz_nim_roots() == 0;
}

/// Starts Nim's runtime, once per process (NimMain fills in the types' destructors and trace
/// procedures that ORC calls), and tests the header.
void start_nim() {
  static const bool kHeaderReadsRight = [] {
    cyclefuzzNimMain();
    return header_reads_right();
  }();
  if (!kHeaderReadsRight) {
    throw std::runtime_error(
        "nim-orc: ORC's object header is not laid out as collectors/nim/nodes.nim reads it "
        "(the RefHeader of Nim 1.6's lib/system/arc.nim with --mm:orc)");
  }
}

}  // namespace

}  // namespace cyclefuzz

// Inside ORC, from a destructor: the active adapter's, if any (the object of a runtime test, or
// one an adapter torn down could not free, belongs to none).
extern "C" void cyclefuzz_nim_freed(void* object, std::int64_t id, bool by_cycle_collector) {
  if (cyclefuzz::NimOrcCollector* adapter = cyclefuzz::active) {
    adapter->object_freed(object, static_cast<long long>(id), by_cycle_collector);
  }
}

namespace cyclefuzz {

NimOrcCollector::NimOrcCollector(CollectorHost& listener)
    : Collector(listener), threshold_(kDefaultThreshold) {
  start_nim();
  if (active != nullptr) {
    throw std::runtime_error(
        "nim-orc: another nim-orc collector is alive in this process; ORC's buffer of possible "
        "roots is shared, so only one can be checked at a time");
  }
  active = this;
  CYCLEFUZZ_NIM_ROOTS_THRESHOLD = threshold_;  // (whatever the last run left)
}

// Drops the external references and collects the cycles left; what ORC frees on the way is not
// the trace's.
NimOrcCollector::~NimOrcCollector() {
  reporting_ = false;
  for (Handle& h : handles_) {
    for (; h.object != nullptr && h.external > 0; --h.external) {
      cyclefuzz_nim_unref(h.object, h.acyclic);
    }
  }
  cyclefuzz_nim_collect();
  active = nullptr;
}

const Capabilities& NimOrcCollector::capabilities() const {
  static const Capabilities kCapabilities{.reference_counting = true,
                                          .generations = 1,
                                          .automatic_collection = true,
                                          .count = CountMeaning::References,
                                          .collect_count = CollectCount::Freed};
  return kCapabilities;
}

// ================================================================================================
// The mutator's operations
// ================================================================================================

void* NimOrcCollector::object(ObjectId id) const {
  void* o = handles_.at(id).object;
  if (o == nullptr) {
    throw std::runtime_error("nim-orc: object " + std::to_string(id) + " has been freed");
  }
  return o;
}

void NimOrcCollector::finish() {
  if (collected_) ++collections_;
  collected_ = false;
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

void NimOrcCollector::allocate(ObjectId id) {
  if (handles_.size() <= id) handles_.resize(id + 1);
  object_at_.reserve(object_at_.size() + 1);
  void* o = cyclefuzz_nim_new(id, false);
  handles_[id] = {o, false, 1};  // the new object's one count is the first external reference
  object_at_.emplace(o, id);
  finish();
}

// Nim's acyclic objects are of a type of their own, and `new` made a Node: the Node, which has no
// references and only the adapter's count, goes (unreported) and an Acyclic takes its id.
void NimOrcCollector::set_kind(ObjectId id, ObjectKind kind) {
  if (kind != ObjectKind::Acyclic) return;
  Handle& h = handles_.at(id);
  if (h.object == nullptr || h.acyclic || h.external != 1) {
    throw std::runtime_error("nim-orc: object " + std::to_string(id) +
                             " is not a new object, held once");
  }
  reporting_ = false;
  cyclefuzz_nim_unref(h.object, false);
  reporting_ = true;
  void* o = cyclefuzz_nim_new(id, true);
  h = {o, true, 1};
  object_at_.emplace(o, id);
  finish();
}

void NimOrcCollector::link(ObjectId from, ObjectId to) {
  void* a = object(from);
  void* b = object(to);
  if (handles_[from].acyclic && !handles_[to].acyclic) {
    throw std::runtime_error("nim-orc: acyclic object " + std::to_string(from) +
                             " cannot refer to object " + std::to_string(to) +
                             ", which is not acyclic");
  }
  cyclefuzz_nim_link(a, handles_[from].acyclic, b, handles_[to].acyclic);
  finish();
}

void NimOrcCollector::unlink(ObjectId from, ObjectId to) {
  if (!cyclefuzz_nim_unlink(object(from), handles_[from].acyclic, object(to),
                            handles_[to].acyclic)) {
    throw std::runtime_error("nim-orc: object " + std::to_string(from) +
                             " holds no reference to object " + std::to_string(to));
  }
  finish();
}

void NimOrcCollector::root(ObjectId id) {
  cyclefuzz_nim_ref(object(id), handles_[id].acyclic);
  ++handles_[id].external;
}

void NimOrcCollector::unroot(ObjectId id) {
  void* o = object(id);
  --handles_[id].external;
  cyclefuzz_nim_unref(o, handles_[id].acyclic);
  finish();
}

// GC_fullCollect returns nothing: the count is the frees reported during the call, which ORC
// makes only there (the garbage's destructors, and those of the acyclic objects that only the
// garbage held, which reference counting frees as the garbage's sequences go).
std::size_t NimOrcCollector::collect(int /*generation*/) {
  const std::size_t before = freed_;
  cyclefuzz_nim_collect();
  collected_ = true;  // (if it found no garbage, too)
  const std::size_t freed = freed_ - before;
  finish();
  return freed;
}

// ORC collects when a possible root makes its buffer reach the threshold, which it then adapts
// after each collection: GC_enableOrc sets it to 128, GC_disableOrc out of reach. A `threshold`
// op sets it as they do, to its first threshold (0, as in CPython, disables), and `enable` sets
// it back to that (or 128) as CPython's gc.enable() keeps the thresholds.
void NimOrcCollector::set_thresholds(const std::array<std::uint32_t, 3>& thresholds) {
  threshold_ = thresholds[0] == 0 ? kNoThreshold : thresholds[0];
  if (automatic_) CYCLEFUZZ_NIM_ROOTS_THRESHOLD = threshold_;
}

void NimOrcCollector::set_automatic_collection(bool enabled) {
  automatic_ = enabled;
  CYCLEFUZZ_NIM_ROOTS_THRESHOLD = enabled ? threshold_ : kNoThreshold;
}

void NimOrcCollector::object_freed(void* object, long long id, bool by_cycle_collector) {
  const auto it = object_at_.find(object);
  if (it == object_at_.end()) return;  // (not one of this adapter's objects)
  const ObjectId x = it->second;
  object_at_.erase(it);
  handles_[x].object = nullptr;
  if (!reporting_) return;
  ++freed_;
  collected_ = collected_ || by_cycle_collector;
  try {
    if (id != x) {
      broken_invariant("nim-orc", x, "was freed with the id " + std::to_string(id) + " in it");
    }
    report_free(x);
  } catch (...) {
    if (!error_) error_ = std::current_exception();
  }
}

// ================================================================================================
// Inspection
// ================================================================================================

void NimOrcCollector::inspect(ObjectId id, ObjectView& view) const {
  view.references.clear();
  view.generation = 0;
  void* o = object(id);
  const bool acyclic = handles_[id].acyclic;
  const std::int64_t n = cyclefuzz_nim_reference_count(o, acyclic);
  for (std::int64_t i = 0; i < n; ++i) {
    const auto it = object_at_.find(cyclefuzz_nim_reference(o, acyclic, i));
    view.references.push_back(it == object_at_.end() ? kNotAnObject : it->second);
  }
  view.count = static_cast<std::uint64_t>(cyclefuzz_nim_count(o));
}

// Every object not freed carries its own id, is black with no flag of a collection (ORC colors
// objects only while it collects), is at most a possible root within ORC's buffer (never an
// acyclic one), and refers only to objects not freed (an acyclic one only to acyclic ones).
void NimOrcCollector::check_object(
    ObjectId id, std::unordered_map<const void*, std::uint64_t>* referrers) const {
  const Handle& h = handles_[id];
  if (h.object == nullptr) return;
  const auto it = object_at_.find(h.object);
  if (it == object_at_.end() || it->second != id) {
    broken_invariant("nim-orc", id, "is not at its address in the adapter's table");
  }
  if (cyclefuzz_nim_id(h.object, h.acyclic) != id) {
    broken_invariant("nim-orc", id, "carries the id " +
                                        std::to_string(cyclefuzz_nim_id(h.object, h.acyclic)));
  }
  if (const std::int64_t flags = cyclefuzz_nim_flags(h.object); flags != 0) {
    broken_invariant("nim-orc", id, "has ORC's flags " + std::to_string(flags) +
                                        " (a color other than black) outside a collection");
  }
  const std::int64_t root_index = cyclefuzz_nim_root_index(h.object);
  if (root_index < 0 || root_index > cyclefuzz_nim_roots() || (h.acyclic && root_index != 0)) {
    broken_invariant("nim-orc", id, "has the root index " + std::to_string(root_index) + " in " +
                                        std::to_string(cyclefuzz_nim_roots()) +
                                        " possible roots");
  }
  const std::int64_t n = cyclefuzz_nim_reference_count(h.object, h.acyclic);
  for (std::int64_t i = 0; i < n; ++i) {
    const void* to = cyclefuzz_nim_reference(h.object, h.acyclic, i);
    const auto referent = object_at_.find(to);
    if (referent == object_at_.end()) {
      broken_invariant("nim-orc", id, "refers to something that is not a live object");
    }
    if (h.acyclic && !handles_[referent->second].acyclic) {
      broken_invariant("nim-orc", id, "is acyclic but refers to an object that is not");
    }
    if (referrers != nullptr) ++(*referrers)[to];
  }
}

void NimOrcCollector::check_invariants_of(std::span<const ObjectId> objects) const {
  for (ObjectId id : objects) check_object(id, nullptr);
}

// Besides each object's invariants: each count is the object's external references plus its
// referrers', and ORC's buffer of possible roots holds exactly the objects whose root index
// points into it, each at its own place.
void NimOrcCollector::check_invariants() const {
  std::unordered_map<const void*, std::uint64_t> referrers;
  std::size_t alive = 0;
  for (ObjectId id = 0; id < handles_.size(); ++id) {
    if (handles_[id].object == nullptr) continue;
    ++alive;
    check_object(id, &referrers);
  }
  if (alive != object_at_.size()) {
    throw BrokenInvariant("nim-orc: the adapter's table of addresses holds " +
                          std::to_string(object_at_.size()) + " objects, not the " +
                          std::to_string(alive) + " not freed");
  }
  std::unordered_set<std::int64_t> root_indices;
  for (ObjectId id = 0; id < handles_.size(); ++id) {
    const Handle& h = handles_[id];
    if (h.object == nullptr) continue;
    const std::uint64_t count = static_cast<std::uint64_t>(cyclefuzz_nim_count(h.object));
    const std::uint64_t internal = referrers[h.object];
    if (count != h.external + internal) {
      broken_invariant("nim-orc", id, "has count " + std::to_string(count) + " but " +
                                          std::to_string(h.external) + " external and " +
                                          std::to_string(internal) + " internal references");
    }
    const std::int64_t root_index = cyclefuzz_nim_root_index(h.object);
    if (root_index != 0 && !root_indices.insert(root_index).second) {
      broken_invariant("nim-orc", id, "shares the root index " + std::to_string(root_index) +
                                          " with another object");
    }
  }
  const std::int64_t roots = cyclefuzz_nim_roots();
  if (static_cast<std::int64_t>(root_indices.size()) != roots) {
    throw BrokenInvariant("nim-orc: ORC's buffer holds " + std::to_string(roots) +
                          " possible roots, but " + std::to_string(root_indices.size()) +
                          " objects are in it");
  }
}

}  // namespace cyclefuzz
