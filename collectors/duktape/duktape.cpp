#include "collectors/duktape/duktape.h"

#include <duktape.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

// The reference count is read from the heap header, whose layout Duktape's configuration
// decides: Debian's has 32-bit counts right after the 32-bit flags, and no assertion fields.
#if !defined(DUK_USE_REFERENCE_COUNTING) || !defined(DUK_USE_REFCOUNT32) || \
    defined(DUK_USE_ASSERTIONS) || defined(DUK_USE_HEAPPTR16)
#error "collectors/duktape: a configuration of Duktape whose heap header this adapter cannot read"
#endif

namespace cyclefuzz {

namespace {

/// Where the heap header keeps the reference count (duk_heaphdr: h_flags, then h_refcount).
constexpr std::size_t kRefcountOffset = sizeof(duk_uint32_t);

/// The heap stash's properties: the external references, and the finalizers' functions.
constexpr const char* kRoots = "roots";
constexpr const char* kNodeFinalizer = "node_finalizer";
constexpr const char* kSentinelFinalizer = "sentinel_finalizer";

/// What `inspect` shows for an element that is not an object of the trace.
constexpr ObjectId kNotAnObject = std::numeric_limits<ObjectId>::max();

duk_context* as_context(void* context) { return static_cast<duk_context*>(context); }

DuktapeCollector* adapter_of(duk_context* ctx) {
  duk_memory_functions functions;
  duk_get_memory_functions(ctx, &functions);
  return static_cast<DuktapeCollector*>(functions.udata);
}

// The heap's allocator: malloc's, so that AddressSanitizer sees every free, and the adapter sees
// each object's header go. (Duktape never reallocates a header: heap pointers are stable.)
void* allocate_block(void* /*adapter*/, duk_size_t size) { return std::malloc(size); }

void* reallocate_block(void* adapter, void* block, duk_size_t size) {
  if (size == 0) {
    if (block != nullptr) static_cast<DuktapeCollector*>(adapter)->block_freed(block);
    std::free(block);
    return nullptr;
  }
  return std::realloc(block, size);
}

void free_block(void* adapter, void* block) {
  if (block != nullptr) static_cast<DuktapeCollector*>(adapter)->block_freed(block);
  std::free(block);
}

// An error outside any protected call (none is expected: every operation is one).
[[noreturn]] void on_fatal(void* /*adapter*/, const char* message) {
  std::fprintf(stderr, "duktape: fatal error: %s\n", message != nullptr ? message : "(none)");
  std::abort();
}

// A finalizer's arguments: the object, and whether the heap is being destroyed.
duk_ret_t on_node_finalized(duk_context* ctx) {
  adapter_of(ctx)->node_finalized(duk_get_heapptr(ctx, 0));
  return 0;
}

duk_ret_t on_sentinel_finalized(duk_context* ctx) {
  adapter_of(ctx)->sentinel_finalized();
  return 0;
}

/// Pushes the heap stash's property `name`.
void push_from_stash(duk_context* ctx, const char* name) {
  duk_push_heap_stash(ctx);
  duk_get_prop_string(ctx, -1, name);
  duk_remove(ctx, -2);
}

}  // namespace

enum class DuktapeCollector::CallKind : std::uint8_t {
  Setup,
  Allocate,
  Link,
  Unlink,
  Root,
  Unroot,
  Collect,
  SetFinalizer
};

struct DuktapeCollector::Call {
  DuktapeCollector* self;
  CallKind kind;
  ObjectId a = 0;
  ObjectId b = 0;
  void* header = nullptr;  // Allocate: the new object's heap header
};

DuktapeCollector::DuktapeCollector(CollectorHost& host)
    : Collector(host),
      capabilities_{.reference_counting = true,
                    .generations = 1,
                    .automatic_collection = true,
                    .count = CountMeaning::References,
                    .collect_count = CollectCount::None,
                    .keeps_finalized_a_cycle = true,
                    .finalizers = true,
                    .finalizers_may_run_again = true} {
  context_ = duk_create_heap(&allocate_block, &reallocate_block, &free_block, this, &on_fatal);
  if (context_ == nullptr) throw std::runtime_error("duktape: cannot make a heap");
  Call setup_call{this, CallKind::Setup};
  try {
    call(setup_call);
  } catch (...) {
    closing_ = true;
    duk_destroy_heap(as_context(context_));
    throw;
  }
}

DuktapeCollector::~DuktapeCollector() {
  closing_ = true;
  duk_destroy_heap(as_context(context_));
}

// ================================================================================================
// Protected calls
// ================================================================================================

void DuktapeCollector::call(Call& c) {
  duk_context* ctx = as_context(context_);
  const auto run = [](duk_context*, void* udata) -> duk_ret_t {
    Call* c = static_cast<Call*>(udata);
    c->self->perform(*c);
    return 0;
  };
  if (duk_safe_call(ctx, run, &c, 0, 1) != DUK_EXEC_SUCCESS) {
    std::string message = duk_safe_to_string(ctx, -1);
    duk_pop(ctx);
    error_ = nullptr;
    throw std::runtime_error("duktape: " + message);
  }
  duk_pop(ctx);
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

// Runs inside duk_safe_call: a Duktape error longjmps out of here, so no local needs destruction.
void DuktapeCollector::perform(Call& c) {
  duk_context* ctx = as_context(context_);
  switch (c.kind) {
    case CallKind::Setup:
      setup();
      break;
    case CallKind::Allocate:
      duk_push_array(ctx);  // may run a round of mark-and-sweep
      c.header = duk_get_heapptr(ctx, -1);
      push_from_stash(ctx, kRoots);
      duk_push_array(ctx);
      duk_dup(ctx, -3);
      duk_put_prop_index(ctx, -2, 0);
      duk_put_prop_index(ctx, -2, c.a);
      duk_pop_2(ctx);
      break;
    case CallKind::Link:
      push_object(c.a);
      push_object(c.b);
      duk_put_prop_index(ctx, -2, static_cast<duk_uarridx_t>(duk_get_length(ctx, -2)));
      duk_pop(ctx);
      break;
    case CallKind::Unlink: {
      // The dropped reference is held on the value stack until a is whole again: the free, or
      // the finalizer, that dropping it may cause comes last, and its program finds a whole a.
      push_object(c.a);
      const void* to = records_[c.b].header;
      const auto n = static_cast<duk_uarridx_t>(duk_get_length(ctx, -1));
      duk_uarridx_t i = n;
      for (; i > 0; --i) {
        duk_get_prop_index(ctx, -1, i - 1);
        if (duk_get_heapptr(ctx, -1) == to) break;
        duk_pop(ctx);
      }
      if (i == 0) {
        (void)duk_error(ctx, DUK_ERR_ERROR, "object %d holds no reference to object %d",
                        static_cast<int>(c.a), static_cast<int>(c.b));
      }
      duk_get_prop_index(ctx, -2, n - 1);  // a[i - 1] = a[n - 1]; a.length = n - 1
      duk_put_prop_index(ctx, -3, i - 1);
      duk_set_length(ctx, -2, n - 1);
      duk_pop_2(ctx);  // b, then a
      break;
    }
    case CallKind::Root:  // (of an object being finalized, too: it rescues it)
      push_from_stash(ctx, kRoots);
      duk_get_prop_index(ctx, -1, c.a);
      push_object(c.a);
      duk_put_prop_index(ctx, -2, static_cast<duk_uarridx_t>(duk_get_length(ctx, -2)));
      duk_pop_2(ctx);
      break;
    case CallKind::Unroot: {
      push_from_stash(ctx, kRoots);
      duk_get_prop_index(ctx, -1, c.a);
      const auto n = static_cast<duk_uarridx_t>(duk_get_length(ctx, -1));
      if (n == 0) {
        (void)duk_error(ctx, DUK_ERR_ERROR, "object %d has no external reference to drop",
                        static_cast<int>(c.a));
      }
      // As in Unlink: the object goes (or its finalizer runs, which may root it again) only once
      // the array is whole.
      duk_get_prop_index(ctx, -1, n - 1);
      duk_set_length(ctx, -2, n - 1);
      duk_pop_3(ctx);
      break;
    }
    case CallKind::SetFinalizer:
      push_object(c.a);
      push_from_stash(ctx, kNodeFinalizer);
      duk_set_finalizer(ctx, -2);
      duk_pop(ctx);
      break;
    case CallKind::Collect:
      duk_gc(ctx, 0);
      break;
  }
}

// The stash's arrays of external references (one per object, kept when it has none left, so
// that unroot never allocates), the finalizers' functions, the first sentinel; and a check that
// the count is where the adapter reads it: a new array that only the value stack holds counts
// one, two once the stash holds it too.
void DuktapeCollector::setup() {
  duk_context* ctx = as_context(context_);
  duk_push_heap_stash(ctx);
  duk_push_bare_object(ctx);
  duk_put_prop_string(ctx, -2, kRoots);
  duk_push_c_function(ctx, &on_node_finalized, 2);
  duk_put_prop_string(ctx, -2, kNodeFinalizer);
  duk_push_c_function(ctx, &on_sentinel_finalized, 2);
  duk_put_prop_string(ctx, -2, kSentinelFinalizer);
  duk_push_array(ctx);
  const std::uint32_t alone = reference_count(duk_get_heapptr(ctx, -1));
  duk_dup(ctx, -1);
  duk_put_prop_string(ctx, -3, "probe");
  const std::uint32_t stashed = reference_count(duk_get_heapptr(ctx, -1));
  duk_del_prop_string(ctx, -2, "probe");
  duk_pop_2(ctx);
  if (alone != 1 || stashed != 2) {
    (void)duk_error(ctx, DUK_ERR_ERROR, "the heap header does not keep the reference count "
                    "where Debian's configuration does (read %u and %u, not 1 and 2)",
                    static_cast<unsigned>(alone), static_cast<unsigned>(stashed));
  }
  make_sentinel();
}

// Unreferenced but by itself: only mark-and-sweep finds it, and its finalizer then counts a round.
void DuktapeCollector::make_sentinel() {
  duk_context* ctx = as_context(context_);
  duk_push_bare_object(ctx);
  duk_dup(ctx, -1);
  duk_put_prop_string(ctx, -2, "self");
  push_from_stash(ctx, kSentinelFinalizer);
  duk_set_finalizer(ctx, -2);
  duk_pop(ctx);
}

// ================================================================================================
// The mutator's operations
// ================================================================================================

void DuktapeCollector::allocate(ObjectId id) {
  if (records_.size() <= id) records_.resize(id + 1);
  Call c{this, CallKind::Allocate, id};
  call(c);
  records_[id].header = c.header;
  records_[id].roots = 1;
  object_at_[c.header] = id;
}

void DuktapeCollector::link(ObjectId from, ObjectId to) {
  Call c{this, CallKind::Link, from, to};
  call(c);
}

void DuktapeCollector::unlink(ObjectId from, ObjectId to) {
  Call c{this, CallKind::Unlink, from, to};
  call(c);
}

void DuktapeCollector::root(ObjectId id) {
  Call c{this, CallKind::Root, id};
  call(c);
  ++records_[id].roots;
}

void DuktapeCollector::unroot(ObjectId id) {
  --records_[id].roots;  // (before the call: the finalizer it may run can count on it)
  Call c{this, CallKind::Unroot, id};
  call(c);
}

void DuktapeCollector::set_finalizer(ObjectId id) {
  Call c{this, CallKind::SetFinalizer, id};
  call(c);
  records_[id].has_finalizer = true;
}

// duk_gc() returns nothing (Capabilities::collect_count is None).
std::size_t DuktapeCollector::collect(int /*generation*/) {
  Call c{this, CallKind::Collect};
  call(c);
  return 0;
}

// ================================================================================================
// Finalizers and frees
// ================================================================================================

// The program's calls back into the adapter are protected calls of their own.
void DuktapeCollector::node_finalized(void* header) {
  if (closing_) return;
  const auto it = object_at_.find(header);
  if (it == object_at_.end()) return;
  try {
    run_finalizer(it->second);
  } catch (...) {
    if (!error_) error_ = std::current_exception();
  }
}

void DuktapeCollector::sentinel_finalized() {
  if (closing_) return;
  ++rounds_;
  make_sentinel();
}

// (Duktape's own blocks - property tables, strings, functions - are not in object_at_.)
void DuktapeCollector::block_freed(const void* block) {
  const auto it = object_at_.find(block);
  if (it == object_at_.end()) return;
  const ObjectId id = it->second;
  object_at_.erase(it);
  records_[id].freed = true;
  if (closing_) return;
  try {
    report_free(id);
  } catch (...) {
    if (!error_) error_ = std::current_exception();
  }
}

// ================================================================================================
// Naming objects
// ================================================================================================

void DuktapeCollector::push_object(ObjectId id) const {
  duk_context* ctx = as_context(context_);
  if (id >= records_.size() || records_[id].header == nullptr || records_[id].freed) {
    (void)duk_error(ctx, DUK_ERR_ERROR, "object %d is freed, or was never made",
                    static_cast<int>(id));
  }
  duk_push_heapptr(ctx, records_[id].header);
}

long long DuktapeCollector::id_of(int index) const {
  const auto it = object_at_.find(duk_get_heapptr(as_context(context_), index));
  return it == object_at_.end() ? -1 : static_cast<long long>(it->second);
}

std::uint32_t DuktapeCollector::reference_count(const void* header) const {
  std::uint32_t count = 0;
  std::memcpy(&count, static_cast<const char*>(header) + kRefcountOffset, sizeof count);
  return count;
}

// ================================================================================================
// Inspection
// ================================================================================================

// Outside protected mode: reading an array's elements raises no error. (Pushing the object adds
// one to its count and popping it takes that one away, with nothing else: its count is above
// zero, check_object says so first.)
void DuktapeCollector::inspect(ObjectId id, ObjectView& view) const {
  duk_context* ctx = as_context(context_);
  view.references.clear();
  view.generation = 0;
  view.count = reference_count(records_[id].header);
  push_object(id);
  const auto n = static_cast<duk_uarridx_t>(duk_get_length(ctx, -1));
  for (duk_uarridx_t i = 0; i < n; ++i) {
    duk_get_prop_index(ctx, -1, i);
    const long long referent = id_of(-1);
    view.references.push_back(referent < 0 ? kNotAnObject : static_cast<ObjectId>(referent));
    duk_pop(ctx);
  }
  duk_pop(ctx);
}

// Each object not freed has a header the allocator knows, a count above zero (at zero, reference
// counting would have freed it or run its finalizer), and is an array of objects' arrays; it has
// the finalizers' function if and only if the trace gave it a finalizer; the stash holds as many
// external references to it as the trace does.
void DuktapeCollector::check_object(ObjectId id) const {
  duk_context* ctx = as_context(context_);
  const Record& r = records_[id];
  const auto fail = [&](const std::string& what) { broken_invariant("duktape", id, what); };
  if (object_at_.find(r.header) == object_at_.end()) fail("has a header the allocator freed");
  if (reference_count(r.header) == 0) fail("has a reference count of zero but is not freed");
  const duk_idx_t top = duk_get_top(ctx);
  push_object(id);
  const bool array = duk_is_array(ctx, -1);
  const auto n = static_cast<duk_uarridx_t>(duk_get_length(ctx, -1));
  bool elements_are_objects = true;
  for (duk_uarridx_t i = 0; i < n && elements_are_objects; ++i) {
    duk_get_prop_index(ctx, -1, i);
    elements_are_objects = id_of(-1) >= 0;
    duk_pop(ctx);
  }
  duk_get_finalizer(ctx, -1);
  push_from_stash(ctx, kNodeFinalizer);
  const bool finalizer = duk_strict_equals(ctx, -1, -2) != 0;
  const bool none = duk_is_undefined(ctx, -2) != 0;
  duk_pop_2(ctx);
  push_from_stash(ctx, kRoots);
  duk_get_prop_index(ctx, -1, id);
  bool roots_hold_it = duk_is_array(ctx, -1) && duk_get_length(ctx, -1) == r.roots;
  for (duk_uarridx_t i = 0; roots_hold_it && i < r.roots; ++i) {
    duk_get_prop_index(ctx, -1, i);
    roots_hold_it = duk_get_heapptr(ctx, -1) == r.header;
    duk_pop(ctx);
  }
  duk_set_top(ctx, top);
  if (!array) fail("is not an array");
  if (!elements_are_objects) fail("has an element that is not an object's array");
  if (r.has_finalizer ? !finalizer : !none) {
    fail(r.has_finalizer ? "has lost its finalizer" : "has a finalizer the trace never gave it");
  }
  if (!roots_hold_it) {
    fail("is not held by its " + std::to_string(r.roots) + " external references");
  }
}

void DuktapeCollector::check_invariants() const {
  std::size_t alive = 0;
  for (ObjectId id = 0; id < records_.size(); ++id) {
    if (records_[id].header == nullptr || records_[id].freed) continue;
    ++alive;
    check_object(id);
  }
  if (alive != object_at_.size()) {
    throw BrokenInvariant("duktape: the allocator knows " + std::to_string(object_at_.size()) +
                          " headers, not the " + std::to_string(alive) + " objects not freed");
  }
}

void DuktapeCollector::check_invariants_of(std::span<const ObjectId> objects) const {
  for (ObjectId id : objects) check_object(id);
}

}  // namespace cyclefuzz
