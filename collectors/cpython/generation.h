/* CPython 3.11's generation lists, as positions (generation.c): each list is a ring through a
 * head that lives in the collector's state, and an object's generation is the head its ring
 * reaches. None of these allocates; all need the GIL. */
#ifndef CYCLEFUZZ_COLLECTORS_CPYTHON_GENERATION_H
#define CYCLEFUZZ_COLLECTORS_CPYTHON_GENERATION_H

#ifdef __cplusplus
extern "C" {
#endif

/* Where `object` is in its generation's list; NULL when the collector does not track it. */
const void* cyclefuzz_cpython_gc_position(PyObject* object);
/* The next position in the same list. */
const void* cyclefuzz_cpython_gc_next(const void* position);
/* 0, 1 or 2 when `position` is the head of that generation's list, 3 for the permanent
 * generation's (gc.freeze), else -1. */
int cyclefuzz_cpython_gc_head(const void* position);

#ifdef __cplusplus
}
#endif

#endif
