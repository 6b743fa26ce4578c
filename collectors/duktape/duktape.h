// Duktape 2.7's collector - reference counting, with mark-and-sweep for what refcounting cannot
// free (duk_heap_refcount.c, duk_heap_markandsweep.c, duk_heap_finalize.c) - driven through the
// C API of the system's libduktape. Each adapter has a heap of its own.
//
// What maps to what:
//   object              an ECMAScript array of the adapter's own
//   reference a -> b    one element of a whose value is b: link appends, unlink moves a's last
//                       element into the dropped one's place and shortens a by one
//   external reference  one element of the array the heap stash keeps for the object
//                       (stash.roots[id]): root appends, unroot drops the last
//   map entries         the harness's strong-value maps, made of plain references
//   free                Duktape releasing the object's heap header through the heap's allocator
//                       (the adapter's: malloc and free): reference counting as soon as the count
//                       drops to zero, mark-and-sweep for the unreachable rest
//   finalizer           duk_set_finalizer with a C function that runs the trace's program.
//                       Reference counting runs it when the count drops to zero and frees the
//                       object right after unless the program left a reference to it;
//                       mark-and-sweep runs it for an unreachable object, keeps it (and all it
//                       reaches) until its next round, which frees it if it is still unreachable.
//                       A finalizer may run again for the same object (Duktape asks for
//                       re-entrant finalizers): Capabilities::finalizers_may_run_again
//   collect             duk_gc(): one round of mark-and-sweep (Duktape has no generations)
//   automatic           Duktape's voluntary rounds of mark-and-sweep, every so many allocations
//   collections()       rounds of mark-and-sweep, seen by a sentinel: an object in a cycle of its
//                       own, whose finalizer counts a round and makes the next sentinel
//   count               the object's reference count, h_refcount in its heap header (after the
//                       32-bit flags, in Debian's configuration of Duktape: checked when the
//                       heap is made); between operations nothing but other objects' elements
//                       and the stash's arrays refers to an object
//
// The adapter names objects by their heap pointers (duk_push_heapptr), which keep nothing alive:
// it pushes one only while Duktape holds it - the allocator reports each header's free. Pushing
// an object that waits for its finalizer cancels the finalizer (Duktape's "autorescue"): between
// operations none waits (Duktape runs every queued finalizer before the operation returns), so
// inspection cancels nothing; during one, a finalizer's program that names another object
// waiting for its finalizer cancels it for that round, and a later round runs it.
//
// Duktape raises errors by longjmp: every operation runs in protected mode (duk_safe_call) and an
// error becomes a std::runtime_error; an exception from the program inside a finalizer waits for
// the end of the operation.
#pragma once

#include <cstdint>
#include <exception>
#include <unordered_map>
#include <vector>

#include "collectors/collector.h"

namespace cyclefuzz {

class DuktapeCollector : public Collector {
 public:
  /// Throws std::runtime_error when the heap cannot be made.
  explicit DuktapeCollector(CollectorHost& host);
  ~DuktapeCollector() override;

  const Capabilities& capabilities() const override { return capabilities_; }
  void allocate(ObjectId id) override;
  void link(ObjectId from, ObjectId to) override;
  void unlink(ObjectId from, ObjectId to) override;
  void root(ObjectId id) override;
  void unroot(ObjectId id) override;
  std::size_t collect(int generation) override;
  void set_finalizer(ObjectId id) override;
  void inspect(ObjectId id, ObjectView& view) const override;
  std::uint64_t collections() const override { return rounds_; }
  void check_invariants() const override;
  void check_invariants_of(std::span<const ObjectId> objects) const override;

  // Called by the finalizers and the allocator, inside Duktape: none throws.
  void node_finalized(void* header);
  void sentinel_finalized();
  void block_freed(const void* block);

 private:
  /// What the adapter holds for one object.
  struct Record {
    void* header = nullptr;  // Duktape's heap header: the object's heap pointer
    bool freed = false;
    bool has_finalizer = false;
    std::uint32_t roots = 0;  // its external references: the length of stash.roots[id]
  };
  struct Call;  // one operation's arguments and results, across duk_safe_call
  enum class CallKind : std::uint8_t;

  /// Runs `c` in protected mode; throws std::runtime_error on a Duktape error, and what a
  /// finalizer's program threw meanwhile.
  void call(Call& c);
  void perform(Call& c);
  void setup();
  void make_sentinel();
  /// Pushes object `id`, which Duktape must still hold (else a Duktape error).
  void push_object(ObjectId id) const;
  /// The id of the object at `index`, or -1 if it is none of the trace's objects.
  long long id_of(int index) const;
  /// Throws BrokenInvariant unless object `id`, not freed, is what the adapter made of it.
  void check_object(ObjectId id) const;
  std::uint32_t reference_count(const void* header) const;

  Capabilities capabilities_;
  void* context_ = nullptr;  // the heap's duk_context (its heap thread)
  std::vector<Record> records_;                          // by object id
  std::unordered_map<const void*, ObjectId> object_at_;  // by heap header, objects not freed
  std::exception_ptr error_;  // thrown inside Duktape, by a finalizer's program
  std::uint64_t rounds_ = 0;
  bool closing_ = false;  // duk_destroy_heap finalizes and frees what is left: not the trace's
};

}  // namespace cyclefuzz
