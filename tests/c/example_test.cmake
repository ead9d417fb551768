# Runs examples/pull against an OCI layout made by the C test program:
#   cmake -DMAKER=test_c -DPULL=pull -DWORK=dir [-DWRAPPER=valgrind;...] -P example_test.cmake
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")

execute_process(COMMAND "${MAKER}" --make-layout "${WORK}" RESULT_VARIABLE made)
if(NOT made EQUAL 0)
  message(FATAL_ERROR "test_c --make-layout failed: ${made}")
endif()

execute_process(COMMAND ${WRAPPER} "${PULL}" "oci:${WORK}/layout:plugin" "${WORK}/out.wasm"
                RESULT_VARIABLE pulled OUTPUT_VARIABLE out ERROR_VARIABLE err)
message(STATUS "pull printed:\n${out}${err}")
if(NOT pulled EQUAL 0)
  message(FATAL_ERROR "pull failed (${pulled})")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files "${WORK}/out.wasm" "${WORK}/expected.wasm"
                RESULT_VARIABLE differs)
if(NOT differs EQUAL 0)
  message(FATAL_ERROR "the pulled module differs from the one pushed")
endif()
if(NOT out MATCHES "variant +oci" OR NOT out MATCHES "module +sha256:")
  message(FATAL_ERROR "unexpected output: ${out}")
endif()

# The error path: a missing tag is NOT_FOUND, exit status 2, and no output file.
execute_process(COMMAND ${WRAPPER} "${PULL}" "oci:${WORK}/layout:missing" "${WORK}/missing.wasm"
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT status EQUAL 2 OR NOT err MATCHES "NOT_FOUND" OR EXISTS "${WORK}/missing.wasm")
  message(FATAL_ERROR "missing tag: status ${status}, stderr: ${err}")
endif()
file(REMOVE_RECURSE "${WORK}")
