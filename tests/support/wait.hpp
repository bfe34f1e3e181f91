// wait_until: poll a predicate until it holds or a deadline passes.
//
// The one sanctioned way for tests to wait for something asynchronous (a message, a
// log line, a closed socket). It sleeps only between polls, and a test that waits for
// nothing ("no message arrives") says so by the deadline it passes.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>

namespace edgemq::test {

// True as soon as pred() is true; false if it is still false after `timeout`.
// pred() is evaluated at least once, and once more right at the deadline.
template <class Predicate>
bool wait_until(Predicate&& pred, std::chrono::milliseconds timeout,
                std::chrono::milliseconds poll = std::chrono::milliseconds(5)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (pred()) return true;
        auto now = std::chrono::steady_clock::now();
        if (now >= deadline) return false;
        std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(poll, deadline - now));
    }
}

// Deadlines scale with EDGEMQ_TEST_TIME_SCALE (e.g. 3 under valgrind or sanitizers).
// Upper bounds in timing checks scale the same way (lower bounds never do).
inline double time_scale() {
    const char* v = std::getenv("EDGEMQ_TEST_TIME_SCALE");
    double factor = v ? std::atof(v) : 1.0;
    return factor < 1.0 ? 1.0 : factor;
}

inline std::chrono::milliseconds scaled(std::chrono::milliseconds d) {
    return std::chrono::milliseconds(static_cast<long long>(static_cast<double>(d.count()) * time_scale()));
}

}  // namespace edgemq::test
