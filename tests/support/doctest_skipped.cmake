# edgemq_register_skipped_tests(TARGET PREFIX LABELS): one CTest entry per doctest test
# case of TARGET that carries doctest::skip() (EDGEMQ_PENDING), marked DISABLED.
#
# doctest_discover_tests() lists only the test cases that would run, so skipped ones
# would vanish from CTest; registered here they show up as "Not Run (Disabled)" in
# every ctest summary until the decorator is removed. The entries run the case with
# --no-skip, so `ctest` never runs them but the command line shows how to.
#
# In script mode (cmake -P, run after each build of TARGET) this file writes CTEST_FILE,
# and fails the build if a test name contains a comma (see below).

if(CMAKE_SCRIPT_MODE_FILE)
  function(doctest_list out)
    execute_process(COMMAND "${TEST_EXECUTABLE}" --list-test-cases ${ARGN}
                    OUTPUT_VARIABLE text RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "${TEST_EXECUTABLE} --list-test-cases failed: ${rc}")
    endif()
    string(REPLACE "\n" ";" lines "${text}")
    set(names "")
    foreach(line IN LISTS lines)
      if(line STREQUAL "" OR line MATCHES "^=+$" OR line MATCHES "^\\[doctest\\] ")
        continue()
      endif()
      list(APPEND names "${line}")
    endforeach()
    set(${out} "${names}" PARENT_SCOPE)
  endfunction()

  string(REPLACE "," ";" LABELS "${LABELS}")
  doctest_list(all --no-skip)
  doctest_list(running)
  # doctest_discover_tests() looks up each test's suite with --test-case=NAME, where a
  # comma separates filters: such a test gets no label, and `ctest -L` never runs it.
  foreach(name IN LISTS all)
    if(name MATCHES ",")
      message(FATAL_ERROR "${TEST_EXECUTABLE}: test name contains ',' (ctest -L would skip it): ${name}")
    endif()
  endforeach()
  set(script "")
  foreach(name IN LISTS all)
    list(FIND running "${name}" index)
    if(NOT index EQUAL -1)
      continue()
    endif()
    string(REPLACE "," "\\," filter "${name}")
    string(APPEND script
      "add_test([==[${PREFIX}${name}]==] [==[${TEST_EXECUTABLE}]==] [==[--test-case=${filter}]==] --no-skip)\n"
      "set_tests_properties([==[${PREFIX}${name}]==] PROPERTIES DISABLED TRUE LABELS [==[${LABELS}]==])\n")
  endforeach()
  file(WRITE "${CTEST_FILE}" "${script}")
  return()
endif()

set(EDGEMQ_DOCTEST_SKIPPED_SCRIPT ${CMAKE_CURRENT_LIST_FILE})

function(edgemq_register_skipped_tests target)
  cmake_parse_arguments(ARG "" "PREFIX" "LABELS" ${ARGN})
  set(ctest_file ${CMAKE_CURRENT_BINARY_DIR}/${target}_skipped_tests.cmake)
  set(include_file ${CMAKE_CURRENT_BINARY_DIR}/${target}_skipped_include.cmake)
  string(REPLACE ";" "," labels "${ARG_LABELS}")  # a ';' would split the command line
  add_custom_command(TARGET ${target} POST_BUILD
    COMMAND ${CMAKE_COMMAND}
            -D "TEST_EXECUTABLE=$<TARGET_FILE:${target}>"
            -D "PREFIX=${ARG_PREFIX}"
            -D "LABELS=${labels}"
            -D "CTEST_FILE=${ctest_file}"
            -P ${EDGEMQ_DOCTEST_SKIPPED_SCRIPT}
    VERBATIM)
  file(WRITE ${include_file} "if(EXISTS \"${ctest_file}\")\n  include(\"${ctest_file}\")\nendif()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${include_file})
endfunction()
