/* An example cyclefuzz plug-in in plain C: reference counting that frees acyclic garbage at once,
 * with a backup tracing collector for cycles (as early CPython proposals and some RC libraries
 * do). `collect` marks everything reachable from the external references and frees the rest.
 *
 * Build it against collectors/plugin/cyclefuzz_plugin.h, then:
 *     cyclefuzz replay corpus/ --plugin build/examples/plugin-c/rc_with_backup_trace.so
 *     cyclefuzz check --plugin build/examples/plugin-c/rc_with_backup_trace.so --runs 1000
 *
 * Invariant between operations: an object's count is its external references plus the
 * references held by objects not freed, and it is never zero.
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
  size_t live_index; /* where it is in the collector's live array */
  struct object** refs;
  size_t nrefs, refs_capacity;
} object;

struct cf_collector {
  cf_host host;
  object** by_id; /* the mutator's pointers: never cleared, like a program's own */
  size_t ids;
  object** live; /* objects not freed, for the backup trace */
  size_t nlive, live_capacity;
  uint64_t collections;
  char problem[128];
};

static void* grow(void* array, size_t* capacity, size_t needed, size_t element) {
  if (needed <= *capacity) return array;
  size_t capacity2 = *capacity ? *capacity * 2 : 16;
  while (capacity2 < needed) capacity2 *= 2;
  array = realloc(array, capacity2 * element);
  if (array == NULL) abort();
  *capacity = capacity2;
  return array;
}

static void free_object(cf_collector* c, object* o) {
  object* last = c->live[--c->nlive];
  c->live[o->live_index] = last;
  last->live_index = o->live_index;
  c->host.freed(c->host.context, o->id);
  free(o->refs);
  free(o);
}

/* Drops one reference to o; frees it, and what only it held, when the count reaches zero. An
 * explicit stack: a dead chain of a million objects must not overflow the C stack. */
static void decref(cf_collector* c, object* o) {
  if (--o->count > 0) return;
  object** stack = NULL;
  size_t depth = 0, capacity = 0;
  stack = grow(stack, &capacity, 1, sizeof *stack);
  stack[depth++] = o;
  while (depth > 0) {
    object* dying = stack[--depth];
    for (size_t i = 0; i < dying->nrefs; ++i) {
      object* t = dying->refs[i];
      if (--t->count == 0) {
        stack = grow(stack, &capacity, depth + 1, sizeof *stack);
        stack[depth++] = t;
      }
    }
    free_object(c, dying);
  }
  free(stack);
}

static cf_collector* rc_create(const cf_host* host, const uint32_t thresholds[3]) {
  (void)thresholds; /* no automatic collection */
  cf_collector* c = calloc(1, sizeof *c);
  if (c != NULL) c->host = *host;
  return c;
}

static void rc_destroy(cf_collector* c) {
  for (size_t i = 0; i < c->nlive; ++i) {
    free(c->live[i]->refs);
    free(c->live[i]);
  }
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

/* The backup trace: mark from the external references, then free everything unmarked. Before
 * freeing, the garbage's references to live objects are dropped, so live counts stay right. */
static size_t rc_collect(cf_collector* c, int generation) {
  (void)generation; /* every collection is full */
  c->collections++;
  object** stack = NULL;
  size_t depth = 0, capacity = 0;
  for (size_t i = 0; i < c->nlive; ++i) {
    object* o = c->live[i];
    if (o->external > 0 && !o->marked) {
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
  for (size_t i = 0; i < c->nlive; ++i) {
    object* o = c->live[i];
    if (o->marked) continue;
    for (size_t r = 0; r < o->nrefs; ++r) {
      if (o->refs[r]->marked) o->refs[r]->count--;
    }
  }
  size_t freed = 0;
  for (size_t i = 0; i < c->nlive;) {
    object* o = c->live[i];
    if (o->marked) {
      o->marked = 0;
      ++i;
    } else {
      free_object(c, o); /* moves the last live object into slot i */
      ++freed;
    }
  }
  return freed;
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
    if (o->live_index != i || o->marked || o->count == 0 || o->count != expected[o->id]) {
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
  };
  return &plugin;
}
