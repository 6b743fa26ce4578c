#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include "collectors/cpython/cpython.h"

#include "collectors/cpython/generation.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace cyclefuzz {

namespace {

constexpr const char* kCapsuleName = "cyclefuzz.CPythonCollector";

/// No object has this id: what id_of says of anything that is not one of the trace's live objects.
constexpr ObjectId kNotAnObject = std::numeric_limits<ObjectId>::max();
/// The referent of a record's or dict's field that holds a weakref object (Handle::fields).
constexpr ObjectId kHeldWeakReference = kNotAnObject;
/// ... that holds the object's weak-keyed map (an instance of Map).
constexpr ObjectId kMapOfEntries = kNotAnObject - 1;
/// ... that holds a dict's WeakValueDictionary.
constexpr ObjectId kWeakValues = kNotAnObject - 2;

/// The pending Python exception as text; clears it.
std::string take_python_error() {
  PyObject* type = nullptr;
  PyObject* value = nullptr;
  PyObject* traceback = nullptr;
  PyErr_Fetch(&type, &value, &traceback);
  std::string text = "no Python exception was set";
  if (PyObject* what = value != nullptr ? value : type; what != nullptr) {
    if (PyObject* str = PyObject_Str(what); str != nullptr) {
      if (const char* utf8 = PyUnicode_AsUTF8(str); utf8 != nullptr) text = utf8;
      Py_DECREF(str);
    }
    PyErr_Clear();
  }
  Py_XDECREF(type);
  Py_XDECREF(value);
  Py_XDECREF(traceback);
  return text;
}

[[noreturn]] void fail(const std::string& doing) {
  throw std::runtime_error("cpython: " + doing + ": " + take_python_error());
}

void check(const PyStatus& status, const char* doing) {
  if (!PyStatus_Exception(status)) return;
  std::string message = std::string("cpython: ") + doing + " failed";
  if (status.func != nullptr) message += std::string(" in ") + status.func;
  if (status.err_msg != nullptr) message += std::string(": ") + status.err_msg;
  throw std::runtime_error(message);
}

/// An owned reference, released on scope exit unless handed over.
class Owned {
 public:
  explicit Owned(PyObject* p) : p_(p) {}
  ~Owned() { Py_XDECREF(p_); }
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
  PyObject* get() const { return p_; }
  PyObject* release() { return std::exchange(p_, nullptr); }
  explicit operator bool() const { return p_ != nullptr; }

 private:
  PyObject* p_;
};

/// While it lives, no automatic collection starts (gc.disable(), then gc.enable() if it was on):
/// for what the adapter allocates that is no allocation of the trace's model.
class NoAutomaticCollection {
 public:
  NoAutomaticCollection() : enabled_(PyGC_Disable() != 0) {}
  ~NoAutomaticCollection() {
    if (enabled_) PyGC_Enable();
  }
  NoAutomaticCollection(const NoAutomaticCollection&) = delete;
  NoAutomaticCollection& operator=(const NoAutomaticCollection&) = delete;

 private:
  bool enabled_;
};

constexpr int kUnknown = -2;

/// The generation of the list that `start` is in: the head its ring reaches (-1: it comes back to
/// `start` first), or what `known(at)` says of a position on the way (a pointer to a generation
/// other than kUnknown ends the walk with it).
template <class Known>
int walk_to_head(const void* start, Known&& known) {
  for (const void* at = cyclefuzz_cpython_gc_next(start); at != start;
       at = cyclefuzz_cpython_gc_next(at)) {
    if (const int head = cyclefuzz_cpython_gc_head(at); head >= 0) return head;
    if (const int* generation = known(at)) return *generation;
  }
  return -1;
}

/// The generation of each of `objects`, read from the collector's lists (generation.h): the head
/// its ring reaches. 0, 1 or 2; 3: the permanent generation (gc.freeze); -1: null, untracked, or
/// in a ring without a head (no generation's list). A walk towards a head notes the other objects
/// it passes, which then need no walk of their own. Objects join a list at its tail and move to
/// another in runs, so one walk from the oldest of a run answers the rest of it. (Asked one by
/// one, for every object after every op, the walks past the interpreter's own objects took 85% of
/// a `check --collector cpython`; the checker now asks after an op for what it touched,
/// check_invariants_of, and for every object after collections.)
std::vector<int> generations_of(const std::vector<PyObject*>& objects) {
  std::vector<int> generations(objects.size(), -1);
  std::vector<std::pair<const void*, std::size_t>> positions;  // sorted: position, index
  positions.reserve(objects.size());
  for (std::size_t i = 0; i < objects.size(); ++i) {
    if (objects[i] == nullptr) continue;  // (no object: -1)
    if (const void* at = cyclefuzz_cpython_gc_position(objects[i])) {
      positions.emplace_back(at, i);
      generations[i] = kUnknown;
    }
  }
  std::sort(positions.begin(), positions.end());
  const auto find = [&](const void* at) {
    const auto it = std::lower_bound(positions.begin(), positions.end(),
                                     std::make_pair(at, std::size_t{0}));
    return it != positions.end() && it->first == at ? &generations[it->second] : nullptr;
  };
  std::vector<int*> passed;
  for (const auto& [start, index] : positions) {
    if (generations[index] != kUnknown) continue;
    passed.assign(1, &generations[index]);
    const int generation = walk_to_head(start, [&](const void* at) {
      int* other = find(at);
      if (other == nullptr || *other != kUnknown) return other;
      passed.push_back(other);
      return static_cast<int*>(nullptr);
    });
    for (int* g : passed) *g = generation;
  }
  return generations;
}

/// The generation of one object (as generations_of).
int generation_of(PyObject* object) {
  const void* start = cyclefuzz_cpython_gc_position(object);
  if (start == nullptr) return -1;
  return walk_to_head(start, [](const void*) { return static_cast<const int*>(nullptr); });
}

// ================================================================================================
// Node: the trace's lists and cells, a C type as an extension module would define
// ================================================================================================

/// A Node's references are its items; the weakref objects it holds (`weak w a in h`) are items too,
/// so that CPython's collector sees them as the holder's.
struct NodeObject {
  PyObject_HEAD
  PyObject* weakreflist;  // CPython's list of weak references to it (tp_weaklistoffset)
  PyObject** items;       // owned references, PyMem-allocated
  Py_ssize_t size;
  Py_ssize_t capacity;
  bool finalizer;  // the trace gave it one: tp_finalize runs its program
};

NodeObject* as_node(PyObject* o) { return reinterpret_cast<NodeObject*>(o); }

/// The one adapter allowed at a time (not the interpreter's: its deallocators may run while the
/// interpreter starts).
CPythonCollector* active = nullptr;

CPythonCollector* active_adapter() { return active; }

int node_traverse(PyObject* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));  // a heap type's instances refer to their type
  const NodeObject* n = as_node(self);
  for (Py_ssize_t i = 0; i < n->size; ++i) Py_VISIT(n->items[i]);
  return 0;
}

// The collector breaks garbage cycles through tp_clear; the items are dropped after the array is
// detached, since each drop may run code (a dealloc) that looks at this object.
int node_clear(PyObject* self) {
  NodeObject* n = as_node(self);
  PyObject** items = std::exchange(n->items, nullptr);
  const Py_ssize_t size = std::exchange(n->size, 0);
  n->capacity = 0;
  for (Py_ssize_t i = 0; i < size; ++i) Py_DECREF(items[i]);
  PyMem_Free(items);
  return 0;
}

// PEP 442: called at most once per object, by the collector on unreachable garbage or from
// tp_dealloc. The pending exception, if any, is kept across the program, as CPython asks.
void node_finalize(PyObject* self) {
  CPythonCollector* adapter = active_adapter();
  if (!as_node(self)->finalizer || adapter == nullptr) return;
  PyObject* type = nullptr;
  PyObject* value = nullptr;
  PyObject* traceback = nullptr;
  PyErr_Fetch(&type, &value, &traceback);
  adapter->object_finalized(self);
  PyErr_Restore(type, value, traceback);
}

// What the deallocation of one of the trace's objects does first, as CPython's subtype_dealloc
// does it: the finalizer, if it has one, runs with the object tracked (young again), and may
// resurrect it (then false: nothing more); else the adapter hears that it dies, its weak
// references are cleared (their callbacks run), and the adapter hears of its free. What it refers
// to is not released yet.
bool finalize_and_clear(PyObject* self, bool finalizer) {
  if (finalizer) {
    PyObject_GC_Track(self);
    if (PyObject_CallFinalizerFromDealloc(self) < 0) return false;
    PyObject_GC_UnTrack(self);
  }
  CPythonCollector* adapter = active_adapter();
  if (adapter != nullptr) adapter->object_dying(self);
  if (Py_TYPE(self)->tp_weaklistoffset != 0) PyObject_ClearWeakRefs(self);
  if (adapter != nullptr) adapter->object_freed(self);
  return true;
}

// As CPython's own types with finalizers (subtype_dealloc): finalize_and_clear, then the items go.
// The trashcan keeps a long chain's deallocation off the C stack.
void node_dealloc(PyObject* self) {
  PyObject_GC_UnTrack(self);
  Py_TRASHCAN_BEGIN(self, node_dealloc)
  if (finalize_and_clear(self, as_node(self)->finalizer)) {
    node_clear(self);
    PyTypeObject* type = Py_TYPE(self);
    type->tp_free(self);
    Py_DECREF(type);
  }
  Py_TRASHCAN_END
}

PyMemberDef kNodeMembers[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(NodeObject, weakreflist), READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr}};

PyType_Slot kNodeSlots[] = {{Py_tp_dealloc, reinterpret_cast<void*>(node_dealloc)},
                            {Py_tp_traverse, reinterpret_cast<void*>(node_traverse)},
                            {Py_tp_clear, reinterpret_cast<void*>(node_clear)},
                            {Py_tp_finalize, reinterpret_cast<void*>(node_finalize)},
                            {Py_tp_members, kNodeMembers},
                            {0, nullptr}};

PyType_Spec kNodeSpec = {"cyclefuzz.Node", sizeof(NodeObject), 0,
                         Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
                             Py_TPFLAGS_DISALLOW_INSTANTIATION,
                         kNodeSlots};

/// Appends an owned reference to a Node's items; false (with MemoryError set) if it cannot.
bool append_item(NodeObject* n, PyObject* item) {
  if (n->size == n->capacity) {
    const Py_ssize_t capacity = std::max<Py_ssize_t>(4, 2 * n->capacity);
    auto** items = static_cast<PyObject**>(PyMem_Realloc(n->items, capacity * sizeof(PyObject*)));
    if (items == nullptr) {
      PyErr_NoMemory();
      return false;
    }
    n->items = items;
    n->capacity = capacity;
  }
  n->items[n->size++] = Py_NewRef(item);
  return true;
}

// ================================================================================================
// CPython's own types: the deallocators the adapter stands in front of
// ================================================================================================
//
// Records and dicts are instances of Python classes, whose deallocator is typeobject.c's
// subtype_dealloc; acyclic objects and tuples are exact dicts and tuples. The adapter sees their
// frees by replacing tp_dealloc in those types with its own, which reports and then calls
// CPython's. For the classes it does what Node's does first - the finalizer (subtype_dealloc's own
// order: tracked, young; a resurrection ends the deallocation), the report, the weak references'
// clear and callbacks, the report of the free - and then hands the object to subtype_dealloc, which
// releases the attributes (so after the free is reported, as the checks demand). subtype_dealloc
// ends by calling the nearest base's tp_dealloc that is not its own: the class's, this one again,
// which passes the object on to the base subtype_dealloc would have found (object's, dict's,
// weakref's). Nothing else of CPython's is changed.

/// CPython's deallocators, as they were, and the objects inside subtype_dealloc.
struct Deallocators {
  destructor subtype = nullptr;
  destructor tuple = nullptr;
  destructor dict = nullptr;
  std::vector<std::pair<PyTypeObject*, destructor>> base;  // each class's base deallocator
  std::vector<PyObject*> inside;  // innermost last: subtype_dealloc calls back for it
  inquiry map_clear = nullptr;    // Map's tp_clear (subtype_clear), which map_clear stands before
};

Deallocators& deallocators() {
  static Deallocators d;
  return d;
}

void class_dealloc(PyObject* self) {
  Deallocators& d = deallocators();
  PyTypeObject* type = Py_TYPE(self);
  if (!d.inside.empty() && d.inside.back() == self) {
    // subtype_dealloc's call of the base: it decrefs a heap type only when it hands the object to
    // a static base, so the instance's reference to its class is dropped here.
    d.inside.pop_back();
    const auto base = std::find_if(d.base.begin(), d.base.end(),
                                   [type](const auto& b) { return b.first == type; });
    base->second(self);
    Py_DECREF(type);
    return;
  }
  PyObject_GC_UnTrack(self);
  Py_TRASHCAN_BEGIN(self, class_dealloc)
  // (subtype_dealloc leaves the clear of the weak references to the base it finds when that has
  // them: this)
  if (finalize_and_clear(self, type->tp_finalize != nullptr)) {
    d.inside.push_back(self);
    d.subtype(self);
    // (It calls the base unless a finalizer resurrects the object, and the one it would call ran
    // above: never left, but a stale entry would send the next object at this address astray.)
    if (!d.inside.empty() && d.inside.back() == self) d.inside.pop_back();
  }
  Py_TRASHCAN_END
}

// Every exact tuple and dict of the interpreter comes here (and a subclass's instance, from
// subtype_dealloc): only the trace's are reported, before anything they hold is released.
void builtin_dealloc(PyObject* self) {
  const Deallocators& d = deallocators();
  const destructor original = PyTuple_Check(self) ? d.tuple : d.dict;
  PyObject_GC_UnTrack(self);
  Py_TRASHCAN_BEGIN(self, builtin_dealloc)
  CPythonCollector* adapter = active_adapter();
  if (adapter != nullptr && (PyTuple_CheckExact(self) || PyDict_CheckExact(self))) {
    adapter->object_dying(self);
    adapter->object_freed(self);
  }
  original(self);
  Py_TRASHCAN_END
}

// CPython's collector clears a garbage Map (delete_garbage's tp_clear: subtype_clear empties its
// __dict__) before anything frees it: its `data` and `_remove` may go now, while the Map lives on
// until its owner lets go of it (and a finalizer that reference counting runs meanwhile may ask
// for a collection, which looks at every Map). The adapter forgets them first.
int map_clear(PyObject* self) {
  if (CPythonCollector* adapter = active_adapter()) adapter->map_cleared(self);
  // subtype_clear looks for the nearest base whose tp_clear is not its own, and would find the
  // class itself: it runs with the class as CPython made it.
  PyTypeObject* type = Py_TYPE(self);
  type->tp_clear = deallocators().map_clear;
  const int result = type->tp_clear(self);
  type->tp_clear = map_clear;
  return result;
}

/// Stands the adapter's deallocators in front of CPython's, for `classes` (Python classes, whose
/// tp_dealloc is subtype_dealloc) and for exact tuples and dicts.
void install_deallocators(std::initializer_list<PyTypeObject*> classes) {
  Deallocators& d = deallocators();
  d.subtype = (*classes.begin())->tp_dealloc;
  d.tuple = PyTuple_Type.tp_dealloc;
  d.dict = PyDict_Type.tp_dealloc;
  for (PyTypeObject* type : classes) {
    if (type->tp_dealloc != d.subtype) fail("a class's deallocator is not subtype_dealloc");
    PyTypeObject* base = type;
    while (base->tp_dealloc == d.subtype) base = base->tp_base;
    d.base.emplace_back(type, base->tp_dealloc);
  }
  for (PyTypeObject* type : classes) type->tp_dealloc = class_dealloc;
  PyTuple_Type.tp_dealloc = builtin_dealloc;
  PyDict_Type.tp_dealloc = builtin_dealloc;
}

/// The interpreter, started on first use and finalized at exit; what the adapters need of it.
class Interpreter {
 public:
  static Interpreter& get() {
    static Interpreter interpreter;
    return interpreter;
  }

  PyTypeObject* node_type = nullptr;
  // class Ref(weakref.ref): the program's weak references, one object each (CPython hands out
  // one shared weakref.ref per object for those without a callback: one the mutator holds would
  // then keep alive the weakref object that a holder was given)
  PyObject* ref_type = nullptr;
  // The classes of records, dicts and sets, and their subclasses with a __del__ (an object that
  // the trace gives a finalizer changes its __class__ to one).
  PyObject* record_type = nullptr;
  PyObject* finalizing_record_type = nullptr;
  PyObject* dict_type = nullptr;
  PyObject* finalizing_dict_type = nullptr;
  PyObject* set_type = nullptr;
  PyObject* finalizing_set_type = nullptr;
  // class Map(weakref.WeakKeyDictionary): an object's map entries, which it holds as one of its
  // references; its keys' weak-reference callback tells the adapter of each entry it drops.
  PyObject* map_type = nullptr;
  // class WeakValues(weakref.WeakValueDictionary): a dict's weak references without callbacks,
  // which it holds as one of its values; its KeyedRef objects' callback tells the adapter of each
  // entry it drops. weakref.KeyedRef: the weak references it holds its values through.
  PyObject* weak_values_type = nullptr;
  PyObject* keyed_ref_type = nullptr;
  PyObject* gc_collect = nullptr;
  PyObject* gc_freeze = nullptr;
  PyObject* gc_unfreeze = nullptr;
  PyObject* gc_callbacks = nullptr;
  PyObject* gc_get_threshold = nullptr;
  PyObject* gc_set_threshold = nullptr;

 private:
  Interpreter() {
    // Isolated: no PYTHONHOME, PYTHONPATH or user site from the environment (a pyenv on the PATH
    // must not matter). The allocator is malloc, as PYTHONMALLOC=malloc would make it, so that
    // AddressSanitizer sees every object freed.
    PyPreConfig preconfig;
    PyPreConfig_InitIsolatedConfig(&preconfig);
    preconfig.allocator = PYMEM_ALLOCATOR_MALLOC;
    check(Py_PreInitialize(&preconfig), "pre-initialising the interpreter");
    PyConfig config;
    PyConfig_InitIsolatedConfig(&config);
    config.site_import = 0;
    const PyStatus status = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    check(status, "initialising the interpreter");
    try {
      define_types();
      Owned gc(PyImport_ImportModule("gc"));
      if (!gc) fail("importing gc");
      for (auto [field, name] : {std::pair{&gc_collect, "collect"},
                                 {&gc_freeze, "freeze"},
                                 {&gc_unfreeze, "unfreeze"},
                                 {&gc_callbacks, "callbacks"},
                                 {&gc_get_threshold, "get_threshold"},
                                 {&gc_set_threshold, "set_threshold"}}) {
        *field = PyObject_GetAttrString(gc.get(), name);
        if (*field == nullptr) fail(std::string("reading gc.") + name);
      }
    } catch (...) {
      release();
      Py_FinalizeEx();
      throw;
    }
  }

  ~Interpreter() {
    release();
    Py_FinalizeEx();
  }

  void define_types();

  void release() {
    Py_CLEAR(node_type);
    for (PyObject** p : {&ref_type, &record_type, &finalizing_record_type, &dict_type,
                         &finalizing_dict_type, &set_type, &finalizing_set_type, &map_type,
                         &weak_values_type, &keyed_ref_type,
                         &gc_collect, &gc_freeze, &gc_unfreeze, &gc_callbacks, &gc_get_threshold,
                         &gc_set_threshold}) {
      Py_CLEAR(*p);
    }
  }
};

// `finalize(self)`, which the classes' __del__ call.
PyObject* on_finalize(PyObject* /*module*/, PyObject* self) {
  if (CPythonCollector* adapter = active_adapter()) adapter->object_finalized(self);
  Py_RETURN_NONE;
}

PyMethodDef kFinalize = {"finalize", on_finalize, METH_O,
                         "Runs the trace's finalizer program of an object."};

// `entry_dropped(map, weakref)`, which a Map's `_remove` calls before it drops the entry.
PyObject* on_entry_dropped(PyObject* /*module*/, PyObject* args) {
  PyObject* map = nullptr;
  PyObject* key_reference = nullptr;
  if (!PyArg_ParseTuple(args, "OO", &map, &key_reference)) return nullptr;
  if (CPythonCollector* adapter = active_adapter()) adapter->entry_dropped(map, key_reference);
  Py_RETURN_NONE;
}

PyMethodDef kEntryDropped = {"entry_dropped", on_entry_dropped, METH_VARARGS,
                             "A Map is about to drop the entry of a weak reference's key."};

// `value_dropped(keyed_ref)`, which a WeakValues' `_remove` calls before it drops the entry.
PyObject* on_value_dropped(PyObject* /*module*/, PyObject* keyed_ref) {
  if (CPythonCollector* adapter = active_adapter()) adapter->value_dropped(keyed_ref);
  Py_RETURN_NONE;
}

PyMethodDef kValueDropped = {"value_dropped", on_value_dropped, METH_O,
                             "A WeakValues is about to drop a cleared entry."};

constexpr const char* kClasses = R"(import weakref
class Ref(weakref.ref):
    __slots__ = ()
class Record:
    pass
class FinalizingRecord(Record):
    def __del__(self):
        finalize(self)
class Dict(dict):
    __hash__ = object.__hash__
    __eq__ = object.__eq__
class FinalizingDict(Dict):
    def __del__(self):
        finalize(self)
class Set(set):
    __hash__ = object.__hash__
    __eq__ = object.__eq__
class FinalizingSet(Set):
    def __del__(self):
        finalize(self)
class Map(weakref.WeakKeyDictionary):
    def __init__(self):
        super().__init__()
        remove = self._remove
        def dropping(k, selfref=weakref.ref(self)):
            self = selfref()
            if self is not None and k in self.data:
                entry_dropped(self, k)
            remove(k)
        self._remove = dropping
class WeakValues(weakref.WeakValueDictionary):
    def __init__(self):
        super().__init__()
        remove = self._remove
        def dropping(wr):
            value_dropped(wr)
            remove(wr)
        self._remove = dropping
KeyedRef = weakref.KeyedRef
)";

void Interpreter::define_types() {
  node_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&kNodeSpec));
  if (node_type == nullptr) fail("defining type Node");
  Owned globals(PyDict_New());
  Owned finalize(PyCFunction_New(&kFinalize, nullptr));
  Owned entry_dropped(PyCFunction_New(&kEntryDropped, nullptr));
  Owned value_dropped(PyCFunction_New(&kValueDropped, nullptr));
  if (!globals || !finalize || !entry_dropped || !value_dropped ||
      PyDict_SetItemString(globals.get(), "__builtins__", PyEval_GetBuiltins()) < 0 ||
      PyDict_SetItemString(globals.get(), "finalize", finalize.get()) < 0 ||
      PyDict_SetItemString(globals.get(), "entry_dropped", entry_dropped.get()) < 0 ||
      PyDict_SetItemString(globals.get(), "value_dropped", value_dropped.get()) < 0) {
    fail("making a namespace");
  }
  if (!Owned(PyRun_String(kClasses, Py_file_input, globals.get(), globals.get()))) {
    fail("defining the classes");
  }
  for (auto [field, name] : {std::pair{&ref_type, "Ref"},
                             {&record_type, "Record"},
                             {&finalizing_record_type, "FinalizingRecord"},
                             {&dict_type, "Dict"},
                             {&finalizing_dict_type, "FinalizingDict"},
                             {&set_type, "Set"},
                             {&finalizing_set_type, "FinalizingSet"},
                             {&map_type, "Map"},
                             {&weak_values_type, "WeakValues"},
                             {&keyed_ref_type, "KeyedRef"}}) {
    *field = Py_XNewRef(PyDict_GetItemString(globals.get(), name));
    if (*field == nullptr || !PyType_Check(*field)) fail(std::string("finding class ") + name);
  }
  install_deallocators({reinterpret_cast<PyTypeObject*>(ref_type),
                        reinterpret_cast<PyTypeObject*>(map_type),
                        reinterpret_cast<PyTypeObject*>(keyed_ref_type),
                        reinterpret_cast<PyTypeObject*>(record_type),
                        reinterpret_cast<PyTypeObject*>(finalizing_record_type),
                        reinterpret_cast<PyTypeObject*>(dict_type),
                        reinterpret_cast<PyTypeObject*>(finalizing_dict_type),
                        reinterpret_cast<PyTypeObject*>(set_type),
                        reinterpret_cast<PyTypeObject*>(finalizing_set_type)});
  auto* map_class = reinterpret_cast<PyTypeObject*>(map_type);
  deallocators().map_clear = map_class->tp_clear;
  map_class->tp_clear = map_clear;
}

/// Whether an object of this kind keeps references as attributes (set_field): a record's, and a
/// set's that Python cannot hash.
bool has_attributes(ObjectKind kind) {
  return kind == ObjectKind::Record || kind == ObjectKind::Set;
}

/// Whether a set can hold o: every trace object hashes by identity (object.__hash__), but an
/// acyclic object is an exact dict, and a tuple hashes its items. (Asking PyObject_Hash would
/// raise, and so allocate, where the trace's link allocates nothing.)
bool hashable(PyObject* o) {
  if (PyDict_CheckExact(o)) return false;
  if (!PyTuple_CheckExact(o)) return true;
  for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(o); ++i) {
    if (!hashable(PyTuple_GET_ITEM(o, i))) return false;
  }
  return true;
}

/// One of the adapter's classes, or Node: its instances are the trace's objects while alive.
bool of_trace_type(PyObject* o) {
  const Interpreter& py = Interpreter::get();
  return Py_IS_TYPE(o, py.node_type) ||
         PyObject_TypeCheck(o, reinterpret_cast<PyTypeObject*>(py.record_type)) ||
         PyObject_TypeCheck(o, reinterpret_cast<PyTypeObject*>(py.dict_type)) ||
         PyObject_TypeCheck(o, reinterpret_cast<PyTypeObject*>(py.set_type));
}

PyObject* on_collection_phase(PyObject* self, PyObject* args) {
  auto* adapter = static_cast<CPythonCollector*>(PyCapsule_GetPointer(self, kCapsuleName));
  PyObject* phase = nullptr;
  PyObject* info = nullptr;
  if (adapter == nullptr || !PyArg_ParseTuple(args, "UO", &phase, &info)) return nullptr;
  if (adapter != active_adapter()) Py_RETURN_NONE;  // (it is being torn down)
  if (PyUnicode_CompareWithASCIIString(phase, "start") == 0) {
    adapter->collection_started();
  } else {
    adapter->collection_stopped();
  }
  Py_RETURN_NONE;
}

// `self` is the weak reference's id; the adapter is the active one.
PyObject* on_weak_callback(PyObject* self, PyObject* /*weakref*/) {
  CPythonCollector* adapter = active_adapter();
  if (adapter != nullptr) adapter->weak_callback_ran(static_cast<WeakId>(PyLong_AsLong(self)));
  Py_RETURN_NONE;
}

PyMethodDef kWeakCallback = {"cyclefuzz_weak_callback", on_weak_callback, METH_O,
                             "The callback of one of the program's weak references."};
PyMethodDef kCollectionPhase = {"cyclefuzz_collection_phase", on_collection_phase, METH_VARARGS,
                                "gc.callbacks entry: counts collections, reports clears."};

}  // namespace

CPythonCollector::CPythonCollector(CollectorHost& listener, const CollectorOptions& options)
    : Collector(listener),
      capabilities_{.reference_counting = true,
                    .generations = 3,
                    .automatic_collection = true,
                    .count = CountMeaning::References,
                    .collect_count = CollectCount::FoundInGenerations,
                    .freezes = true,
                    .finalizers = true,
                    .weak_references = true,
                    .weak_references_cleared_before_finalizers = true,
                    .weak_reference_holders = true,
                    .map_entries = MapEntries::StrongValuesUntilKeyCleared} {
  Interpreter& py = Interpreter::get();
  if (active != nullptr) {
    throw std::runtime_error(
        "cpython: another cpython collector is alive in this process; the interpreter's "
        "collector is shared, so only one can be checked at a time");
  }
  // Start from a heap with no garbage, left by the interpreter or an earlier adapter: it would
  // count in this adapter's first collection.
  if (!Owned(PyObject_CallNoArgs(py.gc_collect))) fail("collecting leftovers");
  Owned capsule(PyCapsule_New(this, kCapsuleName, nullptr));
  if (!capsule) fail("making a capsule");
  Owned collection_callback(PyCFunction_New(&kCollectionPhase, capsule.get()));
  Owned previous_thresholds(PyObject_CallNoArgs(py.gc_get_threshold));
  if (!collection_callback || !previous_thresholds) fail("making callbacks");
  if (!Owned(PyObject_CallFunction(py.gc_set_threshold, "III", options.thresholds[0],
                                   options.thresholds[1], options.thresholds[2]))) {
    fail("gc.set_threshold");
  }
  if (PyList_Append(py.gc_callbacks, collection_callback.get()) < 0) fail("adding to gc.callbacks");
  PyGC_Enable();
  collection_callback_ = collection_callback.release();
  previous_thresholds_ = previous_thresholds.release();
  active = this;
}

// Nothing reaches this adapter once it is no longer the active one: the frees, finalizers and
// callbacks of the teardown are not the trace's. The weak references go first, then the external
// references; a collection takes the cycles that remain.
CPythonCollector::~CPythonCollector() {
  Interpreter& py = Interpreter::get();
  active = nullptr;
  const Py_ssize_t entry = PySequence_Index(py.gc_callbacks, collection_callback_);
  if (entry < 0 || PySequence_DelItem(py.gc_callbacks, entry) < 0) PyErr_Clear();
  uncleared_.clear();
  ids_.clear();
  held_ids_.clear();
  maps_.clear();
  for (WeakHandle& w : weak_) {
    Py_CLEAR(w.key);
    if (w.held) {
      w.ref = nullptr;  // (its holder's)
    } else {
      Py_CLEAR(w.ref);
    }
    Py_CLEAR(w.callback);
  }
  for (Handle& h : handles_) {
    PyObject* o = std::exchange(h.object, nullptr);
    for (; o != nullptr && h.external > 0; --h.external) Py_DECREF(o);
  }
  if (frozen_) Py_XDECREF(PyObject_CallNoArgs(py.gc_unfreeze));  // (for the next adapter)
  Py_XDECREF(PyObject_CallNoArgs(py.gc_collect));
  Py_XDECREF(PyObject_CallObject(py.gc_set_threshold, previous_thresholds_));
  PyErr_Clear();
  Py_DECREF(previous_thresholds_);
  Py_DECREF(collection_callback_);
}

// ================================================================================================
// Calls from the interpreter
// ================================================================================================

template <typename F>
void CPythonCollector::from_interpreter(F&& what) {
  try {
    what();
  } catch (...) {
    if (!error_) error_ = std::current_exception();
  }
}

void CPythonCollector::rethrow_error() {
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

// CPython has cleared every weak reference to the garbage before any finalizer of a collection
// runs, and to an object before any of its callbacks: each is reported before the program runs.
void CPythonCollector::object_finalized(PyObject* o) {
  from_interpreter([&] {
    const ObjectId id = id_of(o);
    if (id == kNotAnObject) return;
    report_clears();
    as_program([&] { run_finalizer(id); });
  });
}

// Its deallocation begins: PyObject_ClearWeakRefs clears the weak references to it, then calls
// their callbacks. The free is reported after the clears and before the first callback, as the
// checks demand of every collector: so by the first callback, or else right after. A weakref
// object that an object held goes with it, or when CPython's collector clears its holder.
void CPythonCollector::object_dying(PyObject* o) {
  from_interpreter([&] {
    if (const auto held = held_ids_.find(o); held != held_ids_.end()) {
      const WeakId w = held->second;
      if (weak_[w].key != nullptr && PyWeakref_GET_OBJECT(o) == Py_None) {
        // A WeakValueDictionary drops an entry that CPython cleared: still its holder's.
        report_clears();
        report_cleared(w);
        held_ids_.erase(held);
        weak_[w].ref = nullptr;
        return;
      }
      weak_gone(w);
      return;
    }
    if (const auto map = maps_.find(o); map != maps_.end()) return map_freed(map);
    const ObjectId id = id_of(o);
    if (id == kNotAnObject) return;
    report_clears();
    handles_[id].dying = true;
    keys_dying(id);
  });
}

// A program's steps name what it reaches, and hold it until the program ends, as a Python
// function holds its arguments and locals: a key whose last reference was the value that its
// entry's new value replaces (or that `unentry` drops) would otherwise die in the middle of the
// step (and CPython be handed a freed key), where the checker rightly sees the program reach it.
void CPythonCollector::hold_for_program(PyObject* o) {
  if (programs_running_ > 0) held_by_programs_.push_back(Py_NewRef(o));
}

template <typename Run>
void CPythonCollector::as_program(const Run& run) {
  const std::size_t held_before = held_by_programs_.size();
  ++programs_running_;
  struct Done {
    CPythonCollector& adapter;
    std::size_t held_before;
    ~Done() {
      --adapter.programs_running_;
      std::vector<PyObject*> held(adapter.held_by_programs_.begin() + held_before,
                                  adapter.held_by_programs_.end());
      adapter.held_by_programs_.resize(held_before);
      for (PyObject* o : held) Py_DECREF(o);  // (which may free it, now that the program is over)
    }
  } done{*this, held_before};
  run();
}

// A Map goes before its map when CPython's collector clears the map (its tp_clear) and then
// reference counting frees something whose finalizer looks at the maps (a nested collect) before
// the map itself is freed: the adapter's record of it goes now.
void CPythonCollector::map_freed(std::unordered_map<PyObject*, MapHandle>::iterator map) {
  handles_[map->second.map].map = nullptr;
  maps_.erase(map);
}

void CPythonCollector::map_cleared(PyObject* map) {
  const auto found = maps_.find(map);
  if (found == maps_.end()) return;
  found->second.data = nullptr;
  found->second.callback = nullptr;
  found->second.keys.clear();  // (their weakref.ref objects were the data's)
}

void CPythonCollector::object_freed(PyObject* o) {
  from_interpreter([&] {
    if (const ObjectId id = id_of(o); id != kNotAnObject) report_free_after_clears(id);
  });
}

void CPythonCollector::report_clears_of(ObjectId id) {
  for (WeakId w : handles_.at(id).weak) {
    if (alive(weak_[w]) && cleared(weak_[w])) report_cleared(w);
  }
}

void CPythonCollector::report_free_after_clears(ObjectId id) {
  Handle& h = handles_.at(id);
  if (!h.dying) return;
  report_clears_of(id);
  h.dying = false;
  drop_held_weak_references(id);  // (the weak references it holds go with its references)
  if (h.map != nullptr) maps_.erase(std::exchange(h.map, nullptr));  // (its entries too)
  ids_.erase(h.object);
  h.object = nullptr;
  --alive_;
  report_free(id);
}

// Freed, or its holder freed: the weakref is no longer the trace's (CPython may still clear it
// and call it back as its holder's references go, legitimately: its target is alive).
void CPythonCollector::weak_gone(WeakId w) {
  report_clears();  // (it may be among the clears)
  WeakHandle& handle = weak_[w];
  if (handle.ref != nullptr) held_ids_.erase(handle.ref);
  handle.ref = nullptr;
  Py_CLEAR(handle.key);
  std::erase(uncleared_, w);
  std::erase(handles_[handle.holder].held, w);
}

void CPythonCollector::drop_held_weak_references(ObjectId id) {
  for (WeakId w : std::vector<WeakId>(handles_.at(id).held)) weak_gone(w);
}

// A weak reference whose holder was freed (or let it go) is no longer the trace's: CPython may
// still call it back as the holder's references go, or, when it refers to its own holder, from the
// holder's PyObject_ClearWeakRefs (the weakref is still the dying holder's). Neither is reported.
void CPythonCollector::weak_callback_ran(WeakId w) {
  from_interpreter([&] {
    const auto gone = [&] { return weak_[w].held && weak_[w].ref == nullptr; };
    if (gone()) return;
    report_clears();
    report_free_after_clears(weak_[w].target);
    if (gone()) return;  // (its holder was its target: CPython calls it back as the holder dies)
    report_cleared(w);
    as_program([&] { report_weak_callback(w); });
  });
}

// A Map drops an entry as CPython clears the weak references to its key: from the key's
// deallocation, or from a collection's handle_weakrefs when the key is garbage and the map not,
// before any finalizer. Reported before the key's free, if that is not reported yet (then its
// entries went with it), and before the value is released. The weakref.ref that the callback
// frees is counted by gc.collect when handle_weakrefs called it (the key is not dying then).
// A WeakValues' KeyedRef is called back as CPython clears it: as its target dies, or from a
// collection's handle_weakrefs when the target is garbage and the dictionary not. gc.collect
// counts the KeyedRef that the callback frees in the second case (the target is not dying then).
void CPythonCollector::value_dropped(PyObject* keyed_ref) {
  from_interpreter([&] {
    const auto held = held_ids_.find(keyed_ref);
    if (held == held_ids_.end()) return;
    if (collecting_ && !handles_[weak_[held->second].target].dying) ++dropped_by_collection_;
  });
}

void CPythonCollector::entry_dropped(PyObject* map, PyObject* key_reference) {
  from_interpreter([&] {
    const auto m = maps_.find(map);
    if (m == maps_.end()) return;  // (its map is freed: no longer the trace's)
    std::vector<MapKey>& keys = m->second.keys;
    const auto entry = std::find_if(keys.begin(), keys.end(),
                                    [&](const MapKey& k) { return k.reference == key_reference; });
    if (entry == keys.end()) return;
    const ObjectId key = entry->key;
    forget_key(m->second, entry);
    if (handles_[key].object == nullptr) return;
    report_clears();
    // (From a dying key's PyObject_ClearWeakRefs, which cleared every weak reference to the key
    // before this first callback: what the drop releases may run a finalizer that looks.)
    if (handles_[key].dying) report_clears_of(key);
    if (collecting_ && !handles_[key].dying) ++dropped_by_collection_;
    report_entry_dropped(m->second.map, key);
  });
}

void CPythonCollector::report_cleared(WeakId w) {
  if (weak_[w].cleared_reported) return;
  weak_[w].cleared_reported = true;
  std::erase(uncleared_, w);
  report_weak_cleared(w);
}

void CPythonCollector::report_clears() {
  if (!std::exchange(clears_unseen_, false)) return;
  std::vector<WeakId> cleared;
  for (WeakId w : uncleared_) {
    if (this->cleared(weak_[w])) cleared.push_back(w);
  }
  for (WeakId w : cleared) report_cleared(w);
}

// An entry of a WeakValueDictionary is cleared when its KeyedRef is, and the dictionary's
// `_remove` (the KeyedRef's callback) then drops it (object_dying): dropped is cleared too.
bool CPythonCollector::cleared(const WeakHandle& w) const {
  return w.ref == nullptr || PyWeakref_GET_OBJECT(w.ref) == Py_None;
}

// ================================================================================================
// The mutator's operations
// ================================================================================================

PyObject* CPythonCollector::object(ObjectId id) const {
  PyObject* o = handles_.at(id).object;
  if (o == nullptr) {
    throw std::runtime_error("cpython: object " + std::to_string(id) + " was freed");
  }
  return o;
}

// A Node first, whatever its kind: allocating it may run an automatic collection, as in any
// Python program. set_kind makes another kind's object right after.
void CPythonCollector::allocate(ObjectId id) {
  PyTypeObject* type = Interpreter::get().node_type;
  if (handles_.size() <= id) handles_.resize(id + 1);
  PyObject* node = type->tp_alloc(type, 0);
  if (node == nullptr) fail("allocating object " + std::to_string(id));
  handles_[id] = {.object = node, .external = 1};
  ids_.emplace(node, id);
  ++alive_;
  rethrow_error();
}

// A tuple stays the Node until its first item: CPython's empty tuple is one shared object.
void CPythonCollector::set_kind(ObjectId id, ObjectKind kind) {
  Interpreter& py = Interpreter::get();
  handles_.at(id).kind = kind;
  PyObject* fresh = nullptr;
  switch (kind) {
    case ObjectKind::Record:
      fresh = PyObject_CallNoArgs(py.record_type);
      break;
    case ObjectKind::Dict:
      fresh = PyObject_CallNoArgs(py.dict_type);
      break;
    case ObjectKind::Set:
      fresh = PyObject_CallNoArgs(py.set_type);
      break;
    case ObjectKind::Acyclic:
      fresh = PyDict_New();
      break;
    default:
      return;
  }
  if (fresh == nullptr) fail("making object " + std::to_string(id));
  replace(id, fresh);
  rethrow_error();
}

void CPythonCollector::replace(ObjectId id, PyObject* fresh) {
  Handle& h = handles_[id];
  PyObject* old = h.object;
  if (static_cast<std::uint64_t>(Py_REFCNT(old)) != h.external) {
    throw std::logic_error("cpython: object " + std::to_string(id) + " is replaced, referred to");
  }
  ids_.erase(old);
  ids_.emplace(fresh, id);
  h.object = fresh;
  for (std::uint32_t i = 1; i < h.external; ++i) Py_INCREF(fresh);
  for (std::uint32_t i = 0; i < h.external; ++i) Py_DECREF(old);
}

void CPythonCollector::set_field(ObjectId id, PyObject* value, ObjectId referent) {
  Handle& h = handles_[id];
  std::uint32_t n = 0;  // the lowest number free: a record keeps within CPython's shared keys
  const auto taken = [&h](std::uint32_t k) {
    return std::any_of(h.fields.begin(), h.fields.end(),
                       [k](const auto& f) { return f.first == k; });
  };
  while (taken(n)) ++n;
  const bool attribute = has_attributes(h.kind);
  Owned name(PyUnicode_FromFormat(attribute ? "p%u" : "k%u", n));
  if (!name || (attribute ? PyObject_SetAttr(h.object, name.get(), value)
                          : PyDict_SetItem(h.object, name.get(), value)) < 0) {
    fail("setting a field of object " + std::to_string(id));
  }
  h.fields.emplace_back(n, referent);
}

// Deleting the field releases its value: the referent may be freed now.
void CPythonCollector::delete_field(ObjectId id, ObjectId referent) {
  Handle& h = handles_[id];
  const auto field = std::find_if(h.fields.rbegin(), h.fields.rend(),
                                  [referent](const auto& f) { return f.second == referent; });
  if (field == h.fields.rend()) {
    throw std::runtime_error("cpython: object " + std::to_string(id) +
                             " holds no reference to object " + std::to_string(referent));
  }
  const bool attribute = has_attributes(h.kind);
  Owned name(PyUnicode_FromFormat(attribute ? "p%u" : "k%u", field->first));
  h.fields.erase(std::next(field).base());
  if (!name || (attribute ? PyObject_DelAttr(h.object, name.get())
                          : PyDict_DelItem(h.object, name.get())) < 0) {
    fail("deleting a field of object " + std::to_string(id));
  }
}

// A tuple's links all come as it is made (the trace refuses any later one): each makes the tuple
// again, one item longer. Making it may run an automatic collection.
void CPythonCollector::link(ObjectId from, ObjectId to) {
  switch (handles_.at(from).kind) {
    case ObjectKind::Record:
    case ObjectKind::Dict:
    case ObjectKind::Acyclic:
      set_field(from, object(to), to);
      break;
    case ObjectKind::Set:
      if (!hashable(object(to))) {
        set_field(from, object(to), to);
      } else if (PySet_Add(object(from), object(to)) < 0) {
        fail("adding to set " + std::to_string(from));
      }
      break;
    case ObjectKind::Tuple: {
      PyObject* old = object(from);
      const Py_ssize_t n = PyTuple_CheckExact(old) ? PyTuple_GET_SIZE(old) : 0;
      PyObject* tuple = PyTuple_New(n + 1);
      if (tuple == nullptr) fail("making tuple " + std::to_string(from));
      for (Py_ssize_t i = 0; i < n; ++i) {
        PyTuple_SET_ITEM(tuple, i, Py_NewRef(PyTuple_GET_ITEM(old, i)));
      }
      PyTuple_SET_ITEM(tuple, n, Py_NewRef(object(to)));
      replace(from, tuple);
      break;
    }
    default:
      if (!append_item(as_node(object(from)), object(to))) fail("link");
  }
  rethrow_error();
}

// Removing the reference releases it: its referent may be freed now.
void CPythonCollector::unlink(ObjectId from, ObjectId to) {
  switch (handles_.at(from).kind) {
    case ObjectKind::Record:
    case ObjectKind::Dict:
    case ObjectKind::Acyclic:
      delete_field(from, to);
      break;
    case ObjectKind::Set: {
      const auto& fields = handles_[from].fields;
      if (std::any_of(fields.begin(), fields.end(),
                      [to](const auto& f) { return f.second == to; })) {
        delete_field(from, to);
        break;
      }
      const int found = PySet_Discard(object(from), object(to));
      if (found < 0) fail("discarding from set " + std::to_string(from));
      if (found == 0) {
        throw std::runtime_error("cpython: set " + std::to_string(from) + " holds no object " +
                                 std::to_string(to));
      }
      break;
    }
    case ObjectKind::Tuple:
      throw std::runtime_error("cpython: a tuple's items never change");
    default: {
      NodeObject* n = as_node(object(from));
      PyObject* target = object(to);
      Py_ssize_t i = n->size - 1;
      while (i >= 0 && n->items[i] != target) --i;
      if (i < 0) {
        throw std::runtime_error("cpython: object " + std::to_string(from) +
                                 " holds no reference to object " + std::to_string(to));
      }
      std::copy(n->items + i + 1, n->items + n->size, n->items + i);
      --n->size;
      Py_DECREF(target);
    }
  }
  rethrow_error();
}

void CPythonCollector::root(ObjectId id) {
  Py_INCREF(object(id));
  ++handles_[id].external;
}

void CPythonCollector::unroot(ObjectId id) {
  PyObject* o = object(id);
  --handles_[id].external;
  Py_DECREF(o);
  rethrow_error();
}

std::size_t CPythonCollector::collect(int generation) {
  Interpreter& py = Interpreter::get();
  // Small ints are cached and gc.collect takes vectorcalls: no tracked object is allocated, so
  // no automatic collection can run before the requested one.
  // gc.collect counts objects that are not the trace's: the weakref objects that the garbage's
  // holders hold, the __dict__ that CPython made for a record, and what a map's Map is made of.
  // Those that go with objects it found, both in the collected generations, are taken off. (Not
  // one of a frozen holder that the garbage alone held, nor one frozen while its holder,
  // resurrected in its deallocation, was tracked again young.) (Those gone with their holders
  // leave the list here: it costs the held ones, not every weak reference the trace ever took.)
  std::erase_if(held_, [this](WeakId w) { return weak_[w].ref == nullptr; });
  const auto collected = [generation](PyObject* o) {
    const int g = generation_of(o);
    return g >= 0 && g <= generation;
  };
  std::vector<ObjectId> owners;  // one entry for each such object: its owner
  for (WeakId w : held_) {
    if (collected(weak_[w].ref) && collected(handles_[weak_[w].holder].object)) {
      owners.push_back(weak_[w].holder);
    }
  }
  const std::vector<MapObject> map_objects = map_internals(generation);
  Contents contents;
  for (ObjectId id = 0; id < handles_.size(); ++id) {
    if (handles_[id].object == nullptr || !has_attributes(handles_[id].kind)) continue;
    contents_of(handles_[id].object, contents);
    if (contents.dict != nullptr && collected(contents.dict) && collected(handles_[id].object)) {
      owners.push_back(id);
    }
  }
  // It does not count the trace's untracked dicts and tuples that go with the garbage it found
  // (the garbage alone held them, or reference counting would have freed them): they are added.
  std::vector<ObjectId> untracked;
  for (ObjectId id = 0; id < handles_.size(); ++id) {
    if (handles_[id].object != nullptr && !PyObject_GC_IsTracked(handles_[id].object)) {
      untracked.push_back(id);
    }
  }
  // It counts the weakref.ref of each entry whose key is its garbage and whose map is not: the
  // callback of one such, called by handle_weakrefs, drops the entry, which frees it. (Not reset:
  // a finalizer's gc.collect, which returns at once, may come in between.)
  const std::size_t dropped_before = dropped_by_collection_;
  const std::uint64_t first = collections_ + 1;  // (the number this collection will have)
  Owned g(PyLong_FromLong(generation));
  Owned found(PyObject_CallOneArg(py.gc_collect, g.get()));
  rethrow_error();
  if (!found) fail("gc.collect(" + std::to_string(generation) + ")");
  Py_ssize_t n = PyLong_AsSsize_t(found.get());
  if (n < 0) fail("reading what gc.collect returned");
  n -= static_cast<Py_ssize_t>(dropped_by_collection_ - dropped_before);
  // A finalizer that gave a garbage map an entry made a weakref.ref whose callback (the Map's
  // `_remove`) it holds: what that function holds is no longer garbage, and is not counted. So
  // for a KeyedRef that a finalizer gave a garbage dict's WeakValueDictionary.
  for (const MapObject& o : map_objects) {
    const Handle& owner = handles_[o.owner];
    const bool held = o.weak_values ? owner.weak_value_in_collection >= first
                                    : owner.keyed_in_collection >= first &&
                                          owner.keys_made_in_collection > 0;
    n -= owner.object == nullptr && !(o.callbacks && held) ? 1 : 0;
  }
  for (ObjectId owner : owners) n -= handles_[owner].object == nullptr ? 1 : 0;
  for (ObjectId id : untracked) n += handles_[id].object == nullptr ? 1 : 0;
  return static_cast<std::size_t>(std::max<Py_ssize_t>(n, 0));
}

// What a Map is made of, found from the instance through what only it holds: its attributes
// (`data`, `_remove`, `_pending_removals`, `_iterating`), the weakref.ref objects of its keys, and
// the functions of `_remove` with what their closures and defaults hold - not the trace's objects
// (its values), nor a type, a function's globals or code. Those that CPython's collector tracks
// and gc.collect(generation) looks at, with their map: all go with the map, if it is garbage. A
// WeakValueDictionary is made the same way, its KeyedRef objects for the keys' weakref.ref.
std::vector<CPythonCollector::MapObject> CPythonCollector::map_internals(int generation) const {
  std::vector<PyObject*> found;  // each map's owner, then what its callback holds, then the rest
  std::vector<MapObject> found_for;   // ... for each of them: its owner, and whose it is
  std::vector<std::size_t> owner_at;  // ... and where its owner is in `found`
  std::vector<std::size_t> via;       // ... and where what it was found through is
  const auto gather = [&](PyObject* instance, ObjectId owner_id, PyObject* callback,
                          bool weak_values) {
    const std::size_t owner = found.size();
    found.push_back(handles_[owner_id].object);
    via.push_back(owner);
    std::unordered_set<PyObject*> seen;
    gather_map_objects(callback, owner, seen, found, via);
    const std::size_t callback_end = found.size();
    gather_map_objects(instance, owner, seen, found, via);
    for (std::size_t k = owner; k < found.size(); ++k) {
      found_for.push_back({owner_id, k < callback_end, weak_values});
      owner_at.push_back(owner);
    }
  };
  for (const auto& [instance, handle] : maps_) gather(instance, handle.map, handle.callback, false);
  for (ObjectId id = 0; id < handles_.size(); ++id) {
    if (handles_[id].object == nullptr || !handles_[id].weak_values) continue;
    // (None in a dict that the collection has cleared, its tp_clear, while a finalizer that
    // reference counting ran meanwhile asks for a collection: they went with the clear.)
    PyObject* instance = field(id, kWeakValues);
    if (instance == nullptr) continue;
    Owned callback(PyObject_GetAttrString(instance, "_remove"));
    if (!callback) fail("finding the weak values of object " + std::to_string(id));
    gather(instance, id, callback.get(), true);
  }
  const std::vector<int> generations = generations_of(found);  // (-1 when untracked)
  // An object the collection looks at, reached from its owner through such objects only: one
  // that an object of an older generation holds (a young key's weakref.ref in the `data` of a
  // frozen Map) is held from outside the collection, and goes later, by reference counting.
  // (One that two objects of the map hold is judged by the path that found it first.)
  std::vector<char> collected(found.size());
  for (std::size_t k = 0; k < found.size(); ++k) {
    collected[k] = generations[k] >= 0 && generations[k] <= generation &&
                   (via[k] == k || collected[via[k]]);
  }
  std::vector<MapObject> counted;
  for (std::size_t k = 0; k < found.size(); ++k) {
    if (owner_at[k] != k && collected[k]) counted.push_back(found_for[k]);
  }
  return counted;
}

void CPythonCollector::gather_map_objects(PyObject* start, std::size_t from,
                                          std::unordered_set<PyObject*>& seen,
                                          std::vector<PyObject*>& found,
                                          std::vector<std::size_t>& via) const {
  std::function<void(PyObject*)> add = [&](PyObject* v) {
    if (v == nullptr || id_of(v) != kNotAnObject || !seen.insert(v).second) return;
    if (v == start || PyDict_CheckExact(v) || PyList_CheckExact(v) || PySet_CheckExact(v) ||
        PyTuple_CheckExact(v) || PyCell_Check(v) || PyFunction_Check(v) ||
        PyWeakref_CheckRefExact(v) ||
        Py_IS_TYPE(v, reinterpret_cast<PyTypeObject*>(Interpreter::get().keyed_ref_type))) {
      found.push_back(v);
      via.push_back(from);
    }
  };
  const std::size_t first = found.size();
  add(start);
  for (std::size_t i = first; i < found.size(); ++i) {
    PyObject* o = found[i];
    from = i;
    if (PyFunction_Check(o)) {
      add(PyFunction_GET_CLOSURE(o));
      add(PyFunction_GET_DEFAULTS(o));
      add(PyFunction_GET_KW_DEFAULTS(o));
    } else if (Py_TYPE(o)->tp_traverse != nullptr) {
      Py_TYPE(o)->tp_traverse(
          o,
          [](PyObject* v, void* to) {
            (*static_cast<std::function<void(PyObject*)>*>(to))(v);
            return 0;
          },
          &add);
    }
  }
}

// As a program's gc.set_threshold(t0, t1, t2): building its arguments allocates, which may run
// an automatic collection first under the old thresholds.
void CPythonCollector::set_thresholds(const std::array<std::uint32_t, 3>& thresholds) {
  Interpreter& py = Interpreter::get();
  if (!Owned(PyObject_CallFunction(py.gc_set_threshold, "III", thresholds[0], thresholds[1],
                                   thresholds[2]))) {
    fail("gc.set_threshold");
  }
  rethrow_error();
}

// gc.freeze() moves every object the collector tracks, the interpreter's own too, to the
// permanent generation; gc.unfreeze() moves them all to the oldest.
void CPythonCollector::freeze() {
  if (!Owned(PyObject_CallNoArgs(Interpreter::get().gc_freeze))) fail("gc.freeze");
  frozen_ = true;
}

void CPythonCollector::unfreeze() {
  if (!Owned(PyObject_CallNoArgs(Interpreter::get().gc_unfreeze))) fail("gc.unfreeze");
  frozen_ = false;
}

// gc.disable() and gc.enable().
void CPythonCollector::set_automatic_collection(bool enabled) {
  if (enabled) {
    PyGC_Enable();
  } else {
    PyGC_Disable();
  }
}

// A record, dict or set gets a __del__ as a program would give it one: by becoming an instance
// of a subclass that has one (`o.__class__ = FinalizingRecord`).
void CPythonCollector::set_finalizer(ObjectId id) {
  Interpreter& py = Interpreter::get();
  PyObject* o = object(id);
  switch (handles_[id].kind) {
    case ObjectKind::Record:
    case ObjectKind::Dict:
    case ObjectKind::Set: {
      const ObjectKind kind = handles_[id].kind;
      PyObject* type = kind == ObjectKind::Record ? py.finalizing_record_type
                       : kind == ObjectKind::Dict ? py.finalizing_dict_type
                                                  : py.finalizing_set_type;
      if (PyObject_SetAttrString(o, "__class__", type) < 0) fail("setting a __class__");
      break;
    }
    default:
      as_node(o)->finalizer = true;
  }
}

// The program's weak references. Their allocation must not start a collection (the program's
// `weak` op is no allocation in the trace's model).
void CPythonCollector::weak_ref(WeakId w, ObjectId target, bool callback) {
  if (weak_.size() <= w) weak_.resize(w + 1);
  WeakHandle& handle = weak_[w];
  {
    NoAutomaticCollection off;
    if (callback) {
      Owned id(PyLong_FromUnsignedLong(w));
      handle.callback = id ? PyCFunction_New(&kWeakCallback, id.get()) : nullptr;
    }
    if (!callback || handle.callback != nullptr) {
      handle.ref = PyObject_CallFunctionObjArgs(Interpreter::get().ref_type, object(target),
                                                handle.callback, nullptr);
    }
    if (handle.ref == nullptr) fail("making weak reference " + std::to_string(w));
  }
  handle.target = target;
  handles_[target].weak.push_back(w);
  uncleared_.push_back(w);
}

// The holder takes the weakref object as one of its references, and the adapter gives up its
// own: the weakref lives and dies with its holder, and CPython's collector sees it as part of
// whatever garbage the holder is part of (handle_weakrefs: no callback for trash). A dict keeps
// one without callback as a program would keep weak values, in a WeakValueDictionary (under the
// weak reference's number), which makes a KeyedRef of its own: the weakref.ref made for it goes.
void CPythonCollector::weak_held_by(WeakId w, ObjectId holder) {
  WeakHandle& handle = weak_.at(w);
  if (handles_[holder].kind == ObjectKind::Dict && handle.callback == nullptr) {
    {
      NoAutomaticCollection off;
      PyObject* table = weak_values_of(holder);
      handle.key = PyLong_FromUnsignedLong(w);
      Owned data(PyObject_GetAttrString(table, "data"));
      if (handle.key == nullptr || !data ||
          PyObject_SetItem(table, handle.key, object(handle.target)) < 0) {
        fail("giving object " + std::to_string(holder) + " weak value " + std::to_string(w));
      }
      Py_CLEAR(handle.ref);
      handle.ref = PyDict_GetItem(data.get(), handle.key);  // (its KeyedRef)
      if (handle.ref == nullptr) fail("finding weak value " + std::to_string(w));
      held_ids_.emplace(handle.ref, w);
    }
    if (collecting_) handles_[holder].weak_value_in_collection = collections_;
    handle.held = true;
    handle.holder = holder;
    handles_[holder].held.push_back(w);
    rethrow_error();
    return;
  }
  switch (handles_[holder].kind) {
    case ObjectKind::Record:
    case ObjectKind::Dict:
    case ObjectKind::Set:
      set_field(holder, handle.ref, kHeldWeakReference);
      break;
    default:
      if (!append_item(as_node(object(holder)), handle.ref)) fail("giving a weak reference away");
  }
  held_ids_.emplace(handle.ref, w);
  Py_DECREF(handle.ref);
  handle.held = true;
  handle.holder = holder;
  handles_[holder].held.push_back(w);
  held_.push_back(w);
}

// An entry of a WeakValueDictionary is looked up as a program would, d.get(number) (which may
// raise and catch a KeyError: no collection may start then).
std::optional<ObjectId> CPythonCollector::deref(WeakId w) const {
  const WeakHandle& handle = weak_.at(w);
  if (!alive(handle)) {
    throw std::runtime_error("cpython: weak reference " + std::to_string(w) +
                             " went with its holder");
  }
  std::optional<NoAutomaticCollection> off;
  if (handle.key != nullptr) off.emplace();
  Owned got(handle.key == nullptr ? Py_NewRef(PyWeakref_GET_OBJECT(handle.ref))
                                  : PyObject_CallMethod(field(handle.holder, kWeakValues),
                                                        "get", "O", handle.key));
  if (!got) fail("looking weak reference " + std::to_string(w) + " up");
  PyObject* referent = got.get();
  if (referent == Py_None) return std::nullopt;
  const ObjectId id = id_of(referent);
  if (id == kNotAnObject) {
    throw std::runtime_error("cpython: weak reference " + std::to_string(w) +
                             " refers to an object reported freed");
  }
  return id;
}

// An object's entries are a Map of its own (a WeakKeyDictionary), one of its references, made as
// its first entry is given. Neither the Map nor the weakref.ref of an entry's key is an allocation
// of the trace's model: no collection may start while they are made, nor when `del` makes a
// weakref.ref to find the entry.
PyObject* CPythonCollector::map_of(ObjectId id) {
  Handle& h = handles_.at(id);
  if (h.map != nullptr) return h.map;
  Owned map(PyObject_CallNoArgs(Interpreter::get().map_type));
  Owned data(map ? PyObject_GetAttrString(map.get(), "data") : nullptr);
  Owned callback(map ? PyObject_GetAttrString(map.get(), "_remove") : nullptr);
  if (!data || !callback) fail("making the map of object " + std::to_string(id));
  switch (h.kind) {
    case ObjectKind::Record:
    case ObjectKind::Dict:
      set_field(id, map.get(), kMapOfEntries);
      break;
    default:
      if (!append_item(as_node(h.object), map.get())) fail("giving object a map");
  }
  h.map = map.get();
  maps_.emplace(h.map, MapHandle{.map = id, .data = data.get(), .callback = callback.get()});
  return h.map;
}

PyObject* CPythonCollector::weak_values_of(ObjectId id) {
  Handle& h = handles_.at(id);
  if (h.weak_values) return field(id, kWeakValues);
  Owned table(PyObject_CallNoArgs(Interpreter::get().weak_values_type));
  if (!table) fail("making the weak values of object " + std::to_string(id));
  set_field(id, table.get(), kWeakValues);
  h.weak_values = true;
  return table.get();
}

// A dict's values are under "k<n>"; what it holds is looked up each time, since CPython's
// collector may have cleared a garbage dict (its tp_clear) before it frees it.
PyObject* CPythonCollector::field(ObjectId id, ObjectId referent) const {
  const Handle& h = handles_.at(id);
  const auto f = std::find_if(h.fields.begin(), h.fields.end(),
                              [referent](const auto& f) { return f.second == referent; });
  if (f == h.fields.end() || h.object == nullptr) return nullptr;
  Owned name(PyUnicode_FromFormat("k%u", f->first));
  return name ? PyDict_GetItem(h.object, name.get()) : nullptr;
}

void CPythonCollector::set_entry(ObjectId map, ObjectId key, ObjectId value) {
  PyObject* k = object(key);
  hold_for_program(k);
  PyObject* m = nullptr;
  bool made = false;  // a new weakref.ref for the key
  {
    NoAutomaticCollection off;
    m = map_of(map);
    // (Held meanwhile: the dropped item may have been the last to hold the value it gets again.)
    const Owned v(Py_NewRef(object(value)));
    drop_uncalled_entry(maps_.at(m), key);
    made = find_key(maps_.at(m), key) == maps_.at(m).keys.end();
    if (PyObject_SetItem(m, k, v.get()) < 0) {
      fail("giving map " + std::to_string(map) + " an entry");
    }
  }
  // The weakref.ref that stands for the key: the one made now, or the one whose value it
  // replaced (the dict keeps the key it had).
  MapHandle& handle = maps_.at(m);
  PyObject* reference = nullptr;
  PyObject* value_now = nullptr;
  for (Py_ssize_t i = 0; PyDict_Next(handle.data, &i, &reference, &value_now);) {
    if (PyWeakref_GET_OBJECT(reference) == k) break;
    reference = nullptr;
  }
  if (reference == nullptr) fail("finding the key of map " + std::to_string(map) + "'s entry");
  if (!made) {
    find_key(handle, key)->reference = reference;
  } else if (collecting_) {
    Handle& h = handles_[map];
    if (h.keyed_in_collection != collections_) h.keys_made_in_collection = 0;
    h.keyed_in_collection = last_keyed_in_ = collections_;
    ++h.keys_made_in_collection;
    handle.keys.push_back({key, reference, collections_});
  } else {
    handle.keys.push_back({key, reference});
  }
  rethrow_error();
}

void CPythonCollector::remove_entry(ObjectId map, ObjectId key) {
  PyObject* m = handles_.at(map).map;
  if (m == nullptr) {
    throw std::runtime_error("cpython: object " + std::to_string(map) + " has no map");
  }
  hold_for_program(object(key));
  {
    NoAutomaticCollection off;
    if (!drop_uncalled_entry(maps_.at(m), key)) {
      forget_key(maps_.at(m), find_key(maps_.at(m), key));
      if (PyObject_DelItem(m, object(key)) < 0) {
        fail("dropping map " + std::to_string(map) + "'s entry");
      }
    }
  }
  rethrow_error();
}

// A collection's handle_weakrefs clears the weak references to its garbage and calls back only
// those that are not garbage themselves: the weakref.ref of a garbage key in a garbage map is
// cleared, never called back, and its item stays in the Map's data (with its value), which no
// lookup by the key can find any more. A program of that garbage (a finalizer) that drops or
// replaces the entry does what the callback would have done: deletes the item.
bool CPythonCollector::drop_uncalled_entry(MapHandle& handle, ObjectId key) {
  const auto entry = find_key(handle, key);
  if (entry == handle.keys.end() || PyWeakref_GET_OBJECT(entry->reference) != Py_None) {
    return false;
  }
  PyObject* reference = entry->reference;
  forget_key(handle, entry);
  if (PyDict_DelItem(handle.data, reference) < 0) {
    fail("dropping map " + std::to_string(handle.map) + "'s entry of a cleared key");
  }
  return true;
}

bool CPythonCollector::values_reach(PyObject* map, ObjectId target) const {
  Contents contents;
  if (maps_.at(map).data == nullptr) return false;
  visit(maps_.at(map).data, contents);
  std::vector<ObjectId> pending = std::move(contents.objects);
  std::vector<bool> seen(handles_.size());
  while (!pending.empty()) {
    const ObjectId x = pending.back();
    pending.pop_back();
    if (x == target) return true;
    if (seen[x]) continue;
    seen[x] = true;
    contents_of(handles_[x].object, contents);
    pending.insert(pending.end(), contents.objects.begin(), contents.objects.end());
  }
  return false;
}

std::vector<CPythonCollector::MapKey>::iterator CPythonCollector::find_key(MapHandle& handle,
                                                                            ObjectId key) {
  return std::find_if(handle.keys.begin(), handle.keys.end(),
                      [key](const MapKey& k) { return k.key == key; });
}

// A weakref.ref that a finalizer made in this collection and that goes in it (a finalizer's
// `unentry`, or its key's death) no longer holds the Map's `_remove` when the collection looks
// again at what the finalizers resurrected.
void CPythonCollector::forget_key(MapHandle& handle, std::vector<MapKey>::iterator entry) {
  if (entry == handle.keys.end()) return;
  Handle& h = handles_[handle.map];
  if (collecting_ && entry->made_in == collections_ && h.keys_made_in_collection > 0) {
    --h.keys_made_in_collection;
  }
  handle.keys.erase(entry);
}

// PyObject_ClearWeakRefs takes the callback out of a weakref.ref as it clears it, so one that a
// finalizer made no longer holds the Map's `_remove` once its key dies, whether or not `_remove`
// then drops the entry (it does nothing when its Map is garbage: its weak reference to the Map is
// cleared), and the collection counts `_remove` with its garbage again.
void CPythonCollector::keys_dying(ObjectId key) {
  if (!collecting_ || last_keyed_in_ != collections_) return;
  for (auto& [instance, handle] : maps_) {
    Handle& h = handles_[handle.map];
    if (h.keyed_in_collection != collections_) continue;
    for (MapKey& k : handle.keys) {
      if (k.key != key || k.made_in != collections_) continue;
      k.made_in = 0;
      if (h.keys_made_in_collection > 0) --h.keys_made_in_collection;
    }
  }
}

// ================================================================================================
// Inspection
// ================================================================================================

ObjectId CPythonCollector::id_of(PyObject* o) const {
  const auto it = ids_.find(o);
  return it != ids_.end() ? it->second : kNotAnObject;
}

// What CPython's collector sees: tp_traverse. A record's values and its type come through it;
// so does its __dict__ once CPython made one, which is looked into (it is the record's).
void CPythonCollector::contents_of(PyObject* o, Contents& contents) const {
  contents = {};
  visit(o, contents);
}

void CPythonCollector::visit(PyObject* o, Contents& contents) const {
  struct Visit {
    const CPythonCollector* adapter;
    Contents* contents;
  } context{this, &contents};
  Py_TYPE(o)->tp_traverse(
      o,
      [](PyObject* v, void* arg) {
        auto& [adapter, contents] = *static_cast<Visit*>(arg);
        if (const ObjectId id = adapter->id_of(v); id != kNotAnObject) {
          contents->objects.push_back(id);
        } else if (Py_IS_TYPE(v, reinterpret_cast<PyTypeObject*>(Interpreter::get().ref_type))) {
          ++contents->weak;
        } else if (Py_IS_TYPE(v, reinterpret_cast<PyTypeObject*>(
                                     Interpreter::get().weak_values_type))) {
          // (a dict's: the KeyedRef objects of its `data`)
          Owned data(PyObject_GetAttrString(v, "data"));
          contents->weak += data ? static_cast<std::size_t>(PyDict_Size(data.get())) : 0;
        } else if (const auto m = adapter->maps_.find(v); m != adapter->maps_.end()) {
          contents->map = v;
          if (m->second.data != nullptr) {  // (its values: the keys are weakrefs)
            adapter->visit(m->second.data, *contents);
          }
        } else if (PyDict_CheckExact(v)) {
          contents->dict = v;
          adapter->visit(v, *contents);
        } else if (of_trace_type(v)) {
          contents->stray = true;
        }
        return 0;
      },
      &context);
}

void CPythonCollector::inspect(ObjectId id, ObjectView& view) const {
  PyObject* o = object(id);
  Contents contents;
  contents_of(o, contents);
  view.references = std::move(contents.objects);
  view.tracked = PyObject_GC_IsTracked(o) != 0;
  view.generation = view.tracked ? generation_of(o) : 0;
  // A record's attributes are its __dict__'s once CPython made one (past its shared keys, or at
  // a __class__ assignment), and the dict has a generation of its own: the older of the two is
  // the record's, since a collection of the younger alone finds the record held by the dict. (A
  // record resurrected in its deallocation is young again, its dict not.)
  if (view.tracked && contents.dict != nullptr && PyObject_GC_IsTracked(contents.dict)) {
    view.generation = std::max(view.generation, generation_of(contents.dict));
  }
  // A map's entries are its Map's, whose instance and `data` dict have generations of their own
  // (a map resurrected in its deallocation is young again, its Map not; a frozen Map stays
  // frozen): an older Map keeps what its values reach through a collection of the map's
  // generation - the map too, if they reach it back, and then the map is as old as its Map.
  if (view.tracked && contents.map != nullptr) {
    int older = view.generation;
    for (PyObject* part : {contents.map, maps_.at(contents.map).data}) {
      if (part != nullptr && PyObject_GC_IsTracked(part)) {
        older = std::max(older, generation_of(part));
      }
    }
    if (older > view.generation && values_reach(contents.map, id)) view.generation = older;
  }
  view.count = static_cast<std::uint64_t>(Py_REFCNT(o));
}

// Every object not reported freed is a live object of its id in one of the collector's three
// generations (or, frozen, the permanent one; an exact dict or tuple may be untracked), refers
// only to such objects (besides the weak references it holds), and its ob_refcnt is its external
// references plus its referrers' references.
void CPythonCollector::check_invariants() const {
  std::vector<ObjectId> live;
  for (ObjectId id = 0; id < handles_.size(); ++id) {
    if (handles_[id].object != nullptr) live.push_back(id);
  }
  if (live.size() != alive_ || ids_.size() != alive_) {
    throw BrokenInvariant("cpython: the count of live objects is wrong");
  }
  check_objects(live);
}

void CPythonCollector::check_invariants_of(std::span<const ObjectId> objects) const {
  check_objects(objects);
}

// The invariants at `ids`. Their referrers may be anywhere, so every live object's references are
// counted (cheap); what costs is finding an object's generation (a walk along its list), and
// that is done for `ids` alone.
void CPythonCollector::check_objects(std::span<const ObjectId> ids) const {
  std::vector<std::uint64_t> referrers(handles_.size());
  std::vector<std::size_t> weak_held(handles_.size());
  Contents contents;
  for (ObjectId id = 0; id < handles_.size(); ++id) {
    if (handles_[id].object == nullptr) continue;
    contents_of(handles_[id].object, contents);
    if (contents.stray) broken_invariant("cpython", id, "refers to no live object");
    for (ObjectId to : contents.objects) ++referrers[to];
    weak_held[id] = contents.weak;
  }
  std::vector<PyObject*> objects;
  for (ObjectId id : ids) objects.push_back(handles_[id].object);
  const std::vector<int> generations = generations_of(objects);
  for (std::size_t k = 0; k < ids.size(); ++k) {
    const ObjectId id = ids[k];
    const Handle& h = handles_[id];
    if (h.object == nullptr) broken_invariant("cpython", id, "is gone, but not reported freed");
    if (id_of(h.object) != id) broken_invariant("cpython", id, "is no longer its object");
    const bool may_be_untracked = h.kind == ObjectKind::Acyclic || h.kind == ObjectKind::Tuple;
    if (!PyObject_GC_IsTracked(h.object)) {
      if (!may_be_untracked) broken_invariant("cpython", id, "is not tracked by the collector");
    } else if (const int g = generations[k]; g < 0 || (g > 2 && !frozen_)) {
      broken_invariant("cpython", id, g < 0 ? "is not in a generation of the collector"
                                            : "is in the permanent generation, unfrozen");
    }
    // (A WeakValueDictionary drops an entry as CPython clears it.)
    const auto given = static_cast<std::size_t>(std::count_if(
        h.held.begin(), h.held.end(), [this](WeakId w) { return weak_[w].ref != nullptr; }));
    if (weak_held[id] != given) {
      broken_invariant("cpython", id,
                       "holds " + std::to_string(weak_held[id]) + " weak references, not the " +
                           std::to_string(given) + " it was given");
    }
    if (static_cast<std::uint64_t>(Py_REFCNT(h.object)) != h.external + referrers[id]) {
      broken_invariant("cpython", id,
                       "has ob_refcnt " + std::to_string(Py_REFCNT(h.object)) + " but " +
                           std::to_string(h.external) + " external and " +
                           std::to_string(referrers[id]) + " internal references");
    }
  }
}

}  // namespace cyclefuzz
