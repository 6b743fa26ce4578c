// Lua 5.4's collector (lgc.c), in its incremental or its generational mode, driven through the C
// API of the system's liblua5.4. Each adapter has a lua_State of its own.
//
// What maps to what:
//   object              a table (of the adapter's own: no metatable but for a finalizer)
//   reference a -> b    one entry of a's sequence a[1..n] whose value is b: link appends
//                       (lua_rawseti), unlink moves the last entry into the dropped one's place
//   external reference  one registry reference (luaL_ref); unroot is luaL_unref of one of them
//   map entries         Lua's own ephemerons: a map's table holds, at its field "entries", a
//                       table with __mode "k" from each key's table to its value's
//   free                Lua releasing the table's memory through the state's allocator (the
//                       adapter's: malloc and free), which it does when it sweeps the table
//   finalizer           a metatable with __gc, set on an object the trace gives a finalizer: Lua
//                       calls it once, for an unreachable table, which it keeps (with all the
//                       table reaches) until its next cycle; what the program resurrects lives on
//   collect             collectgarbage("collect"), whatever the generation asked for: Lua
//                       collects no generation on request (in generational mode,
//                       collectgarbage("step") makes a young or a major collection as it sees
//                       fit, and its young and old objects do not move up one generation per
//                       collection as collect(g) promises)
//   automatic           steps of the collector during allocations, with parameters that make them
//                       frequent in small heaps (see kIncremental... in lua.cpp): in generational
//                       mode, a young collection every few allocations
//   collections()       completed cycles, seen by a sentinel: an unreferenced table with a
//                       finalizer of its own, which makes the next sentinel
//
// The adapter names tables through two weak tables: id -> table with weak values, to reach an
// object without keeping it alive, and table -> id with weak keys, which Lua keeps for tables
// being finalized (it clears weak values before finalizers run, weak keys only after), so that a
// finalizer finds a table that is waiting for its finalizer. Lua clears both for a dead table
// when a cycle's atomic phase ends, and frees it during the sweep that follows, a few steps
// later: in between the adapter cannot name it, so `inspect` cannot show Lua's record of garbage
// and the adapter declares no bookkeeping (`inspectable` off). The frees themselves are exact:
// the allocator sees each table's memory go. Tables still alive at lua_close are freed by it;
// those frees are not reported.
//
// Lua raises errors by longjmp: every operation runs in protected mode (lua_pcall) and an error
// becomes a std::runtime_error; an exception from the program inside a finalizer waits for the
// end of the operation.
#pragma once

#include <exception>
#include <unordered_map>
#include <vector>

#include "collectors/collector.h"

struct lua_State;

namespace cyclefuzz {

enum class LuaMode : std::uint8_t { Incremental, Generational };

class LuaCollector : public Collector {
 public:
  /// Throws std::runtime_error when the state cannot be made.
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
  void set_entry(ObjectId map, ObjectId key, ObjectId value) override;
  void remove_entry(ObjectId map, ObjectId key) override;
  void inspect(ObjectId id, ObjectView& view) const override;
  std::uint64_t collections() const override { return cycles_; }
  void check_invariants() const override;

  // Called by the finalizers and the allocator, inside Lua: none throws.
  void node_finalized();
  void sentinel_finalized(lua_State* L);
  void block_freed(const void* block);

 private:
  /// What the adapter holds for one object.
  struct Record {
    bool allocated = false;
    bool freed = false;
    bool has_finalizer = false;
    std::vector<int> registry_refs;  // its external references
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
  /// Pushes object `id`'s table; returns false (pushing nothing) if Lua no longer has it.
  bool push_object(ObjectId id) const;
  /// The id of the table at `index`, or -1 if it is not an object's table.
  long long id_of(int index) const;

  LuaMode mode_;
  Capabilities capabilities_;
  lua_State* L_ = nullptr;
  std::vector<Record> records_;  // by object id
  std::unordered_map<const void*, ObjectId> object_at_;  // by the address of its table
  std::exception_ptr error_;     // thrown inside Lua, by a finalizer's program
  int objects_ref_ = 0;          // registry: id -> table, weak values
  int ids_ref_ = 0;              // registry: table -> id, weak keys
  int node_metatable_ref_ = 0;   // registry: the metatable of objects with a finalizer
  int sentinel_metatable_ref_ = 0;
  std::uint64_t cycles_ = 0;
  bool closing_ = false;  // lua_close finalizes what is left: not the trace's frees
};

}  // namespace cyclefuzz
