/* The generation of a CPython 3.11 object, from the collector's own lists (generation.c). */
#ifndef CYCLEFUZZ_COLLECTORS_CPYTHON_GENERATION_H
#define CYCLEFUZZ_COLLECTORS_CPYTHON_GENERATION_H

#ifdef __cplusplus
extern "C" {
#endif

/* 0, 1 or 2: the generation whose list holds `object`; 3: the permanent generation (gc.freeze);
 * -1: the collector does not track it. Allocates nothing. Needs the GIL. */
int cyclefuzz_cpython_generation(PyObject* object);

#ifdef __cplusplus
}
#endif

#endif
