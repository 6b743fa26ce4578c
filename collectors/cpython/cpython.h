// CPython 3.11's own collector (Modules/gcmodule.c: reference counting plus three generations),
// driven through the C API of the system's libpython3.11, embedded once per process.
//
// What maps to what:
//   object              by its kind (language/op.h), one of CPython's own objects
//                       (collectors/cpython/cpython.cpp):
//                         list, cell  an instance of Node, a C type the adapter defines, as a C
//                                     extension's type is: a container of references with weak
//                                     reference support and a PEP 442 finalizer (tp_finalize)
//                         record      an instance of a Python class (`class Record: pass`): its
//                                     references are attributes (in the instance's values, or in
//                                     its __dict__ past CPython's shared keys); a finalizer is a
//                                     __del__ (its class becomes FinalizingRecord)
//                         dict        an instance of `class Dict(dict)`: references are values;
//                                     a finalizer is a __del__, as for records
//                         set         an instance of `class Set(set)`: references are members,
//                                     but for what Python cannot hash (an acyclic object, a tuple
//                                     of one), which is an attribute "p<n>", as a record's; a
//                                     finalizer is a __del__, as for records
//                         acyclic     an exact dict, which CPython leaves untracked while it holds
//                                     nothing trackable and untracks again at full collections
//                         tuple       an exact tuple (made again, one item longer, at each of its
//                                     links, which all come as it is made)
//   reference a -> b    by a's kind: an item of a Node, an attribute "p<n>" of a record, a value
//                       under "k<n>" of a dict (n: the lowest number free in a), an item of a
//                       tuple, a member of a set (set.add; unlink is set.discard); unlink
//                       deletes one, which releases it
//   external reference  one strong reference owned by the adapter: root is Py_INCREF, unroot is
//                       Py_DECREF, as a C extension holds and drops objects
//   free                the adapter's deallocator of the object's type, standing in front of
//                       CPython's (Node's own; subtype_dealloc, tupledealloc and dict_dealloc for
//                       the others): the call that does not end in a resurrection. The free is
//                       reported after the object's weak references are cleared and before
//                       anything it refers to is released. No weak reference of the adapter's own
//                       is needed to see it
//   finalizer           the trace's finalizer program, run by Node's tp_finalize or a class's
//                       __del__; CPython calls either at most once per object (PEP 442), from the
//                       collector's finalize_garbage or from the deallocation, and keeps what it
//                       resurrects (handle_resurrected_objects)
//   weak reference      weakref.ref(object), with a callback when the trace asks for one; deref
//                       is calling it. A clear is reported as soon as the adapter can see it: when
//                       a callback runs, before a finalizer runs, after the object's own
//                       PyObject_ClearWeakRefs, at the end of each collection (CPython clears
//                       every weak reference to an object, or to all of a collection's garbage,
//                       before it calls any callback); the callback is reported when CPython
//                       calls it. One that an object holds is one of its references (an item,
//                       attribute or value; a set's is an attribute): it goes when CPython
//                       deallocates it; but a dict
//                       holds one without a callback as an entry of a weakref.WeakValueDictionary
//                       of its own (a value of the dict), under the weak reference's number, whose
//                       callback drops the entry as CPython clears it; deref is d.get(number)
//   map entries         a weakref.WeakKeyDictionary of the map's (an instance of Map, a subclass
//                       whose _remove tells the adapter of each entry it drops), made on its
//                       first entry and held as one of its references: `entry` is d[k] = v,
//                       `unentry` del d[k]; an entry goes as CPython clears its key's weak
//                       references (MapEntries::StrongValuesUntilKeyCleared)
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
#include <unordered_map>
#include <unordered_set>
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
  void set_kind(ObjectId id, ObjectKind kind) override;
  void weak_ref(WeakId w, ObjectId target, bool callback) override;
  void weak_held_by(WeakId w, ObjectId holder) override;
  std::optional<ObjectId> deref(WeakId w) const override;
  void set_entry(ObjectId map, ObjectId key, ObjectId value) override;
  void remove_entry(ObjectId map, ObjectId key) override;
  void inspect(ObjectId id, ObjectView& view) const override;
  std::uint64_t collections() const override { return collections_; }
  void check_invariants() const override;
  void check_invariants_of(std::span<const ObjectId> objects) const override;

  // Called by the interpreter: the deallocators and finalizers of the trace's objects, the
  // callbacks the adapter gives it. None throws: an error is kept and thrown at the end of the
  // adapter's operation (CPython's C frames cannot pass a C++ exception on). Each ignores an
  // object that is not the trace's.
  void object_finalized(_object* o);
  void object_dying(_object* o);  // its deallocation begins (a held weakref's too)
  void object_freed(_object* o);  // its weak references are cleared; its references not released
  void map_cleared(_object* map);  // CPython's collector is about to clear a Map (its tp_clear)
  void weak_callback_ran(WeakId w);
  /// A Map's `_remove` is about to drop the entry of `key_reference` (a weakref.ref in its data).
  void entry_dropped(_object* map, _object* key_reference);
  /// A WeakValues' `_remove` is about to drop the entry of `keyed_ref`, which CPython cleared.
  void value_dropped(_object* keyed_ref);
  void collection_started() {
    ++collections_;
    clears_unseen_ = true;
    collecting_ = true;
  }
  void collection_stopped() {
    collecting_ = false;
    report_clears();
  }

 private:
  /// What the adapter holds for one object.
  struct Handle {
    _object* object = nullptr;   // not owned: CPython's object, until CPython frees it
    ObjectKind kind = ObjectKind::List;
    std::uint32_t external = 0;  // strong references the adapter owns
    bool dying = false;          // in its deallocation, the free not yet reported
    std::vector<WeakId> weak;    // the program's weak references to it
    std::vector<WeakId> held;    // ... and those it holds (weakref objects among its references)
    // A record's attributes, a dict's (or acyclic object's) keys: the number in the name, and
    // the object it refers to (kHeldWeakReference: a weakref it holds).
    std::vector<std::pair<std::uint32_t, ObjectId>> fields;
    _object* map = nullptr;                 // borrowed: its Map, once it was given an entry
    // The last collection in which a finalizer gave its map a key, and how many of the
    // weakref.ref objects made for those keys are still in the map (each holds the map's
    // `_remove`, which is no garbage of that collection while one does).
    std::uint64_t keyed_in_collection = 0;
    std::uint32_t keys_made_in_collection = 0;
    // A dict's WeakValueDictionary (one of its values, `kWeakValues` in `fields`), once it held
    // a weak reference without callback, and the last collection in which a finalizer gave it one
    // (its KeyedRef holds the dictionary's `_remove`, which is no garbage of that collection then).
    bool weak_values = false;
    std::uint64_t weak_value_in_collection = 0;
  };
  /// One of a map's entries: its key, and the weakref.ref in the Map's `data` that stands for it.
  struct MapKey {
    ObjectId key;
    _object* reference;        // borrowed
    std::uint64_t made_in = 0;  // the collection a finalizer made it in, if any
  };
  /// A map's entries: the Map instance that holds them (a weakref.WeakKeyDictionary), which the
  /// map object holds.
  struct MapHandle {
    ObjectId map = 0;
    _object* data = nullptr;      // borrowed: the instance's `data`, {weakref.ref(key): value}
    _object* callback = nullptr;  // borrowed: its `_remove`, its keys' weak-reference callback
                                  // (both null once CPython's collector cleared the Map)
    std::vector<MapKey> keys;  // one per entry
  };
  /// One of the objects a Map is made of.
  struct MapObject {
    ObjectId owner;  // the map
    bool callbacks;  // held by the Map's `_remove`, the callback of its keys' weakref.ref objects
    bool weak_values = false;  // one of a WeakValueDictionary's, not of a Map's
  };
  /// One of the program's weak references.
  struct WeakHandle {
    _object* ref = nullptr;       // owned; borrowed from its holder when it has one, and nullptr
                                  // once the holder let it go (the weakref went too); an entry
                                  // of a WeakValueDictionary: its KeyedRef, until it is dropped
    ObjectId target = 0;
    bool held = false;
    ObjectId holder = 0;          // when held
    _object* key = nullptr;       // owned: its number, when it is an entry of its holder's
                                  // WeakValueDictionary (ref is then nullptr), until it goes
    _object* callback = nullptr;  // owned, when it has one
    bool cleared_reported = false;
  };
  /// What an object refers to, as CPython's collector sees it (its tp_traverse; an instance's
  /// __dict__ is looked into).
  struct Contents {
    std::vector<ObjectId> objects;  // the trace's objects, once per reference
    std::size_t weak = 0;           // weakref objects it holds
    _object* dict = nullptr;        // a record's __dict__, once CPython made one
    _object* map = nullptr;         // its Map, once it was given an entry
    bool stray = false;             // refers to an object of the adapter's types that is no
                                    // live object of the trace
  };
  void report_cleared(WeakId w);
  /// Whether weak reference w is still the trace's (its holder has not let it go).
  static bool alive(const WeakHandle& w) { return w.ref != nullptr || w.key != nullptr; }
  /// Whether CPython cleared a live one: it yields None, or its WeakValueDictionary dropped it.
  bool cleared(const WeakHandle& w) const;
  void weak_gone(WeakId w);
  void drop_held_weak_references(ObjectId holder);
  void check_objects(std::span<const ObjectId> ids) const;
  /// Within a finalizer's or callback's program: `o` is held until the program ends.
  void hold_for_program(_object* o);
  /// Runs a program (a finalizer's, a callback's): what its steps hold goes when it ends.
  template <typename Run>
  void as_program(const Run& run);
  /// Reports the clears of the weak references to object `id` that CPython has cleared.
  void report_clears_of(ObjectId id);
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
  /// The id of one of the trace's live objects; an id of no object for anything else.
  ObjectId id_of(_object* o) const;
  /// `fresh` stands for `id` from now on, instead of the object made for it before, which had no
  /// referrers and is released (its free is no longer the trace's).
  void replace(ObjectId id, _object* fresh);
  /// A record's attribute or a dict's value, under the lowest number free in `id`.
  void set_field(ObjectId id, _object* value, ObjectId referent);
  void delete_field(ObjectId id, ObjectId referent);
  void contents_of(_object* o, Contents& contents) const;
  void visit(_object* o, Contents& contents) const;
  /// Object `id`'s Map, made (and given to it as one of its references) on its first entry.
  _object* map_of(ObjectId id);
  /// Object `id`'s WeakValueDictionary, made (and given to it as one of its values) on its first
  /// weak reference without callback.
  _object* weak_values_of(ObjectId id);
  /// The value of a dict's field that holds `referent` (borrowed; nullptr if it has none).
  _object* field(ObjectId id, ObjectId referent) const;
  /// Deletes `key`'s item from the Map's data if CPython cleared its weakref.ref without calling
  /// it back; false if it has no such item.
  bool drop_uncalled_entry(MapHandle& handle, ObjectId key);
  /// Whether the values of a Map's entries reach object `target`, through the trace's objects.
  bool values_reach(_object* map, ObjectId target) const;
  /// The adapter's record of the entry of `key` in a map, if it has one.
  std::vector<MapKey>::iterator find_key(MapHandle& handle, ObjectId key);
  /// A Map's deallocation begins: the adapter forgets it (its map may live a little longer).
  void map_freed(std::unordered_map<_object*, MapHandle>::iterator map);
  /// Forgets the record of one entry, which its Map has dropped or is about to.
  void forget_key(MapHandle& handle, std::vector<MapKey>::iterator entry);
  /// Object `key` is dying: the weakref.ref objects that finalizers of this collection made for
  /// it drop their callbacks.
  void keys_dying(ObjectId key);
  /// The objects that make up the Maps and WeakValueDictionary objects which
  /// gc.collect(generation) would count if their owners went with its garbage.
  std::vector<MapObject> map_internals(int generation) const;
  /// Appends to `found` what `start` holds of a Map's (or WeakValueDictionary's) own objects
  /// (map_internals), `start` first, none twice (`seen`); to `via`, for each, the index in
  /// `found` of the object it was found through (`start`'s: `from`).
  void gather_map_objects(_object* start, std::size_t from, std::unordered_set<_object*>& seen,
                          std::vector<_object*>& found, std::vector<std::size_t>& via) const;

  Capabilities capabilities_;
  std::vector<Handle> handles_;  // by object id
  std::unordered_map<_object*, ObjectId> ids_;    // the live objects' ids
  std::unordered_map<_object*, WeakId> held_ids_;  // the held weak references' ids
  std::vector<WeakHandle> weak_;  // by weak reference id
  std::unordered_map<_object*, MapHandle> maps_;  // by Map instance, until its map is freed
  std::vector<WeakId> held_;      // the weak references objects hold, less those gone (collect)
  std::vector<WeakId> uncleared_;  // alive and not reported cleared (report_clears' candidates)
  std::size_t alive_ = 0;          // objects not reported freed
  // A collection started: its handle_weakrefs clears the weak references to all its garbage,
  // unseen until a finalizer or callback runs, or it frees or clears an object.
  bool clears_unseen_ = false;
  bool collecting_ = false;  // between a collection's start and stop
  // The entries that collections' handle_weakrefs dropped (their weakref.ref objects, freed by
  // the callback, are counted in what gc.collect returns), a Map's or a WeakValues'.
  std::size_t dropped_by_collection_ = 0;
  std::exception_ptr error_;       // kept by from_interpreter
  _object* collection_callback_ = nullptr;  // entry of gc.callbacks, bound to this adapter
  _object* previous_thresholds_ = nullptr;  // gc.get_threshold() before this adapter
  std::uint64_t collections_ = 0;
  std::uint64_t last_keyed_in_ = 0;  // the last collection in which a finalizer made a key
  std::size_t programs_running_ = 0;        // finalizers' and callbacks' programs, nested
  std::vector<_object*> held_by_programs_;  // what their steps hold (strong references)
  bool frozen_ = false;  // since the last gc.freeze(), no gc.unfreeze()
};

}  // namespace cyclefuzz
