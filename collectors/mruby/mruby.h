// mruby 3.1's collector (gc.c): tri-colour incremental mark-and-sweep with write barriers, in its
// incremental or its generational mode, driven through the C API of the system's libmruby (a
// static library). Each adapter has an mrb_state of its own.
//
// What maps to what:
//   object              a data object (MRB_TT_DATA) of class Node, whose instance variable @r
//                       holds an array of its references
//   reference a -> b    one element of a's @r whose value is b: link appends (mrb_ary_push, with
//                       its write barrier), unlink moves the last element into the dropped one's
//                       place (mrb_ary_set) and pops it
//   external reference  one mrb_gc_register of the object (mruby's array of registered values);
//                       unroot is one mrb_gc_unregister
//   map entries         the harness's strong-value maps, made of plain references
//   free                mruby sweeping the object: its data type's dfree, which mruby calls as
//                       it frees the object's slot
//   finalizer           none: mruby's core has no finalizers (dfree runs in the middle of the
//                       sweep, where no program may run)
//   collect             mrb_full_gc(), whatever the generation asked for
//   automatic           mruby's own steps during allocations (GC.interval_ratio = 100: a new
//                       cycle as soon as the heap grows past what the last one left); in
//                       generational mode, minor collections, and major ones as it sees fit
//   collections()       finished cycles (major ones, in generational mode), seen by a sentinel:
//                       an unreferenced data object whose dfree counts a cycle; the adapter makes
//                       the next after the operation
//
// The adapter names objects by their addresses, which keep nothing alive: it uses one only while
// mruby holds the object (dfree reports each free). Objects the C API makes are kept alive by
// mruby's GC arena until the operation ends, where the adapter restores the arena.
//
// mruby raises errors by longjmp: every operation runs under mrb_protect_error and an error
// becomes a std::runtime_error.
#pragma once

#include <cstdint>
#include <exception>
#include <unordered_set>
#include <vector>

#include "collectors/collector.h"

struct mrb_state;
struct RData;

namespace cyclefuzz {

enum class MrubyMode : std::uint8_t { Incremental, Generational };

class MrubyCollector : public Collector {
 public:
  /// Throws std::runtime_error when the state cannot be made.
  MrubyCollector(CollectorHost& host, MrubyMode mode);
  ~MrubyCollector() override;

  const Capabilities& capabilities() const override { return capabilities_; }
  void allocate(ObjectId id) override;
  void link(ObjectId from, ObjectId to) override;
  void unlink(ObjectId from, ObjectId to) override;
  void root(ObjectId id) override;
  void unroot(ObjectId id) override;
  std::size_t collect(int generation) override;
  void inspect(ObjectId id, ObjectView& view) const override;
  std::uint64_t collections() const override { return cycles_; }
  void check_invariants() const override;
  void check_invariants_of(std::span<const ObjectId> objects) const override;

  // Called by dfree, inside mruby's sweep: neither throws nor allocates mruby objects.
  void node_freed(ObjectId id);
  void sentinel_freed();

 private:
  struct Record {
    RData* object = nullptr;  // its address: nothing holds it through this
    bool freed = false;
  };
  struct Call;  // one operation's arguments and results, across mrb_protect_error
  enum class CallKind : std::uint8_t;

  /// Runs `c` in protected mode, then restores the GC arena and makes the next sentinel if the
  /// last one went; throws std::runtime_error on an mruby error.
  void call(Call& c);
  void perform(Call& c);
  void setup();
  void make_sentinel();
  /// Throws BrokenInvariant unless object `id`, not freed, is what the adapter made of it.
  void check_object(ObjectId id) const;

  MrubyMode mode_;
  Capabilities capabilities_;
  mrb_state* mrb_ = nullptr;
  void* node_class_ = nullptr;  // RClass*
  std::vector<Record> records_;  // by object id
  // The slots where mruby freed a Node that no Node has taken since (check_object).
  std::unordered_set<const void*> freed_slots_;
  std::exception_ptr error_;     // thrown by the checks a free reported, inside mruby's sweep
  std::uint64_t cycles_ = 0;
  bool sentinel_gone_ = false;
  bool closing_ = false;  // mrb_close frees what is left: not the trace's frees
};

}  // namespace cyclefuzz
