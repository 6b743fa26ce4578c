#include "collectors/php/php.h"

#include <sapi/embed/php_embed.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>

namespace cyclefuzz {

namespace {

/// What `inspect` shows for a reference to something that is not one of the adapter's objects.
constexpr ObjectId kNotAnObject = std::numeric_limits<ObjectId>::max();

/// An instance of CyclefuzzNode: the adapter's part, then PHP's (which must come last: PHP
/// allocates an object's property slots after its zend_object).
struct Node {
  PhpCollector* owner;              // null once the adapter is gone
  std::vector<zval>* references;    // null once freed
  ObjectId id;
  zend_object std;
};
static_assert(std::is_standard_layout_v<Node>);

Node* node_of(zend_object* object) {
  return reinterpret_cast<Node*>(reinterpret_cast<char*>(object) - offsetof(Node, std));
}

zend_class_entry* node_class = nullptr;
zend_object_handlers node_handlers;
// Those of an object the trace gave a finalizer: the same, with a destructor (dtor_obj) that runs
// its program. PHP calls a destructor once per object, before the free, from reference counting
// or from gc_collect_cycles; what it resurrects lives on. An object without a finalizer keeps
// the class's handlers, whose default destructor PHP skips: it is no object "with destructor".
zend_object_handlers finalizing_handlers;

bool is_node(const zval& z) { return Z_TYPE(z) == IS_OBJECT && Z_OBJCE(z) == node_class; }

zend_object* create_node(zend_class_entry* ce) {
  auto* node = static_cast<Node*>(zend_object_alloc(sizeof(Node), ce));
  node->references = new std::vector<zval>();
  zend_object_std_init(&node->std, ce);
  object_properties_init(&node->std, ce);
  node->std.handlers = &node_handlers;
  return &node->std;
}

// PHP is freeing the object: report it, then release its references through the runtime, which
// may free more objects (by reference counting) or, inside gc_collect_cycles, finds them already
// destroyed.
void free_node(zend_object* object) {
  Node* node = node_of(object);
  if (node->owner != nullptr) node->owner->object_freed(node->id);
  std::vector<zval>* references = std::exchange(node->references, nullptr);
  for (zval& z : *references) zval_ptr_dtor(&z);
  delete references;
  zend_object_std_dtor(object);
}

// As a userland __destruct's call frame does, the destructor holds the object while its program
// runs and releases it after with OBJ_RELEASE, which makes a resurrected object a possible root:
// PHP's own release after dtor_obj is a bare decrement, so without it a destructor that makes its
// object a cycle would leave garbage that no collection ever looks at.
void destruct_node(zend_object* object) {
  const Node* node = node_of(object);
  if (node->owner == nullptr) return;
  GC_ADDREF(object);
  node->owner->object_finalized(node->id);
  OBJ_RELEASE(object);
}

// What the collector traverses: the reference vector, and no property table.
HashTable* node_references(zend_object* object, zval** table, int* n) {
  const Node* node = node_of(object);
  if (node->references == nullptr || node->references->empty()) {
    *table = nullptr;
    *n = 0;
  } else {
    *table = node->references->data();
    *n = static_cast<int>(node->references->size());
  }
  return nullptr;
}

// The module's startup: registers the class (internal classes exist only from module startup).
zend_result register_node_class(int /*type*/, int /*module_number*/) {
  zend_class_entry ce;
  INIT_CLASS_ENTRY(ce, "CyclefuzzNode", nullptr);
  node_class = zend_register_internal_class(&ce);
  node_class->ce_flags |= ZEND_ACC_FINAL | ZEND_ACC_NO_DYNAMIC_PROPERTIES | ZEND_ACC_NOT_SERIALIZABLE;
  node_class->create_object = &create_node;
  std::memcpy(&node_handlers, &std_object_handlers, sizeof node_handlers);
  node_handlers.offset = offsetof(Node, std);
  node_handlers.free_obj = &free_node;
  node_handlers.get_gc = &node_references;
  node_handlers.clone_obj = nullptr;
  std::memcpy(&finalizing_handlers, &node_handlers, sizeof finalizing_handlers);
  finalizing_handlers.dtor_obj = &destruct_node;
  return SUCCESS;
}

zend_module_entry cyclefuzz_module = {
    STANDARD_MODULE_HEADER,
    "cyclefuzz",
    nullptr,  // functions
    &register_node_class,
    nullptr,  // module shutdown
    nullptr,  // request startup
    nullptr,  // request shutdown
    nullptr,  // info
    "1",
    STANDARD_MODULE_PROPERTIES,
};

int start_with_cyclefuzz_module(sapi_module_struct* sapi) {
  return php_module_startup(sapi, &cyclefuzz_module) == SUCCESS ? SUCCESS : FAILURE;
}

// The lowest-precedence ini settings (no ini file is read to override them).
void ini_defaults(HashTable* configuration) {
  zval unlimited;
  ZVAL_NEW_STR(&unlimited, zend_string_init("-1", 2, /*persistent=*/1));
  zend_hash_str_update(configuration, "memory_limit", std::strlen("memory_limit"), &unlimited);
}

/// PHP, started on first use with one request open for the life of the process, shut down at
/// exit.
class PhpRuntime {
 public:
  static PhpRuntime& get() {
    static PhpRuntime runtime;
    return runtime;
  }

  PhpCollector* active = nullptr;  // the one adapter allowed at a time

 private:
  PhpRuntime() {
    // Read by the Zend allocator at startup: every emalloc becomes a malloc.
    if (setenv("USE_ZEND_ALLOC", "0", 1) != 0) {
      throw std::runtime_error("php: cannot set USE_ZEND_ALLOC=0");
    }
    php_embed_module.php_ini_ignore = 1;
    php_embed_module.ini_defaults = &ini_defaults;
    php_embed_module.startup = &start_with_cyclefuzz_module;
    static char program[] = "cyclefuzz";
    static char* argv[] = {program, nullptr};
    if (php_embed_init(1, argv) == FAILURE) {
      throw std::runtime_error("php: the embed SAPI failed to start");
    }
    if (node_class == nullptr) {
      php_embed_shutdown();
      throw std::runtime_error("php: the cyclefuzz module did not register its class");
    }
  }
  ~PhpRuntime() { php_embed_shutdown(); }
};

}  // namespace

PhpCollector::PhpCollector(CollectorHost& listener) : Collector(listener) {
  PhpRuntime& php = PhpRuntime::get();
  if (php.active != nullptr) {
    throw std::runtime_error(
        "php: another php collector is alive in this process; PHP's collector and root buffer "
        "are shared, so only one can be checked at a time");
  }
  gc_enable(true);
  php.active = this;
}

// Releases the external references and collects the cycles left; objects PHP still holds after
// that (it should hold none) are detached, so that their free at PHP's shutdown reaches no
// adapter.
PhpCollector::~PhpCollector() {
  reporting_ = false;
  for (Handle& h : handles_) {
    for (; h.object != nullptr && h.external > 0; --h.external) OBJ_RELEASE(h.object);
  }
  gc_collect_cycles();
  for (Handle& h : handles_) {
    if (h.object != nullptr) node_of(h.object)->owner = nullptr;
  }
  PhpRuntime::get().active = nullptr;
}

const Capabilities& PhpCollector::capabilities() const {
  static const Capabilities kCapabilities{.reference_counting = true,
                                          .generations = 1,
                                          .automatic_collection = true,
                                          .count = CountMeaning::References,
                                          .collect_count = CollectCount::FreedUnlessFinalized,
                                          .finalizers = true};
  return kCapabilities;
}

// ================================================================================================
// The mutator's operations
// ================================================================================================

zend_object* PhpCollector::object(ObjectId id) const {
  zend_object* o = handles_.at(id).object;
  if (o == nullptr) {
    throw std::runtime_error("php: object " + std::to_string(id) + " has been freed");
  }
  return o;
}

void PhpCollector::allocate(ObjectId id) {
  if (handles_.size() <= id) handles_.resize(id + 1);
  zval created;
  if (object_init_ex(&created, node_class) != SUCCESS) {
    throw std::runtime_error("php: cannot instantiate CyclefuzzNode");
  }
  Node* node = node_of(Z_OBJ(created));
  node->owner = this;
  node->id = id;
  handles_[id] = {Z_OBJ(created), 1};  // the new object's count of 1 is the first external one
  rethrow_error();  // (an automatic collection may have run finalizers)
}

void PhpCollector::link(ObjectId from, ObjectId to) {
  std::vector<zval>& references = *node_of(object(from))->references;
  zval reference;
  ZVAL_OBJ_COPY(&reference, object(to));
  references.push_back(reference);
}

void PhpCollector::unlink(ObjectId from, ObjectId to) {
  std::vector<zval>& references = *node_of(object(from))->references;
  const zend_object* target = object(to);
  auto it = references.end();
  while (it != references.begin() && Z_OBJ(*std::prev(it)) != target) --it;
  if (it == references.begin()) {
    throw std::runtime_error("php: object " + std::to_string(from) +
                             " holds no reference to object " + std::to_string(to));
  }
  zval dropped = *std::prev(it);
  references.erase(std::prev(it));
  zval_ptr_dtor(&dropped);
  rethrow_error();
}

void PhpCollector::root(ObjectId id) {
  GC_ADDREF(object(id));
  ++handles_[id].external;
}

void PhpCollector::unroot(ObjectId id) {
  zend_object* o = object(id);
  --handles_[id].external;
  OBJ_RELEASE(o);
  rethrow_error();
}

void PhpCollector::set_finalizer(ObjectId id) { object(id)->handlers = &finalizing_handlers; }

std::size_t PhpCollector::collect(int /*generation*/) {
  const int found = gc_collect_cycles();
  rethrow_error();
  if (found < 0) throw std::runtime_error("php: gc_collect_cycles returned a negative count");
  return static_cast<std::size_t>(found);
}

std::uint64_t PhpCollector::collections() const {
  zend_gc_status status;
  zend_gc_get_status(&status);
  return status.runs;
}

void PhpCollector::object_freed(ObjectId id) {
  handles_[id].object = nullptr;
  if (reporting_) report_free(id);
}

// Inside PHP's destructor call: an exception waits for the end of the operation (rethrow_error),
// since PHP's C frames cannot pass it on.
void PhpCollector::object_finalized(ObjectId id) {
  if (!reporting_) return;
  try {
    run_finalizer(id);
  } catch (...) {
    if (!error_) error_ = std::current_exception();
  }
}

void PhpCollector::rethrow_error() {
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

// ================================================================================================
// Inspection
// ================================================================================================

void PhpCollector::inspect(ObjectId id, ObjectView& view) const {
  view.references.clear();
  view.generation = 0;
  zend_object* o = object(id);
  for (const zval& z : *node_of(o)->references) {
    view.references.push_back(is_node(z) ? node_of(Z_OBJ(z))->id : kNotAnObject);
  }
  view.count = GC_REFCOUNT(o);
}

// Every object not freed is valid in PHP's object store, an object of this adapter with its id,
// refers only to such objects, and its count is its external references plus its referrers'.
void PhpCollector::check_invariants() const {
  std::unordered_map<const zend_object*, std::uint64_t> referrers;
  for (ObjectId id = 0; id < handles_.size(); ++id) {
    zend_object* o = handles_[id].object;
    if (o == nullptr) continue;
    const std::string name = "php: object " + std::to_string(id);
    if (GC_TYPE(o) != IS_OBJECT || (OBJ_FLAGS(o) & IS_OBJ_FREE_CALLED) != 0) {
      throw BrokenInvariant(name + " has been destroyed, but its free was never reported");
    }
    if (o->handle >= EG(objects_store).top || EG(objects_store).object_buckets[o->handle] != o) {
      throw BrokenInvariant(name + " is not in PHP's object store");
    }
    const Node* node = node_of(o);
    if (node->owner != this || node->id != id || node->references == nullptr) {
      throw BrokenInvariant(name + " does not carry its own id");
    }
    for (const zval& z : *node->references) {
      if (!is_node(z) || node_of(Z_OBJ(z))->owner != this ||
          handles_[node_of(Z_OBJ(z))->id].object != Z_OBJ(z)) {
        throw BrokenInvariant(name + " refers to something that is not a live object");
      }
      ++referrers[Z_OBJ(z)];
    }
  }
  for (ObjectId id = 0; id < handles_.size(); ++id) {
    const Handle& h = handles_[id];
    if (h.object == nullptr) continue;
    const std::uint64_t internal = referrers[h.object];
    if (GC_REFCOUNT(h.object) != h.external + internal) {
      throw BrokenInvariant("php: object " + std::to_string(id) + " has count " +
                            std::to_string(GC_REFCOUNT(h.object)) + " but " +
                            std::to_string(h.external) + " external and " +
                            std::to_string(internal) + " internal references");
    }
  }
}

}  // namespace cyclefuzz
