#define PY_SSIZE_T_CLEAN
#include <Python.h>

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

/// The interpreter, started on first use and finalized at exit; what the adapters need of it.
class Interpreter {
 public:
  static Interpreter& get() {
    static Interpreter interpreter;
    return interpreter;
  }

  PyObject* node_type = nullptr;  // class Node(list): __slots__ = ('__weakref__',)
  // class Ref(weakref.ref): the program's weak references, one object each (CPython hands out
  // one shared weakref.ref per object for those without a callback: one the mutator holds would
  // then keep alive the weakref object that a holder was given)
  PyObject* ref_type = nullptr;
  PyObject* gc_collect = nullptr;
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
    Owned globals(PyDict_New());
    if (!globals || PyDict_SetItemString(globals.get(), "__builtins__", PyEval_GetBuiltins()) < 0) {
      fail("making a namespace");
    }
    Owned done(PyRun_String("import weakref\n"
                            "class Node(list):\n    __slots__ = ('__weakref__',)\n"
                            "class Ref(weakref.ref):\n    __slots__ = ()\n",
                            Py_file_input, globals.get(), globals.get()));
    if (!done) fail("defining classes Node and Ref");
    for (auto [field, name] : {std::pair{&node_type, "Node"}, {&ref_type, "Ref"}}) {
      *field = Py_XNewRef(PyDict_GetItemString(globals.get(), name));
      if (*field == nullptr || !PyType_Check(*field)) fail(std::string("finding class ") + name);
    }
  }

  void release() {
    for (PyObject** p : {&node_type, &ref_type, &gc_collect, &gc_callbacks, &gc_get_threshold,
                         &gc_set_threshold}) {
      Py_CLEAR(*p);
    }
  }
};

// The callbacks the interpreter calls; `self` is a capsule holding the adapter.
PyObject* on_object_freed(PyObject* self, PyObject* weakref) {
  auto* adapter = static_cast<CPythonCollector*>(PyCapsule_GetPointer(self, kCapsuleName));
  if (adapter == nullptr) return nullptr;
  try {
    adapter->weakref_died(weakref);
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
    return nullptr;
  }
  Py_RETURN_NONE;
}

PyObject* on_collection_phase(PyObject* self, PyObject* args) {
  auto* adapter = static_cast<CPythonCollector*>(PyCapsule_GetPointer(self, kCapsuleName));
  PyObject* phase = nullptr;
  PyObject* info = nullptr;
  if (adapter == nullptr || !PyArg_ParseTuple(args, "UO", &phase, &info)) return nullptr;
  if (PyUnicode_CompareWithASCIIString(phase, "start") == 0) adapter->collection_started();
  Py_RETURN_NONE;
}

// `self` is the weak reference's id; the adapter is the active one.
PyObject* on_weak_callback(PyObject* self, PyObject* /*weakref*/) {
  CPythonCollector* adapter = Interpreter::get().active;
  if (adapter != nullptr) adapter->weak_callback_ran(static_cast<WeakId>(PyLong_AsLong(self)));
  Py_RETURN_NONE;
}

PyMethodDef kObjectFreed = {"cyclefuzz_object_freed", on_object_freed, METH_O,
                            "Weak reference callback: reports the free of the referent."};
PyMethodDef kWeakCallback = {"cyclefuzz_weak_callback", on_weak_callback, METH_O,
                             "The callback of one of the program's weak references."};
PyMethodDef kCollectionPhase = {"cyclefuzz_collection_phase", on_collection_phase, METH_VARARGS,
                                "gc.callbacks entry: counts collections."};

}  // namespace

CPythonCollector::CPythonCollector(CollectorHost& listener, const CollectorOptions& options)
    : Collector(listener),
      capabilities_{.reference_counting = true,
                    .generations = 3,
                    .automatic_collection = true,
                    .count = CountMeaning::References,
                    .collect_count = CollectCount::FoundInGenerations,
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
  Owned free_callback(PyCFunction_New(&kObjectFreed, capsule.get()));
  Owned collection_callback(PyCFunction_New(&kCollectionPhase, capsule.get()));
  Owned previous_thresholds(PyObject_CallNoArgs(py.gc_get_threshold));
  if (!free_callback || !collection_callback || !previous_thresholds) fail("making callbacks");
  if (!Owned(PyObject_CallFunction(py.gc_set_threshold, "III", options.thresholds[0],
                                   options.thresholds[1], options.thresholds[2]))) {
    fail("gc.set_threshold");
  }
  if (PyList_Append(py.gc_callbacks, collection_callback.get()) < 0) fail("adding to gc.callbacks");
  PyGC_Enable();
  free_callback_ = free_callback.release();
  collection_callback_ = collection_callback.release();
  previous_thresholds_ = previous_thresholds.release();
  py.active = this;
}

// Drops the weak references first, so that no callback reaches this adapter once it is gone;
// then the external references, and collects what cycles remain.
CPythonCollector::~CPythonCollector() {
  Interpreter& py = Interpreter::get();
  py.active = nullptr;  // (the weak references objects hold die with them, below: no callback)
  for (WeakHandle& w : weak_) {
    if (w.held) {
      w.ref = nullptr;
    } else {
      Py_CLEAR(w.ref);
    }
    Py_CLEAR(w.callback);
  }
  for (Handle& h : handles_) Py_CLEAR(h.weakref);
  release_dead_weakrefs();
  for (Handle& h : handles_) {
    for (; h.object != nullptr && h.external > 0; --h.external) Py_DECREF(h.object);
  }
  const Py_ssize_t entry = PySequence_Index(py.gc_callbacks, collection_callback_);
  if (entry < 0 || PySequence_DelItem(py.gc_callbacks, entry) < 0) PyErr_Clear();
  Py_XDECREF(PyObject_CallNoArgs(py.gc_collect));
  Py_XDECREF(PyObject_CallObject(py.gc_set_threshold, previous_thresholds_));
  PyErr_Clear();
  Py_DECREF(previous_thresholds_);
  Py_DECREF(collection_callback_);
  Py_DECREF(free_callback_);
  py.active = nullptr;
}

// ================================================================================================
// The mutator's operations
// ================================================================================================

PyObject* CPythonCollector::object(ObjectId id) const {
  const Handle& h = handles_.at(id);
  if (h.weakref == nullptr || PyWeakref_GET_OBJECT(h.weakref) != h.object) {
    throw std::runtime_error("cpython: object " + std::to_string(id) +
                             " is no longer alive in the interpreter");
  }
  return h.object;
}

void CPythonCollector::allocate(ObjectId id) {
  Interpreter& py = Interpreter::get();
  if (handles_.size() <= id) handles_.resize(id + 1);
  // Allocating the instance may run an automatic collection first, as in any Python program.
  Owned node(PyObject_CallNoArgs(py.node_type));
  if (!node) fail("allocating object " + std::to_string(id));
  // The weak reference is the harness's, not the program's: its allocation must not start a
  // collection, which would promote the new object before the program has seen it. It counts
  // as an allocation all the same, so the collection it would have started comes at the next
  // allocation instead.
  const int collecting_automatically = PyGC_Disable();
  PyObject* weakref = PyWeakref_NewRef(node.get(), free_callback_);
  if (collecting_automatically) PyGC_Enable();
  if (weakref == nullptr) fail("making a weak reference to object " + std::to_string(id));
  if (id_of_object_.contains(node.get())) {
    Py_DECREF(weakref);
    throw std::runtime_error("cpython: object " + std::to_string(id) +
                             " has the address of an object never reported freed");
  }
  handles_[id] = {weakref, node.release(), 1};
  id_of_weakref_.emplace(weakref, id);
  id_of_object_.emplace(handles_[id].object, id);
  release_dead_weakrefs();
}

void CPythonCollector::link(ObjectId from, ObjectId to) {
  if (PyList_Append(object(from), object(to)) < 0) fail("link");
}

void CPythonCollector::unlink(ObjectId from, ObjectId to) {
  PyObject* list = object(from);
  PyObject* target = object(to);
  Py_ssize_t i = PyList_GET_SIZE(list) - 1;
  while (i >= 0 && PyList_GET_ITEM(list, i) != target) --i;
  if (i < 0) {
    throw std::runtime_error("cpython: object " + std::to_string(from) +
                             " holds no reference to object " + std::to_string(to));
  }
  // Deleting the element releases it: its referent may be freed now.
  if (PyList_SetSlice(list, i, i + 1, nullptr) < 0) fail("unlink");
  release_dead_weakrefs();
}

void CPythonCollector::root(ObjectId id) {
  Py_INCREF(object(id));
  ++handles_[id].external;
}

void CPythonCollector::unroot(ObjectId id) {
  PyObject* o = object(id);
  --handles_[id].external;
  Py_DECREF(o);
  release_dead_weakrefs();
}

std::size_t CPythonCollector::collect(int generation) {
  Interpreter& py = Interpreter::get();
  // Small ints are cached and gc.collect takes vectorcalls: no tracked object is allocated, so
  // no automatic collection can run before the requested one.
  // gc.collect counts the weakref objects that the garbage's holders hold, which are no objects of
  // the trace: those of holders in the collected generations that the collection frees. (A
  // weakref is never older than its holder, so it is collected with it.)
  // (Those gone with their holders leave the list here: it costs the held ones, not every weak
  // reference the trace ever took.)
  std::erase_if(held_, [this](WeakId w) { return weak_[w].ref == nullptr; });
  std::vector<WeakId> held_in_collected;
  for (WeakId w : held_) {
    if (cyclefuzz_cpython_generation(handles_[weak_[w].holder].object) <= generation) {
      held_in_collected.push_back(w);
    }
  }
  Owned g(PyLong_FromLong(generation));
  Owned found(PyObject_CallOneArg(py.gc_collect, g.get()));
  if (!found) fail("gc.collect(" + std::to_string(generation) + ")");
  Py_ssize_t n = PyLong_AsSsize_t(found.get());
  if (n < 0) fail("reading what gc.collect returned");
  for (WeakId w : held_in_collected) n -= weak_[w].ref == nullptr ? 1 : 0;
  release_dead_weakrefs();
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
  release_dead_weakrefs();
}

// The program's weak references. Like the adapter's own, their allocation must not start a
// collection (the program's `weak` op is no allocation in the trace's model).
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
  handles_[target].weak.push_back(w);
}

// The holder's list takes the weakref object as one of its items, and the adapter gives up its
// own reference: the weakref lives and dies with its holder, and CPython's collector sees it as
// part of whatever garbage the holder is part of (handle_weakrefs: no callback for trash).
void CPythonCollector::weak_held_by(WeakId w, ObjectId holder) {
  WeakHandle& handle = weak_.at(w);
  if (PyList_Append(object(holder), handle.ref) < 0) fail("giving weak reference to its holder");
  Py_DECREF(handle.ref);
  handle.held = true;
  handle.holder = holder;
  handles_[holder].held.push_back(w);
  held_.push_back(w);
}

std::optional<ObjectId> CPythonCollector::deref(WeakId w) const {
  if (weak_.at(w).ref == nullptr) {
    throw std::runtime_error("cpython: weak reference " + std::to_string(w) +
                             " went with its holder, which was reported freed");
  }
  PyObject* referent = PyWeakref_GET_OBJECT(weak_.at(w).ref);
  if (referent == Py_None) return std::nullopt;
  const auto it = id_of_object_.find(referent);
  if (it == id_of_object_.end()) {
    throw std::runtime_error("cpython: weak reference " + std::to_string(w) +
                             " refers to an object reported freed");
  }
  return it->second;
}

void CPythonCollector::report_cleared(WeakId w) {
  if (weak_[w].cleared_reported) return;
  weak_[w].cleared_reported = true;
  report_weak_cleared(w);
}

// CPython cleared the reference before it called back. A weak reference whose holder was reported
// freed went with it in the trace's model; in CPython the weakref object dies a little later, when
// the holder's deallocation drops its items, and if an item dropped before it was its target, it
// is cleared and called back meanwhile - legitimately (the object is alive; AddressSanitizer would
// see it otherwise). That is not reported: the harness's holder is already gone.
void CPythonCollector::weak_callback_ran(WeakId w) {
  if (weak_[w].held && weak_[w].ref == nullptr) return;
  report_cleared(w);
  report_weak_callback(w);
}

// ================================================================================================
// Frees
// ================================================================================================

// The weak reference is dead: CPython is freeing its referent. The weak reference itself is
// released after the op, not here: the deallocator that called back holds no reference to it.
void CPythonCollector::weakref_died(PyObject* weakref) {
  const auto it = id_of_weakref_.find(weakref);
  if (it == id_of_weakref_.end()) return;
  const ObjectId id = it->second;
  id_of_weakref_.erase(it);
  Handle& h = handles_[id];
  id_of_object_.erase(h.object);
  h.object = nullptr;
  h.weakref = nullptr;
  dead_weakrefs_.push_back(weakref);
  // (Whose callbacks have not run yet: CPython has cleared them all by now.)
  for (WeakId w : h.weak) {
    if (weak_[w].ref != nullptr && PyWeakref_GET_OBJECT(weak_[w].ref) == Py_None) {
      report_cleared(w);
    }
  }
  // Those it holds go with its list, as it is deallocated.
  for (WeakId w : h.held) weak_[w].ref = nullptr;
  report_free(id);
}

void CPythonCollector::release_dead_weakrefs() {
  for (PyObject* weakref : dead_weakrefs_) Py_DECREF(weakref);
  dead_weakrefs_.clear();
}

// ================================================================================================
// Inspection
// ================================================================================================

void CPythonCollector::inspect(ObjectId id, ObjectView& view) const {
  const Handle& h = handles_.at(id);
  view.references.clear();
  if (h.weakref == nullptr || PyWeakref_GET_OBJECT(h.weakref) != h.object) {
    // The interpreter cleared the weak reference without calling back: its record is gone.
    view.references.push_back(kNotAnObject);
    view.count = 0;
    view.generation = 0;
    return;
  }
  view.generation = cyclefuzz_cpython_generation(h.object);
  const Py_ssize_t n = PyList_GET_SIZE(h.object);
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* item = PyList_GET_ITEM(h.object, i);
    if (PyWeakref_Check(item)) continue;  // a weak reference it holds: no reference of the trace
    const auto it = id_of_object_.find(item);
    view.references.push_back(it == id_of_object_.end() ? kNotAnObject : it->second);
  }
  view.count = static_cast<std::uint64_t>(Py_REFCNT(h.object));
}

// Every object not reported freed is alive in the interpreter, an instance of Node in one of the
// collector's three generations, refers only to such objects (besides the weak references it
// holds, one item each), and its ob_refcnt is its external references plus its referrers'
// elements.
void CPythonCollector::check_invariants() const {
  const Interpreter& py = Interpreter::get();
  std::unordered_map<const PyObject*, std::uint64_t> referrers;
  std::size_t alive = 0;
  for (ObjectId id = 0; id < handles_.size(); ++id) {
    const Handle& h = handles_[id];
    if (h.weakref == nullptr) continue;
    ++alive;
    const std::string name = "cpython: object " + std::to_string(id);
    if (PyWeakref_GET_OBJECT(h.weakref) != h.object) {
      throw BrokenInvariant(name + "'s weak reference was cleared but no callback reported it");
    }
    if (Py_TYPE(h.object) != reinterpret_cast<PyTypeObject*>(py.node_type)) {
      throw BrokenInvariant(name + " is no longer a Node");
    }
    if (const int g = cyclefuzz_cpython_generation(h.object); g < 0 || g > 2) {
      throw BrokenInvariant(name + (g < 0 ? " is not in a generation of the collector"
                                          : " is in the permanent generation"));
    }
    const Py_ssize_t n = PyList_GET_SIZE(h.object);
    std::size_t weak_items = 0;
    for (Py_ssize_t i = 0; i < n; ++i) {
      PyObject* item = PyList_GET_ITEM(h.object, i);
      if (PyWeakref_Check(item)) {
        ++weak_items;
        continue;
      }
      if (!id_of_object_.contains(item)) {
        throw BrokenInvariant(name + " refers to something that is not a live object");
      }
      ++referrers[item];
    }
    if (weak_items != h.held.size()) {
      throw BrokenInvariant(name + " holds " + std::to_string(weak_items) +
                            " weak references, not the " + std::to_string(h.held.size()) +
                            " it was given");
    }
  }
  if (alive != id_of_object_.size() || alive != id_of_weakref_.size()) {
    throw BrokenInvariant("cpython: the tables of objects and weak references disagree");
  }
  for (ObjectId id = 0; id < handles_.size(); ++id) {
    const Handle& h = handles_[id];
    if (h.weakref == nullptr) continue;
    const std::uint64_t internal = referrers[h.object];
    if (static_cast<std::uint64_t>(Py_REFCNT(h.object)) != h.external + internal) {
      throw BrokenInvariant("cpython: object " + std::to_string(id) + " has ob_refcnt " +
                            std::to_string(Py_REFCNT(h.object)) + " but " +
                            std::to_string(h.external) + " external and " +
                            std::to_string(internal) + " internal references");
    }
  }
}

}  // namespace cyclefuzz
