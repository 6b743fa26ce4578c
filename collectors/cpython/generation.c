/* CPython 3.11's generation lists, read from the interpreter's own collector state. The public API
 * tells which list holds an object only through gc.get_objects(g), which allocates a list (and so
 * may start a collection, and shifts the allocation counts that schedule collections); reading
 * the lists allocates nothing. The layout is 3.11's (CMake insists on exactly 3.11), and its
 * internal headers are C11, hence a C file. */
#define Py_BUILD_CORE 1
#include <Python.h>

#include "internal/pycore_interp.h"

#include "collectors/cpython/generation.h"

const void* cyclefuzz_cpython_gc_position(PyObject* object) {
  PyGC_Head* gc = _Py_AS_GC(object);
  return gc->_gc_next == 0 ? NULL : gc; /* _gc_next is 0 for an untracked object */
}

const void* cyclefuzz_cpython_gc_next(const void* position) {
  return _PyGCHead_NEXT((const PyGC_Head*)position);
}

int cyclefuzz_cpython_gc_head(const void* position) {
  const struct _gc_runtime_state* state = &PyInterpreterState_Get()->gc;
  for (int g = 0; g < NUM_GENERATIONS; ++g) {
    if (position == &state->generations[g].head) return g;
  }
  return position == &state->permanent_generation.head ? NUM_GENERATIONS : -1;
}
