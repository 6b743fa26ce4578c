/* An example cyclefuzz plug-in in plain C: reference counting that frees acyclic garbage at once,
 * with a backup tracing collector for cycles (as early CPython proposals and some RC libraries
 * do). `collect` marks everything reachable from the external references and from the objects
 * set aside by freeze (as gc.freeze()), and frees the rest. It runs finalizers (once per object,
 * before the object is freed; what a finalizer resurrects survives, as PEP 442) and keeps weak
 * references (cleared when their target is freed), the program's and those objects hold (ABI
 * version 3: one goes with its holder, and a weak reference whose holder is being freed is
 * cleared without its callback). It keeps weak-keyed maps itself, as ephemerons (version 3,
 * set_entry and remove_entry): for reference counting an entry holds its value as a reference
 * does, until its map or its key is freed; the backup trace follows it only once it has marked
 * both its map and its key, so a value that refers back to its key does not keep it. And it uses
 * what kinds promise (set_kind): an acyclic object, or a tuple of them, is never part of a cycle
 * of references, so the backup trace leaves it to reference counting - while no entry is keyed by
 * one: an entry's hold on its value can close a cycle through its key.
 *
 * Build it against collectors/plugin/cyclefuzz_plugin.h, then:
 *     cyclefuzz replay corpus/ --plugin build/examples/plugin-c/rc_with_backup_trace.so
 *     cyclefuzz check --plugin build/examples/plugin-c/rc_with_backup_trace.so --runs 1000
 *
 * Invariant between operations: an object's count is its external references plus the
 * references held by objects not freed, one more for each map entry of theirs whose value it is,
 * and it is never zero. An entry's map and key are not freed: an entry goes the moment either is
 * (so reference counting alone never frees what an entry keyed by a garbage cycle holds: the
 * collection that frees the key lets go of it).
 *
 * A finalizer is the program's code: it may call back into the collector (allocate, link, root,
 * unroot, collect) before it returns, and so may a weak reference's callback. So an object being
 * freed is marked `dying` first, and nothing frees a dying object but whoever marked it; what a
 * freed object held is detached one reference at a time, each before it is released (a release
 * may run such code, which may free a key and so change the entries it holds); and a collection
 * asked for while one runs, or while reference counting frees a chain, is refused (it returns 0
 * and collects nothing).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectors/plugin/cyclefuzz_plugin.h"

/* A map entry (ephemeron): map[key] = value. Both its map and its key list it, so that either
 * finds it at once (the trace looks from both sides; a key's free drops its entries). */
typedef struct entry {
  struct object *map, *key, *value;
  size_t in_map, in_key; /* where it is in map->entries and in key->keyed */
} entry;

typedef struct object {
  cf_object id;
  uint32_t count;    /* external references + references and entries to it (see above) */
  uint32_t external; /* external references */
  int marked;
  int frozen;        /* set aside by the last freeze: a root of the backup trace */
  int has_finalizer, finalized;
  int dying;         /* being freed by reference counting or a collection */
  int acyclic;       /* never part of a cycle of references, as its kind says (left_to_rc) */
  size_t live_index; /* where it is in the collector's live array */
  struct object** refs;
  size_t nrefs, refs_capacity;
  entry** entries; /* its map entries, one per key */
  size_t nentries, entries_capacity;
  entry** keyed; /* the entries keyed by it, one per map */
  size_t nkeyed, keyed_capacity;
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
  size_t acyclic_keys; /* entries keyed by an acyclic object (see left_to_rc) */
  int trace_acyclic;   /* whether the collection running traces acyclic objects (left_to_rc) */
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

/* An explicit stack: a dead chain of a million objects must not overflow the C stack. */
typedef struct stack {
  object** items;
  size_t depth, capacity;
} stack;

static void push(stack* s, object* o) {
  s->items = grow(s->items, &s->capacity, s->depth + 1, sizeof *s->items);
  s->items[s->depth++] = o;
}

/* ---- map entries -------------------------------------------------------------------------- */

/* Map m's entry for key k, or NULL. Looked for among k's entries: a key is in few maps, and a
 * map may have many entries. */
static entry* find_entry(const object* m, const object* k) {
  for (size_t i = 0; i < k->nkeyed; ++i) {
    if (k->keyed[i]->map == m) return k->keyed[i];
  }
  return NULL;
}

/* Takes e out of its map and its key, and frees it. Returns its value: the caller releases the
 * count the entry held. */
static object* drop_entry(cf_collector* c, entry* e) {
  object* m = e->map;
  object* k = e->key;
  object* v = e->value;
  entry* last = m->entries[--m->nentries];
  m->entries[e->in_map] = last;
  last->in_map = e->in_map;
  last = k->keyed[--k->nkeyed];
  k->keyed[e->in_key] = last;
  last->in_key = e->in_key;
  if (k->acyclic) c->acyclic_keys--;
  free(e);
  return v;
}

/* Detaches one reference that goes when o is freed: one of o's references, one of its entries,
 * or an entry keyed by o. Returns what it referred to (the caller releases it), NULL once none is
 * left. One at a time, detached before it is released: see the top of the file. */
static object* detach_one(cf_collector* c, object* o) {
  if (o->nrefs > 0) return o->refs[--o->nrefs];
  if (o->nentries > 0) return drop_entry(c, o->entries[o->nentries - 1]);
  if (o->nkeyed > 0) return drop_entry(c, o->keyed[o->nkeyed - 1]);
  return NULL;
}

/* ---- freeing -------------------------------------------------------------------------------- */

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

/* Pre: what o held is detached (detach_one). Clears the weak references to o, drops those it
 * holds, reports the free, then runs the callbacks of the weak references to it - but not of one
 * whose holder is being freed too (by this cascade or this collection): that weak reference is
 * garbage itself. */
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
  free(o->entries);
  free(o->keyed);
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
 * after its finalizer. What a freed object held includes its entries' values, and the values of
 * the entries keyed by it: those entries go with it. */
static void decref(cf_collector* c, object* o) {
  if (--o->count > 0 || o->dying) return;
  c->busy++;
  stack dead = {0};
  o->dying = 1;
  push(&dead, o);
  while (dead.depth > 0) {
    object* dying = dead.items[--dead.depth];
    /* Resurrected while it waited here (a finalizer stored what a weak reference to it, not yet
     * cleared, yielded), or by its own finalizer. */
    if (dying->count > 0 || !finalize(c, dying)) {
      dying->dying = 0;
      continue;
    }
    for (object* t; (t = detach_one(c, dying)) != NULL;) {
      if (--t->count == 0 && !t->dying) {
        t->dying = 1;
        push(&dead, t);
      }
    }
    free_object(c, dying);
  }
  free(dead.items);
  c->busy--;
}

/* ---- the operations ------------------------------------------------------------------------- */

static cf_collector* rc_create(const cf_host* host, const uint32_t thresholds[3]) {
  (void)thresholds; /* no automatic collection */
  cf_collector* c = calloc(1, sizeof *c);
  if (c != NULL) c->host = *host;
  return c;
}

static void rc_destroy(cf_collector* c) {
  for (size_t i = 0; i < c->nlive; ++i) { /* (every entry's map is live: freed once, there) */
    for (size_t e = 0; e < c->live[i]->nentries; ++e) free(c->live[i]->entries[e]);
  }
  for (size_t i = 0; i < c->nlive; ++i) {
    free(c->live[i]->weaks);
    free(c->live[i]->held);
    free(c->live[i]->refs);
    free(c->live[i]->entries);
    free(c->live[i]->keyed);
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

/* What kinds promise: an acyclic object refers only to older acyclic objects, and a tuple gets
 * its references right after this, never again - so a tuple of objects never part of a cycle is
 * never part of one either (rc_link decides, link by link). Nothing refers to o yet. */
static void rc_set_kind(cf_collector* c, cf_object id, uint32_t kind) {
  c->by_id[id]->acyclic = kind == CF_KIND_ACYCLIC || kind == CF_KIND_TUPLE;
}

static void rc_link(cf_collector* c, cf_object from, cf_object to) {
  object* f = c->by_id[from];
  f->refs = grow(f->refs, &f->refs_capacity, f->nrefs + 1, sizeof *f->refs);
  f->refs[f->nrefs++] = c->by_id[to];
  c->by_id[to]->count++;
  f->acyclic = f->acyclic && c->by_id[to]->acyclic; /* (a tuple given an item that may cycle) */
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

/* m's entry for k is now v. The new value is counted before the old one is released: they may be
 * the same object, and the release may free the old one (and run its finalizer). */
static void rc_set_entry(cf_collector* c, cf_object map, cf_object key, cf_object value) {
  object* m = c->by_id[map];
  object* k = c->by_id[key];
  object* v = c->by_id[value];
  v->count++;
  entry* e = find_entry(m, k);
  if (e != NULL) {
    object* old = e->value;
    e->value = v;
    decref(c, old);
    return;
  }
  e = malloc(sizeof *e);
  if (e == NULL) abort();
  *e = (entry){m, k, v, m->nentries, k->nkeyed};
  m->entries = grow(m->entries, &m->entries_capacity, m->nentries + 1, sizeof *m->entries);
  m->entries[m->nentries++] = e;
  k->keyed = grow(k->keyed, &k->keyed_capacity, k->nkeyed + 1, sizeof *k->keyed);
  k->keyed[k->nkeyed++] = e;
  if (k->acyclic) c->acyclic_keys++;
}

static void rc_remove_entry(cf_collector* c, cf_object map, cf_object key) {
  decref(c, drop_entry(c, find_entry(c->by_id[map], c->by_id[key])));
}

/* gc.freeze(): every object held now becomes a root of the backup trace, until unfreeze.
 * Reference counting still frees a frozen object when its count reaches zero. */
static void set_frozen(cf_collector* c, int frozen) {
  for (size_t i = 0; i < c->nlive; ++i) c->live[i]->frozen = frozen;
}
static void rc_freeze(cf_collector* c) { set_frozen(c, 1); }
static void rc_unfreeze(cf_collector* c) { set_frozen(c, 0); }

/* ---- the backup trace ----------------------------------------------------------------------- */

/* Whether the collection running leaves o to reference counting: neither marks it nor makes it
 * garbage. An acyclic object refers only to acyclic objects and is no map, so the only cycle it
 * can be part of goes through an entry keyed by an acyclic object, which holds its value while
 * its key lives (`entry m k k`). While there is none, no acyclic object is part of a cycle, and
 * reference counting frees one once the garbage that holds it lets go; skipping them spares the
 * trace what may be most of the heap. Otherwise the trace treats them as any other object. The
 * choice holds from the collection's start to its end: its finalizers add no entry, but may free
 * keys, and the second mark must see acyclic objects as the first did. */
static int left_to_rc(const cf_collector* c, const object* o) {
  return o->acyclic && !c->trace_acyclic;
}

/* Marks o and pushes it to be scanned, unless it is marked or left to reference counting. */
static void mark_one(const cf_collector* c, stack* s, object* o) {
  if (o->marked || left_to_rc(c, o)) return;
  o->marked = 1;
  push(s, o);
}

/* Marks what the external references and the frozen objects reach; with `and_not_dying`, also
 * what every object not dying reaches. Ephemerons: an entry's value is reached once its map and
 * its key both are. Each of the two is marked before it is scanned, so whichever is scanned
 * second finds the other marked and marks the value: one pass reaches the fixpoint. */
static void mark(cf_collector* c, int and_not_dying) {
  stack s = {0};
  for (size_t i = 0; i < c->nlive; ++i) {
    object* o = c->live[i];
    if (o->external > 0 || o->frozen || (and_not_dying && !o->dying)) mark_one(c, &s, o);
  }
  while (s.depth > 0) {
    object* o = s.items[--s.depth];
    for (size_t i = 0; i < o->nrefs; ++i) mark_one(c, &s, o->refs[i]);
    for (size_t i = 0; i < o->nentries; ++i) {
      if (o->entries[i]->key->marked) mark_one(c, &s, o->entries[i]->value);
    }
    for (size_t i = 0; i < o->nkeyed; ++i) {
      if (o->keyed[i]->map->marked) mark_one(c, &s, o->keyed[i]->value);
    }
  }
  free(s.items);
}

static void unmark(cf_collector* c) {
  for (size_t i = 0; i < c->nlive; ++i) c->live[i]->marked = 0;
}

/* The backup trace. 1: mark; the garbage is what is left but for what is left to reference
 * counting (it frees each when the garbage lets go of it), and it is dying from now on. 2: run
 * the garbage's finalizers; if any ran, mark again, since what they resurrected survives, with
 * what it reaches - and so does what the objects they allocated reach: those are no part of this
 * collection's garbage (the next collection frees them if they are garbage), and one may refer to
 * the garbage. 3: detach what the garbage holds - its references, its entries, the entries keyed
 * by it - and release the survivors among their targets, then free the garbage. Returns how many
 * objects it freed, reference counting's frees during it included. */
static size_t rc_collect(cf_collector* c, int generation) {
  (void)generation; /* every collection is full */
  if (c->busy) return 0;
  c->busy++;
  c->collections++;
  const uint64_t frees_before = c->frees;
  c->trace_acyclic = c->acyclic_keys > 0;

  mark(c, 0);
  object** garbage = NULL;
  size_t ngarbage = 0, capacity = 0;
  for (size_t i = 0; i < c->nlive; ++i) {
    object* o = c->live[i];
    if (o->marked || left_to_rc(c, o)) continue;
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
    for (object* t; (t = detach_one(c, garbage[i])) != NULL;) {
      if (!t->dying) decref(c, t);
    }
  }
  for (size_t i = 0; i < still; ++i) free_object(c, garbage[i]);
  free(garbage);
  c->busy--;
  return (size_t)(c->frees - frees_before);
}

/* ---- finalizers, weak references, bookkeeping ----------------------------------------------- */

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

/* Its references, then its entries' values (as the header asks of a map). */
static void rc_traverse(cf_collector* c, cf_object id, void (*visit)(void*, cf_object),
                        void* context) {
  const object* o = c->by_id[id];
  for (size_t i = 0; i < o->nrefs; ++i) visit(context, o->refs[i]->id);
  for (size_t i = 0; i < o->nentries; ++i) visit(context, o->entries[i]->value->id);
}

static uint64_t rc_count(cf_collector* c, cf_object id) { return c->by_id[id]->count; }

static uint64_t rc_collections(cf_collector* c) { return c->collections; }

/* What is wrong with o's entries and kind, or NULL: each entry is where its map and its key say,
 * one per key in a map, and an acyclic object refers only to acyclic ones. Counts the entries
 * keyed by acyclic objects into *acyclic. */
static const char* check_object(cf_collector* c, const object* o, size_t* acyclic) {
  for (size_t i = 0; i < o->nentries; ++i) {
    const entry* e = o->entries[i];
    if (e->map != o || e->in_map != i || e->in_key >= e->key->nkeyed ||
        e->key->keyed[e->in_key] != e || find_entry(o, e->key) != e) {
      snprintf(c->problem, sizeof c->problem, "map %u: its entry for %u is misplaced", o->id,
               e->key->id);
      return c->problem;
    }
    *acyclic += e->key->acyclic != 0;
  }
  for (size_t i = 0; i < o->nkeyed; ++i) {
    const entry* e = o->keyed[i];
    if (e->key != o || e->in_key != i || e->in_map >= e->map->nentries ||
        e->map->entries[e->in_map] != e) {
      snprintf(c->problem, sizeof c->problem, "object %u: an entry keyed by it is misplaced",
               o->id);
      return c->problem;
    }
  }
  for (size_t r = 0; r < o->nrefs && o->acyclic; ++r) {
    if (!o->refs[r]->acyclic) {
      snprintf(c->problem, sizeof c->problem, "object %u: acyclic, yet refers to %u", o->id,
               o->refs[r]->id);
      return c->problem;
    }
  }
  return NULL;
}

static const char* rc_check_invariants(cf_collector* c) {
  uint64_t* expected = calloc(c->ids + 1, sizeof *expected);
  if (expected == NULL) abort();
  const char* problem = NULL;
  size_t acyclic_keys = 0;
  for (size_t i = 0; i < c->nlive && problem == NULL; ++i) {
    const object* o = c->live[i];
    expected[o->id] += o->external;
    for (size_t r = 0; r < o->nrefs; ++r) expected[o->refs[r]->id]++;
    for (size_t e = 0; e < o->nentries; ++e) expected[o->entries[e]->value->id]++;
    problem = check_object(c, o, &acyclic_keys);
  }
  if (problem == NULL && acyclic_keys != c->acyclic_keys) {
    snprintf(c->problem, sizeof c->problem, "%zu entries keyed by acyclic objects, %zu counted",
             acyclic_keys, c->acyclic_keys);
    problem = c->problem;
  }
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
      .set_entry = rc_set_entry,
      .remove_entry = rc_remove_entry,
      .set_kind = rc_set_kind,
  };
  return &plugin;
}
