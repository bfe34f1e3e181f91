// Matching a PUBLISH topic against the subscription tree must not allocate (STYLE.md:
// no allocation per message beyond the message itself). Counted by replacing the
// global operator new for this test binary.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

#include "broker/topics/topic_match.hpp"
#include "test_visitors.hpp"

namespace {
std::atomic<std::size_t> allocations{0};
}  // namespace

void* operator new(std::size_t n) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
// g++ cannot see that the operator new above is malloc-based and flags these frees.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

using namespace edgemq::topics;
using namespace edgemq::topics::test;

TEST_CASE("subscription_tree match and topic_matches do not allocate") {
    tree t;
    t.subscribe("sport/tennis/player1/#", 1, sub(0));
    t.subscribe("sport/+/player1", 2, sub(0));
    t.subscribe("+/+/+", 3, sub(0));
    t.subscribe("#", 4, sub(0));
    t.subscribe("$share/g/sport/#", 5, sub(0));
    t.subscribe("$share/g/sport/#", 6, sub(0));
    t.subscribe("$SYS/#", 7, sub(0));
    for (int h = 0; h < 50; ++h) t.subscribe("sport/tennis/player1", 100 + h, sub(0));  // indexed set
    // A topic longer than any small-string buffer, with levels the tree stores.
    const std::string topic = "sport/tennis/player1";
    const std::string long_topic = "sport/tennis/player1/a-rather-long-level-name-beyond-sso/x/y/z";

    struct counter {
        std::size_t subscribers = 0, groups = 0;
        void on_subscriber(const int&, const subscription&) { ++subscribers; }
        void on_shared_group(std::span<const tree::member>, std::size_t) { ++groups; }
    } c;
    const std::size_t before = allocations.load();
    t.match(topic, c);
    t.match(long_topic, c);
    t.match("$SYS/broker/uptime", c);
    const bool matched = topic_matches("sport/+/player1/#", long_topic);
    const std::size_t after = allocations.load();
    CHECK(after == before);
    CHECK(matched);
    CHECK(c.subscribers == (4 + 50) + 2 + 1);  // topic, long_topic ("#", "player1/#"), $SYS
    CHECK(c.groups == 2);
}

TEST_CASE("retained_tree find and literal match do not allocate") {
    retained_tree<int> t;
    t.set("sport/tennis/player1", 1);
    t.set("sport/tennis/player2", 2);
    t.set("a-rather-long-level-name-beyond-sso/x", 3);
    int sum = 0;
    const std::size_t before = allocations.load();
    const int* found = t.find("a-rather-long-level-name-beyond-sso/x");
    t.match("sport/tennis/+", [&](const int& v) { sum += v; });
    t.match("sport/#", [&](const int& v) { sum += v; });
    const std::size_t after = allocations.load();
    CHECK(after == before);
    REQUIRE(found != nullptr);
    CHECK(*found == 3);
    CHECK(sum == 6);
}
