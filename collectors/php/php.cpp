#include "collectors/php/php.h"

#include <ext/spl/spl_observer.h>
#include <sapi/embed/php_embed.h>
#include <zend_interfaces.h>
#include <zend_weakrefs.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
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
  PhpCollector* owner;  // null until the adapter names it, and once the adapter is gone
  ObjectId id;
  ObjectKind kind;
  std::uint32_t names;  // the keys (a dict's) or property names (a record's) made so far
  zend_object std;
};
static_assert(std::is_standard_layout_v<Node>);

Node* node_of(zend_object* object) {
  return reinterpret_cast<Node*>(reinterpret_cast<char*>(object) - offsetof(Node, std));
}

// The classes, declared by PHP code at start-up. Every property is declared (untyped, as most
// PHP code's), so their slots are fixed; a record's references are dynamic properties, which the
// attribute allows without a deprecation notice.
constexpr std::string_view kClasses = R"php(
#[AllowDynamicProperties]
class CyclefuzzNode {
    public $r = [];    // a list's, a tuple's, an acyclic object's or a dict's references
    public $c = null;  // a cell's one reference
    public $w = [];    // the WeakReference objects it holds
    public $m = null;  // its WeakMap, once it has an entry
    public $s = null;  // a set's members: an SplObjectStorage, once it has one
}
final class CyclefuzzFinalizingNode extends CyclefuzzNode {
    public function __destruct() { cyclefuzz_finalize($this); }
}
)php";

zend_class_entry* node_class = nullptr;
zend_class_entry* finalizing_class = nullptr;  // same properties, and a __destruct
zend_class_entry* weakmap_class = nullptr;
zend_object_handlers node_handlers;
// The property slots' offsets (OBJ_PROP), the same in both classes.
std::uint32_t slot_r = 0, slot_c = 0, slot_w = 0, slot_m = 0, slot_s = 0;

zval* slot(zend_object* object, std::uint32_t offset) { return OBJ_PROP(object, offset); }

bool is_node(const zval& z) {
  return Z_TYPE(z) == IS_OBJECT &&
         (Z_OBJCE(z) == node_class || Z_OBJCE(z) == finalizing_class);
}

/// A WeakReference is {referent, std} and a WeakMap {HashTable, std} (zend_weakrefs.c keeps the
/// structs private): the adapter reads them through the handlers' offset, which start-up checks.
zend_object* referent_of(zend_object* weak_reference) {
  return *reinterpret_cast<zend_object**>(reinterpret_cast<char*>(weak_reference) -
                                          weak_reference->handlers->offset);
}
HashTable* entries_of(zend_object* weak_map) {
  return reinterpret_cast<HashTable*>(reinterpret_cast<char*>(weak_map) -
                                      weak_map->handlers->offset);
}

// The WeakReferences the adapter makes get PHP's handlers but for free_obj, which tells the
// adapter (after PHP's own), so that it never reads one PHP has freed.
zend_object_handlers weak_reference_handlers;
void (*php_free_weak_reference)(zend_object*) = nullptr;
void free_weak_reference(zend_object* object);

zend_object* create_node(zend_class_entry* ce) {
  auto* node = static_cast<Node*>(zend_object_alloc(sizeof(Node), ce));
  node->owner = nullptr;
  node->id = 0;
  node->kind = ObjectKind::List;
  node->names = 0;
  zend_object_std_init(&node->std, ce);
  object_properties_init(&node->std, ce);
  node->std.handlers = &node_handlers;
  return &node->std;
}

// PHP is freeing the object (by reference counting, or gc_collect_cycles for garbage). PHP's own
// destruction (zend_object_std_dtor) clears the weak references to it, drops the WeakMap entries
// it is the key of and releases its properties, which may free more objects: the adapter hears
// of the free before, and checks the clears after.
void free_node(zend_object* object) {
  Node* node = node_of(object);
  PhpCollector* owner = node->owner;
  if (owner != nullptr) owner->object_freeing(node->id);
  zend_object_std_dtor(object);
  if (owner != nullptr) owner->object_destroyed(node->id);
}

// cyclefuzz_finalize($node): what CyclefuzzFinalizingNode's __destruct calls, inside PHP's
// destructor call (whose frame holds the object while the program runs, and releases it after).
ZEND_BEGIN_ARG_INFO_EX(finalize_arguments, 0, 0, 1)
ZEND_ARG_INFO(0, node)
ZEND_END_ARG_INFO()

void finalize_function(INTERNAL_FUNCTION_PARAMETERS) {
  zval* node = nullptr;
  ZEND_PARSE_PARAMETERS_START(1, 1)
  Z_PARAM_OBJECT(node)
  ZEND_PARSE_PARAMETERS_END();
  if (!is_node(*node)) return;
  const Node* n = node_of(Z_OBJ_P(node));
  if (n->owner != nullptr) n->owner->object_finalized(n->id);
}

const zend_function_entry module_functions[] = {
    {"cyclefuzz_finalize", &finalize_function, finalize_arguments,
     static_cast<std::uint32_t>(std::size(finalize_arguments) - 1), 0},
    ZEND_FE_END,
};

zend_module_entry cyclefuzz_module = {
    STANDARD_MODULE_HEADER,
    "cyclefuzz",
    module_functions,
    nullptr,  // module startup
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

zend_class_entry* declared_class(std::string_view lowercase_name) {
  auto* ce = static_cast<zend_class_entry*>(
      zend_hash_str_find_ptr(EG(class_table), lowercase_name.data(), lowercase_name.size()));
  if (ce == nullptr) {
    throw std::runtime_error("php: class " + std::string(lowercase_name) + " is not declared");
  }
  return ce;
}

std::uint32_t property_offset(std::string_view name) {
  auto* info = static_cast<zend_property_info*>(
      zend_hash_str_find_ptr(&node_class->properties_info, name.data(), name.size()));
  if (info == nullptr) throw std::runtime_error("php: CyclefuzzNode has no $" + std::string(name));
  return info->offset;
}

/// WeakReference::create($target), into `created` (an object, or undef if PHP threw).
void create_weak_reference(zend_object* target, zval* created) {
  zval argument;
  ZVAL_OBJ(&argument, target);
  zend_call_method_with_1_params(nullptr, zend_ce_weakref, nullptr, "create", created, &argument);
}

// The adapter reads WeakReference and WeakMap through their layout: check it on a first pair.
void check_weak_layouts() {
  zval target, weak_reference, map, key, value;
  object_init_ex(&target, node_class);
  create_weak_reference(Z_OBJ(target), &weak_reference);
  object_init_ex(&map, weakmap_class);
  ZVAL_COPY(&key, &target);
  ZVAL_LONG(&value, 1);
  Z_OBJ_HT(map)->write_dimension(Z_OBJ(map), &key, &value);
  const bool reference_ok =
      Z_TYPE(weak_reference) == IS_OBJECT &&
      Z_OBJ(weak_reference)->handlers->offset == sizeof(zend_object*) &&
      referent_of(Z_OBJ(weak_reference)) == Z_OBJ(target);
  const bool map_ok = Z_OBJ(map)->handlers->offset == sizeof(HashTable) &&
                      zend_hash_num_elements(entries_of(Z_OBJ(map))) == 1;
  zval_ptr_dtor(&key);
  zval_ptr_dtor(&target);  // frees it: PHP clears the reference, drops the entry
  const bool cleared = reference_ok && referent_of(Z_OBJ(weak_reference)) == nullptr &&
                       zend_hash_num_elements(entries_of(Z_OBJ(map))) == 0;
  zval_ptr_dtor(&weak_reference);
  zval_ptr_dtor(&map);
  if (!reference_ok || !map_ok || !cleared) {
    throw std::runtime_error("php: WeakReference or WeakMap is not laid out as this adapter reads "
                             "it (zend_weakrefs.c's structs)");
  }
}

void declare_classes() {
  if (zend_eval_stringl(kClasses.data(), kClasses.size(), nullptr, "cyclefuzz classes") !=
          SUCCESS ||
      EG(exception) != nullptr) {
    throw std::runtime_error("php: the adapter's classes did not compile");
  }
  node_class = declared_class("cyclefuzznode");
  finalizing_class = declared_class("cyclefuzzfinalizingnode");
  weakmap_class = declared_class("weakmap");
  node_class->create_object = &create_node;
  finalizing_class->create_object = &create_node;
  if (finalizing_class->default_properties_count != node_class->default_properties_count) {
    throw std::runtime_error("php: the finalizing class's properties differ from the node's");
  }
  std::memcpy(&node_handlers, &std_object_handlers, sizeof node_handlers);
  node_handlers.offset = offsetof(Node, std);
  node_handlers.free_obj = &free_node;
  node_handlers.clone_obj = nullptr;
  slot_r = property_offset("r");
  slot_c = property_offset("c");
  slot_w = property_offset("w");
  slot_m = property_offset("m");
  slot_s = property_offset("s");
  check_weak_layouts();
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
    try {
      declare_classes();
    } catch (...) {
      php_embed_shutdown();
      throw;
    }
  }
  ~PhpRuntime() { php_embed_shutdown(); }
};

// ---- PHP's places for references ---------------------------------------------------------------

/// The array in the object's $r, its own (separated from the class's default empty array).
HashTable* own_array(zend_object* object) {
  zval* r = slot(object, slot_r);
  SEPARATE_ARRAY(r);
  return Z_ARRVAL_P(r);
}

/// The SplObjectStorage in the object's $s, made as it gains its first member.
zend_object* own_storage(zend_object* object) {
  zval* s = slot(object, slot_s);
  if (Z_TYPE_P(s) != IS_OBJECT) {
    zval made;
    if (object_init_ex(&made, spl_ce_SplObjectStorage) != SUCCESS) {
      throw std::runtime_error("php: cannot make an SplObjectStorage");
    }
    zval old;
    ZVAL_COPY_VALUE(&old, s);
    ZVAL_COPY_VALUE(s, &made);
    zval_ptr_dtor(&old);
  }
  return Z_OBJ_P(s);
}

/// A key or property name the object has not used yet: "k7", "p7".
zend_string* new_name(Node* node, char prefix) {
  const std::string name = prefix + std::to_string(node->names++);
  return zend_string_init(name.data(), name.size(), /*persistent=*/0);
}

/// Calls f(zval&) for each reference the object holds, in PHP's places for them.
template <typename F>
void for_each_reference(zend_object* object, F&& f) {
  zval* r = slot(object, slot_r);
  if (Z_TYPE_P(r) == IS_ARRAY) {
    zval* value;
    ZEND_HASH_FOREACH_VAL(Z_ARRVAL_P(r), value) { f(*value); }
    ZEND_HASH_FOREACH_END();
  }
  zval* c = slot(object, slot_c);
  if (Z_TYPE_P(c) == IS_OBJECT) f(*c);
  if (object->properties != nullptr) {  // a record's: its dynamic properties (not INDIRECT)
    zval* value;
    ZEND_HASH_FOREACH_VAL(object->properties, value) {
      if (Z_TYPE_P(value) != IS_INDIRECT) f(*value);
    }
    ZEND_HASH_FOREACH_END();
  }
  zval* m = slot(object, slot_m);
  if (Z_TYPE_P(m) == IS_OBJECT) {
    zval* value;
    ZEND_HASH_FOREACH_VAL(entries_of(Z_OBJ_P(m)), value) { f(*value); }
    ZEND_HASH_FOREACH_END();
  }
  zval* s = slot(object, slot_s);
  if (Z_TYPE_P(s) == IS_OBJECT) {  // a set's members, as PHP's collector sees them (get_gc)
    zend_object* storage = Z_OBJ_P(s);
    zval* table = nullptr;
    int n = 0;
    storage->handlers->get_gc(storage, &table, &n);
    for (int i = 0; i < n; ++i) {
      if (Z_TYPE(table[i]) == IS_OBJECT) f(table[i]);  // (each member's data is null)
    }
  }
}

/// Takes the last of `from`'s references to `to` out of its place; false if it holds none. PHP
/// releases it as its own code would: zend_hash_del, unset_property, an assignment of null.
bool take_out(zend_object* from, const zend_object* to) {
  Node* node = node_of(from);
  if (node->kind == ObjectKind::Cell) {
    zval* c = slot(from, slot_c);
    if (Z_TYPE_P(c) != IS_OBJECT || Z_OBJ_P(c) != to) return false;
    zval old;
    ZVAL_COPY_VALUE(&old, c);
    ZVAL_NULL(c);
    zval_ptr_dtor(&old);
    return true;
  }
  if (node->kind == ObjectKind::Set) {  // $from->s->detach($to), if it contains it
    zval* s = slot(from, slot_s);
    if (Z_TYPE_P(s) != IS_OBJECT) return false;
    zval member;
    ZVAL_OBJ(&member, const_cast<zend_object*>(to));  // (the call holds it while it runs)
    zval contained;
    ZVAL_UNDEF(&contained);
    zend_call_method_with_1_params(Z_OBJ_P(s), Z_OBJCE_P(s), nullptr, "contains", &contained,
                                   &member);
    if (Z_TYPE(contained) != IS_TRUE) return false;
    zend_call_method_with_1_params(Z_OBJ_P(s), Z_OBJCE_P(s), nullptr, "detach", nullptr, &member);
    return true;
  }
  if (node->kind == ObjectKind::Record) {
    if (from->properties == nullptr) return false;
    zend_string* name = nullptr;
    zend_string* key;
    zval* value;
    ZEND_HASH_REVERSE_FOREACH_STR_KEY_VAL(from->properties, key, value) {
      if (Z_TYPE_P(value) == IS_OBJECT && Z_OBJ_P(value) == to) {
        name = zend_string_copy(key);
        break;
      }
    }
    ZEND_HASH_FOREACH_END();
    if (name == nullptr) return false;
    from->handlers->unset_property(from, name, nullptr);
    zend_string_release(name);
    return true;
  }
  HashTable* array = own_array(from);
  zend_ulong index = 0;
  zend_string* key = nullptr;
  bool found = false;
  zend_ulong h;
  zend_string* k;
  zval* value;
  ZEND_HASH_REVERSE_FOREACH_KEY_VAL(array, h, k, value) {
    if (Z_TYPE_P(value) == IS_OBJECT && Z_OBJ_P(value) == to) {
      index = h;
      key = k;
      found = true;
      break;
    }
  }
  ZEND_HASH_FOREACH_END();
  if (!found) return false;
  if (key != nullptr) {
    zend_hash_del(array, key);
  } else {
    zend_hash_index_del(array, index);
  }
  return true;
}

void free_weak_reference(zend_object* object) {
  php_free_weak_reference(object);
  if (PhpCollector* active = PhpRuntime::get().active) active->weak_reference_freed(object);
}

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

// Releases the external references and the WeakReferences the adapter owns, and collects the
// cycles left; objects PHP still holds after that (it should hold none) are detached, so that
// their free at PHP's shutdown reaches no adapter.
PhpCollector::~PhpCollector() {
  reporting_ = false;
  for (Handle& h : handles_) {
    for (; h.object != nullptr && h.external > 0; --h.external) OBJ_RELEASE(h.object);
  }
  for (Weak& w : weak_) {
    if (w.reference != nullptr && !w.holder) OBJ_RELEASE(w.reference);
  }
  gc_collect_cycles();
  for (Handle& h : handles_) {
    if (h.object != nullptr) node_of(h.object)->owner = nullptr;
  }
  PhpRuntime::get().active = nullptr;
}

const Capabilities& PhpCollector::capabilities() const {
  static const Capabilities kCapabilities{
      .reference_counting = true,
      .generations = 1,
      .automatic_collection = true,
      .count = CountMeaning::References,
      .collect_count = CollectCount::None,
      // gc_collect_cycles() runs the destructors of the garbage it finds, then itself once more
      // to free what they left garbage; the objects whose destructors that second pass ran wait
      // for the next call (zend_gc.c: "We do this only once"), even once no cycle holds them.
      .keeps_finalized_a_cycle = true,
      .finalizers = true,
      .weak_references = true,
      .weak_reference_callbacks = false,
      .weak_reference_holders = true,
      .map_entries = MapEntries::StrongValues};
  return kCapabilities;
}

// ================================================================================================
// The mutator's operations
// ================================================================================================

zend_object* PhpCollector::object(ObjectId id) const {
  zend_object* o = id < handles_.size() ? handles_[id].object : nullptr;
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
  handles_[id].object = Z_OBJ(created);
  handles_[id].external = 1;  // the new object's count of 1 is the first external one
  end_operation();            // (an automatic collection may have run)
}

void PhpCollector::set_kind(ObjectId id, ObjectKind kind) { node_of(object(id))->kind = kind; }

void PhpCollector::link(ObjectId from, ObjectId to) {
  zend_object* f = object(from);
  Node* node = node_of(f);
  zval reference;
  ZVAL_OBJ_COPY(&reference, object(to));
  switch (node->kind) {
    case ObjectKind::Cell: {  // $from->c = $to (the trace never links from a full cell)
      zval* c = slot(f, slot_c);
      zval old;
      ZVAL_COPY_VALUE(&old, c);
      ZVAL_COPY_VALUE(c, &reference);
      zval_ptr_dtor(&old);
      break;
    }
    case ObjectKind::Record: {  // $from->{"p7"} = $to
      zend_string* name = new_name(node, 'p');
      f->handlers->write_property(f, name, &reference, nullptr);  // (takes its own count)
      zend_string_release(name);
      zval_ptr_dtor(&reference);
      break;
    }
    case ObjectKind::Dict: {  // $from->r["k7"] = $to
      zend_string* key = new_name(node, 'k');
      zend_hash_update(own_array(f), key, &reference);
      zend_string_release(key);
      break;
    }
    case ObjectKind::Set: {  // $from->s->attach($to)
      zend_object* storage = own_storage(f);
      zend_call_method_with_1_params(storage, storage->ce, nullptr, "attach", nullptr,
                                     &reference);
      zval_ptr_dtor(&reference);
      break;
    }
    default:  // $from->r[] = $to
      zend_hash_next_index_insert(own_array(f), &reference);
  }
  end_operation();
}

void PhpCollector::unlink(ObjectId from, ObjectId to) {
  if (!take_out(object(from), object(to))) {
    throw std::runtime_error("php: object " + std::to_string(from) +
                             " holds no reference to object " + std::to_string(to));
  }
  end_operation();
}

void PhpCollector::root(ObjectId id) {
  GC_ADDREF(object(id));
  ++handles_[id].external;
}

void PhpCollector::unroot(ObjectId id) {
  zend_object* o = object(id);
  --handles_[id].external;
  OBJ_RELEASE(o);
  end_operation();
}

// An object's class becomes the subclass with __destruct: PHP decides whether an object has a
// destructor by its class (zend_objects_store_del, zend_gc), and the two classes' properties are
// the same slots.
void PhpCollector::set_finalizer(ObjectId id) { object(id)->ce = finalizing_class; }

std::size_t PhpCollector::collect(int /*generation*/) {
  const int found = gc_collect_cycles();
  end_operation();
  if (found < 0) throw std::runtime_error("php: gc_collect_cycles returned a negative count");
  return static_cast<std::size_t>(found);
}

std::uint64_t PhpCollector::collections() const {
  zend_gc_status status;
  zend_gc_get_status(&status);
  return status.runs;
}

// ---- weak references and maps ------------------------------------------------------------------

// WeakReference::create($target). PHP returns the WeakReference it already has for the target,
// if any: several of the trace's weak references may share one.
void PhpCollector::weak_ref(WeakId w, ObjectId target, bool /*callback: PHP has none*/) {
  zval created;
  create_weak_reference(object(target), &created);
  if (Z_TYPE(created) != IS_OBJECT) throw std::runtime_error("php: WeakReference::create failed");
  if (php_free_weak_reference == nullptr) {
    std::memcpy(&weak_reference_handlers, Z_OBJ(created)->handlers, sizeof weak_reference_handlers);
    php_free_weak_reference = weak_reference_handlers.free_obj;
    weak_reference_handlers.free_obj = &free_weak_reference;
  }
  Z_OBJ(created)->handlers = &weak_reference_handlers;
  if (weak_.size() <= w) weak_.resize(w + 1);
  weak_[w] = {.reference = Z_OBJ(created), .target = target, .taken = true};
  handles_[target].weak_to.push_back(w);
}

// $holder->w[] = the WeakReference: the adapter's count moves to the holder's array.
void PhpCollector::weak_held_by(WeakId w, ObjectId holder) {
  zval* held = slot(object(holder), slot_w);
  SEPARATE_ARRAY(held);
  zval reference;
  ZVAL_OBJ(&reference, weak_.at(w).reference);
  zend_hash_next_index_insert(Z_ARRVAL_P(held), &reference);
  weak_[w].holder = holder;
  handles_[holder].weak_held.push_back(w);
}

// $w->get(), read as that method does: the referent, or null once PHP cleared it.
std::optional<ObjectId> PhpCollector::deref(WeakId w) const {
  const Weak& weak = weak_.at(w);
  if (weak.cleared || weak.gone) return std::nullopt;
  if (weak.reference == nullptr) {
    throw std::runtime_error("php: the WeakReference of weak reference " + std::to_string(w) +
                             " has been freed");
  }
  const zend_object* referent = referent_of(weak.reference);
  if (referent == nullptr) return std::nullopt;
  if (referent != handles_[weak.target].object) {
    throw std::runtime_error("php: WeakReference " + std::to_string(w) +
                             " refers to something other than object " +
                             std::to_string(weak.target));
  }
  return weak.target;
}

// $map->m[$key] = $value, on the map's WeakMap (made on its first entry).
void PhpCollector::set_entry(ObjectId map, ObjectId key, ObjectId value) {
  zval* m = slot(object(map), slot_m);
  if (Z_TYPE_P(m) != IS_OBJECT) {
    zval_ptr_dtor(m);
    object_init_ex(m, weakmap_class);
  }
  zval k, v;
  ZVAL_OBJ(&k, object(key));
  ZVAL_OBJ(&v, object(value));
  Z_OBJ_HT_P(m)->write_dimension(Z_OBJ_P(m), &k, &v);  // (takes its own count of the value)
  end_operation();
}

// unset($map->m[$key]).
void PhpCollector::remove_entry(ObjectId map, ObjectId key) {
  zval* m = slot(object(map), slot_m);
  if (Z_TYPE_P(m) != IS_OBJECT) return;
  zval k;
  ZVAL_OBJ(&k, object(key));
  Z_OBJ_HT_P(m)->unset_dimension(Z_OBJ_P(m), &k);
  end_operation();
}

// ---- what PHP calls -----------------------------------------------------------------------------

// Before PHP destroys the object: zend_object_std_dtor clears the weak references to it as it
// frees it, in one step, so their clears are told first (and checked after, in
// object_destroyed); the weak references it holds go with it.
void PhpCollector::object_freeing(ObjectId id) {
  handles_[id].object = nullptr;
  for (WeakId w : handles_[id].weak_held) weak_[w].gone = true;
  if (!reporting_) return;
  for (WeakId w : handles_[id].weak_to) {
    Weak& weak = weak_[w];
    if (weak.cleared || weak.gone) continue;
    weak.cleared = true;
    report_weak_cleared(w);
  }
  report_free(id);
}

// After: every weak reference to it that still has an owner must be clear. (One whose holder
// was freed meanwhile, by the release of the object's properties, may be freed too: not read.)
void PhpCollector::object_destroyed(ObjectId id) {
  if (!reporting_) return;
  for (WeakId w : handles_[id].weak_to) {
    const Weak& weak = weak_[w];
    if (!weak.gone && weak.reference != nullptr && referent_of(weak.reference) != nullptr &&
        !error_) {
      error_ = std::make_exception_ptr(BrokenInvariant(
          "php: object " + std::to_string(id) + " was freed, but WeakReference " +
          std::to_string(w) + " to it was not cleared"));
    }
  }
}

// Inside PHP's destructor call: an exception waits for the end of the operation (end_operation),
// since PHP's C frames cannot pass it on.
void PhpCollector::object_finalized(ObjectId id) {
  if (!reporting_) return;
  try {
    run_finalizer(id);
  } catch (...) {
    if (!error_) error_ = std::current_exception();
  }
}

void PhpCollector::weak_reference_freed(_zend_object* reference) {
  for (Weak& weak : weak_) {
    if (weak.reference == reference) weak.reference = nullptr;
  }
}

// PHP clears a weak reference only as it frees the target (object_freeing told it then); one
// found clear otherwise is told here, and the checks judge it.
void PhpCollector::end_operation() {
  for (WeakId w = 0; w < weak_.size(); ++w) {
    Weak& weak = weak_[w];
    if (!weak.taken || weak.cleared || weak.gone) continue;
    if (weak.reference == nullptr) {  // (its holder, or the adapter, still holds it)
      if (!error_) {
        error_ = std::make_exception_ptr(BrokenInvariant(
            "php: PHP freed the WeakReference of weak reference " + std::to_string(w) +
            (weak.holder ? " while object " + std::to_string(*weak.holder) + " holds it"
                         : " while the adapter holds it")));
      }
      continue;
    }
    if (referent_of(weak.reference) == nullptr) {
      weak.cleared = true;
      report_weak_cleared(w);
    }
  }
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

// ================================================================================================
// Inspection
// ================================================================================================

void PhpCollector::inspect(ObjectId id, ObjectView& view) const {
  view.references.clear();
  view.generation = 0;
  zend_object* o = object(id);
  for_each_reference(o, [&view](const zval& z) {
    view.references.push_back(is_node(z) ? node_of(Z_OBJ(z))->id : kNotAnObject);
  });
  view.count = GC_REFCOUNT(o);
}

// Every object not freed is valid in PHP's object store, an object of this adapter with its id,
// owns its array of references, refers only to such objects, and its count is its external
// references plus its referrers' (WeakMap values included; weak references count nothing).
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
    if (node->owner != this || node->id != id) {
      throw BrokenInvariant(name + " does not carry its own id");
    }
    const zval* r = slot(o, slot_r);
    if (Z_TYPE_P(r) != IS_ARRAY ||
        (Z_REFCOUNTED_P(r) && GC_REFCOUNT(Z_ARRVAL_P(r)) != 1)) {
      throw BrokenInvariant(name + "'s array of references is not its own");
    }
    bool wrong = false;
    for_each_reference(o, [&](const zval& z) {
      if (!is_node(z) || node_of(Z_OBJ(z))->owner != this ||
          handles_[node_of(Z_OBJ(z))->id].object != Z_OBJ(z)) {
        wrong = true;
      } else {
        ++referrers[Z_OBJ(z)];
      }
    });
    if (wrong) throw BrokenInvariant(name + " refers to something that is not a live object");
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
