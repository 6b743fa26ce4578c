// PHP 8.2's Zend collector (Zend/zend_gc.c: reference counting plus synchronous cycle collection
// after Bacon and Rajan over a buffer of possible roots), driven through the embed SAPI of the
// system's libphp8.2, started once per process.
//
// What maps to what:
//   object              an instance of CyclefuzzNode, an internal class the adapter's module
//                       registers at PHP's module startup; its C++ part holds its references
//   reference a -> b    one zval in a's reference vector holding b: link copies b into it
//                       (ZVAL_OBJ_COPY, which adds to b's count), unlink releases it with
//                       zval_ptr_dtor, which frees b at zero and otherwise buffers b as a
//                       possible root of a garbage cycle. A bare decrement would never reach
//                       the root buffer, and the cycle would leak
//   external reference  one count of the object owned by the adapter: root is GC_ADDREF,
//                       unroot is OBJ_RELEASE (zend_object_release, the same release path)
//   references, to GC   the get_gc handler returns the reference vector
//   free                the free_obj handler, where PHP frees the object: by reference counting,
//                       or from gc_collect_cycles for garbage (a destructor is not a free)
//   finalizer           a destructor (dtor_obj handler) that runs the trace's program, given to
//                       an object the trace gives a finalizer; PHP calls it once per object,
//                       before the free, and what it resurrects lives on
//   collect             gc_collect_cycles(): every collection is full (no generations)
//   automatic           PHP collects by itself when its root buffer reaches its threshold
//                       (10,000 roots, adaptive): traces of the usual size never reach it
//   collections()       zend_gc_get_status().runs
//
// The runtime starts with php.ini and conf.d ignored (the same runtime on every machine), no
// memory_limit, and USE_ZEND_ALLOC=0 so that every allocation is a malloc that AddressSanitizer
// sees freed. PHP's collector and root buffer are shared by the whole process, so only one
// PhpCollector may exist at a time.
#pragma once

#include <exception>
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
  void link(ObjectId from, ObjectId to) override;
  void unlink(ObjectId from, ObjectId to) override;
  void root(ObjectId id) override;
  void unroot(ObjectId id) override;
  std::size_t collect(int generation) override;
  void set_finalizer(ObjectId id) override;
  void inspect(ObjectId id, ObjectView& view) const override;
  std::uint64_t collections() const override;
  void check_invariants() const override;

  /// Called by the class's free_obj handler, and by the destructor of an object with a finalizer.
  void object_freed(ObjectId id);
  void object_finalized(ObjectId id);

 private:
  /// What the adapter holds for one object.
  struct Handle {
    _zend_object* object = nullptr;  // not an owned pointer: null once PHP frees it
    std::uint32_t external = 0;      // counts the adapter owns
  };

  _zend_object* object(ObjectId id) const;  // throws if PHP has freed it
  /// Ends an operation: throws what a finalizer's program threw inside PHP.
  void rethrow_error();

  std::vector<Handle> handles_;  // by object id
  bool reporting_ = true;        // false while tearing down: those frees are not the trace's
  std::exception_ptr error_;     // kept by object_finalized
};

}  // namespace cyclefuzz
