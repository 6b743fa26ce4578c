#include "collectors/mruby/mruby.h"

#include <mruby.h>
#include <mruby/array.h>
#include <mruby/class.h>
#include <mruby/data.h>
#include <mruby/error.h>
#include <mruby/gc.h>
#include <mruby/string.h>
#include <mruby/variable.h>

#include <cstdio>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

namespace cyclefuzz {

namespace {

/// What `inspect` shows for an element that is not a live object of the trace.
constexpr ObjectId kNotAnObject = std::numeric_limits<ObjectId>::max();

/// GC.interval_ratio: a new cycle starts once the heap holds this percentage of what the last
/// cycle left (mruby's default, 200, lets a heap of a few hundred objects double first).
constexpr int kIntervalRatio = 100;

/// A Node's data: which object it is, for its dfree.
struct NodeData {
  MrubyCollector* adapter;
  ObjectId id;
};

void free_node(mrb_state* /*mrb*/, void* data) {
  auto* node = static_cast<NodeData*>(data);
  node->adapter->node_freed(node->id);
  delete node;
}

void free_sentinel(mrb_state* /*mrb*/, void* data) {
  static_cast<MrubyCollector*>(data)->sentinel_freed();
}

const mrb_data_type kNodeType = {"Node", &free_node};
const mrb_data_type kSentinelType = {"Sentinel", &free_sentinel};

// The state's allocator: malloc's, so that AddressSanitizer sees what mruby frees.
void* allocate_block(mrb_state* /*mrb*/, void* block, std::size_t size, void* /*adapter*/) {
  if (size == 0) {
    std::free(block);
    return nullptr;
  }
  return std::realloc(block, size);
}

/// The id of the trace's object `value` is, or -1 (a freed slot, or anything else).
long long id_of(mrb_value value) {
  if (mrb_type(value) != MRB_TT_DATA || DATA_TYPE(value) != &kNodeType) return -1;
  return static_cast<long long>(static_cast<const NodeData*>(DATA_PTR(value))->id);
}

mrb_sym references_symbol(mrb_state* mrb) { return mrb_intern_lit(mrb, "@r"); }

}  // namespace

enum class MrubyCollector::CallKind : std::uint8_t {
  Setup,
  Allocate,
  Link,
  Unlink,
  Root,
  Unroot,
  Collect
};

struct MrubyCollector::Call {
  MrubyCollector* self;
  CallKind kind;
  ObjectId a = 0;
  ObjectId b = 0;
  RData* object = nullptr;  // Allocate: the new object
};

MrubyCollector::MrubyCollector(CollectorHost& host, MrubyMode mode)
    : Collector(host),
      mode_(mode),
      capabilities_{.reference_counting = false,
                    .generations = 1,
                    .automatic_collection = true,
                    .count = CountMeaning::None,
                    .collect_count = CollectCount::None,
                    .frees_garbage_in_steps = true} {
  mrb_ = mrb_open_allocf(&allocate_block, this);
  if (mrb_ == nullptr) throw std::runtime_error("mruby: cannot make a state");
  Call setup_call{this, CallKind::Setup};
  try {
    call(setup_call);
  } catch (...) {
    closing_ = true;
    mrb_close(mrb_);
    throw;
  }
}

MrubyCollector::~MrubyCollector() {
  closing_ = true;
  mrb_close(mrb_);
}

// ================================================================================================
// Protected calls
// ================================================================================================

void MrubyCollector::call(Call& c) {
  const auto run = [](mrb_state*, void* userdata) -> mrb_value {
    Call* c = static_cast<Call*>(userdata);
    c->self->perform(*c);
    return mrb_nil_value();
  };
  const int arena = mrb_gc_arena_save(mrb_);
  mrb_bool error = false;
  const mrb_value result = mrb_protect_error(mrb_, run, &c, &error);
  std::string message;
  if (error) {
    const mrb_value text = mrb_funcall(mrb_, result, "inspect", 0);
    message = mrb_string_p(text) ? std::string(RSTRING_PTR(text), RSTRING_LEN(text)) : "?";
    mrb_->exc = nullptr;
  }
  // What the operation made is held by the arena until here: from now on only what refers to
  // it does.
  mrb_gc_arena_restore(mrb_, arena);
  if (error) {
    error_ = nullptr;
    throw std::runtime_error("mruby: " + message);
  }
  if (sentinel_gone_ && !closing_) make_sentinel();
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

// Runs inside mrb_protect_error: an mruby error longjmps out of here, so no local needs
// destruction.
void MrubyCollector::perform(Call& c) {
  mrb_state* mrb = mrb_;
  const auto object = [&](ObjectId id) {
    if (id >= records_.size() || records_[id].object == nullptr || records_[id].freed) {
      char message[80];
      std::snprintf(message, sizeof message, "object %u is freed, or was never made",
                    static_cast<unsigned>(id));
      mrb_raise(mrb, E_RUNTIME_ERROR, message);
    }
    return mrb_obj_value(records_[id].object);
  };
  switch (c.kind) {
    case CallKind::Setup:
      setup();
      break;
    case CallKind::Allocate: {
      auto* node = new NodeData{this, c.a};
      c.object = mrb_data_object_alloc(mrb, static_cast<RClass*>(node_class_), node, &kNodeType);
      mrb_iv_set(mrb, mrb_obj_value(c.object), references_symbol(mrb), mrb_ary_new(mrb));
      mrb_gc_register(mrb, mrb_obj_value(c.object));
      break;
    }
    case CallKind::Link:
      mrb_ary_push(mrb, mrb_iv_get(mrb, object(c.a), references_symbol(mrb)), object(c.b));
      break;
    case CallKind::Unlink: {
      const mrb_value references = mrb_iv_get(mrb, object(c.a), references_symbol(mrb));
      const mrb_value to = object(c.b);
      mrb_int i = RARRAY_LEN(references);
      while (i > 0 && mrb_ptr(RARRAY_PTR(references)[i - 1]) != mrb_ptr(to)) --i;
      if (i == 0) mrb_raise(mrb, E_RUNTIME_ERROR, "unlink: no such reference");
      const mrb_value last = mrb_ary_pop(mrb, references);
      if (i - 1 < RARRAY_LEN(references)) mrb_ary_set(mrb, references, i - 1, last);
      break;
    }
    case CallKind::Root:
      mrb_gc_register(mrb, object(c.a));
      break;
    case CallKind::Unroot:
      mrb_gc_unregister(mrb, object(c.a));
      break;
    case CallKind::Collect:
      mrb_full_gc(mrb);
      break;
  }
}

void MrubyCollector::setup() {
  RClass* node = mrb_define_class(mrb_, "Node", mrb_->object_class);
  MRB_SET_INSTANCE_TT(node, MRB_TT_DATA);
  node_class_ = node;
  const mrb_value gc = mrb_obj_value(mrb_module_get(mrb_, "GC"));
  mrb_funcall(mrb_, gc, "interval_ratio=", 1, mrb_fixnum_value(kIntervalRatio));
  if (mode_ == MrubyMode::Generational) {
    mrb_funcall(mrb_, gc, "generational_mode=", 1, mrb_true_value());
  }
  make_sentinel();
}

// Unreferenced once the arena lets it go: the next cycle that sweeps it counts.
void MrubyCollector::make_sentinel() {
  sentinel_gone_ = false;
  const int arena = mrb_gc_arena_save(mrb_);
  mrb_data_object_alloc(mrb_, mrb_->object_class, this, &kSentinelType);
  mrb_gc_arena_restore(mrb_, arena);
}

// ================================================================================================
// The mutator's operations
// ================================================================================================

void MrubyCollector::allocate(ObjectId id) {
  if (records_.size() <= id) records_.resize(id + 1);
  Call c{this, CallKind::Allocate, id};
  call(c);
  records_[id].object = c.object;
  freed_slots_.erase(c.object);
}

void MrubyCollector::link(ObjectId from, ObjectId to) {
  Call c{this, CallKind::Link, from, to};
  call(c);
}

void MrubyCollector::unlink(ObjectId from, ObjectId to) {
  Call c{this, CallKind::Unlink, from, to};
  call(c);
}

void MrubyCollector::root(ObjectId id) {
  Call c{this, CallKind::Root, id};
  call(c);
}

void MrubyCollector::unroot(ObjectId id) {
  Call c{this, CallKind::Unroot, id};
  call(c);
}

// mrb_full_gc() returns nothing (Capabilities::collect_count is None).
std::size_t MrubyCollector::collect(int /*generation*/) {
  Call c{this, CallKind::Collect};
  call(c);
  return 0;
}

// ================================================================================================
// Frees
// ================================================================================================

void MrubyCollector::node_freed(ObjectId id) {
  records_[id].freed = true;
  freed_slots_.insert(records_[id].object);
  if (closing_) return;
  try {
    report_free(id);
  } catch (...) {
    if (!error_) error_ = std::current_exception();
  }
}

void MrubyCollector::sentinel_freed() {
  if (closing_) return;
  ++cycles_;
  sentinel_gone_ = true;
}

// ================================================================================================
// Inspection
// ================================================================================================

void MrubyCollector::inspect(ObjectId id, ObjectView& view) const {
  view.references.clear();
  view.generation = 0;  // mruby's old objects are not a generation collect(g) names
  const mrb_value references =
      mrb_iv_get(mrb_, mrb_obj_value(records_[id].object), references_symbol(mrb_));
  if (!mrb_array_p(references)) return;
  for (mrb_int i = 0; i < RARRAY_LEN(references); ++i) {
    const long long referent = id_of(RARRAY_PTR(references)[i]);
    view.references.push_back(referent < 0 ? kNotAnObject : static_cast<ObjectId>(referent));
  }
}

// Each object not freed is a Node whose data names it, and holds an array of Nodes - unless
// mruby has found it dead and its sweep has not reached it yet: its array and the Nodes in it may
// be in slots swept already, free, or reused since by what was allocated meanwhile. Garbage that
// was allocated during a cycle is not dead in it (mruby's new objects take the colour that
// survives the sweep) and is kept, untraced, until the next cycle, while what it refers to may
// be freed: a slot where mruby freed a Node is no broken invariant. (An object the program
// reaches that refers to a freed Node is a premature free, which the checker reports at the op
// that freed it.)
void MrubyCollector::check_object(ObjectId id) const {
  const auto fail = [id](const std::string& what) { broken_invariant("mruby", id, what); };
  const mrb_value value = mrb_obj_value(records_[id].object);
  if (id_of(value) != static_cast<long long>(id)) fail("is not the Node the adapter made");
  if (mrb_obj_class(mrb_, value) != node_class_) fail("is not of class Node");
  if (mrb_object_dead_p(mrb_, reinterpret_cast<RBasic*>(records_[id].object))) return;
  const mrb_value references = mrb_iv_get(mrb_, value, references_symbol(mrb_));
  if (!mrb_array_p(references)) fail("has no array of references");
  for (mrb_int i = 0; i < RARRAY_LEN(references); ++i) {
    const mrb_value element = RARRAY_PTR(references)[i];
    if (id_of(element) < 0 &&
        (mrb_immediate_p(element) || !freed_slots_.contains(mrb_ptr(element)))) {
      fail("refers to something that is not a Node");
    }
  }
}

void MrubyCollector::check_invariants() const {
  for (ObjectId id = 0; id < records_.size(); ++id) {
    if (records_[id].object != nullptr && !records_[id].freed) check_object(id);
  }
}

void MrubyCollector::check_invariants_of(std::span<const ObjectId> objects) const {
  for (ObjectId id : objects) check_object(id);
}

}  // namespace cyclefuzz
