// PHP 8.2's Zend collector (Zend/zend_gc.c: reference counting plus synchronous cycle collection
// after Bacon and Rajan over a buffer of possible roots), driven through the embed SAPI of the
// system's libphp8.2, started once per process, on PHP's own types.
//
// What maps to what:
//   object              an instance of CyclefuzzNode, a userland class the adapter declares at
//                       start-up (PHP code run once); its class's create_object and free_obj are
//                       the adapter's, so that it knows each object's id and sees its free
//   reference a -> b    by a's kind, one of PHP's own places for a value: an element of the array
//                       in a's property $r (a list, a tuple, an acyclic object: appended; a dict:
//                       under a string key), a dynamic property of a (a record), a's property $c
//                       (a cell), a member of the SplObjectStorage in a's property $s (a set:
//                       attach, and detach to unlink). link stores b there as PHP's assignments
//                       do; unlink takes the last such place holding b out, and PHP releases b
//                       with zval_ptr_dtor, which frees it at zero and otherwise buffers it as a
//                       possible root
//   external reference  one count of the object owned by the adapter: root is GC_ADDREF,
//                       unroot is OBJ_RELEASE (zend_object_release, the same release path)
//   references, to GC   PHP's own: zend_std_get_gc gives its properties, $r's array, the WeakMap,
//                       the SplObjectStorage (whose get_gc gives its members)
//   free                the free_obj handler, where PHP frees the object: by reference counting,
//                       or from gc_collect_cycles for garbage (a destructor is not a free)
//   finalizer           __destruct: an object the trace gives a finalizer becomes an instance of
//                       CyclefuzzFinalizingNode, the subclass whose __destruct runs the trace's
//                       program (a module function); PHP calls it once per object, before the
//                       free, and keeps what it resurrects
//   weak reference      WeakReference::create(target): the adapter's own (a mutator's `weak`), or
//                       an element of the holder's property $w (`weak w a in h`); PHP shares one
//                       WeakReference per target, and clears it as it frees the target. PHP has no
//                       weak-reference callbacks
//   map entry           m's WeakMap, in its property $m (made on m's first entry): $m[$k] = $v;
//                       PHP 8.2's WeakMap keeps its values strongly (its get_gc returns them) and
//                       drops an entry when it frees the key: a strong-value map
//   collect             gc_collect_cycles(): every collection is full (no generations)
//   automatic           PHP collects by itself when its root buffer reaches its threshold
//                       (10,000 roots, adaptive): traces of the usual size never reach it
//   collections()       zend_gc_get_status().runs (gc_status()['runs'])
//
// The runtime starts with php.ini and conf.d ignored (the same runtime on every machine), no
// memory_limit, and USE_ZEND_ALLOC=0 so that every allocation is a malloc that AddressSanitizer
// sees freed. PHP's collector and root buffer are shared by the whole process, so only one
// PhpCollector may exist at a time.
#pragma once

#include <exception>
#include <optional>
#include <vector>

#include "collectors/collector.h"

struct _zend_object;  // zend_object, without PHP's headers

namespace cyclefuzz {

class PhpCollector : public Collector {
 public:
  /// Throws std::runtime_error when PHP cannot start or another PhpCollector is alive.
  explicit PhpCollector(CollectorHost& listener);
  ~PhpCollector() override;

  const Capabilities& capabilities() const override;
  void allocate(ObjectId id) override;
  void set_kind(ObjectId id, ObjectKind kind) override;
  void link(ObjectId from, ObjectId to) override;
  void unlink(ObjectId from, ObjectId to) override;
  void root(ObjectId id) override;
  void unroot(ObjectId id) override;
  std::size_t collect(int generation) override;
  void set_finalizer(ObjectId id) override;
  void weak_ref(WeakId w, ObjectId target, bool callback) override;
  void weak_held_by(WeakId w, ObjectId holder) override;
  std::optional<ObjectId> deref(WeakId w) const override;
  void set_entry(ObjectId map, ObjectId key, ObjectId value) override;
  void remove_entry(ObjectId map, ObjectId key) override;
  void inspect(ObjectId id, ObjectView& view) const override;
  std::uint64_t collections() const override;
  void check_invariants() const override;

  /// Called by the class's free_obj handler: before PHP destroys the object, and after.
  void object_freeing(ObjectId id);
  void object_destroyed(ObjectId id);
  /// Called by the __destruct of an object with a finalizer.
  void object_finalized(ObjectId id);
  /// Called as PHP frees a WeakReference the adapter made.
  void weak_reference_freed(_zend_object* reference);

 private:
  /// What the adapter holds for one object.
  struct Handle {
    _zend_object* object = nullptr;  // not an owned pointer: null once PHP frees it
    std::uint32_t external = 0;      // counts the adapter owns
    std::vector<WeakId> weak_to;     // the weak references taken to it
    std::vector<WeakId> weak_held;   // those it holds
  };
  /// One weak reference of the trace's.
  struct Weak {
    _zend_object* reference = nullptr;  // the WeakReference: the adapter's count, or its holder's
                                        // (null once PHP frees it)
    ObjectId target = 0;
    std::optional<ObjectId> holder;
    bool taken = false;    // (the trace's weak references are numbered: some are never taken)
    bool cleared = false;  // reported cleared
    bool gone = false;     // its holder was freed: it is nobody's any more
  };

  _zend_object* object(ObjectId id) const;  // throws if PHP has freed it
  /// Reports a clear of every weak reference PHP cleared without freeing the target (none
  /// should be), then throws what a finalizer's program threw inside PHP, or what a free showed.
  void end_operation();

  std::vector<Handle> handles_;  // by object id
  std::vector<Weak> weak_;       // by weak reference id
  bool reporting_ = true;        // false while tearing down: those frees are not the trace's
  std::exception_ptr error_;     // kept by object_finalized and object_destroyed
};

}  // namespace cyclefuzz
