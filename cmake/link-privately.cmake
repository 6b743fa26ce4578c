# cmake -P cmake/link-privately.cmake, with -D: OBJECTS (a list), ARCHIVE, OUTPUT, LD, NM, OBJCOPY.
# Links OBJECTS with what they use of the static library ARCHIVE into the relocatable object
# OUTPUT (ld -r), then makes local every symbol ARCHIVE defines (objcopy --localize-symbols): the
# objects' calls into the library are bound inside OUTPUT, and no other object of the program
# sees the library's names. CMakeLists.txt links each Lua version's adapter so, because Lua 5.3,
# Lua 5.4 and LuaJIT define the same C names (lua_pushnil...).
execute_process(COMMAND ${NM} -g --defined-only --format=posix ${ARCHIVE}
                OUTPUT_VARIABLE listing COMMAND_ERROR_IS_FATAL ANY)
string(REPLACE "\n" ";" lines "${listing}")
set(names "")
foreach(line IN LISTS lines)
  # "name type value size"; the lines that name an archive's member have no type
  if(line MATCHES "^([^ ]+) [A-Za-z]( |$)")
    string(APPEND names "${CMAKE_MATCH_1}\n")
  endif()
endforeach()
if(names STREQUAL "")
  message(FATAL_ERROR "${ARCHIVE} defines no global symbol")
endif()
file(WRITE "${OUTPUT}.symbols" "${names}")
execute_process(COMMAND ${LD} -r -o ${OUTPUT} ${OBJECTS} ${ARCHIVE} COMMAND_ERROR_IS_FATAL ANY)
execute_process(COMMAND ${OBJCOPY} --localize-symbols=${OUTPUT}.symbols ${OUTPUT}
                COMMAND_ERROR_IS_FATAL ANY)
