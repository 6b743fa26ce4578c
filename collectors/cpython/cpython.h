// CPython 3.11's own collector (Modules/gcmodule.c: reference counting plus three generations),
// driven through the C API of the system's libpython3.11, embedded once per process.
//
// What maps to what:
//   object              an instance of Node, a C type the adapter defines in the interpreter
//                       (collectors/cpython/cpython.cpp): a container of references with weak
//                       reference support and a PEP 442 finalizer, as a C extension's type is.
//                       Its tp_traverse and tp_clear follow CPython's protocol, so the collector
//                       sees exactly the trace's references; it is one object to the collector,
//                       so gc.collect() counts exactly the harness's objects
//   reference a -> b    one item of a's array that is b: link appends, unlink removes one such
//                       item, which releases it
//   external reference  one strong reference owned by the adapter: root is Py_INCREF, unroot is
//                       Py_DECREF, as a C extension holds and drops objects
//   free                the call of Node's tp_dealloc that does not end in a resurrection
//                       (CPython frees the memory at its end)
//   finalizer           Node's tp_finalize runs the trace's finalizer program for an object the
//                       trace gave one; CPython calls it at most once per object (PEP 442), from
//                       the collector's finalize_garbage or from tp_dealloc, and keeps what it
//                       resurrects (handle_resurrected_objects)
//   weak reference      weakref.ref(object), with a callback when the trace asks for one; deref
//                       is calling it. A clear is reported as soon as the adapter can see it: when
//                       a callback runs, before a finalizer runs, after the object's own
//                       PyObject_ClearWeakRefs, at the end of each collection (CPython clears
//                       every weak reference to an object, or to all of a collection's garbage,
//                       before it calls any callback); the callback is reported when CPython
//                       calls it
//   collect(g)          gc.collect(g)
//   automatic           gc.set_threshold(thresholds) from the run's options, and again at each
//                       `threshold` op; a first threshold of 0 disables automatic collection,
//                       as in CPython
//   freeze, unfreeze    gc.freeze(), gc.unfreeze()
//   disable, enable     gc.disable(), gc.enable()
//   collections()       counted by an entry in gc.callbacks
//   generation          the collector's list that holds the object, read from the interpreter's
//                       state without allocating (generation.c)
//
// The interpreter and its collector are shared by the whole process, so only one CPythonCollector
// may exist at a time: another's gc.collect() would free this one's garbage behind the checker's
// back. Outside an operation the adapter allocates no Python object, since any allocation of a
// tracked object may start an automatic collection.
#pragma once

#include <array>
#include <exception>
#include <memory>
#include <span>
#include <vector>

#include "collectors/collector.h"

struct _object;  // PyObject, without <Python.h>

namespace cyclefuzz {

class CPythonCollector : public Collector {
 public:
  /// Throws std::runtime_error when the interpreter cannot start or another CPythonCollector is
  /// alive.
  CPythonCollector(CollectorHost& listener, const CollectorOptions& options);
  ~CPythonCollector() override;

  const Capabilities& capabilities() const override { return capabilities_; }
  void allocate(ObjectId id) override;
  void link(ObjectId from, ObjectId to) override;
  void unlink(ObjectId from, ObjectId to) override;
  void root(ObjectId id) override;
  void unroot(ObjectId id) override;
  std::size_t collect(int generation) override;
  void set_thresholds(const std::array<std::uint32_t, 3>& thresholds) override;
  void freeze() override;
  void unfreeze() override;
  void set_automatic_collection(bool enabled) override;
  void set_finalizer(ObjectId id) override;
  void weak_ref(WeakId w, ObjectId target, bool callback) override;
  void weak_held_by(WeakId w, ObjectId holder) override;
  std::optional<ObjectId> deref(WeakId w) const override;
  void inspect(ObjectId id, ObjectView& view) const override;
  std::uint64_t collections() const override { return collections_; }
  void check_invariants() const override;
  void check_invariants_of(std::span<const ObjectId> objects) const override;

  // Called by the interpreter: Node's slots and the callbacks the adapter gives it. None throws:
  // an error is kept and thrown at the end of the adapter's operation (CPython's C frames cannot
  // pass a C++ exception on).
  void node_finalized(ObjectId id);
  void node_dying(ObjectId id);
  void node_freed(ObjectId id);
  void node_cleared(ObjectId id);
  void weak_callback_ran(WeakId w);
  void collection_started() {
    ++collections_;
    clears_unseen_ = true;
  }
  void collection_stopped() { report_clears(); }

 private:
  /// What the adapter holds for one object.
  struct Handle {
    _object* object = nullptr;   // not owned: the Node, until CPython frees it
    std::uint32_t external = 0;  // strong references the adapter owns
    bool dying = false;          // in its tp_dealloc, the free not yet reported
    std::vector<WeakId> weak;    // the program's weak references to it
    std::vector<WeakId> held;    // ... and those it holds (weakref objects among its items)
  };
  /// One of the program's weak references.
  struct WeakHandle {
    _object* ref = nullptr;       // owned; borrowed from its holder's items when it has one, and
                                  // nullptr once the holder dropped them (the weakref went too)
    ObjectId target = 0;
    bool held = false;
    ObjectId holder = 0;          // when held
    _object* callback = nullptr;  // owned, when it has one
    bool cleared_reported = false;
  };
  void report_cleared(WeakId w);
  void drop_held_weak_references(ObjectId holder);
  void check_objects(std::span<const ObjectId> ids) const;
  /// Reports the free of a dying object, once, after the clears of its weak references.
  void report_free_after_clears(ObjectId id);
  /// Reports the weak references that a collection's handle_weakrefs cleared, once it started:
  /// every other clear is of an object's weak references as it dies (report_free_after_clears).
  void report_clears();
  /// Runs `what` for a call from the interpreter: an exception is kept for rethrow_error().
  template <typename F>
  void from_interpreter(F&& what);
  /// Ends an operation: throws what a call from the interpreter kept.
  void rethrow_error();

  _object* object(ObjectId id) const;  // borrowed; throws if the runtime has freed it
  /// The id of a Node this adapter holds; an id of no object for anything else.
  ObjectId id_of(_object* o) const;

  Capabilities capabilities_;
  std::vector<Handle> handles_;  // by object id
  std::vector<WeakHandle> weak_;  // by weak reference id
  std::vector<WeakId> held_;      // the weak references objects hold, less those gone (collect)
  std::vector<WeakId> uncleared_;  // alive and not reported cleared (report_clears' candidates)
  std::size_t alive_ = 0;          // objects not reported freed
  // A collection started: its handle_weakrefs clears the weak references to all its garbage,
  // unseen until a finalizer or callback runs, or it frees or clears an object.
  bool clears_unseen_ = false;
  std::exception_ptr error_;       // kept by from_interpreter
  _object* collection_callback_ = nullptr;  // entry of gc.callbacks, bound to this adapter
  _object* previous_thresholds_ = nullptr;  // gc.get_threshold() before this adapter
  std::uint64_t collections_ = 0;
  bool frozen_ = false;  // since the last gc.freeze(), no gc.unfreeze()
};

}  // namespace cyclefuzz
