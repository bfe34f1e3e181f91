// subscription_tree: matching by the rules of MQTT 5.0 section 4.7, replace vs new,
// pruning, shared groups (section 4.8.2) and enumeration.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "test_visitors.hpp"

using namespace edgemq::topics;
using namespace edgemq::topics::test;
using v = std::vector<int>;

TEST_CASE("MQTT-4.7 section examples through the tree") {
    tree t;
    const std::vector<std::string> filters = {
        "sport/tennis/player1/#",  // 0
        "sport/#",                 // 1
        "#",                       // 2
        "sport/tennis/+",          // 3
        "sport/+",                 // 4
        "+",                       // 5
        "+/+",                     // 6
        "/+",                      // 7
        "+/tennis/#",              // 8
        "sport/+/player1",         // 9
        "sport/tennis/player1",    // 10
    };
    for (int i = 0; i < static_cast<int>(filters.size()); ++i) CHECK_FALSE(t.subscribe(filters[i], i, sub(1)));
    CHECK(t.size() == filters.size());

    CHECK(handles(t, "sport/tennis/player1") == v{0, 1, 2, 3, 8, 9, 10});
    CHECK(handles(t, "sport/tennis/player1/ranking") == v{0, 1, 2, 8});
    CHECK(handles(t, "sport/tennis/player1/score/wimbledon") == v{0, 1, 2, 8});
    CHECK(handles(t, "sport/tennis/player2") == v{1, 2, 3, 8});
    CHECK(handles(t, "sport") == v{1, 2, 5});
    CHECK(handles(t, "sport/") == v{1, 2, 4, 6});
    CHECK(handles(t, "sport/tennis") == v{1, 2, 4, 6, 8});
    CHECK(handles(t, "/finance") == v{2, 6, 7});
    CHECK(handles(t, "finance") == v{2, 5});
    CHECK(handles(t, "Sport/tennis/player1") == v{2, 8});
}

TEST_CASE("MQTT-4.7.2-1 $SYS not matched by # or +/... in the subscription tree") {
    tree t;
    t.subscribe("#", 1, sub(0));
    t.subscribe("+/monitor/Clients", 2, sub(0));
    t.subscribe("+", 3, sub(0));
    t.subscribe("$SYS/#", 4, sub(0));
    t.subscribe("$SYS/monitor/+", 5, sub(0));
    t.subscribe("$SYS/monitor/Clients", 6, sub(0));
    t.subscribe("$share/g/#", 7, sub(0));
    t.subscribe("$share/g/$SYS/#", 8, sub(0));
    t.subscribe("$SYS", 9, sub(0));

    auto c = match(t, "$SYS/monitor/Clients");
    CHECK(c.handles() == v{4, 5, 6});
    REQUIRE(c.groups.size() == 1);
    CHECK(c.groups[0].members == v{8});

    CHECK(handles(t, "$SYS") == v{4, 9});
    CHECK(handles(t, "$other/monitor/Clients").empty());
    // The same levels without the '$' are ordinary topics.
    c = match(t, "SYS/monitor/Clients");
    CHECK(c.handles() == v{1, 2});
    REQUIRE(c.groups.size() == 1);
    CHECK(c.groups[0].members == v{7});
    // Only the first character of the topic counts.
    CHECK(handles(t, "a$") == v{1, 3});
    CHECK(handles(t, "x/$SYS") == v{1});
}

TEST_CASE("MQTT-4.7.1 empty levels and slash edge cases in the tree") {
    tree t;
    t.subscribe("a//b", 1, sub(0));
    t.subscribe("a/+/b", 2, sub(0));
    t.subscribe("/", 3, sub(0));
    t.subscribe("/+", 4, sub(0));
    t.subscribe("+/", 5, sub(0));
    t.subscribe("a/", 6, sub(0));
    t.subscribe("a", 7, sub(0));
    t.subscribe("a/#", 8, sub(0));
    t.subscribe("/#", 9, sub(0));
    t.subscribe("+/+/+", 10, sub(0));

    CHECK(handles(t, "a//b") == v{1, 2, 8, 10});
    CHECK(handles(t, "a/b") == v{8});
    CHECK(handles(t, "/") == v{3, 4, 5, 9});
    CHECK(handles(t, "a/") == v{5, 6, 8});
    CHECK(handles(t, "a") == v{7, 8});
    CHECK(handles(t, "//") == v{9, 10});
    CHECK(handles(t, "/a") == v{4, 9});
}

TEST_CASE("MQTT-3.3.4-2 overlapping subscriptions of one handle are each visited once") {
    tree t;
    t.subscribe("a/#", 1, sub(0, 10));
    t.subscribe("a/+", 1, sub(1, 11));
    t.subscribe("a/b", 1, sub(2, 12));
    t.subscribe("#", 1, sub(1, 13));
    t.subscribe("+/b", 1, sub(0, 14));
    t.subscribe("a/c", 1, sub(0, 15));  // does not match
    t.subscribe("a/b", 2, sub(0));

    auto c = match(t, "a/b");
    CHECK(c.handles() == v{1, 1, 1, 1, 1, 2});
    std::multiset<std::uint32_t> ids;
    for (const auto& [h, s] : c.subscribers) {
        if (h == 1) ids.insert(s.identifier);
    }
    CHECK(ids == std::multiset<std::uint32_t>{10, 11, 12, 13, 14});
    for (const auto& [h, s] : c.subscribers) {
        if (s.identifier == 12) CHECK(s.options.qos == 2);
    }
}

TEST_CASE("MQTT-3.8.4-3 resubscribing replaces the options and says so") {
    tree t;
    CHECK_FALSE(t.subscribe("a/b", 1, sub(0, 1)));
    CHECK(t.subscribe("a/b", 1, sub(2, 7)));
    CHECK(t.size() == 1);
    auto c = match(t, "a/b");
    REQUIRE(c.subscribers.size() == 1);
    CHECK(c.subscribers[0].second.options.qos == 2);
    CHECK(c.subscribers[0].second.identifier == 7);
    REQUIRE(t.find("a/b", 1) != nullptr);
    CHECK(*t.find("a/b", 1) == sub(2, 7));

    // Another handle, another filter or a shared form are new subscriptions.
    CHECK_FALSE(t.subscribe("a/b", 2, sub(0)));
    CHECK_FALSE(t.subscribe("a/+", 1, sub(0)));
    CHECK_FALSE(t.subscribe("$share/g/a/b", 1, sub(0)));
    CHECK_FALSE(t.subscribe("$share/h/a/b", 1, sub(0)));
    CHECK(t.subscribe("$share/g/a/b", 1, sub(1)));
    CHECK(t.size() == 5);

    // The full v5 options are replaced, not merged.
    subscription s = sub(1, 3);
    s.options.no_local = true;
    s.options.retain_as_published = true;
    s.options.retain_handling = 2;
    CHECK(t.subscribe("a/b", 1, s));
    CHECK(*t.find("a/b", 1) == s);
    CHECK(*t.find("$share/g/a/b", 1) == sub(1));
    CHECK(t.find("$share/x/a/b", 1) == nullptr);
    CHECK(t.find("a/b", 3) == nullptr);
    CHECK(t.find("a", 1) == nullptr);
    CHECK(t.find("a/b/c", 1) == nullptr);
}

TEST_CASE("unsubscribe reports existence and prunes empty nodes") {
    tree t;
    CHECK(t.node_count() == 0);
    t.subscribe("a/b/c", 1, sub(0));
    CHECK(t.node_count() == 3);
    t.subscribe("a/b/c", 2, sub(0));
    t.subscribe("a/+/#", 1, sub(0));
    t.subscribe("$SYS/x", 1, sub(0));
    CHECK(t.node_count() == 3 + 2 + 2);

    CHECK_FALSE(t.unsubscribe("a/b", 1));       // a prefix node, no subscription
    CHECK_FALSE(t.unsubscribe("a/b/c/d", 1));   // not in the tree
    CHECK_FALSE(t.unsubscribe("a/b/c", 3));     // not this handle
    CHECK_FALSE(t.unsubscribe("$share/g/a/b/c", 1));
    CHECK_FALSE(t.unsubscribe("a/+", 1));
    CHECK(t.size() == 4);

    CHECK(t.unsubscribe("a/b/c", 1));
    CHECK_FALSE(t.unsubscribe("a/b/c", 1));
    CHECK(t.node_count() == 7);  // handle 2 still there
    CHECK(t.unsubscribe("a/b/c", 2));
    CHECK(t.node_count() == 5);  // "a" stays for "a/+/#"
    CHECK(handles(t, "a/b/c") == v{1});
    CHECK(t.unsubscribe("a/+/#", 1));
    CHECK(t.node_count() == 2);
    CHECK(t.unsubscribe("$SYS/x", 1));
    CHECK(t.node_count() == 0);
    CHECK(t.empty());
    CHECK(handles(t, "a/b/c").empty());
}

TEST_CASE("unsubscribe keeps a node that still has children") {
    tree t;
    t.subscribe("a", 1, sub(0));
    t.subscribe("a/b", 1, sub(0));
    CHECK(t.unsubscribe("a", 1));
    CHECK(t.node_count() == 2);
    CHECK(handles(t, "a/b") == v{1});
    CHECK(handles(t, "a").empty());
    CHECK(t.unsubscribe("a/b", 1));
    CHECK(t.node_count() == 0);
}

TEST_CASE("subscribe and unsubscribe churn leaves nothing behind") {
    tree t;
    const char* levels[] = {"a", "b", "+", "", "c"};
    for (int round = 0; round < 3; ++round) {
        std::vector<std::pair<std::string, int>> added;
        for (int i = 0; i < 600; ++i) {
            std::string f;
            for (int d = 0; d <= i % 4; ++d) {
                if (d) f += '/';
                f += levels[(i * 7 + d * 3 + round) % 5];
            }
            if (i % 5 == 0) f += "/#";
            if (i % 3 == 0) f = "$share/g" + std::to_string(i % 2) + "/" + f;
            if (!t.subscribe(f, i % 40, sub(0))) added.emplace_back(f, i % 40);
        }
        CHECK(t.size() == added.size());
        for (const auto& [f, h] : added) CHECK(t.unsubscribe(f, h));
        CHECK(t.size() == 0);
        CHECK(t.node_count() == 0);
    }
}

TEST_CASE("MQTT-4.8.2 shared group members are offered round-robin") {
    tree t;
    for (int h = 1; h <= 3; ++h) CHECK_FALSE(t.subscribe("$share/g/sensors/+", h, sub(1)));
    std::map<int, int> first_pick;  // handle at `start` -> count
    for (int i = 0; i < 300; ++i) {
        auto c = match(t, "sensors/t1");
        CHECK(c.subscribers.empty());
        REQUIRE(c.groups.size() == 1);
        REQUIRE(c.groups[0].members.size() == 3);
        REQUIRE(c.groups[0].start < 3);
        ++first_pick[c.groups[0].members[c.groups[0].start]];
    }
    CHECK(first_pick == std::map<int, int>{{1, 100}, {2, 100}, {3, 100}});
}

TEST_CASE("MQTT-4.8.2 groups count their turns independently") {
    tree t;
    t.subscribe("$share/g/a/#", 1, sub(0));
    t.subscribe("$share/g/a/#", 2, sub(0));
    t.subscribe("$share/g/a/b", 3, sub(0));  // same name, other filter: another group
    t.subscribe("$share/g/a/b", 4, sub(0));

    for (int i = 0; i < 5; ++i) {
        auto c = match(t, "a/c");  // only the "a/#" group
        REQUIRE(c.groups.size() == 1);
        CHECK(c.groups[0].start == static_cast<std::size_t>(i % 2));
    }
    auto c = match(t, "a/b");
    REQUIRE(c.groups.size() == 2);
    for (const auto& g : c.groups) {
        auto m = g.members;
        std::sort(m.begin(), m.end());
        if (m == v{3, 4}) CHECK(g.start == 0);          // first turn of this group
        else CHECK((m == v{1, 2} && g.start == 1));     // sixth turn of the other
    }
}

TEST_CASE("MQTT-4.8.2 several groups on one filter each get one call") {
    tree t;
    t.subscribe("$share/g1/a/b", 1, sub(0));
    t.subscribe("$share/g1/a/b", 2, sub(0));
    t.subscribe("$share/g2/a/b", 3, sub(0));
    t.subscribe("$share/g3/a/+", 4, sub(0));
    t.subscribe("a/b", 5, sub(0));
    auto c = match(t, "a/b");
    CHECK(c.handles() == v{5});
    REQUIRE(c.groups.size() == 3);
    std::set<std::vector<int>> seen;
    for (auto g : c.groups) {
        std::sort(g.members.begin(), g.members.end());
        seen.insert(g.members);
    }
    CHECK(seen == std::set<std::vector<int>>{{1, 2}, {3}, {4}});

    // Dropping the last member drops the group, and the node once nothing is left.
    CHECK(t.unsubscribe("$share/g2/a/b", 3));
    CHECK(match(t, "a/b").groups.size() == 2);
    CHECK_FALSE(t.unsubscribe("$share/g2/a/b", 3));
    CHECK(t.unsubscribe("$share/g1/a/b", 1));
    CHECK(t.unsubscribe("$share/g1/a/b", 2));
    CHECK(t.unsubscribe("a/b", 5));
    CHECK(t.node_count() == 2);  // a, a/+
    CHECK(t.unsubscribe("$share/g3/a/+", 4));
    CHECK(t.node_count() == 0);
    CHECK(t.empty());
}

TEST_CASE("MQTT-4.8.2 one handle both in a group and subscribed directly") {
    tree t;
    CHECK_FALSE(t.subscribe("$share/g/a", 1, sub(1, 5)));
    CHECK_FALSE(t.subscribe("a", 1, sub(2, 6)));
    auto c = match(t, "a");
    REQUIRE(c.subscribers.size() == 1);
    CHECK(c.subscribers[0].first == 1);
    CHECK(c.subscribers[0].second.identifier == 6);
    REQUIRE(c.groups.size() == 1);
    CHECK(c.groups[0].members == v{1});
    CHECK(c.groups[0].start == 0);

    CHECK(t.unsubscribe("a", 1));
    c = match(t, "a");
    CHECK(c.subscribers.empty());
    CHECK(c.groups.size() == 1);
    CHECK(t.unsubscribe("$share/g/a", 1));
    CHECK(match(t, "a").groups.empty());
}

TEST_CASE("MQTT-4.8.2 round-robin counters are safe for concurrent matchers") {
    tree t;
    for (int h = 0; h < 4; ++h) t.subscribe("$share/g/x", h, sub(0));
    struct counter {
        std::size_t starts[4] = {};
        void on_subscriber(const int&, const subscription&) {}
        void on_shared_group(std::span<const tree::member>, std::size_t start) { ++starts[start]; }
    };
    constexpr int threads = 4, per_thread = 2000;
    std::vector<counter> counts(threads);
    {
        std::vector<std::jthread> workers;
        for (int i = 0; i < threads; ++i) {
            workers.emplace_back([&t, &c = counts[i]] {
                for (int k = 0; k < per_thread; ++k) t.match("x", c);
            });
        }
    }
    // fetch_add hands out 0..7999 exactly once, so every member leads equally often.
    for (std::size_t s = 0; s < 4; ++s) {
        std::size_t total = 0;
        for (const auto& c : counts) total += c.starts[s];
        CHECK(total == threads * per_thread / 4);
    }
}

TEST_CASE("100k subscribers on one filter: O(1) replace and unsubscribe") {
    tree t;
    constexpr int n = 100000;
    for (int h = 0; h < n; ++h) REQUIRE_FALSE(t.subscribe("hot/topic", h, sub(0)));
    CHECK(t.size() == n);
    for (int h = 0; h < n; h += 1000) CHECK(t.subscribe("hot/topic", h, sub(2, 9)));
    for (int h = 1; h < n; h += 2) REQUIRE(t.unsubscribe("hot/topic", h));
    CHECK(t.size() == n / 2);

    std::size_t count = 0, replaced = 0;
    bool all_even = true;
    struct visitor {
        std::size_t& count;
        std::size_t& replaced;
        bool& all_even;
        void on_subscriber(const int& h, const subscription& s) {
            ++count;
            all_even = all_even && h % 2 == 0;
            if (s.identifier == 9) {
                ++replaced;
                all_even = all_even && h % 1000 == 0;
            }
        }
        void on_shared_group(std::span<const tree::member>, std::size_t) {}
    };
    t.match("hot/topic", visitor{count, replaced, all_even});
    CHECK(count == n / 2);
    CHECK(replaced == n / 1000);
    CHECK(all_even);

    for (int h = 0; h < n; h += 2) REQUIRE(t.unsubscribe("hot/topic", h));
    CHECK(t.empty());
    CHECK(t.node_count() == 0);
}

TEST_CASE("subscriber_set stays consistent across its index threshold") {
    subscriber_set<int> s;
    for (int round = 0; round < 3; ++round) {
        for (int h = 0; h < 40; ++h) CHECK_FALSE(s.upsert(h, sub(0, static_cast<std::uint32_t>(h))));
        // Erase in a scattered order so swap-remove moves entries around.
        for (int k = 0; k < 40; ++k) {
            const int h = (k * 17) % 40;
            CHECK(s.erase(h));
            CHECK_FALSE(s.erase(h));
            CHECK(s.find(h) == nullptr);
            for (int rest = 0; rest < 40; ++rest) {
                bool gone = false;
                for (int j = 0; j <= k; ++j) gone = gone || (j * 17) % 40 == rest;
                const auto* found = s.find(rest);
                if (gone) {
                    CHECK(found == nullptr);
                } else {
                    REQUIRE(found != nullptr);
                    CHECK(found->identifier == static_cast<std::uint32_t>(rest));
                }
            }
            CHECK(s.size() == static_cast<std::size_t>(39 - k));
        }
        CHECK(s.empty());
    }
}

TEST_CASE("for_each lists every subscription with its filter as subscribed") {
    tree t;
    using row = std::tuple<std::string, int, std::uint32_t>;
    const std::set<row> expected = {
        {"a/b", 1, 1},        {"a/b", 2, 2},          {"a/+", 1, 3},       {"#", 3, 4},
        {"/a", 1, 5},         {"a//b", 1, 6},         {"a/", 1, 7},        {"$SYS/#", 4, 8},
        {"$share/g/a/b", 1, 9}, {"$share/g/a/b", 2, 10}, {"$share/h/#", 5, 11}, {"+", 6, 12},
        {"/", 7, 13},         {"$share/g/$SYS/x", 8, 14}, {"a/b/c/#", 9, 15},
    };
    for (const auto& [f, h, id] : expected) CHECK_FALSE(t.subscribe(f, h, sub(0, id)));
    std::set<row> seen;
    std::size_t calls = 0;
    t.for_each([&](std::string_view f, const int& h, const subscription& s) {
        seen.emplace(std::string(f), h, s.identifier);
        ++calls;
    });
    CHECK(calls == expected.size());
    CHECK(seen == expected);
}

TEST_CASE("deep filters and topics neither recurse nor overflow") {
    tree t;
    constexpr int depth = 20000;
    std::string plus_filter, topic, literal_filter;
    for (int i = 0; i < depth; ++i) {
        if (i) {
            plus_filter += '/';
            topic += '/';
        }
        plus_filter += '+';
        topic += 'x';
    }
    literal_filter = topic + "/#";
    t.subscribe(plus_filter, 1, sub(0));
    t.subscribe(literal_filter, 2, sub(0));
    t.subscribe("x/#", 3, sub(0));
    CHECK(handles(t, topic) == v{1, 2, 3});
    CHECK(handles(t, topic + "/x") == v{2, 3});
    CHECK(t.unsubscribe(plus_filter, 1));
    CHECK(t.node_count() == static_cast<std::size_t>(depth + 1 + 1));
    t.clear();  // and the destructor of a deep tree
    CHECK(t.node_count() == 0);
    t.subscribe(literal_filter, 2, sub(0));
}
