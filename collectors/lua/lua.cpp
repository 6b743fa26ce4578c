// One source for the three Lua versions (lua.h): compiled against one version's headers, it
// defines that version's make_collector. Where the APIs differ, the small functions of the first
// section say how each version does it; the rest is the same for all three.
#include "collectors/lua/lua.h"

#include <lua.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#if defined(LUAJIT_VERSION)
#define CYCLEFUZZ_LUA luajit
#elif LUA_VERSION_NUM == 503
#define CYCLEFUZZ_LUA lua53
#elif LUA_VERSION_NUM == 504
#define CYCLEFUZZ_LUA lua54
#else
#error "lua.cpp is for Lua 5.3, Lua 5.4 and LuaJIT 2.1"
#endif

namespace cyclefuzz {

namespace {

// ================================================================================================
// Where the versions differ
// ================================================================================================

#if defined(LUAJIT_VERSION)
/// LuaJIT calls __gc for userdata only (the 5.1 API): objects are userdata, and their references
/// are in their environment tables.
constexpr bool kObjectsAreUserdata = true;
constexpr const char* kRuntime = "luajit";
#else
constexpr bool kObjectsAreUserdata = false;
constexpr const char* kRuntime = LUA_VERSION_NUM == 503 ? "lua5.3" : "lua5.4";
#endif
/// Lua 5.4's cells are userdata with two user values: the referent (or nil), and the table of the
/// weak references the cell holds. (5.3's userdata have one user value: its cells are tables.)
constexpr bool kCellsAreUserdata = LUA_VERSION_NUM >= 504 && !kObjectsAreUserdata;
/// An acyclic object's first reference is its metatable (it never has a finalizer), where the
/// objects are tables: a metatable is a table (LuaJIT's objects are userdata).
constexpr bool kAcyclicMetatables = !kObjectsAreUserdata;
constexpr int kCellReferent = 1;
constexpr int kCellHeldWeak = 2;

/// Pushes a new cell userdata (Lua 5.4).
void push_cell(lua_State* L) {
#if LUA_VERSION_NUM >= 504
  lua_newuserdatauv(L, 0, 2);
#else
  luaL_error(L, "cells are tables before Lua 5.4");
#endif
}

/// Pushes user value `n` of the userdata at `index` (Lua 5.4).
void push_user_value(lua_State* L, int index, int n) {
#if LUA_VERSION_NUM >= 504
  lua_getiuservalue(L, index, n);
#else
  (void)index;
  (void)n;
  luaL_error(L, "no user values before Lua 5.4");
#endif
}

/// Pops a value into user value `n` of the userdata at `index` (Lua 5.4).
void set_user_value(lua_State* L, int index, int n) {
#if LUA_VERSION_NUM >= 504
  lua_setiuservalue(L, index, n);
#else
  (void)index;
  (void)n;
  luaL_error(L, "no user values before Lua 5.4");
#endif
}

/// Whether the object at `index` is a cell userdata.
bool is_cell_userdata(lua_State* L, int index) {
  return kCellsAreUserdata && lua_type(L, index) == LUA_TUSERDATA;
}

int absolute_index(lua_State* L, int index) {
  return index > 0 || index <= LUA_REGISTRYINDEX ? index : lua_gettop(L) + index + 1;
}

lua_Integer length(lua_State* L, int index) {
#if LUA_VERSION_NUM >= 502
  return static_cast<lua_Integer>(lua_rawlen(L, index));
#else
  return static_cast<lua_Integer>(lua_objlen(L, index));
#endif
}

/// The integer at `index`, or -1 if it is not one (ids are stored as integers; 5.1's numbers
/// are doubles, exact for ids).
long long integer_at(lua_State* L, int index) {
#if LUA_VERSION_NUM >= 503
  return lua_isinteger(L, index) ? lua_tointeger(L, index) : -1;
#else
  return lua_type(L, index) == LUA_TNUMBER ? lua_tointeger(L, index) : -1;
#endif
}

/// Pushes a new object that can have a finalizer (a table; LuaJIT: a userdata).
void push_finalizable(lua_State* L) {
#if defined(LUAJIT_VERSION)
  lua_newuserdata(L, 0);
#else
  lua_createtable(L, 0, 0);
#endif
}

/// Pushes a new object, with no references.
void push_new_object(lua_State* L) {
  push_finalizable(L);
#if defined(LUAJIT_VERSION)
  lua_createtable(L, 0, 0);  // its own environment, for its references
  lua_setfenv(L, -2);
#endif
}

/// Pushes the table that holds the references of the object at `index`: the object's own table
/// (LuaJIT: the userdata's environment).
void push_references(lua_State* L, int index) {
#if defined(LUAJIT_VERSION)
  lua_getfenv(L, index);
#else
  lua_pushvalue(L, index);
#endif
}

// The collector's parameters. Lua's defaults let a heap of a few hundred small tables grow for a
// long time before the collector takes a step; these make it step every few allocations, so that
// its work interleaves with the program's links and unlinks (which is where write barriers
// matter) even in short traces.
//   incremental: a pause of 100 starts a new cycle as soon as one ends. 5.4:
//   collectgarbage("incremental", pause, stepmul, stepsize), with a step size of 2^1 bytes that
//   makes every allocation a step, and a multiplier of 100 (a smaller one does less per step, but
//   then cycles rarely finish within a trace: on 300 generated traces, 1 in 40 frees came from
//   automatic steps with a multiplier of 4, more than half with 100). 5.3 and LuaJIT fix the
//   work of a step (lgc.c's and lj_gc.c's GCSTEPSIZE); the multiplier sets how much allocation
//   waits for the next one: in 5.3, 2.4 KB * 200 / stepmul (an unrooted table was freed after
//   241 more allocations at 100, 18 at 400, 1 at 1000, where one step is a small heap's whole
//   cycle); in LuaJIT a step every 1 KB, whatever the multiplier (at 100: after 19).
constexpr int kIncrementalPause = 100;
constexpr int kIncrementalStepMultiplier = LUA_VERSION_NUM == 503 ? 400 : 100;
//   generational (5.4): collectgarbage("generational", minormul, majormul): a young collection
//   after the heap grows by 1%, a major one after it grows by 20% since the last major one.
#if LUA_VERSION_NUM >= 504
constexpr int kIncrementalStepSize = 1;
constexpr int kGenerationalMinorMultiplier = 1;
constexpr int kGenerationalMajorMultiplier = 20;
#endif

void set_collector_mode(lua_State* L, LuaMode mode) {
#if LUA_VERSION_NUM >= 504
  if (mode == LuaMode::Incremental) {
    lua_gc(L, LUA_GCINC, kIncrementalPause, kIncrementalStepMultiplier, kIncrementalStepSize);
  } else {
    lua_gc(L, LUA_GCGEN, kGenerationalMinorMultiplier, kGenerationalMajorMultiplier);
  }
#else
  (void)mode;  // make_collector asks for Incremental only
  lua_gc(L, LUA_GCSETPAUSE, kIncrementalPause);
  lua_gc(L, LUA_GCSETSTEPMUL, kIncrementalStepMultiplier);
  lua_gc(L, LUA_GCRESTART, 0);  // the first cycle starts at once (LuaJIT's would wait for the
                                // heap to grow fourfold: lj_state.c)
#endif
}

// ================================================================================================
// The adapter
// ================================================================================================

/// The trace's generations: `collect 0` and `collect 1` are steps, `collect 2` is full.
constexpr int kGenerations = 3;

/// The field of a map's table that holds its entries: an ephemeron table (__mode "k").
constexpr const char* kEntries = "entries";
/// The key, outside the sequence 1..n, of an object's table (LuaJIT: its environment) that holds
/// the weak references the object holds: a weak table (kHeldWeakMode), from each weak reference's
/// id to its target, reachable from the holder alone, so that it lives and dies with it. An
/// integer key, so that reading it allocates nothing (the adapter reads it outside protected
/// calls).
constexpr int kHeldWeak = 0;
/// Its mode: weak keys and values. Its keys are integers, which Lua never collects, so it keeps
/// its values as a table with __mode "v" would (the mutator's is one); but Lua keeps such
/// all-weak tables apart (lgc.c's allweak list, cleared by keys and by values): both kinds of
/// weak table are put to the test.
constexpr const char* kHeldWeakMode = "kv";

/// What `inspect` shows for a reference to something that is not an object.
constexpr ObjectId kNotAnObject = std::numeric_limits<ObjectId>::max();

/// A record's references are fields "p<n>", a dict's "k<n>", in the hash part of its table (a
/// list's, a cell's and an acyclic object's are its sequence, in the array part; a set's are
/// keys of its table, each with the value true, as a Lua program keeps a set).
bool in_fields(ObjectKind kind) { return kind == ObjectKind::Record || kind == ObjectKind::Dict; }
const char* field_format(ObjectKind kind) { return kind == ObjectKind::Record ? "p%d" : "k%d"; }
bool is_field_name(lua_State* L, int index) {
  if (lua_type(L, index) != LUA_TSTRING) return false;
  const char* name = lua_tostring(L, index);
  return (name[0] == 'p' || name[0] == 'k') && name[1] >= '0' && name[1] <= '9';
}

/// A tuple is a Lua closure whose upvalues are its items: made by one of these functions, the
/// n-th of which takes n items (Lua compiles them once, at setup).
std::string tuple_makers() {
  std::string chunk = "local makers = {}\n";
  for (std::size_t n = 1; n <= kMaxItems; ++n) {
    std::string items;
    for (std::size_t i = 1; i <= n; ++i) items += (i > 1 ? ", i" : "i") + std::to_string(i);
    chunk += "makers[" + std::to_string(n) + "] = function(" + items +
             ") return function() return " + items + " end end\n";
  }
  return chunk + "return makers\n";
}

class LuaCollector : public Collector {
 public:
  LuaCollector(CollectorHost& listener, LuaMode mode);
  ~LuaCollector() override;

  const Capabilities& capabilities() const override { return capabilities_; }
  void allocate(ObjectId id) override;
  void link(ObjectId from, ObjectId to) override;
  void unlink(ObjectId from, ObjectId to) override;
  void root(ObjectId id) override;
  void unroot(ObjectId id) override;
  std::size_t collect(int generation) override;
  void set_finalizer(ObjectId id) override;
  void set_kind(ObjectId id, ObjectKind kind) override;
  void set_entry(ObjectId map, ObjectId key, ObjectId value) override;
  void remove_entry(ObjectId map, ObjectId key) override;
  void weak_ref(WeakId w, ObjectId target, bool callback) override;
  void weak_held_by(WeakId w, ObjectId holder) override;
  std::optional<ObjectId> deref(WeakId w) const override;
  void inspect(ObjectId id, ObjectView& view) const override;
  std::uint64_t collections() const override { return cycles_; }
  void check_invariants() const override;

  // Called by the finalizers and the allocator, inside Lua: none throws.
  void node_finalized();
  void sentinel_finalized(lua_State* L);
  void block_allocated(const void* block) {
    last_block_ = block;
  }
  void block_freed(const void* block);

 private:
  /// What the adapter holds for one object.
  struct Record {
    bool allocated = false;
    bool freed = false;
    bool has_finalizer = false;
    ObjectKind kind = ObjectKind::List;
    int next_field = 0;              // a record's or dict's: the number of its next field
    const void* block = nullptr;     // where the allocator put it
    std::vector<int> registry_refs;  // its external references
  };
  /// What the adapter holds for one weak reference: a slot of a table with __mode "v" (the
  /// mutator's table of weak references, or its holder's), which Lua clears.
  struct WeakRecord {
    ObjectId target = 0;
    std::optional<ObjectId> holder;
    bool taken = false;
    bool gone = false;  // reported cleared, or gone with its holder: never looked at again
    bool moving = false;  // weak_held_by is moving it: in neither slot (its target on the stack)
  };
  struct Call;  // one operation's arguments and results, across lua_pcall
  enum class CallKind : std::uint8_t;
  static int run_call(lua_State* L);

  /// Runs `c` in protected mode; throws std::runtime_error on a Lua error, and what a finalizer's
  /// program threw meanwhile.
  void call(Call& c);
  void setup(lua_State* L);
  void perform(lua_State* L, Call& c);
  void make_sentinel(lua_State* L);
  void make_tuple_longer(lua_State* L, Call& c);
  void stand_for(lua_State* L, ObjectId id, int old);
  /// Pushes object `id`; returns false (pushing nothing) if Lua no longer has it.
  bool push_object(ObjectId id) const;
  /// The id of the object at `index`, or -1 if it is not an object.
  long long id_of(int index) const;
  /// The block of memory of the object at `index`, as the allocator sees it.
  const void* block_of(int index) const;
  /// Pushes the table whose slot `w` is weak reference w, or returns false (pushing nothing)
  /// when it cannot be named: its holder is dead to Lua and not being finalized.
  bool push_slot_table(WeakId w) const;
  /// Reports the clears of the weak references that Lua has cleared since the adapter last
  /// looked: their slots are nil now. It looks after every call into Lua and before every
  /// finalizer (Lua clears weak values at a cycle's atomic phase, inside some step; what it
  /// cleared is dead to it, and only a finalizer can make it reachable again).
  void look_at_weak_references();
  /// Before object `id`'s free is reported: the weak references it holds go with it, and those
  /// to it are cleared (Lua clears a weak value at the atomic phase, before its sweep frees the
  /// target; the adapter cannot read a table from inside the allocator, so it reports the clear
  /// here, and check_invariants finds the slot nil when it can name it).
  void weak_references_at_free(ObjectId id);

  LuaMode mode_;
  Capabilities capabilities_;
  lua_State* L_ = nullptr;
  std::vector<Record> records_;  // by object id
  std::vector<WeakRecord> weak_;  // by weak reference
  std::vector<WeakId> pending_;   // the weak references neither cleared nor gone
  std::unordered_map<const void*, ObjectId> object_at_;  // by the address of its block
  std::exception_ptr error_;     // thrown inside Lua, by a finalizer's program
  int objects_ref_ = 0;          // registry: id -> object, weak values
  int ids_ref_ = 0;              // registry: object -> id, weak keys
  int weak_ref_ = 0;             // registry: the mutator's weak references, id -> target, weak
                                 // values
  int held_weak_ref_ = 0;        // registry: weak reference id -> its holder's table of weak
                                 // references, weak values (they keep no holder's table alive)
  int node_metatable_ref_ = 0;   // registry: the metatable of objects with a finalizer
  int tuple_makers_ref_ = 0;     // registry: tuple_makers()
  int sentinel_metatable_ref_ = 0;
  const void* last_block_ = nullptr;     // the block the allocator gave last
  std::ptrdiff_t userdata_header_ = 0;   // from a userdata's block to its contents
  std::uint64_t cycles_ = 0;
  bool closing_ = false;  // lua_close finalizes what is left: not the trace's frees
};

LuaCollector* adapter_of(lua_State* L) {
  return static_cast<LuaCollector*>(lua_touserdata(L, lua_upvalueindex(1)));
}

int on_node_finalized(lua_State* L) {
  adapter_of(L)->node_finalized();
  return 0;
}

int on_sentinel_finalized(lua_State* L) {
  adapter_of(L)->sentinel_finalized(L);
  return 0;
}

// The state's allocator: malloc's, so that AddressSanitizer sees every free, and the adapter
// sees each object's block go.
void* allocate_block(void* adapter, void* block, std::size_t /*old_size*/, std::size_t size) {
  auto* self = static_cast<LuaCollector*>(adapter);
  if (size == 0) {
    if (block != nullptr) self->block_freed(block);
    std::free(block);
    return nullptr;
  }
  void* moved = std::realloc(block, size);
  if (block == nullptr) self->block_allocated(moved);
  return moved;
}

// An error outside any protected call (none is expected: every operation is one).
int on_panic(lua_State* L) {
  std::fprintf(stderr, "%s: unprotected error: %s\n", kRuntime,
               lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(not a string)");
  return 0;  // Lua aborts
}

/// Pushes a new table whose metatable has `__mode = mode`.
void push_weak_table(lua_State* L, const char* mode) {
  lua_createtable(L, 0, 0);
  lua_createtable(L, 0, 1);
  lua_pushstring(L, mode);
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
}

/// Pushes a new metatable whose __gc is `finalizer`, bound to `adapter`.
void push_finalizing_metatable(lua_State* L, LuaCollector* adapter, lua_CFunction finalizer) {
  lua_createtable(L, 0, 1);
  lua_pushlightuserdata(L, adapter);
  lua_pushcclosure(L, finalizer, 1);
  lua_setfield(L, -2, "__gc");
}

enum class LuaCollector::CallKind : std::uint8_t {
  Setup,
  Allocate,
  Link,
  Unlink,
  Root,
  Unroot,
  Collect,
  SetFinalizer,
  SetEntry,
  RemoveEntry,
  WeakRef,
  HoldWeak,
  MakeCell
};

struct LuaCollector::Call {
  LuaCollector* self;
  CallKind kind;
  ObjectId a = 0;
  ObjectId b = 0;
  ObjectId c = 0;  // SetEntry: the value
  WeakId w = 0;    // WeakRef, HoldWeak
  int ref = LUA_NOREF;  // Allocate, Root: the registry reference made; Unroot: the one to drop
  const void* block = nullptr;  // Allocate: the new object's block; Link: a tuple's new block
  ObjectKind object_kind = ObjectKind::List;  // Link, Unlink: a's kind
  int field = 0;                       // Link: the number of a record's or dict's new field
};

LuaCollector::LuaCollector(CollectorHost& listener, LuaMode mode)
    : Collector(listener),
      mode_(mode),
      capabilities_{.reference_counting = false,
                    .generations = kGenerations,
                    .young_collections_are_steps = true,
                    .automatic_collection = true,
                    .count = CountMeaning::External,
                    .collect_count = CollectCount::None,
                    .frees_garbage_in_steps = true,
                    .keeps_finalized_a_cycle = true,
                    .inspectable = false,
                    .finalizers = true,
                    .weak_references = true,
                    .weak_reference_callbacks = false,
                    .weak_references_cleared_before_finalizers = true,
                    .weak_reference_holders = true,
                    .weak_references_of_garbage_outlive_finalizers = true,
                    .finalizers_of_an_earlier_cycle_run_first = mode == LuaMode::Incremental,
                    .weak_references_cleared_once_finalized = kObjectsAreUserdata,
                    .map_entries = kObjectsAreUserdata ? MapEntries::Harness
                                                       : MapEntries::Ephemerons} {
  L_ = lua_newstate(&allocate_block, this);
  if (L_ == nullptr) {
    throw std::runtime_error(std::string(kRuntime) + ": cannot make a state: out of memory");
  }
  lua_atpanic(L_, &on_panic);
  Call setup_call{this, CallKind::Setup};
  try {
    call(setup_call);
  } catch (...) {
    closing_ = true;
    lua_close(L_);
    throw;
  }
}

LuaCollector::~LuaCollector() {
  closing_ = true;
  lua_close(L_);
}

// ================================================================================================
// Protected calls
// ================================================================================================

int LuaCollector::run_call(lua_State* L) {
  Call* c = static_cast<Call*>(lua_touserdata(L, 1));
  lua_pop(L, 1);
  c->self->perform(L, *c);
  return 0;
}

void LuaCollector::call(Call& c) {
  lua_pushcfunction(L_, &LuaCollector::run_call);
  lua_pushlightuserdata(L_, &c);
  if (lua_pcall(L_, 1, 0, 0) != LUA_OK) {
    std::string message = lua_type(L_, -1) == LUA_TSTRING ? lua_tostring(L_, -1)
                                                           : "an error that is not a string";
    lua_pop(L_, 1);
    error_ = nullptr;
    throw std::runtime_error(std::string(kRuntime) + ": " + message);
  }
  look_at_weak_references();
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

// Runs inside lua_pcall: a Lua error longjmps (LuaJIT: unwinds) out of here, so no local needs
// destruction.
void LuaCollector::perform(lua_State* L, Call& c) {
  // Pushes an object the program can reach; Lua must still have it.
  const auto push_reachable = [&](ObjectId id) {
    if (!push_object(id)) {
      luaL_error(L, "object %d is gone from the weak table of objects but is reachable",
                 static_cast<int>(id));
    }
  };
  // Pushes the table of the references of an object the program can reach.
  const auto push_references_of = [&](ObjectId id) {
    push_reachable(id);
    push_references(L, -1);
    lua_remove(L, -2);
  };
  switch (c.kind) {
    case CallKind::Setup:
      setup(L);
      break;
    case CallKind::Allocate:
      push_new_object(L);  // may take a step of the collector
      c.block = block_of(-1);
      lua_rawgeti(L, LUA_REGISTRYINDEX, objects_ref_);
      lua_pushvalue(L, -2);
      lua_rawseti(L, -2, c.a);
      lua_pop(L, 1);
      lua_rawgeti(L, LUA_REGISTRYINDEX, ids_ref_);
      lua_pushvalue(L, -2);
      lua_pushinteger(L, c.a);
      lua_rawset(L, -3);
      lua_pop(L, 1);
      c.ref = luaL_ref(L, LUA_REGISTRYINDEX);
      break;
    case CallKind::MakeCell: {
      push_reachable(c.a);
      const int old = lua_gettop(L);
      push_cell(L);  // (may take a step of the collector)
      c.block = block_of(-1);
      stand_for(L, c.a, old);
      lua_pop(L, 2);
      break;
    }
    case CallKind::Link:
      if (c.object_kind == ObjectKind::Tuple) {
        make_tuple_longer(L, c);
        break;
      }
      push_reachable(c.a);
      if (is_cell_userdata(L, -1)) {  // (the trace never links from a full cell)
        push_reachable(c.b);
        set_user_value(L, -2, kCellReferent);
        lua_pop(L, 1);
        break;
      }
      if (kAcyclicMetatables && c.object_kind == ObjectKind::Acyclic) {
        if (lua_getmetatable(L, -1) != 0) {
          lua_pop(L, 1);
        } else {
          push_reachable(c.b);  // its first reference: its metatable (it never has a finalizer)
          lua_setmetatable(L, -2);
          lua_pop(L, 1);
          break;
        }
      }
      lua_pop(L, 1);
      push_references_of(c.a);
      if (in_fields(c.object_kind)) {
        lua_pushfstring(L, field_format(c.object_kind), c.field);
        push_reachable(c.b);
        lua_rawset(L, -3);
      } else if (c.object_kind == ObjectKind::Set) {  // set[b] = true
        push_reachable(c.b);
        lua_pushboolean(L, 1);
        lua_rawset(L, -3);
      } else {
        push_reachable(c.b);
        lua_rawseti(L, -2, length(L, -2) + 1);
      }
      lua_pop(L, 1);
      break;
    case CallKind::Unlink: {
      // An object Lua can no longer name is dead to it (its weak entries go at the atomic
      // phase): the sweep frees it, where the checks see the free; until then, what it refers to
      // changes nothing Lua looks at. (The harness unlinks the values of a garbage map whose
      // key was freed.)
      if (!push_object(c.a)) break;
      if (kAcyclicMetatables && c.object_kind == ObjectKind::Acyclic &&
          lua_getmetatable(L, -1) != 0) {
        push_reachable(c.b);
        const bool found = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
        if (found) {
          lua_pushnil(L);
          lua_setmetatable(L, -2);
          lua_pop(L, 1);
          break;
        }
      }
      if (is_cell_userdata(L, -1)) {
        push_user_value(L, -1, kCellReferent);
        push_reachable(c.b);
        if (!lua_rawequal(L, -1, -2)) {
          luaL_error(L, "object %d holds no reference to object %d", static_cast<int>(c.a),
                     static_cast<int>(c.b));
        }
        lua_pushnil(L);
        set_user_value(L, -4, kCellReferent);
        lua_pop(L, 3);
        break;
      }
      push_references(L, -1);
      lua_remove(L, -2);
      push_reachable(c.b);
      if (c.object_kind == ObjectKind::Set) {  // set[b] = nil
        lua_pushvalue(L, -1);
        lua_rawget(L, -3);
        const bool member = lua_toboolean(L, -1) != 0;
        lua_pop(L, 1);
        if (!member) {
          luaL_error(L, "set %d holds no object %d", static_cast<int>(c.a), static_cast<int>(c.b));
        }
        lua_pushnil(L);
        lua_rawset(L, -3);
        lua_pop(L, 1);
        break;
      }
      if (in_fields(c.object_kind)) {  // the field that holds it: set it to nil
        lua_pushnil(L);
        bool found = false;
        while (!found && lua_next(L, -3) != 0) {
          found = is_field_name(L, -2) && lua_rawequal(L, -1, -3);
          lua_pop(L, 1);
        }
        if (!found) {
          luaL_error(L, "object %d holds no reference to object %d", static_cast<int>(c.a),
                     static_cast<int>(c.b));
        }
        lua_pushnil(L);
        lua_rawset(L, -4);
        lua_pop(L, 2);
        break;
      }
      const lua_Integer n = length(L, -2);
      lua_Integer i = n;
      for (; i >= 1; --i) {
        lua_rawgeti(L, -2, i);
        const bool found = lua_rawequal(L, -1, -2);
        lua_pop(L, 1);
        if (found) break;
      }
      if (i < 1) {
        luaL_error(L, "object %d holds no reference to object %d", static_cast<int>(c.a),
                   static_cast<int>(c.b));
      }
      lua_rawgeti(L, -2, n);  // a[i] = a[n]; a[n] = nil
      lua_rawseti(L, -3, i);
      lua_pushnil(L);
      lua_rawseti(L, -3, n);
      lua_pop(L, 2);
      break;
    }
    case CallKind::Root:  // (of an object being finalized, too: its weak value is set again)
      push_reachable(c.a);
      lua_rawgeti(L, LUA_REGISTRYINDEX, objects_ref_);
      lua_pushvalue(L, -2);
      lua_rawseti(L, -2, c.a);
      lua_pop(L, 1);
      c.ref = luaL_ref(L, LUA_REGISTRYINDEX);
      break;
    case CallKind::SetEntry:  // map a's entry for key b is c (never asked of LuaJIT: Harness)
    case CallKind::RemoveEntry: {
      push_references_of(c.a);
      lua_getfield(L, -1, kEntries);
      if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        push_weak_table(L, "k");  // an ephemeron table: Lua's own weak-keyed map
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, kEntries);
      }
      push_reachable(c.b);
      if (c.kind == CallKind::SetEntry) {
        push_reachable(c.c);
      } else {
        lua_pushnil(L);
      }
      lua_rawset(L, -3);
      lua_pop(L, 2);
      break;
    }
    case CallKind::WeakRef:  // the mutator's: a slot of its table of weak references
      lua_rawgeti(L, LUA_REGISTRYINDEX, weak_ref_);
      push_reachable(c.a);
      lua_rawseti(L, -2, c.w);
      lua_pop(L, 1);
      break;
    case CallKind::HoldWeak:  // moves weak reference c.w into object c.a's table of them
      push_reachable(c.a);
      if (is_cell_userdata(L, -1)) {
        push_user_value(L, -1, kCellHeldWeak);
        if (lua_isnil(L, -1)) {
          lua_pop(L, 1);
          push_weak_table(L, kHeldWeakMode);
          lua_pushvalue(L, -1);
          set_user_value(L, -3, kCellHeldWeak);
        }
      } else {
        push_references(L, -1);
        lua_remove(L, -2);
        lua_rawgeti(L, -1, kHeldWeak);
        if (lua_isnil(L, -1)) {
          lua_pop(L, 1);
          push_weak_table(L, kHeldWeakMode);
          lua_pushvalue(L, -1);
          lua_rawseti(L, -3, kHeldWeak);
        }
      }
      lua_rawgeti(L, LUA_REGISTRYINDEX, weak_ref_);
      lua_rawgeti(L, -1, c.w);
      lua_rawseti(L, -3, c.w);
      lua_pushnil(L);
      lua_rawseti(L, -2, c.w);
      lua_pop(L, 1);
      lua_rawgeti(L, LUA_REGISTRYINDEX, held_weak_ref_);
      lua_pushvalue(L, -2);
      lua_rawseti(L, -2, c.w);
      lua_pop(L, 3);
      break;
    case CallKind::SetFinalizer:
      push_reachable(c.a);
      lua_rawgeti(L, LUA_REGISTRYINDEX, node_metatable_ref_);
      lua_setmetatable(L, -2);  // the metatable has __gc: the object is marked for finalization
      lua_pop(L, 1);
      break;
    case CallKind::Unroot:
      luaL_unref(L, LUA_REGISTRYINDEX, c.ref);
      break;
    case CallKind::Collect:  // (c.a: whether it is full)
      lua_gc(L, c.a != 0 ? LUA_GCCOLLECT : LUA_GCSTEP, 0);
      break;
  }
}

void LuaCollector::setup(lua_State* L) {
  if constexpr (kObjectsAreUserdata || kCellsAreUserdata) {
    // The headers do not say how far into its block a userdata's contents begin (the size of
    // its header, and in 5.4 of its user values): measured on a first userdata of the kind the
    // adapter makes, the last block allocated (LuaJIT's lua_newuserdata takes its collector step
    // before it allocates, 5.4's after, and a step allocates no new block; the stack has room).
    lua_checkstack(L, 1);
    if constexpr (kCellsAreUserdata) {
      push_cell(L);
    } else {
      lua_newuserdata(L, 0);
    }
    const char* contents = static_cast<const char*>(lua_touserdata(L, -1));
    userdata_header_ = contents - static_cast<const char*>(last_block_);
    lua_pop(L, 1);
    if (userdata_header_ <= 0 || userdata_header_ > 256) {
      luaL_error(L, "a userdata's contents are not just after its header (%d bytes apart)",
                 static_cast<int>(userdata_header_));
    }
  }
  push_weak_table(L, "v");
  objects_ref_ = luaL_ref(L, LUA_REGISTRYINDEX);
  push_weak_table(L, "k");
  ids_ref_ = luaL_ref(L, LUA_REGISTRYINDEX);
  push_weak_table(L, "v");
  weak_ref_ = luaL_ref(L, LUA_REGISTRYINDEX);
  push_weak_table(L, "v");
  held_weak_ref_ = luaL_ref(L, LUA_REGISTRYINDEX);
  push_finalizing_metatable(L, this, &on_node_finalized);
  node_metatable_ref_ = luaL_ref(L, LUA_REGISTRYINDEX);
  const std::string makers = tuple_makers();
  if (luaL_loadbuffer(L, makers.data(), makers.size(), "tuple makers") != 0) lua_error(L);
  lua_call(L, 0, 1);
  tuple_makers_ref_ = luaL_ref(L, LUA_REGISTRYINDEX);
  push_finalizing_metatable(L, this, &on_sentinel_finalized);
  sentinel_metatable_ref_ = luaL_ref(L, LUA_REGISTRYINDEX);
  make_sentinel(L);
  set_collector_mode(L, mode_);
}

// A tuple's links all come as it is made (the trace refuses any later one): each makes its closure
// again, one upvalue longer, which stands for the object from then on (the object made before,
// unnamed, is no longer the trace's).
void LuaCollector::make_tuple_longer(lua_State* L, Call& c) {
  if (!push_object(c.a)) luaL_error(L, "tuple %d is gone while it is made", static_cast<int>(c.a));
  const int old = lua_gettop(L);
  int n = 0;
  if (lua_type(L, old) == LUA_TFUNCTION) {
    while (lua_getupvalue(L, old, n + 1) != nullptr) ++n;  // (pushes the items)
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, tuple_makers_ref_);
  lua_rawgeti(L, -1, n + 1);
  lua_remove(L, -2);
  lua_insert(L, old + 1);
  if (!push_object(c.b)) luaL_error(L, "object %d is gone but is reachable", static_cast<int>(c.b));
  lua_call(L, n + 1, 1);  // (may take a step of the collector)
  c.block = block_of(-1);
  stand_for(L, c.a, old);
  lua_pop(L, 2);
}

// The object on the top of the stack is object `id` from now on, instead of the one at `old`,
// which the trace has just made (nothing refers to it): every table that names `id` names it.
void LuaCollector::stand_for(lua_State* L, ObjectId id, int old) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, objects_ref_);
  lua_pushvalue(L, -2);
  lua_rawseti(L, -2, id);
  lua_pop(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ids_ref_);
  lua_pushvalue(L, -2);
  lua_pushinteger(L, id);
  lua_rawset(L, -3);
  lua_pushvalue(L, old);  // (the object made before names nothing)
  lua_pushnil(L);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  for (int ref : records_[id].registry_refs) {
    lua_pushvalue(L, -1);
    lua_rawseti(L, LUA_REGISTRYINDEX, ref);
  }
}

void LuaCollector::make_sentinel(lua_State* L) {
  push_finalizable(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, sentinel_metatable_ref_);
  lua_setmetatable(L, -2);
  lua_pop(L, 1);  // unreferenced: the next cycle finalizes it
}
void LuaCollector::allocate(ObjectId id) {
  if (records_.size() <= id) records_.resize(id + 1);
  Call c{this, CallKind::Allocate, id};
  call(c);
  records_[id].allocated = true;
  records_[id].registry_refs.push_back(c.ref);
  records_[id].block = c.block;
  object_at_[c.block] = id;
}

void LuaCollector::set_entry(ObjectId map, ObjectId key, ObjectId value) {
  Call c{this, CallKind::SetEntry, map, key, value};
  call(c);
}

void LuaCollector::remove_entry(ObjectId map, ObjectId key) {
  Call c{this, CallKind::RemoveEntry, map, key};
  call(c);
}

// Lua has no callbacks (Capabilities::weak_reference_callbacks is off): `callback` is unused.
void LuaCollector::weak_ref(WeakId w, ObjectId target, bool /*callback*/) {
  if (weak_.size() <= w) weak_.resize(w + 1);
  pending_.reserve(pending_.size() + 1);
  Call c{this, CallKind::WeakRef, target};
  c.w = w;
  call(c);
  weak_[w].target = target;
  weak_[w].taken = true;
  pending_.push_back(w);
}

// A step of the collector during the move (a table grows) may run a finalizer, which looks at
// the weak references: this one is in neither slot then, and its target, on the stack, cannot be
// cleared. After the move it is looked at where it went.
void LuaCollector::weak_held_by(WeakId w, ObjectId holder) {
  weak_[w].holder = holder;
  weak_[w].moving = true;
  Call c{this, CallKind::HoldWeak, holder};
  c.w = w;
  try {
    call(c);
  } catch (...) {
    weak_[w].moving = false;
    throw;
  }
  weak_[w].moving = false;
  look_at_weak_references();  // (call's own look left it out)
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

// What the slot holds, read whenever it can be named (a weak reference reported cleared too, so
// that a slot Lua did not clear shows).
std::optional<ObjectId> LuaCollector::deref(WeakId w) const {
  if (w >= weak_.size() || !weak_[w].taken) return std::nullopt;
  const int top = lua_gettop(L_);
  if (!push_slot_table(w)) return std::nullopt;
  lua_rawgeti(L_, -1, w);
  const bool empty = lua_isnil(L_, -1);
  const long long id = empty ? -1 : id_of(-1);
  lua_settop(L_, top);
  if (empty) return std::nullopt;
  return id < 0 ? kNotAnObject : static_cast<ObjectId>(id);
}

void LuaCollector::set_finalizer(ObjectId id) {
  Call c{this, CallKind::SetFinalizer, id};
  call(c);
  records_[id].has_finalizer = true;
}

// (A finalizer's program may allocate during the call: records_ may move.)
// A Lua 5.4 cell is made again, as a userdata, right after its table.
void LuaCollector::set_kind(ObjectId id, ObjectKind kind) {
  records_.at(id).kind = kind;
  if (kind != ObjectKind::Cell || !kCellsAreUserdata) return;
  Call c{this, CallKind::MakeCell, id};
  object_at_.reserve(object_at_.size() + 1);
  call(c);
  Record& r = records_[id];
  object_at_.erase(r.block);
  r.block = c.block;
  object_at_[c.block] = id;
}

void LuaCollector::link(ObjectId from, ObjectId to) {
  Call c{this, CallKind::Link, from, to};
  c.object_kind = records_.at(from).kind;
  c.field = records_[from].next_field;
  object_at_.reserve(object_at_.size() + 1);
  call(c);
  Record& r = records_[from];
  if (in_fields(r.kind)) ++r.next_field;
  if (r.kind == ObjectKind::Tuple) {
    object_at_.erase(r.block);
    r.block = c.block;
    object_at_[c.block] = from;
  }
}

void LuaCollector::unlink(ObjectId from, ObjectId to) {
  Call c{this, CallKind::Unlink, from, to};
  c.object_kind = records_.at(from).kind;
  call(c);
}

void LuaCollector::root(ObjectId id) {
  records_[id].registry_refs.reserve(records_[id].registry_refs.size() + 1);
  Call c{this, CallKind::Root, id};
  call(c);
  records_[id].registry_refs.push_back(c.ref);
}

void LuaCollector::unroot(ObjectId id) {
  Call c{this, CallKind::Unroot, id};
  c.ref = records_[id].registry_refs.back();
  records_[id].registry_refs.pop_back();
  call(c);
}

// A young generation's is one step, collectgarbage("step", 0) (young_collections_are_steps): a
// basic step of the incremental collector (in 5.4, the work of a step of size 2^1 bytes; in 5.3
// and LuaJIT, one GCSTEPSIZE of work), or in 5.4's generational mode a young collection (or a
// major one, as Lua sees fit). Lua's collectgarbage("collect") returns 0, not a count
// (Capabilities::collect_count is None); so does the step's.
std::size_t LuaCollector::collect(int generation) {
  Call c{this, CallKind::Collect, capabilities_.is_full_collection(generation) ? 1u : 0u};
  call(c);
  return 0;
}

// ================================================================================================
// Finalizers
// ================================================================================================

// The table being finalized is the finalizer's argument, at stack index 1. The program's calls
// back into the adapter are protected calls of their own.
void LuaCollector::node_finalized() {
  if (closing_) return;
  const long long id = id_of(1);
  if (id < 0) return;
  look_at_weak_references();  // (a finalizer may resurrect what Lua cleared)
  try {
    run_finalizer(static_cast<ObjectId>(id));
  } catch (...) {
    if (!error_) error_ = std::current_exception();
  }
}

// (Lua's own blocks, and those of what is not an object, are not in object_at_.)
void LuaCollector::block_freed(const void* block) {
  const auto it = object_at_.find(block);
  if (it == object_at_.end()) return;
  const ObjectId id = it->second;
  object_at_.erase(it);
  records_[id].freed = true;
  if (closing_) return;
  try {
    weak_references_at_free(id);
    report_free(id);
  } catch (...) {
    if (!error_) error_ = std::current_exception();
  }
}

void LuaCollector::look_at_weak_references() {
  for (std::size_t i = 0; i < pending_.size();) {
    const WeakId w = pending_[i];
    bool cleared = false;
    if (!weak_[w].moving && push_slot_table(w)) {
      lua_rawgeti(L_, -1, w);
      cleared = lua_isnil(L_, -1);
      lua_pop(L_, 2);
    }
    if (!cleared) {
      ++i;
      continue;
    }
    pending_[i] = pending_.back();
    pending_.pop_back();
    weak_[w].gone = true;
    try {
      report_weak_cleared(w);
    } catch (...) {
      if (!error_) error_ = std::current_exception();
    }
  }
}

// (Called inside the allocator: reads nothing of Lua's. Its callers catch what the host throws.)
void LuaCollector::weak_references_at_free(ObjectId id) {
  for (std::size_t i = 0; i < pending_.size();) {
    const WeakId w = pending_[i];
    WeakRecord& r = weak_[w];
    const bool holder_freed = r.holder == id;
    if (!holder_freed && r.target != id) {
      ++i;
      continue;
    }
    pending_[i] = pending_.back();
    pending_.pop_back();
    r.gone = true;
    if (!holder_freed) report_weak_cleared(w);
  }
}

void LuaCollector::sentinel_finalized(lua_State* L) {
  if (closing_) return;
  ++cycles_;
  make_sentinel(L);
}

// ================================================================================================
// Naming objects
// ================================================================================================

bool LuaCollector::push_object(ObjectId id) const {
  lua_rawgeti(L_, LUA_REGISTRYINDEX, objects_ref_);
  lua_rawgeti(L_, -1, id);
  lua_remove(L_, -2);
  if (!lua_isnil(L_, -1)) return true;
  lua_pop(L_, 1);
  // Lua clears the weak values of objects it is about to finalize, but keeps their weak keys
  // until after the finalizer: look for the object among the keys of ids.
  lua_rawgeti(L_, LUA_REGISTRYINDEX, ids_ref_);
  lua_pushnil(L_);
  while (lua_next(L_, -2) != 0) {
    const bool found = integer_at(L_, -1) == id;
    lua_pop(L_, 1);
    if (found) {
      lua_remove(L_, -2);
      return true;
    }
  }
  lua_pop(L_, 1);
  return false;
}

bool LuaCollector::push_slot_table(WeakId w) const {
  const WeakRecord& r = weak_[w];
  if (!r.holder) {
    lua_rawgeti(L_, LUA_REGISTRYINDEX, weak_ref_);
    return true;
  }
  lua_rawgeti(L_, LUA_REGISTRYINDEX, held_weak_ref_);
  lua_rawgeti(L_, -1, w);
  lua_remove(L_, -2);
  if (!lua_isnil(L_, -1)) return true;
  lua_pop(L_, 1);
  // Lua cleared that weak value: the holder's table is dead to it, or being finalized with the
  // holder, whose table it may still clear (it clears the weak tables that finalization keeps).
  if (records_[*r.holder].freed || !push_object(*r.holder)) return false;
  if (is_cell_userdata(L_, -1)) {
    push_user_value(L_, -1, kCellHeldWeak);
  } else {
    push_references(L_, -1);
    lua_remove(L_, -2);
    lua_rawgeti(L_, -1, kHeldWeak);
  }
  lua_remove(L_, -2);
  if (lua_istable(L_, -1)) return true;
  lua_pop(L_, 1);  // (check_invariants reports a holder without its table)
  return false;
}

long long LuaCollector::id_of(int index) const {
  const int at = absolute_index(L_, index);
  lua_rawgeti(L_, LUA_REGISTRYINDEX, ids_ref_);
  lua_pushvalue(L_, at);
  lua_rawget(L_, -2);
  const long long id = integer_at(L_, -1);
  lua_pop(L_, 2);
  return id;
}

const void* LuaCollector::block_of(int index) const {
  if ((kObjectsAreUserdata || kCellsAreUserdata) && lua_type(L_, index) == LUA_TUSERDATA) {
    return static_cast<const char*>(lua_touserdata(L_, index)) - userdata_header_;
  }
  return lua_topointer(L_, index);  // a table's or a closure's address is its block's
}

// ================================================================================================
// Inspection
// ================================================================================================

void LuaCollector::inspect(ObjectId id, ObjectView& view) const {
  view.references.clear();
  view.count = 0;
  view.generation = 0;  // Lua's ages (new, survival, old...) are not generations of collect(g)
  const int top = lua_gettop(L_);
  if (!push_object(id)) {
    view.references.push_back(kNotAnObject);  // Lua has no object for it
    return;
  }
  const int object = lua_gettop(L_);
  const auto add = [&](int index) {
    const long long referent = id_of(index);
    view.references.push_back(referent < 0 ? kNotAnObject : static_cast<ObjectId>(referent));
  };
  if (lua_type(L_, object) == LUA_TFUNCTION) {  // a tuple: its upvalues
    for (int i = 1; lua_getupvalue(L_, object, i) != nullptr; ++i) {
      add(-1);
      lua_pop(L_, 1);
    }
  } else if (is_cell_userdata(L_, object)) {
    push_user_value(L_, object, kCellReferent);
    if (!lua_isnil(L_, -1)) add(-1);
    lua_pop(L_, 1);
  } else {
    if (lua_getmetatable(L_, object) != 0) {  // an acyclic object's first reference
      if (id_of(-1) >= 0) add(-1);
      lua_pop(L_, 1);
    }
    push_references(L_, object);
    lua_pushnil(L_);
    while (lua_next(L_, -2) != 0) {  // the sequence, a record's or dict's fields, a set's keys
      if (integer_at(L_, -2) >= 1 || is_field_name(L_, -2)) {
        add(-1);
      } else if (lua_type(L_, -1) == LUA_TBOOLEAN && id_of(-2) >= 0) {
        add(-2);
      }
      lua_pop(L_, 1);
    }
  }
  // External references: the registry entries that hold this very object.
  for (int ref : records_[id].registry_refs) {
    lua_rawgeti(L_, LUA_REGISTRYINDEX, ref);
    view.count += lua_rawequal(L_, -1, object);
    lua_pop(L_, 1);
  }
  lua_settop(L_, top);
}

// The allocator's table of addresses holds exactly the objects not freed. Each of them that the
// adapter can name (a dead object cannot be named between the atomic phase that cleared its weak
// entries and the sweep that frees it; one with a registry reference always can) is named by its
// id, has the finalizers' metatable if and only if the trace gave it a finalizer, is held by each
// of its registry references, and has a table of references (its own; LuaJIT: its environment)
// that holds nothing but a sequence of objects, a record's or dict's fields of objects, and a
// map's entries; a tuple is a closure whose upvalues are objects; a Lua 5.4 cell is a userdata
// whose user values are its referent (or nil) and its table of weak references.
void LuaCollector::check_invariants() const {
  const int top = lua_gettop(L_);
  const auto fail = [&](ObjectId id, const std::string& what) {
    lua_settop(L_, top);
    throw BrokenInvariant(std::string(kRuntime) + ": object " + std::to_string(id) + " " + what);
  };
  // The weak references object `id` holds, in the table on the top of the stack: from their ids
  // to their targets.
  const auto check_held_weak = [&](ObjectId id) {
    if (!lua_istable(L_, -1)) fail(id, "has weak references that are not a table");
    lua_pushnil(L_);
    while (lua_next(L_, -2) != 0) {
      const long long w = integer_at(L_, -2);
      if (w < 0 || static_cast<std::size_t>(w) >= weak_.size() || weak_[w].holder != id) {
        fail(id, "holds a weak reference that is not its own");
      }
      if (id_of(-1) != weak_[w].target) fail(id, "holds a weak reference to another object");
      lua_pop(L_, 1);
    }
  };
  std::size_t alive = 0;
  for (ObjectId id = 0; id < records_.size(); ++id) {
    const Record& r = records_[id];
    if (!r.allocated || r.freed) continue;
    ++alive;
    if (!push_object(id)) {
      if (!r.registry_refs.empty()) fail(id, "has registry references but no object");
      continue;
    }
    const int object = lua_gettop(L_);
    if (id_of(object) != id) fail(id, "is an object that the table of ids names otherwise");
    if (object_at_.find(block_of(object)) == object_at_.end()) {
      fail(id, "is at an address the allocator does not know");
    }
    const bool has_metatable = lua_getmetatable(L_, object) != 0;
    if (has_metatable && !r.has_finalizer && kAcyclicMetatables && r.kind == ObjectKind::Acyclic) {
      if (id_of(-1) < 0) fail(id, "has a metatable that is no object");
      lua_pop(L_, 1);
    } else if (has_metatable != r.has_finalizer) {
      fail(id, r.has_finalizer ? "has lost its finalizer's metatable" : "has a metatable");
    } else if (has_metatable) {
      lua_rawgeti(L_, LUA_REGISTRYINDEX, node_metatable_ref_);
      if (!lua_rawequal(L_, -1, -2)) fail(id, "has a metatable that is not the finalizers'");
      lua_pop(L_, 2);
    }
    for (int ref : r.registry_refs) {
      lua_rawgeti(L_, LUA_REGISTRYINDEX, ref);
      if (!lua_rawequal(L_, -1, object)) fail(id, "is not what its registry reference holds");
      lua_pop(L_, 1);
    }
    if (is_cell_userdata(L_, object)) {
      push_user_value(L_, object, kCellReferent);
      if (!lua_isnil(L_, -1) && id_of(-1) < 0) {
        fail(id, "refers to something that is not an object");
      }
      lua_pop(L_, 1);
      push_user_value(L_, object, kCellHeldWeak);
      if (!lua_isnil(L_, -1)) check_held_weak(id);
      lua_settop(L_, top);
      continue;
    }
    if (r.kind == ObjectKind::Tuple && lua_type(L_, object) == LUA_TFUNCTION) {
      for (int i = 1; lua_getupvalue(L_, object, i) != nullptr; ++i) {
        if (id_of(-1) < 0) fail(id, "has an item that is not an object");
        lua_pop(L_, 1);
      }
      lua_settop(L_, top);
      continue;
    }
    push_references(L_, object);
    if (!lua_istable(L_, -1)) fail(id, "has no table of references");
    const lua_Integer n = length(L_, -1);
    lua_Integer entries = 0;
    lua_pushnil(L_);
    while (lua_next(L_, -2) != 0) {
      if (lua_type(L_, -2) == LUA_TSTRING && std::strcmp(lua_tostring(L_, -2), kEntries) == 0) {
        // A map's ephemeron table: objects to objects (Lua removes the entries of dead keys at
        // the atomic phase).
        if (!lua_istable(L_, -1)) fail(id, "has entries that are not a table");
        lua_pushnil(L_);
        while (lua_next(L_, -2) != 0) {
          if (id_of(-2) < 0 || id_of(-1) < 0) fail(id, "has an entry that is no object's");
          lua_pop(L_, 1);
        }
        lua_pop(L_, 1);
        continue;
      }
      if (lua_type(L_, -2) == LUA_TNUMBER && integer_at(L_, -2) == kHeldWeak) {
        check_held_weak(id);
        lua_pop(L_, 1);
        continue;
      }
      if (in_fields(r.kind) && is_field_name(L_, -2)) {
        if (id_of(-1) < 0) fail(id, "has a field that is not an object");
        lua_pop(L_, 1);
        continue;
      }
      if (r.kind == ObjectKind::Set && lua_type(L_, -2) != LUA_TNUMBER) {
        if (id_of(-2) < 0 || lua_type(L_, -1) != LUA_TBOOLEAN) {
          fail(id, "has a member that is not an object, or not kept as true");
        }
        lua_pop(L_, 1);
        continue;
      }
      ++entries;
      const long long at = integer_at(L_, -2);
      if (at < 1 || at > n) fail(id, "has an entry outside its sequence 1.." + std::to_string(n));
      if (id_of(-1) < 0) fail(id, "refers to something that is not an object");
      lua_pop(L_, 1);
    }
    if (entries != n) fail(id, "has a sequence with holes");
    lua_settop(L_, top);
  }
  // Each weak reference whose slot can be named holds its target until the adapter reported it
  // cleared, and nothing after (a clear reported at its target's free was inferred).
  for (WeakId w = 0; w < weak_.size(); ++w) {
    const WeakRecord& r = weak_[w];
    if (!r.taken || (r.holder && records_[*r.holder].freed) || !push_slot_table(w)) continue;
    lua_rawgeti(L_, -1, w);
    const char* wrong = nullptr;
    if (r.gone && !lua_isnil(L_, -1)) wrong = "was reported cleared, but its slot is not empty";
    if (!r.gone && id_of(-1) != r.target) wrong = "has a slot that does not hold its target";
    lua_settop(L_, top);
    if (wrong != nullptr) {
      throw BrokenInvariant(std::string(kRuntime) + ": weak reference " + std::to_string(w) +
                            " " + wrong);
    }
  }
  if (alive != object_at_.size()) {
    throw BrokenInvariant(std::string(kRuntime) + ": the allocator knows " +
                          std::to_string(object_at_.size()) + " objects' blocks, not the " +
                          std::to_string(alive) + " objects not freed");
  }
}

}  // namespace

namespace CYCLEFUZZ_LUA {

#if LUA_VERSION_NUM >= 504
std::unique_ptr<Collector> make_collector(CollectorHost& host, LuaMode mode) {
  return std::make_unique<LuaCollector>(host, mode);
}
#else
std::unique_ptr<Collector> make_collector(CollectorHost& host) {
  return std::make_unique<LuaCollector>(host, LuaMode::Incremental);  // its only mode
}
#endif

}  // namespace CYCLEFUZZ_LUA

}  // namespace cyclefuzz
