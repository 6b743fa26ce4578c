// Nim 1.6's ORC (lib/system/orc.nim and arc.nim: reference counting, plus a synchronous cycle
// collector after Bacon and Rajan over a buffer of possible roots), running in a Nim module of
// the adapter's own (collectors/nim/nodes.nim), which CMake compiles with the system's Nim
// (--mm:orc -d:useMalloc) into C built like the rest of cyclefuzz.
//
// What maps to what:
//   object              a Node (`ref object` with a `seq` of Nodes and one of Acyclic objects),
//                       or, for an object of kind `acyclic`, an Acyclic: a type marked
//                       {.acyclic.}, whose dropped references ORC never takes for possible roots
//                       and whose references from Nodes ORC does not trace. set_kind replaces
//                       the Node that `new` made (one count, no references: the adapter drops
//                       it, unreported) by an Acyclic; other kinds are Nodes
//   reference a -> b    one entry of a's seq that is b: link appends (a copy: ORC counts it),
//                       unlink takes out the last entry that is b (seq's del) and drops it,
//                       which frees b at zero and otherwise makes b a possible root
//   external reference  one count the adapter owns: the new object's, then GC_ref; unroot is
//                       GC_unref, the same release as a dropped reference
//   free                the type's destructor (=destroy), which ORC calls just before it releases
//                       the memory: by reference counting, or for the garbage the cycle
//                       collector found. Nim has no finalizers that resurrect, and no weak
//                       references
//   collect             GC_fullCollect(): every collection is full (no generations). It returns
//                       nothing: the count is what the destructors reported during the call
//   automatic           ORC collects when a possible root added makes the buffer reach its
//                       threshold: 128 roots at first, then adapted to how much each collection
//                       freed (down to 16, or up). `threshold t0 t1 t2` sets it to t0 (0
//                       disables), `disable` out of reach, `enable` back to the trace's or 128,
//                       writing orc.nim's private rootsThreshold as GC_enableOrc() and
//                       GC_disableOrc() do: at 128, few traces reach it. The run's thresholds
//                       (--thresholds) do not apply
//   collections()       the `collect` ops, and the other ops in which the cycle collector freed
//                       an object (a destructor tells: nodes.nim). ORC counts no collections, so
//                       an automatic one that freed nothing goes uncounted, and several in one
//                       op count as one
//   count               ORC's reference count, read from the object's header (arc.nim's
//                       RefHeader, whose layout the adapter tests at start)
//
// ORC's buffer of possible roots and its threshold are the process's (a thread variable: one
// thread runs everything), so only one NimOrcCollector may exist at a time. Each starts with the
// default threshold. Objects ORC still holds when an adapter is torn down, after it dropped its
// external references and collected, are never reported.
#pragma once

#include <array>
#include <cstdint>
#include <exception>
#include <unordered_map>
#include <vector>

#include "collectors/collector.h"

namespace cyclefuzz {

class NimOrcCollector : public Collector {
 public:
  /// Throws std::runtime_error when another NimOrcCollector is alive, or when ORC's object
  /// header is not laid out as the adapter reads it.
  explicit NimOrcCollector(CollectorHost& listener);
  ~NimOrcCollector() override;

  const Capabilities& capabilities() const override;
  void allocate(ObjectId id) override;
  void set_kind(ObjectId id, ObjectKind kind) override;
  void link(ObjectId from, ObjectId to) override;
  void unlink(ObjectId from, ObjectId to) override;
  void root(ObjectId id) override;
  void unroot(ObjectId id) override;
  std::size_t collect(int generation) override;
  void set_thresholds(const std::array<std::uint32_t, 3>& thresholds) override;
  void set_automatic_collection(bool enabled) override;
  void inspect(ObjectId id, ObjectView& view) const override;
  std::uint64_t collections() const override { return collections_; }
  void check_invariants() const override;
  void check_invariants_of(std::span<const ObjectId> objects) const override;

  /// Called by the objects' destructors, inside ORC: never throws.
  void object_freed(void* object, long long id, bool by_cycle_collector);

 private:
  /// What the adapter holds for one object.
  struct Handle {
    void* object = nullptr;     // not an owned pointer: null once ORC frees it
    bool acyclic = false;       // an Acyclic, not a Node
    std::uint32_t external = 0; // counts the adapter owns
  };

  void* object(ObjectId id) const;  // throws if ORC has freed it
  /// Ends an operation: counts a collection if one ran, and throws what the program threw inside
  /// ORC (from a report of a free).
  void finish();
  /// The invariants of one object; adds its references to `referrers` if given.
  void check_object(ObjectId id, std::unordered_map<const void*, std::uint64_t>* referrers) const;

  std::vector<Handle> handles_;                          // by object id
  std::unordered_map<const void*, ObjectId> object_at_;  // the objects not freed, by address
  std::int64_t threshold_;        // the trace's threshold of possible roots
  bool automatic_ = true;         // `disable` puts the threshold out of reach
  std::uint64_t collections_ = 0;
  std::size_t freed_ = 0;        // frees reported so far
  bool collected_ = false;       // a collection ran during the op
  bool reporting_ = true;        // false while replacing an object or tearing down
  std::exception_ptr error_;     // thrown by the program's side of a report
};

}  // namespace cyclefuzz
