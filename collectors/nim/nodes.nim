# The objects of the nim-orc collector (nim_orc.h says what maps to what), and the operations the
# adapter makes on them, as C functions. CMake compiles this module to C with `nim c
# --compileOnly --mm:orc` and compiles that C itself, with the project's compiler and flags, so
# that the sanitizers and libFuzzer see ORC's own code (system/orc.nim) at work.
#
# The adapter holds objects by raw pointers that ORC does not count (cursors): only its external
# references, GC_ref and GC_unref, are counts of its own.

type
  Acyclic = ref AcyclicObj
  AcyclicObj {.acyclic.} = object
    id: int
    refs: seq[Acyclic]
  Node = ref NodeObj
  NodeObj = object
    id: int
    refs: seq[Node]
    acyclic: seq[Acyclic]  # not traced by ORC: what no cycle can hold needs no trial deletion

  # system/arc.nim's RefHeader with --mm:orc (without nimArcDebug or nimArcIds), private to the
  # system module: the reference count, shifted past four bits of flags, and the position among
  # ORC's possible roots, 1-based. nim_orc.cpp tests that the count reads right before using it.
  Header = object
    rc: int
    rootIdx: int

const
  rcShift = 4  # system/arc.nim's rcShift and rcMask with --mm:orc
  rcMask = 0b1111

proc header(p: pointer): ptr Header {.inline.} =
  cast[ptr Header](cast[int](p) - sizeof(Header))

proc freed(p: pointer; id: int; byCycleCollector: bool) {.
    importc: "cyclefuzz_nim_freed", cdecl, raises: [].}

# The free of an object: ORC calls its type's destructor just before it releases the memory,
# whether its count fell to zero or the cycle collector found it garbage (then ORC has already
# set to nil the references it traced, so that no destructor touches other garbage). The count
# tells which: reference counting destroys an object whose count is 0 (one reference, the one
# going), the cycle collector one whose trial deletion took it below (orc.nim's scan makes white
# only what it left below 0; its shortcut, when the counts sum to the edges it followed, leaves
# every object it collects at -1). A destructor of its own must destroy the fields itself.
proc `=destroy`(x: var AcyclicObj) =
  freed(addr x, x.id, (header(addr x).rc shr rcShift) < 0)
  `=destroy`(x.refs)

proc `=destroy`(x: var NodeObj) =
  freed(addr x, x.id, (header(addr x).rc shr rcShift) < 0)
  `=destroy`(x.refs)
  `=destroy`(x.acyclic)

{.push cdecl.}

# A new object; its one count is the caller's (`move` hands it over, uncounted).
proc newObject(id: int; acyclic: bool): pointer {.exportc: "cyclefuzz_nim_new".} =
  if acyclic:
    var a = Acyclic(id: id)
    result = cast[pointer](a)
    wasMoved(a)
  else:
    var n = Node(id: id)
    result = cast[pointer](n)
    wasMoved(n)

proc addRef(p: pointer; acyclic: bool) {.exportc: "cyclefuzz_nim_ref".} =
  if acyclic: GC_ref(cast[Acyclic](p)) else: GC_ref(cast[Node](p))

# May free the object, and what only it held, or make it a possible root of a cycle.
proc dropRef(p: pointer; acyclic: bool) {.exportc: "cyclefuzz_nim_unref".} =
  if acyclic: GC_unref(cast[Acyclic](p)) else: GC_unref(cast[Node](p))

# One more reference from `a` to `b` (an acyclic object refers only to acyclic ones).
proc link(a: pointer; aAcyclic: bool; b: pointer; bAcyclic: bool) {.
    exportc: "cyclefuzz_nim_link".} =
  if aAcyclic:
    let x {.cursor.} = cast[Acyclic](a)
    x.refs.add cast[Acyclic](b)
  elif bAcyclic:
    let x {.cursor.} = cast[Node](a)
    x.acyclic.add cast[Acyclic](b)
  else:
    let x {.cursor.} = cast[Node](a)
    x.refs.add cast[Node](b)

# Takes the last reference to `target` out of `s` and then drops it: dropping it may free what
# holds `s` (when it is garbage that the reference kept), so `s` must be whole by then.
proc drop[T](s: var seq[T]; target: pointer): bool =
  for i in countdown(s.high, 0):
    if cast[pointer](s[i]) == target:
      var dropped = move s[i]
      s.del(i)
      return true  # (`dropped` goes here)

proc unlink(a: pointer; aAcyclic: bool; b: pointer; bAcyclic: bool): bool {.
    exportc: "cyclefuzz_nim_unlink".} =
  if aAcyclic:
    let x {.cursor.} = cast[Acyclic](a)
    result = drop(x.refs, b)
  elif bAcyclic:
    let x {.cursor.} = cast[Node](a)
    result = drop(x.acyclic, b)
  else:
    let x {.cursor.} = cast[Node](a)
    result = drop(x.refs, b)

proc collect() {.exportc: "cyclefuzz_nim_collect".} = GC_fullCollect()

proc rootCount(): int {.exportc: "cyclefuzz_nim_roots".} = GC_prepareOrc()

# ---- inspection: what ORC keeps of an object ----------------------------------------------------

proc count(p: pointer): int {.exportc: "cyclefuzz_nim_count".} =
  (header(p).rc shr rcShift) + 1  # ORC's counts start at 0 for one reference

proc flags(p: pointer): int {.exportc: "cyclefuzz_nim_flags".} =
  header(p).rc and rcMask

proc rootIndex(p: pointer): int {.exportc: "cyclefuzz_nim_root_index".} =
  header(p).rootIdx

proc idOf(p: pointer; acyclic: bool): int {.exportc: "cyclefuzz_nim_id".} =
  if acyclic: cast[Acyclic](p).id else: cast[Node](p).id

# Its references: an acyclic object's, or a node's to nodes and then to acyclic objects.
proc referenceCount(p: pointer; acyclic: bool): int {.exportc: "cyclefuzz_nim_reference_count".} =
  if acyclic:
    cast[Acyclic](p).refs.len
  else:
    let x {.cursor.} = cast[Node](p)
    x.refs.len + x.acyclic.len

proc reference(p: pointer; acyclic: bool; i: int): pointer {.exportc: "cyclefuzz_nim_reference".} =
  if acyclic:
    cast[pointer](cast[Acyclic](p).refs[i])
  else:
    let x {.cursor.} = cast[Node](p)
    if i < x.refs.len: cast[pointer](x.refs[i]) else: cast[pointer](x.acyclic[i - x.refs.len])

{.pop.}
