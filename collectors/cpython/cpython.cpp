#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include "collectors/cpython/cpython.h"

#include "collectors/cpython/generation.h"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

namespace cyclefuzz {

namespace {

constexpr const char* kCapsuleName = "cyclefuzz.CPythonCollector";

/// What `inspect` shows for a reference to something that is not one of the adapter's live
/// objects: no object has this id, so the checker reports the difference.
constexpr ObjectId kNotAnObject = std::numeric_limits<ObjectId>::max();

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
// Node: the trace's objects, a C type as an extension module would define
// ================================================================================================

/// A Node's references are its items; the weakref objects it holds (`weak w a in h`) are items too,
/// so that CPython's collector sees them as the holder's.
struct NodeObject {
  PyObject_HEAD
  PyObject* weakreflist;  // CPython's list of weak references to it (tp_weaklistoffset)
  PyObject** items;       // owned references, PyMem-allocated
  Py_ssize_t size;
  Py_ssize_t capacity;
  ObjectId id;
  bool finalizer;  // the trace gave it one: tp_finalize runs its program
};

NodeObject* as_node(PyObject* o) { return reinterpret_cast<NodeObject*>(o); }

CPythonCollector* active_adapter();

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
  if (CPythonCollector* adapter = active_adapter()) adapter->node_cleared(n->id);
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
  const NodeObject* n = as_node(self);
  CPythonCollector* adapter = active_adapter();
  if (!n->finalizer || adapter == nullptr) return;
  PyObject* type = nullptr;
  PyObject* value = nullptr;
  PyObject* traceback = nullptr;
  PyErr_Fetch(&type, &value, &traceback);
  adapter->node_finalized(n->id);
  PyErr_Restore(type, value, traceback);
}

// As CPython's own types with finalizers (subtype_dealloc): the finalizer runs tracked, and may
// resurrect; then the free is reported, the weak references are cleared (their callbacks run),
// and the items go. The trashcan keeps a long chain's deallocation off the C stack.
void node_dealloc(PyObject* self) {
  NodeObject* n = as_node(self);
  PyObject_GC_UnTrack(self);
  Py_TRASHCAN_BEGIN(self, node_dealloc)
  bool resurrected = false;
  if (n->finalizer) {
    PyObject_GC_Track(self);
    resurrected = PyObject_CallFinalizerFromDealloc(self) < 0;
    if (!resurrected) PyObject_GC_UnTrack(self);
  }
  if (!resurrected) {
    CPythonCollector* adapter = active_adapter();
    if (adapter != nullptr) adapter->node_dying(n->id);
    if (n->weakreflist != nullptr) PyObject_ClearWeakRefs(self);
    if (adapter != nullptr) adapter->node_freed(n->id);
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
  PyObject* gc_collect = nullptr;
  PyObject* gc_freeze = nullptr;
  PyObject* gc_unfreeze = nullptr;
  PyObject* gc_callbacks = nullptr;
  PyObject* gc_get_threshold = nullptr;
  PyObject* gc_set_threshold = nullptr;
  CPythonCollector* active = nullptr;  // the one adapter allowed at a time

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

  void define_types() {
    node_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&kNodeSpec));
    if (node_type == nullptr) fail("defining type Node");
    Owned globals(PyDict_New());
    if (!globals || PyDict_SetItemString(globals.get(), "__builtins__", PyEval_GetBuiltins()) < 0) {
      fail("making a namespace");
    }
    Owned done(PyRun_String("import weakref\n"
                            "class Ref(weakref.ref):\n    __slots__ = ()\n",
                            Py_file_input, globals.get(), globals.get()));
    if (!done) fail("defining class Ref");
    ref_type = Py_XNewRef(PyDict_GetItemString(globals.get(), "Ref"));
    if (ref_type == nullptr || !PyType_Check(ref_type)) fail("finding class Ref");
  }

  void release() {
    Py_CLEAR(node_type);
    for (PyObject** p : {&ref_type, &gc_collect, &gc_freeze, &gc_unfreeze, &gc_callbacks,
                         &gc_get_threshold,
                         &gc_set_threshold}) {
      Py_CLEAR(*p);
    }
  }
};

CPythonCollector* active_adapter() { return Interpreter::get().active; }

bool is_node(PyObject* o) { return Py_TYPE(o) == Interpreter::get().node_type; }

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
  CPythonCollector* adapter = Interpreter::get().active;
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
                    .weak_reference_holders = true} {
  Interpreter& py = Interpreter::get();
  if (py.active != nullptr) {
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
  py.active = this;
}

// Nothing reaches this adapter once it is no longer the active one: the frees, finalizers and
// callbacks of the teardown are not the trace's. The weak references go first, then the external
// references; a collection takes the cycles that remain.
CPythonCollector::~CPythonCollector() {
  Interpreter& py = Interpreter::get();
  py.active = nullptr;
  const Py_ssize_t entry = PySequence_Index(py.gc_callbacks, collection_callback_);
  if (entry < 0 || PySequence_DelItem(py.gc_callbacks, entry) < 0) PyErr_Clear();
  uncleared_.clear();
  for (WeakHandle& w : weak_) {
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
void CPythonCollector::node_finalized(ObjectId id) {
  from_interpreter([&] {
    report_clears();
    run_finalizer(id);
  });
}

// Its deallocation begins: PyObject_ClearWeakRefs clears the weak references to it, then calls
// their callbacks. The free is reported after the clears and before the first callback, as the
// checks demand of every collector: so by the first callback, or else right after.
void CPythonCollector::node_dying(ObjectId id) {
  from_interpreter([&] {
    report_clears();
    handles_.at(id).dying = true;
  });
}

void CPythonCollector::node_freed(ObjectId id) {
  from_interpreter([&] { report_free_after_clears(id); });
}

void CPythonCollector::report_free_after_clears(ObjectId id) {
  Handle& h = handles_.at(id);
  if (!h.dying) return;
  for (WeakId w : h.weak) {
    if (weak_[w].ref != nullptr && PyWeakref_GET_OBJECT(weak_[w].ref) == Py_None) {
      report_cleared(w);
    }
  }
  h.dying = false;
  drop_held_weak_references(id);  // (the weak references it holds go with its items)
  h.object = nullptr;
  --alive_;
  report_free(id);
}

void CPythonCollector::node_cleared(ObjectId id) {
  from_interpreter([&] { drop_held_weak_references(id); });
}

// tp_clear (the collector breaking a garbage cycle) or the free: the weakref objects among the
// items die with them, uncalled (the trash weakrefs of handle_weakrefs).
void CPythonCollector::drop_held_weak_references(ObjectId id) {
  report_clears();  // (some of them may be among the clears)
  for (WeakId w : std::exchange(handles_.at(id).held, {})) {
    weak_[w].ref = nullptr;
    std::erase(uncleared_, w);
  }
}

// A weak reference whose holder was freed (or dropped its items) is no longer the trace's: CPython
// may still clear and call it back as the holder's items go (legitimately: its target is alive),
// or, when it refers to its own holder, from the holder's PyObject_ClearWeakRefs (the weakref is
// still one of the dying holder's items). Neither is reported.
void CPythonCollector::weak_callback_ran(WeakId w) {
  from_interpreter([&] {
    const auto gone = [&] { return weak_[w].held && weak_[w].ref == nullptr; };
    if (gone()) return;
    report_clears();
    report_free_after_clears(weak_[w].target);
    if (gone()) return;  // (its holder was its target: CPython calls it back as the holder dies)
    report_cleared(w);
    report_weak_callback(w);
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
    if (PyWeakref_GET_OBJECT(weak_[w].ref) == Py_None) cleared.push_back(w);
  }
  for (WeakId w : cleared) report_cleared(w);
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

// Allocating the Node may run an automatic collection first, as in any Python program.
void CPythonCollector::allocate(ObjectId id) {
  PyTypeObject* type = Interpreter::get().node_type;
  if (handles_.size() <= id) handles_.resize(id + 1);
  PyObject* node = type->tp_alloc(type, 0);
  if (node == nullptr) fail("allocating object " + std::to_string(id));
  as_node(node)->id = id;
  handles_[id] = {node, 1};
  ++alive_;
  rethrow_error();
}

void CPythonCollector::link(ObjectId from, ObjectId to) {
  if (!append_item(as_node(object(from)), object(to))) fail("link");
}

// Removing the item releases it: its referent may be freed now.
void CPythonCollector::unlink(ObjectId from, ObjectId to) {
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
  // gc.collect counts the weakref objects that the garbage's holders hold, which are no objects of
  // the trace: those that go with holders it found, both in the collected generations. (Not one
  // of a frozen holder that the garbage alone held, nor one frozen while its holder, resurrected
  // in its deallocation, was tracked again young.)
  // (Those gone with their holders leave the list here: it costs the held ones, not every weak
  // reference the trace ever took.)
  std::erase_if(held_, [this](WeakId w) { return weak_[w].ref == nullptr; });
  std::vector<WeakId> held_in_collected;
  const auto collected = [generation](PyObject* o) {
    const int g = generation_of(o);
    return g >= 0 && g <= generation;
  };
  for (WeakId w : held_) {
    if (collected(weak_[w].ref) && collected(handles_[weak_[w].holder].object)) {
      held_in_collected.push_back(w);
    }
  }
  Owned g(PyLong_FromLong(generation));
  Owned found(PyObject_CallOneArg(py.gc_collect, g.get()));
  rethrow_error();
  if (!found) fail("gc.collect(" + std::to_string(generation) + ")");
  Py_ssize_t n = PyLong_AsSsize_t(found.get());
  if (n < 0) fail("reading what gc.collect returned");
  for (WeakId w : held_in_collected) n -= weak_[w].ref == nullptr ? 1 : 0;
  return static_cast<std::size_t>(std::max<Py_ssize_t>(n, 0));
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

void CPythonCollector::set_finalizer(ObjectId id) { as_node(object(id))->finalizer = true; }

// The program's weak references. Their allocation must not start a collection (the program's
// `weak` op is no allocation in the trace's model).
void CPythonCollector::weak_ref(WeakId w, ObjectId target, bool callback) {
  if (weak_.size() <= w) weak_.resize(w + 1);
  WeakHandle& handle = weak_[w];
  const int collecting_automatically = PyGC_Disable();
  if (callback) {
    Owned id(PyLong_FromUnsignedLong(w));
    handle.callback = id ? PyCFunction_New(&kWeakCallback, id.get()) : nullptr;
  }
  if (!callback || handle.callback != nullptr) {
    handle.ref = PyObject_CallFunctionObjArgs(Interpreter::get().ref_type, object(target),
                                              handle.callback, nullptr);
  }
  if (collecting_automatically) PyGC_Enable();
  if (handle.ref == nullptr) fail("making weak reference " + std::to_string(w));
  handle.target = target;
  handles_[target].weak.push_back(w);
  uncleared_.push_back(w);
}

// The holder's items take the weakref object, and the adapter gives up its own reference: the
// weakref lives and dies with its holder, and CPython's collector sees it as part of whatever
// garbage the holder is part of (handle_weakrefs: no callback for trash).
void CPythonCollector::weak_held_by(WeakId w, ObjectId holder) {
  WeakHandle& handle = weak_.at(w);
  if (!append_item(as_node(object(holder)), handle.ref)) fail("giving a weak reference away");
  Py_DECREF(handle.ref);
  handle.held = true;
  handle.holder = holder;
  handles_[holder].held.push_back(w);
  held_.push_back(w);
}

std::optional<ObjectId> CPythonCollector::deref(WeakId w) const {
  if (weak_.at(w).ref == nullptr) {
    throw std::runtime_error("cpython: weak reference " + std::to_string(w) +
                             " went with its holder's items");
  }
  PyObject* referent = PyWeakref_GET_OBJECT(weak_.at(w).ref);
  if (referent == Py_None) return std::nullopt;
  const ObjectId id = id_of(referent);
  if (id == kNotAnObject) {
    throw std::runtime_error("cpython: weak reference " + std::to_string(w) +
                             " refers to an object reported freed");
  }
  return id;
}

// ================================================================================================
// Inspection
// ================================================================================================

ObjectId CPythonCollector::id_of(PyObject* o) const {
  if (!is_node(o)) return kNotAnObject;
  const ObjectId id = as_node(o)->id;
  return id < handles_.size() && handles_[id].object == o ? id : kNotAnObject;
}

void CPythonCollector::inspect(ObjectId id, ObjectView& view) const {
  const NodeObject* n = as_node(object(id));
  view.references.clear();
  view.generation = generation_of(handles_[id].object);
  for (Py_ssize_t i = 0; i < n->size; ++i) {
    // (a weak reference it holds is no reference of the trace)
    if (!PyWeakref_Check(n->items[i])) view.references.push_back(id_of(n->items[i]));
  }
  view.count = static_cast<std::uint64_t>(Py_REFCNT(handles_[id].object));
}

// Every object not reported freed is a live Node of its id in one of the collector's three
// generations (or, frozen, the permanent one), refers only to such objects (besides the weak
// references it holds, one item each), and its ob_refcnt is its external references plus its
// referrers' items.
void CPythonCollector::check_invariants() const {
  std::vector<ObjectId> live;
  for (ObjectId id = 0; id < handles_.size(); ++id) {
    if (handles_[id].object != nullptr) live.push_back(id);
  }
  if (live.size() != alive_) throw BrokenInvariant("cpython: the count of live objects is wrong");
  check_objects(live);
}

void CPythonCollector::check_invariants_of(std::span<const ObjectId> objects) const {
  check_objects(objects);
}

// The invariants at `ids`. Their referrers may be anywhere, so every live object's items are
// counted (cheap); what costs is finding an object's generation (a walk along its list), and
// that is done for `ids` alone.
void CPythonCollector::check_objects(std::span<const ObjectId> ids) const {
  std::vector<std::uint64_t> referrers(handles_.size());
  for (ObjectId id = 0; id < handles_.size(); ++id) {
    if (handles_[id].object == nullptr) continue;
    const NodeObject* n = as_node(handles_[id].object);
    for (Py_ssize_t i = 0; i < n->size; ++i) {
      if (PyWeakref_Check(n->items[i])) continue;
      const ObjectId to = id_of(n->items[i]);
      if (to == kNotAnObject) broken_invariant("cpython", id, "refers to no live object");
      ++referrers[to];
    }
  }
  std::vector<PyObject*> objects;
  for (ObjectId id : ids) objects.push_back(handles_[id].object);
  const std::vector<int> generations = generations_of(objects);
  for (std::size_t k = 0; k < ids.size(); ++k) {
    const ObjectId id = ids[k];
    const Handle& h = handles_[id];
    if (h.object == nullptr) broken_invariant("cpython", id, "is gone, but not reported freed");
    if (id_of(h.object) != id) broken_invariant("cpython", id, "is no longer its Node");
    if (const int g = generations[k]; g < 0 || (g > 2 && !frozen_)) {
      broken_invariant("cpython", id, g < 0 ? "is not in a generation of the collector"
                                            : "is in the permanent generation, unfrozen");
    }
    const NodeObject* n = as_node(h.object);
    const auto weak_items = static_cast<std::size_t>(std::count_if(
        n->items, n->items + n->size, [](PyObject* o) { return PyWeakref_Check(o); }));
    if (weak_items != h.held.size()) {
      broken_invariant("cpython", id,
                       "holds " + std::to_string(weak_items) + " weak references, not the " +
                           std::to_string(h.held.size()) + " it was given");
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
