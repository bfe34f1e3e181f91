# Included by tests/integration and tests/conformance before they add tests/support.
#
# The suites exist to check the broker, which CI also builds with sanitizers
# (EDGEMQ_SANITIZE): that is where they matter. The test binaries link uninstrumented
# Paho, where TSan reports false races, so they are built without sanitizers, with their
# own doctest main (edgemq_doctest_main is instrumented). Deadlines stretch instead.
if(EDGEMQ_SANITIZE)
  foreach(prop COMPILE_OPTIONS LINK_OPTIONS)
    get_directory_property(opts ${prop})
    list(FILTER opts EXCLUDE REGEX "sanitize")
    set_directory_properties(PROPERTIES ${prop} "${opts}")
  endforeach()
  set(EDGEMQ_TEST_MAIN edgemq_test_doctest_main)
  if(EDGEMQ_SANITIZE MATCHES "thread")
    set(EDGEMQ_TEST_PROPERTIES TIMEOUT 300 ENVIRONMENT "EDGEMQ_TEST_TIME_SCALE=5")
  else()
    set(EDGEMQ_TEST_PROPERTIES TIMEOUT 180 ENVIRONMENT "EDGEMQ_TEST_TIME_SCALE=3")
  endif()
else()
  set(EDGEMQ_TEST_MAIN edgemq_doctest_main)
  set(EDGEMQ_TEST_PROPERTIES TIMEOUT 60)
endif()

if(NOT TARGET edgemq_test_support)
  add_subdirectory(${CMAKE_CURRENT_LIST_DIR} ${CMAKE_BINARY_DIR}/tests/support)
endif()
