// Lua's collectors, driven through the C API of Debian's libraries: Lua 5.4 (lgc.c) in its
// incremental or its generational mode, Lua 5.3 (incremental: 5.3 has no other mode) and LuaJIT
// 2.1 (lj_gc.c, incremental, with the API of Lua 5.1). One adapter source, lua.cpp, is compiled
// once per version against that version's headers and linked with its static library into an
// object whose Lua symbols are local (CMakeLists.txt: the three define the same C names); each
// version's collector is made by its own make_collector below. Each adapter has a lua_State of
// its own.
//
// What maps to what:
//   object              Lua 5.3 and 5.4: a table of the adapter's own (no metatable but for a
//                       finalizer). LuaJIT: a userdata of size 0 (5.1 calls __gc for userdata
//                       only), whose environment (lua_setfenv) is a table of its own that holds
//                       its references. A tuple: a Lua closure whose upvalues are its items
//                       (made again, one upvalue longer, at each of its links, which all come as
//                       it is made; a tuple without items stays a table). A Lua 5.4 cell: a
//                       userdata whose two user values are its referent (or nil) and its table
//                       of weak references (made right after its table, which it replaces)
//   reference a -> b    by a's kind, in a's table (LuaJIT: a's environment): a list's, cell's
//                       (but 5.4's: its first user value) or acyclic object's, one entry of the
//                       sequence [1..n] (the array part), but an acyclic object's first one is
//                       its metatable (Lua 5.3 and 5.4: it never has a finalizer's)
//                       whose value is b: link appends (lua_rawseti), unlink moves the last entry
//                       into the dropped one's place; a record's or dict's, a field "p<n>" or
//                       "k<n>" (the hash part; n counts its links), which unlink sets to nil; a
//                       tuple's, an upvalue
//   external reference  one registry reference (luaL_ref); unroot is luaL_unref of one of them
//   map entries         Lua 5.3 and 5.4: Lua's own ephemerons, a table with __mode "k" at the
//                       field "entries" of the map's table, from each key's table to its value's.
//                       LuaJIT: the harness's (map_entries Harness), since a table with __mode
//                       "k" is no ephemeron table in LuaJIT (lj_gc.c's gc_traverse_tab marks its
//                       values, as Lua 5.1 does): LuaJIT's weak tables are not put to the test
//   weak reference      a slot of a weak table: the mutator's in one with __mode "v" that the
//                       adapter keeps in the registry; one that object h holds in h's own, with
//                       __mode "kv" (at key 0 of h's table; LuaJIT: of its environment; a 5.4
//                       cell: its second user value), which lives and dies with h.
//                       Lua clears a slot at a cycle's atomic phase without a word: the adapter
//                       reports the clear when it sees the slot empty (after every call into
//                       Lua, before every finalizer) or at the free of the target. No callbacks
//   free                Lua releasing the object's memory (the table's, closure's or userdata's)
//                       through the state's allocator (the adapter's: malloc and free), which it
//                       does when it sweeps the object
//   finalizer           a metatable with __gc, set on an object the trace gives a finalizer: Lua
//                       calls it once, for an unreachable object, which it keeps (with all the
//                       object reaches) until its next cycle; what the program resurrects lives on
//   collect             collect 2 (full): collectgarbage("collect"). collect 0 and collect 1:
//                       one collectgarbage("step", 0) (young_collections_are_steps), a part of
//                       an incremental cycle or, in 5.4's generational mode, a young (or major)
//                       collection as Lua sees fit: Lua collects no generation on request, and
//                       its young and old objects do not move up one generation per collection
//                       as collect(g) promises, so the adapter shows no generations
//   automatic           steps of the collector during allocations, with parameters that make them
//                       frequent in small heaps (see kIncremental... in lua.cpp): in generational
//                       mode, a young collection every few allocations
//   collections()       completed cycles, seen by a sentinel: an unreferenced object with a
//                       finalizer of its own, which makes the next sentinel
//
// The adapter names objects through two weak tables: id -> object with weak values, to reach an
// object without keeping it alive, and object -> id with weak keys, which Lua keeps for objects
// being finalized (it clears weak values before finalizers run, weak keys only after; LuaJIT's
// gc_mayclear too), so that a finalizer finds an object that is waiting for its finalizer. Lua
// clears both for a dead object when a cycle's atomic phase ends, and frees it during the sweep
// that follows, a few steps later: in between the adapter cannot name it, so `inspect` cannot
// show Lua's record of garbage and the adapter declares no bookkeeping (`inspectable` off). The
// frees themselves are exact: the allocator sees each object's memory go. Objects still alive at
// lua_close are freed by it; those frees are not reported.
//
// Lua raises errors by longjmp (LuaJIT by unwinding): every operation runs in protected mode
// (lua_pcall) and an error becomes a std::runtime_error; an exception from the program inside a
// finalizer waits for the end of the operation.
#pragma once

#include <cstdint>
#include <memory>

#include "collectors/collector.h"

namespace cyclefuzz {

enum class LuaMode : std::uint8_t { Incremental, Generational };

// Each throws std::runtime_error when the state cannot be made.
namespace lua54 {
std::unique_ptr<Collector> make_collector(CollectorHost& host, LuaMode mode);
}
namespace lua53 {
std::unique_ptr<Collector> make_collector(CollectorHost& host);
}
namespace luajit {
std::unique_ptr<Collector> make_collector(CollectorHost& host);
}

}  // namespace cyclefuzz
