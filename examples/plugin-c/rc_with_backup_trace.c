/* An example cyclefuzz plug-in in plain C: reference counting that frees acyclic garbage at once,
 * with a backup tracing collector for cycles (as early CPython proposals and some RC libraries
 * do). `collect` marks everything reachable from the external references and from the objects
 * set aside by freeze (as gc.freeze()), and frees the rest. It runs finalizers (once per object,
 * before the object is freed; what a finalizer resurrects survives, as PEP 442) and keeps weak
 * references (cleared when their target is freed), the program's and those objects hold (ABI
 * version 3: one goes with its holder, and a weak reference whose holder is being freed is
 * cleared without its callback). Map entries it leaves to cyclefuzz, which builds strong-value
 * maps from link and unlink.
 *
 * Build it against collectors/plugin/cyclefuzz_plugin.h, then:
 *     cyclefuzz replay corpus/ --plugin build/examples/plugin-c/rc_with_backup_trace.so
 *     cyclefuzz check --plugin build/examples/plugin-c/rc_with_backup_trace.so --runs 1000
 *
 * Invariant between operations: an object's count is its external references plus the
 * references held by objects not freed, and it is never zero.
 *
 * A finalizer is the program's code: it may call back into the collector (allocate, link, root,
 * unroot, collect) before it returns. So an object being freed is marked `dying` first, and
 * nothing frees a dying object but whoever marked it; and a collection asked for while one runs,
 * or while reference counting frees a chain, is refused (it returns 0 and collects nothing).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectors/plugin/cyclefuzz_plugin.h"

typedef struct object {
  cf_object id;
  uint32_t count;    /* external references + references from objects not freed */
  uint32_t external; /* external references */
  int marked;
  int frozen;        /* set aside by the last freeze: a root of the backup trace */
  int has_finalizer, finalized;
  int dying;         /* being freed by reference counting or a collection */
  size_t live_index; /* where it is in the collector's live array */
  struct object** refs;
  size_t nrefs, refs_capacity;
  cf_weak* weaks; /* the weak references to it */
  size_t nweaks, weaks_capacity;
  cf_weak* held; /* the weak references it holds */
  size_t nheld, held_capacity;
} object;

typedef struct weak_ref {
  object* target; /* NULL once cleared, or gone with its holder */
  object* holder; /* NULL when the program holds it; read only while a target lists it, which
                   * its holder's free stops (drop_held) */
  int callback;
} weak_ref;

struct cf_collector {
  cf_host host;
  object** by_id; /* the mutator's pointers: never cleared, like a program's own */
  size_t ids;
  object** live; /* objects not freed, for the backup trace */
  size_t nlive, live_capacity;
  weak_ref* weak; /* by weak reference */
  size_t weak_capacity;
  uint64_t collections;
  uint64_t frees; /* so that collect can say how many objects it freed */
  int busy;       /* a collection or a reference-counting release is running */
  char problem[128];
};

/* Doubles `array` until it holds `needed` elements; new ones are zero (the weak table relies on
 * it: a weak reference never taken has no target). */
static void* grow(void* array, size_t* capacity, size_t needed, size_t element) {
  if (needed <= *capacity) return array;
  size_t capacity2 = *capacity ? *capacity * 2 : 16;
  while (capacity2 < needed) capacity2 *= 2;
  array = realloc(array, capacity2 * element);
  if (array == NULL) abort();
  memset((char*)array + *capacity * element, 0, (capacity2 - *capacity) * element);
  *capacity = capacity2;
  return array;
}

/* The weak references o holds go with it: its targets forget them, so nothing clears them later. */
static void drop_held(cf_collector* c, object* o) {
  for (size_t i = 0; i < o->nheld; ++i) {
    weak_ref* w = &c->weak[o->held[i]];
    object* t = w->target;
    if (t == NULL) continue; /* cleared already */
    w->target = NULL;
    for (size_t j = 0; j < t->nweaks; ++j) {
      if (t->weaks[j] == o->held[i]) {
        t->weaks[j] = t->weaks[--t->nweaks];
        break;
      }
    }
  }
  free(o->held);
}

/* Clears the weak references to o, drops those it holds, reports the free, then runs the
 * callbacks of the weak references to it - but not of one whose holder is being freed too (by
 * this cascade or this collection): that weak reference is garbage itself. */
static void free_object(cf_collector* c, object* o) {
  for (size_t i = 0; i < o->nweaks; ++i) {
    c->weak[o->weaks[i]].target = NULL;
    c->host.weak_cleared(c->host.context, o->weaks[i]);
  }
  drop_held(c, o);
  object* last = c->live[--c->nlive];
  c->live[o->live_index] = last;
  last->live_index = o->live_index;
  c->host.freed(c->host.context, o->id);
  c->frees++;
  for (size_t i = 0; i < o->nweaks; ++i) {
    const weak_ref* w = &c->weak[o->weaks[i]];
    const int trash = w->holder == NULL ? 0 : w->holder == o || w->holder->dying;
    if (w->callback && !trash) c->host.weak_callback(c->host.context, o->weaks[i]);
  }
  free(o->weaks);
  free(o->refs);
  free(o);
}

/* Runs o's finalizer if it has one that has not run. Returns whether o is still garbage: the
 * finalizer may have resurrected it. */
static int finalize(cf_collector* c, object* o) {
  if (!o->has_finalizer || o->finalized) return 1;
  o->finalized = 1;
  c->host.finalize(c->host.context, o->id);
  return o->count == 0;
}

/* Drops one reference to o; frees it, and what only it held, when the count reaches zero, each
 * after its finalizer. An explicit stack: a dead chain of a million objects must not overflow
 * the C stack. */
static void decref(cf_collector* c, object* o) {
  if (--o->count > 0 || o->dying) return;
  c->busy++;
  object** stack = NULL;
  size_t depth = 0, capacity = 0;
  stack = grow(stack, &capacity, 1, sizeof *stack);
  o->dying = 1;
  stack[depth++] = o;
  while (depth > 0) {
    object* dying = stack[--depth];
    /* Resurrected while it waited here (a finalizer stored what a weak reference to it, not yet
     * cleared, yielded), or by its own finalizer. */
    if (dying->count > 0 || !finalize(c, dying)) {
      dying->dying = 0;
      continue;
    }
    for (size_t i = 0; i < dying->nrefs; ++i) {
      object* t = dying->refs[i];
      if (--t->count == 0 && !t->dying) {
        t->dying = 1;
        stack = grow(stack, &capacity, depth + 1, sizeof *stack);
        stack[depth++] = t;
      }
    }
    free_object(c, dying);
  }
  free(stack);
  c->busy--;
}

static cf_collector* rc_create(const cf_host* host, const uint32_t thresholds[3]) {
  (void)thresholds; /* no automatic collection */
  cf_collector* c = calloc(1, sizeof *c);
  if (c != NULL) c->host = *host;
  return c;
}

static void rc_destroy(cf_collector* c) {
  for (size_t i = 0; i < c->nlive; ++i) {
    free(c->live[i]->weaks);
    free(c->live[i]->held);
    free(c->live[i]->refs);
    free(c->live[i]);
  }
  free(c->weak);
  free(c->live);
  free(c->by_id);
  free(c);
}

static void rc_allocate(cf_collector* c, cf_object id) {
  if (id >= c->ids) {
    size_t ids = c->ids ? c->ids : 16;
    while (ids <= id) ids *= 2;
    c->by_id = realloc(c->by_id, ids * sizeof *c->by_id);
    if (c->by_id == NULL) abort();
    c->ids = ids;
  }
  object* o = calloc(1, sizeof *o);
  if (o == NULL) abort();
  o->id = id;
  o->count = o->external = 1;
  c->live = grow(c->live, &c->live_capacity, c->nlive + 1, sizeof *c->live);
  o->live_index = c->nlive;
  c->live[c->nlive++] = o;
  c->by_id[id] = o;
}

static void rc_link(cf_collector* c, cf_object from, cf_object to) {
  object* f = c->by_id[from];
  f->refs = grow(f->refs, &f->refs_capacity, f->nrefs + 1, sizeof *f->refs);
  f->refs[f->nrefs++] = c->by_id[to];
  c->by_id[to]->count++;
}

static void rc_unlink(cf_collector* c, cf_object from, cf_object to) {
  object* f = c->by_id[from];
  object* t = c->by_id[to];
  for (size_t i = 0; i < f->nrefs; ++i) {
    if (f->refs[i] == t) {
      f->refs[i] = f->refs[--f->nrefs];
      break;
    }
  }
  decref(c, t);
}

static void rc_root(cf_collector* c, cf_object id) {
  c->by_id[id]->external++;
  c->by_id[id]->count++;
}

static void rc_unroot(cf_collector* c, cf_object id) {
  c->by_id[id]->external--;
  decref(c, c->by_id[id]);
}

/* gc.freeze(): every object held now becomes a root of the backup trace, until unfreeze.
 * Reference counting still frees a frozen object when its count reaches zero. */
static void set_frozen(cf_collector* c, int frozen) {
  for (size_t i = 0; i < c->nlive; ++i) c->live[i]->frozen = frozen;
}
static void rc_freeze(cf_collector* c) { set_frozen(c, 1); }
static void rc_unfreeze(cf_collector* c) { set_frozen(c, 0); }

/* Marks what the external references and the frozen objects reach; with `and_not_dying`, also
 * what every object not dying reaches. */
static void mark(cf_collector* c, int and_not_dying) {
  object** stack = NULL;
  size_t depth = 0, capacity = 0;
  for (size_t i = 0; i < c->nlive; ++i) {
    object* o = c->live[i];
    if ((o->external > 0 || o->frozen || (and_not_dying && !o->dying)) && !o->marked) {
      o->marked = 1;
      stack = grow(stack, &capacity, depth + 1, sizeof *stack);
      stack[depth++] = o;
    }
  }
  while (depth > 0) {
    object* o = stack[--depth];
    for (size_t i = 0; i < o->nrefs; ++i) {
      if (!o->refs[i]->marked) {
        o->refs[i]->marked = 1;
        stack = grow(stack, &capacity, depth + 1, sizeof *stack);
        stack[depth++] = o->refs[i];
      }
    }
  }
  free(stack);
}

static void unmark(cf_collector* c) {
  for (size_t i = 0; i < c->nlive; ++i) c->live[i]->marked = 0;
}

/* The backup trace. 1: mark; the garbage is what is left, and it is dying from now on. 2: run
 * the garbage's finalizers; if any ran, mark again, since what they resurrected survives, with
 * what it reaches - and so does what the objects they allocated reach: those are no part of this
 * collection's garbage (the next collection frees them if they are garbage), and one may refer
 * to the garbage. 3: drop the references the garbage still holds to survivors, then free the
 * garbage. Returns how many objects it freed. */
static size_t rc_collect(cf_collector* c, int generation) {
  (void)generation; /* every collection is full */
  if (c->busy) return 0;
  c->busy++;
  c->collections++;
  const uint64_t frees_before = c->frees;

  mark(c, 0);
  object** garbage = NULL;
  size_t ngarbage = 0, capacity = 0;
  for (size_t i = 0; i < c->nlive; ++i) {
    object* o = c->live[i];
    if (o->marked) continue;
    o->dying = 1;
    garbage = grow(garbage, &capacity, ngarbage + 1, sizeof *garbage);
    garbage[ngarbage++] = o;
  }

  int finalized = 0;
  for (size_t i = 0; i < ngarbage; ++i) {
    if (garbage[i]->has_finalizer && !garbage[i]->finalized) {
      finalize(c, garbage[i]);
      finalized = 1;
    }
  }
  if (finalized) {
    unmark(c);
    mark(c, 1);
  }

  size_t still = 0;
  for (size_t i = 0; i < ngarbage; ++i) {
    if (garbage[i]->marked) {
      garbage[i]->dying = 0; /* resurrected, or reached from what was */
    } else {
      garbage[still++] = garbage[i];
    }
  }
  unmark(c);
  for (size_t i = 0; i < still; ++i) {
    for (size_t r = 0; r < garbage[i]->nrefs; ++r) {
      if (!garbage[i]->refs[r]->dying) decref(c, garbage[i]->refs[r]);
    }
  }
  for (size_t i = 0; i < still; ++i) free_object(c, garbage[i]);
  free(garbage);
  c->busy--;
  return (size_t)(c->frees - frees_before);
}

static void rc_set_finalizer(cf_collector* c, cf_object id) { c->by_id[id]->has_finalizer = 1; }

static void rc_weak_ref(cf_collector* c, cf_weak w, cf_object target, int callback) {
  object* o = c->by_id[target];
  c->weak = grow(c->weak, &c->weak_capacity, (size_t)w + 1, sizeof *c->weak);
  c->weak[w].target = o;
  c->weak[w].callback = callback;
  o->weaks = grow(o->weaks, &o->weaks_capacity, o->nweaks + 1, sizeof *o->weaks);
  o->weaks[o->nweaks++] = w;
}

static void rc_weak_held_by(cf_collector* c, cf_weak w, cf_object holder) {
  object* h = c->by_id[holder];
  c->weak[w].holder = h;
  h->held = grow(h->held, &h->held_capacity, h->nheld + 1, sizeof *h->held);
  h->held[h->nheld++] = w;
}

static int rc_deref(cf_collector* c, cf_weak w, cf_object* target) {
  if (w >= c->weak_capacity || c->weak[w].target == NULL) return 0;
  *target = c->weak[w].target->id;
  return 1;
}

static void rc_traverse(cf_collector* c, cf_object id, void (*visit)(void*, cf_object),
                     void* context) {
  const object* o = c->by_id[id];
  for (size_t i = 0; i < o->nrefs; ++i) visit(context, o->refs[i]->id);
}

static uint64_t rc_count(cf_collector* c, cf_object id) { return c->by_id[id]->count; }

static uint64_t rc_collections(cf_collector* c) { return c->collections; }

static const char* rc_check_invariants(cf_collector* c) {
  uint64_t* expected = calloc(c->ids + 1, sizeof *expected);
  if (expected == NULL) abort();
  for (size_t i = 0; i < c->nlive; ++i) {
    const object* o = c->live[i];
    expected[o->id] += o->external;
    for (size_t r = 0; r < o->nrefs; ++r) expected[o->refs[r]->id]++;
  }
  const char* problem = NULL;
  for (size_t i = 0; i < c->nlive && problem == NULL; ++i) {
    const object* o = c->live[i];
    if (o->live_index != i || o->marked || o->dying || o->count == 0 ||
        o->count != expected[o->id]) {
      snprintf(c->problem, sizeof c->problem, "object %u: count %u, expected %llu", o->id,
               o->count, (unsigned long long)expected[o->id]);
      problem = c->problem;
    }
  }
  free(expected);
  return problem;
}

const cf_plugin* cyclefuzz_plugin(void) {
  static const cf_plugin plugin = {
      .abi_version = CYCLEFUZZ_PLUGIN_ABI_VERSION,
      .name = "rc-with-backup-trace",
      .flags = CF_REFERENCE_COUNTING,
      .generations = 1,
      .count_meaning = CF_COUNT_REFERENCES,
      .create = rc_create,
      .destroy = rc_destroy,
      .allocate = rc_allocate,
      .link = rc_link,
      .unlink = rc_unlink,
      .root = rc_root,
      .unroot = rc_unroot,
      .collect = rc_collect,
      .traverse = rc_traverse,
      .count = rc_count,
      .collections = rc_collections,
      .check_invariants = rc_check_invariants,
      .collect_count = CF_COLLECT_FREED,
      .freeze = rc_freeze,
      .unfreeze = rc_unfreeze,
      .set_finalizer = rc_set_finalizer,
      .weak_ref = rc_weak_ref,
      .deref = rc_deref,
      .weak_held_by = rc_weak_held_by,
  };
  return &plugin;
}
