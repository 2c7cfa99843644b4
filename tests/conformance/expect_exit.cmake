# Runs a command and checks its exit status and output, for tests that expect a refusal:
#   cmake -DARGS="prog|arg|..." -DEXPECT_EXIT=2 -DEXPECT_OUTPUT=<regex> -P expect_exit.cmake
# (ctest's WILL_FAIL and PASS_REGULAR_EXPRESSION cannot check an exact status and text together.)
string(REPLACE "|" ";" command "${ARGS}")
execute_process(COMMAND ${command} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT "${rc}" STREQUAL "${EXPECT_EXIT}")
  message(FATAL_ERROR "expected exit status ${EXPECT_EXIT}, got ${rc}")
endif()
if(NOT "${out}${err}" MATCHES "${EXPECT_OUTPUT}")
  message(FATAL_ERROR "expected the output to match '${EXPECT_OUTPUT}'")
endif()
