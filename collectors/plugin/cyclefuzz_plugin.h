/* cyclefuzz plug-in ABI: test your own cycle collector with cyclefuzz, without editing cyclefuzz.
 *
 * A plug-in is a shared library that exports one function, cyclefuzz_plugin(), returning a
 * description of the collector: its capabilities and the functions cyclefuzz calls. cyclefuzz
 * plays the mutator: it names objects by number (0, 1, 2, ... in allocation order) and asks the
 * collector to allocate them, add and drop references and external references, and collect. The
 * collector frees objects when it decides to, and reports each free through host->freed at the
 * moment it happens. cyclefuzz checks every report against its reachability oracle.
 *
 * Rules a plug-in can rely on: cyclefuzz only asks for valid operations (it never touches an
 * object the mutator cannot reach, never unlinks a reference that does not exist), never calls
 * into one collector from two threads, and calls nothing after destroy.
 *
 * Versioning: a plug-in sets abi_version to CYCLEFUZZ_PLUGIN_ABI_VERSION from the header it was
 * built with. Fields are only ever added at the end, with a new version, and cyclefuzz reads a
 * plug-in's description only up to the fields of its version: a plug-in built against an older
 * header keeps working (version 1 lacks collect_count, freeze, unfreeze, finalizers and weak
 * references; version 2 lacks weak references held by objects and map entries). cyclefuzz
 * refuses a version newer than its own.
 */
#ifndef CYCLEFUZZ_PLUGIN_H
#define CYCLEFUZZ_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CYCLEFUZZ_PLUGIN_ABI_VERSION 3

/* An object, as cyclefuzz names it: the n-th allocated object is n. */
typedef uint32_t cf_object;
/* A weak reference (version 2), as cyclefuzz names it: the n-th one taken is n. */
typedef uint32_t cf_weak;

/* What cyclefuzz gives the collector when it creates it. */
typedef struct cf_host {
  void* context;
  /* Report that `object` has been freed, at the moment it is. Exactly once per freed object. */
  void (*freed)(void* context, cf_object object);

  /* ---- version 2 ------------------------------------------------------------------------------ */
  /* Runs object's finalizer: the program's code, which may call back into the collector before
   * it returns - allocate, link, root (a resurrection), unroot, even collect (refuse it by
   * returning 0 without collecting, or survive it). Once per object, only when the program can
   * no longer reach it, before it is freed; what the finalizer resurrects must survive. */
  void (*finalize)(void* context, cf_object object);
  /* Report that weak reference `weak` was cleared (before its target is reported freed, never
   * while the program can reach the target), then, if it has a callback, that the callback ran:
   * the callback is the program's code, and like a finalizer it may call back into the collector
   * (allocate, link, unlink, root, unroot, collect) before it returns. */
  void (*weak_cleared)(void* context, cf_weak weak);
  void (*weak_callback)(void* context, cf_weak weak);
} cf_host;

/* Capability flags: what the collector promises, so that cyclefuzz applies the right checks. */
enum {
  /* Frees an object as soon as nothing refers to it (acyclic garbage never waits for collect). */
  CF_REFERENCE_COUNTING = 1u << 0,
  /* May run collections on its own during any operation (then `collections` is required).
   * Without it, a collection during any op but `collect` (or a finalizer's request) is reported
   * as a wrong automatic collection. */
  CF_AUTOMATIC_COLLECTION = 1u << 1,
  /* (Version 2, with weak references.) A collection clears the weak references to all the
   * garbage it found before it runs any of that garbage's finalizers, as CPython's gc. */
  CF_WEAK_CLEARED_BEFORE_FINALIZERS = 1u << 2,
  /* (Version 2.) A reported free is a finalization, not the release of the object's memory: the
   * collector may report one cycle's garbage over several steps, while other garbage still refers
   * to an object it reported (as Lua's __gc). A free while reachable is still premature. */
  CF_FREE_IS_FINALIZATION = 1u << 3,
};

/* What the optional `count` function returns. */
enum {
  CF_COUNT_NONE = 0,       /* no count to compare */
  CF_COUNT_REFERENCES = 1, /* external references plus references from objects not freed */
  CF_COUNT_EXTERNAL = 2,   /* external references only */
};

/* What `collect` returns (version 2; version 1 plug-ins are CF_COLLECT_FREED). */
enum {
  /* Exactly the objects it freed during the call; after a full collection, that is every
   * unreachable object it held before. */
  CF_COLLECT_FREED = 0,
  /* The unreachable objects it found in the generations it collected, as CPython's
   * gc.collect(g): never more than it freed during the call, but fewer when reference counting
   * then frees older objects that only the garbage held. */
  CF_COLLECT_FOUND_IN_GENERATIONS = 1,
  /* Not a count of objects: cyclefuzz checks nothing about it. */
  CF_COLLECT_NONE = 2,
};

/* What an object is (version 3, `new a KIND`): what its kind promises a collector may use. Each
 * kind promises at least what a list does: a plug-in may treat a kind it does not know as a list
 * (CF_KIND_SET came later in version 3). */
enum {
  CF_KIND_LIST = 0,    /* a container: any references, changed at will */
  CF_KIND_RECORD = 1,  /* an object with named fields */
  CF_KIND_DICT = 2,    /* a dictionary */
  CF_KIND_CELL = 3,    /* a closure cell: at most one reference at a time */
  CF_KIND_TUPLE = 4,   /* immutable: its references are linked right after allocate, never again */
  CF_KIND_ACYCLIC = 5, /* refers only to older acyclic objects: never part of a cycle */
  CF_KIND_SET = 6,     /* a set: at most one reference to each object */
};

/* The collector's own state, opaque to cyclefuzz. */
typedef struct cf_collector cf_collector;

typedef struct cf_plugin {
  uint32_t abi_version;  /* CYCLEFUZZ_PLUGIN_ABI_VERSION */
  const char* name;      /* short, no spaces: selected as plugin:<name> */
  uint32_t flags;        /* CF_REFERENCE_COUNTING | CF_AUTOMATIC_COLLECTION */
  uint32_t generations;  /* 1, or how many: collect(g) with g >= generations - 1 is full */
  uint32_t count_meaning; /* CF_COUNT_*: what `count` returns */

  /* ---- required ---------------------------------------------------------------------------- */
  /* A new, empty collector; NULL if it cannot be made. thresholds[3] as gc.set_threshold(). */
  cf_collector* (*create)(const cf_host* host, const uint32_t thresholds[3]);
  void (*destroy)(cf_collector* collector);
  /* new: the mutator holds one external reference to the new object. */
  void (*allocate)(cf_collector* collector, cf_object object);
  void (*link)(cf_collector* collector, cf_object from, cf_object to);
  /* Drops one of from's references to to (there may be several). */
  void (*unlink)(cf_collector* collector, cf_object from, cf_object to);
  void (*root)(cf_collector* collector, cf_object object);
  void (*unroot)(cf_collector* collector, cf_object object);
  /* Collects generations 0..generation; returns how many objects it freed (found unreachable). */
  size_t (*collect)(cf_collector* collector, int generation);

  /* ---- optional (NULL if absent): the collector's own view, for the bookkeeping checks ------- */
  /* Calls visit(context, target) once per reference `object` holds (as tp_traverse). */
  void (*traverse)(cf_collector* collector, cf_object object,
                   void (*visit)(void* context, cf_object target), void* context);
  /* The object's count, as count_meaning says. */
  uint64_t (*count)(cf_collector* collector, cf_object object);
  /* The generation holding the object (required when generations > 1). */
  int (*generation_of)(cf_collector* collector, cf_object object);
  /* How many collections have run, automatic ones included. */
  uint64_t (*collections)(cf_collector* collector);
  /* Walks the collector's structures: NULL if consistent, else what is wrong. */
  const char* (*check_invariants)(cf_collector* collector);
  /* As gc.set_threshold(). */
  void (*set_thresholds)(cf_collector* collector, const uint32_t thresholds[3]);

  /* ---- version 2 ------------------------------------------------------------------------------ */
  uint32_t collect_count; /* CF_COLLECT_*: what `collect` returns */
  /* Optional, both or neither: gc.freeze() and gc.unfreeze(). freeze sets aside every object the
   * collector holds at that moment: no collection may free a frozen object or anything it refers
   * to (reference counting still may, when their counts drop to zero), until unfreeze. */
  void (*freeze)(cf_collector* collector);
  void (*unfreeze)(cf_collector* collector);
  /* Optional: the object has a finalizer, which the collector runs through host->finalize. */
  void (*set_finalizer)(cf_collector* collector, cf_object object);
  /* Optional, both or neither: weak references, held by the program. weak_ref takes `weak` to
   * `target` (with a callback if `callback` is not 0); deref returns 1 and sets *target while
   * `weak` is not cleared, 0 once it is. */
  void (*weak_ref)(cf_collector* collector, cf_weak weak, cf_object target, int callback);
  int (*deref)(cf_collector* collector, cf_weak weak, cf_object* target);

  /* ---- version 3 ------------------------------------------------------------------------------ */
  /* Optional (with weak_ref): right after weak_ref, object `holder` holds `weak` (`weak w a in h`:
   * a weakref object that the holder refers to). The weak reference goes when its holder is
   * freed: nothing may clear it or run its callback after. A collection never runs the callback
   * of one whose holder is part of the garbage it found (it clears it with the rest, before any
   * finalizer when CF_WEAK_CLEARED_BEFORE_FINALIZERS). Without it, every weak reference is
   * checked as the program's own. */
  void (*weak_held_by)(cf_collector* collector, cf_weak weak, cf_object holder);
  /* Optional, both or neither: weak-keyed maps kept by the collector as ephemerons (`entry m k
   * v`: m's entry for key k is now v, replacing the old one; `unentry m k`). An entry never keeps
   * its key; it keeps its value only while its map and its key are both reachable (a fixpoint:
   * marking follows an entry once both are marked), and it goes when its key is freed. traverse
   * lists each entry's value among the map's references. Without them, cyclefuzz builds
   * strong-value maps (as CPython's WeakKeyDictionary) from link and unlink. */
  void (*set_entry)(cf_collector* collector, cf_object map, cf_object key, cf_object value);
  void (*remove_entry)(cf_collector* collector, cf_object map, cf_object key);
  /* Optional: right after allocate, the object's kind when it is not CF_KIND_LIST. */
  void (*set_kind)(cf_collector* collector, cf_object object, uint32_t kind);
} cf_plugin;

/* The one function a plug-in exports. */
const cf_plugin* cyclefuzz_plugin(void);

#ifdef __cplusplus
}
#endif

#endif /* CYCLEFUZZ_PLUGIN_H */
