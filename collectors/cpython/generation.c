/* Which of CPython 3.11's generation lists holds an object, read from the interpreter's own
 * collector state. The public API tells it only through gc.get_objects(g), which allocates a list
 * (and so may start a collection, and shifts the allocation counts that schedule collections);
 * reading the lists allocates nothing. The layout is 3.11's (CMake insists on exactly 3.11), and
 * its internal headers are C11, hence a C file. */
#define Py_BUILD_CORE 1
#include <Python.h>

#include "internal/pycore_interp.h"

#include "collectors/cpython/generation.h"

int cyclefuzz_cpython_generation(PyObject* object) {
  PyGC_Head* gc = _Py_AS_GC(object);
  if (gc->_gc_next == 0) return -1; /* not tracked */
  const struct _gc_runtime_state* state = &PyInterpreterState_Get()->gc;
  /* Each generation is a ring through its head, which lives in the state: follow the object's
   * ring to the head. Objects join at the tail, so from a young object the head is near. */
  for (const PyGC_Head* at = _PyGCHead_NEXT(gc); at != gc; at = _PyGCHead_NEXT(at)) {
    for (int g = 0; g < NUM_GENERATIONS; ++g) {
      if (at == &state->generations[g].head) return g;
    }
    if (at == &state->permanent_generation.head) return NUM_GENERATIONS;
  }
  return -1; /* a ring without a head: not a generation list */
}
