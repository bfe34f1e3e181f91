// The same case files as conformance_test.cpp, played against the broker core
// in-process (inproc_runner.cpp): no sockets, no threads, a fake clock. Runs in
// milliseconds and under sanitizers; CTest names "conformance.inproc.<area>.<case>".
#include "case_runner.hpp"

#include <doctest/doctest.h>

TEST_SUITE_BEGIN("conformance");

#define EDGEMQ_CONFORMANCE_CASE(name, path) \
    TEST_CASE(name) { edgemq::test::conformance::run_case_inproc(path); }
#include "cases.inc"

TEST_SUITE_END();
