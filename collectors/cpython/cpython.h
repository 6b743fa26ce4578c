// CPython 3.11's own collector (Modules/gcmodule.c: reference counting plus three generations),
// driven through the C API of the system's libpython3.11, embedded once per process.
//
// What maps to what:
//   object              an instance of `class Node(list): __slots__ = ('__weakref__',)`, a class
//                       the adapter defines in the interpreter. The instance is itself the
//                       container of its references, so it is one object to the collector and
//                       gc.collect() counts exactly the harness's objects (an instance with a
//                       __dict__ or a separate list would count twice)
//   reference a -> b    one element of a's list that is b: link is PyList_Append, unlink deletes
//                       one such element with PyList_SetSlice, which releases it
//   external reference  one strong reference owned by the adapter: root is Py_INCREF, unroot is
//                       Py_DECREF, as a C extension holds and drops objects
//   free                the callback of the one weak reference the adapter holds to each object,
//                       which CPython calls when it frees the object (from the deallocator, or
//                       from the collector's handle_weakrefs just before it clears the garbage)
//   weak reference      weakref.ref(object), with a callback when the trace asks for one; deref
//                       is calling it. A clear is reported when CPython calls the reference's
//                       callback, or, for one without a callback, when the free is reported
//                       (CPython clears every weak reference to an object before it calls any
//                       callback); the callback is reported when CPython calls it
//   collect(g)          gc.collect(g)
//   automatic           gc.set_threshold(thresholds) from the run's options, and again at each
//                       `threshold` op; a first threshold of 0 disables automatic collection,
//                       as in CPython
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
#include <memory>
#include <unordered_map>
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
  void weak_ref(WeakId w, ObjectId target, bool callback) override;
  void weak_held_by(WeakId w, ObjectId holder) override;
  std::optional<ObjectId> deref(WeakId w) const override;
  void inspect(ObjectId id, ObjectView& view) const override;
  std::uint64_t collections() const override { return collections_; }
  void check_invariants() const override;

  // Called by the interpreter, through the callbacks the adapter gives it.
  void weakref_died(_object* weakref);
  void weak_callback_ran(WeakId w);
  void collection_started() { ++collections_; }

 private:
  /// What the adapter holds for one object.
  struct Handle {
    _object* weakref = nullptr;  // owned; its referent is the object while it lives
    _object* object = nullptr;   // not owned: the address, to forget it once freed
    std::uint32_t external = 0;  // strong references the adapter owns
    std::vector<WeakId> weak;    // the program's weak references to it
    std::vector<WeakId> held;    // ... and those it holds (weakref objects among its items)
  };
  /// One of the program's weak references.
  struct WeakHandle {
    _object* ref = nullptr;       // owned; borrowed from its holder's list when it has one, and
                                  // nullptr once the holder is freed (the weakref went with it)
    bool held = false;
    ObjectId holder = 0;          // when held
    _object* callback = nullptr;  // owned, when it has one
    bool cleared_reported = false;
  };
  void report_cleared(WeakId w);

  _object* object(ObjectId id) const;  // borrowed; throws if the runtime has cleared it
  void release_dead_weakrefs();

  Capabilities capabilities_;
  std::vector<Handle> handles_;  // by object id
  std::vector<WeakHandle> weak_;  // by weak reference id
  std::vector<WeakId> held_;      // the weak references objects hold, less those gone (collect)
  std::unordered_map<_object*, ObjectId> id_of_weakref_;
  std::unordered_map<_object*, ObjectId> id_of_object_;
  std::vector<_object*> dead_weakrefs_;  // released after the op whose callbacks cleared them
  _object* free_callback_ = nullptr;      // weakref callback, bound to this adapter
  _object* collection_callback_ = nullptr;  // entry of gc.callbacks, bound to this adapter
  _object* previous_thresholds_ = nullptr;  // gc.get_threshold() before this adapter
  std::uint64_t collections_ = 0;
};

}  // namespace cyclefuzz
