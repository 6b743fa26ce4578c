# Turns the corpus traces into the fuzzer inputs that decode to them (cyclefuzz encode).
# Usage: cmake -DCYCLEFUZZ=... -DCORPUS=dir -DOUT=dir -P encode_seeds.cmake
file(REMOVE_RECURSE "${OUT}")
file(MAKE_DIRECTORY "${OUT}")
file(GLOB_RECURSE traces "${CORPUS}/*.trace")
# Not corpus/findings/: the real runtimes' known crashes (CTest replays them) would stop a fuzzing
# run on that runtime at its first inputs, before it looked for anything new.
list(FILTER traces EXCLUDE REGEX "/findings/")
foreach(trace ${traces})
  file(RELATIVE_PATH name "${CORPUS}" "${trace}")
  string(REPLACE "/" "-" name "${name}")
  string(REGEX REPLACE "\\.trace$" ".bin" name "${name}")
  execute_process(COMMAND "${CYCLEFUZZ}" encode "${trace}" -o "${OUT}/${name}"
                  RESULT_VARIABLE status)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "cyclefuzz encode ${trace} failed")
  endif()
endforeach()
file(TOUCH "${OUT}.stamp")
