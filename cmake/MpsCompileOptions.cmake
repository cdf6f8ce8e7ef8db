# Warnings are errors for our own code; generated code is built without them.
function(mps_strict target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Werror
                                           -Wno-deprecated-declarations)
endfunction()

if(MPS_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

set(MPS_SHARED_DIR "${CMAKE_SOURCE_DIR}/../shared" CACHE PATH
    "The shared/ folder beside the clone (fixtures captured from real systems)")

# Environment for every test: quiet gRPC core logging, known sanitizer noise.
set(MPS_TEST_ENV
    "GRPC_VERBOSITY=NONE"
    "UBSAN_OPTIONS=print_stacktrace=1:suppressions=${CMAKE_SOURCE_DIR}/tests/ubsan.supp"
    "ASAN_OPTIONS=detect_leaks=0")

# A gtest executable registered with ctest, one ctest entry per test case.
function(mps_gtest name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  mps_strict(${name})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  # ENVIRONMENT is a list; escape its separators so it survives being passed on.
  set(env ${MPS_TEST_ENV} "MPS_BIN_DIR=${CMAKE_BINARY_DIR}/bin" "MPS_SOURCE_DIR=${CMAKE_SOURCE_DIR}"
      "MPS_SHARED_DIR=${MPS_SHARED_DIR}")
  string(REPLACE ";" "\\;" env "${env}")
  gtest_discover_tests(${name}
    PROPERTIES ENVIRONMENT "${env}"
               TIMEOUT ${ARG_TIMEOUT} LABELS "${ARG_LABELS}"
    DISCOVERY_TIMEOUT 60)
endfunction()
