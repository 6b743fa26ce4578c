/* Plug-ins that are wrong on purpose, one per BAD_* definition, to show that cyclefuzz reports
 * each clearly (tests/plugin_test.sh). Each is a one-object-table collector that is otherwise
 * plausible. BAD_V1 is the exception: nothing wrong with it, it says it was built against
 * version 1 of the header, which cyclefuzz still accepts. BAD_FREES_ONE_OF_A_CYCLE and
 * BAD_FINALIZES_ONE_OF_A_CYCLE report the same free, one as a free and one as a finalization
 * (CF_FREE_IS_FINALIZATION), to show what that flag changes. */
#include <stdlib.h>

/* Each variant leaves some of these functions out of its description. */
#pragma GCC diagnostic ignored "-Wunused-function"

#include "collectors/plugin/cyclefuzz_plugin.h"

struct cf_collector {
  cf_host host;
  uint64_t steps; /* automatic collection steps (BAD_*_ONE_OF_A_CYCLE) */
};

static cf_collector* bad_create(const cf_host* host, const uint32_t thresholds[3]) {
  (void)thresholds;
#ifdef BAD_NULL_CREATE
  (void)host;
  return NULL; /* a null where a handle was due */
#else
  cf_collector* c = calloc(1, sizeof *c);
  c->host = *host;
  return c;
#endif
}
static void bad_destroy(cf_collector* c) { free(c); }
static void bad_allocate(cf_collector* c, cf_object id) {
#ifdef BAD_FREES_UNKNOWN
  c->host.freed(c->host.context, id + 1000); /* an object that was never allocated */
#elif defined(BAD_FREES_ONE_OF_A_CYCLE) || defined(BAD_FINALIZES_ONE_OF_A_CYCLE)
  /* An incremental step at the third allocation reports the first object freed: in the trace of
   * tests/plugin_test.sh, one object of a garbage two-cycle, which the other still refers to. */
  if (id == 2) {
    c->steps++;
    c->host.freed(c->host.context, 0);
  }
#else
  (void)c;
  (void)id;
#endif
}
static void bad_link(cf_collector* c, cf_object from, cf_object to) {
  (void)c;
  (void)from;
  (void)to;
#ifdef BAD_CRASHES
  *(volatile int*)0 = 1; /* a segfault during the first link */
#endif
}
static void bad_nothing(cf_collector* c, cf_object id) {
  (void)c;
  (void)id;
}
static void bad_unlink(cf_collector* c, cf_object from, cf_object to) {
  (void)c;
  (void)from;
  (void)to;
}
static size_t bad_collect(cf_collector* c, int generation) {
  (void)c;
  (void)generation;
  return 0;
}
static uint64_t bad_collections(cf_collector* c) { return c->steps; }
static void bad_freeze(cf_collector* c) { (void)c; }
static void bad_weak_held_by(cf_collector* c, cf_weak w, cf_object holder) {
  (void)c;
  (void)w;
  (void)holder;
}
static void bad_set_entry(cf_collector* c, cf_object map, cf_object key, cf_object value) {
  (void)c;
  (void)map;
  (void)key;
  (void)value;
}
static void bad_weak_ref(cf_collector* c, cf_weak w, cf_object target, int callback) {
  (void)c;
  (void)w;
  (void)target;
  (void)callback;
}

#ifndef BAD_NO_ENTRY_POINT
const cf_plugin* cyclefuzz_plugin(void) {
  static const cf_plugin plugin = {
#if defined(BAD_ABI)
      .abi_version = 999,
#elif defined(BAD_V1)
      .abi_version = 1,
#else
      .abi_version = CYCLEFUZZ_PLUGIN_ABI_VERSION,
#endif
      .name = "bad",
#if defined(BAD_FREES_ONE_OF_A_CYCLE)
      .flags = CF_AUTOMATIC_COLLECTION,
#elif defined(BAD_FINALIZES_ONE_OF_A_CYCLE)
      .flags = CF_AUTOMATIC_COLLECTION | CF_FREE_IS_FINALIZATION,
#endif
      .generations = 1,
      .create = bad_create,
      .destroy = bad_destroy,
      .allocate = bad_allocate,
#ifndef BAD_NULL_LINK
      .link = bad_link,
#endif
      .unlink = bad_unlink,
      .root = bad_nothing,
      .unroot = bad_nothing,
      .collect = bad_collect,
      .collections = bad_collections,
#ifdef BAD_COLLECT_COUNT
      .collect_count = 7,
#endif
#ifdef BAD_FREEZE_ONLY
      .freeze = bad_freeze,
#endif
#ifdef BAD_WEAK_REF_ONLY
      .weak_ref = bad_weak_ref,
#endif
#ifdef BAD_HELD_WITHOUT_WEAK
      .weak_held_by = bad_weak_held_by,
#endif
#ifdef BAD_SET_ENTRY_ONLY
      .set_entry = bad_set_entry,
#endif
  };
  return &plugin;
}
#endif
