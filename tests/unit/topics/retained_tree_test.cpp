// retained_tree: one value per topic, matched by filters under the rules of MQTT 5.0
// section 4.7, pruning on erase and erase_if.
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "test_visitors.hpp"

using namespace edgemq::topics;
using namespace edgemq::topics::test;
using strings = std::vector<std::string>;

namespace {

// Every topic retains its own name, so match results read as topic lists.
retained_tree<std::string> with_topics(const strings& topics) {
    retained_tree<std::string> t;
    for (const auto& topic : topics) t.set(topic, topic);
    return t;
}

}  // namespace

TEST_CASE("MQTT-3.3.1-5 set stores one value per topic and replaces it") {
    retained_tree<std::string> t;
    CHECK(t.empty());
    CHECK(t.find("a/b") == nullptr);
    t.set("a/b", "one");
    t.set("a/b", "two");
    CHECK(t.size() == 1);
    REQUIRE(t.find("a/b") != nullptr);
    CHECK(*t.find("a/b") == "two");
    CHECK(t.find("a") == nullptr);     // a prefix node holds nothing
    CHECK(t.find("a/b/c") == nullptr);
    CHECK(t.find("A/b") == nullptr);   // case sensitive
    t.set("a", "parent");
    CHECK(*t.find("a") == "parent");
    CHECK(t.size() == 2);
}

TEST_CASE("MQTT-3.3.1-6 erase removes the value and prunes nodes") {
    retained_tree<std::string> t;
    t.set("a/b/c", "x");
    t.set("a/b", "y");
    t.set("$SYS/up", "z");
    CHECK(t.node_count() == 5);
    CHECK_FALSE(t.erase("a"));       // prefix without a value
    CHECK_FALSE(t.erase("a/b/c/d"));
    CHECK_FALSE(t.erase("q"));
    CHECK(t.erase("a/b"));
    CHECK_FALSE(t.erase("a/b"));
    CHECK(t.node_count() == 5);      // a/b still leads to a/b/c
    CHECK(*t.find("a/b/c") == "x");
    CHECK(t.erase("a/b/c"));
    CHECK(t.node_count() == 2);
    CHECK(t.erase("$SYS/up"));
    CHECK(t.node_count() == 0);
    CHECK(t.empty());
}

TEST_CASE("MQTT-4.7 section examples against retained topics") {
    auto t = with_topics({"sport", "sport/", "sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking",
                          "sport/tennis/player1/score/wimbledon", "sport/tennis/player2", "/finance", "finance"});
    CHECK(retained(t, "sport/tennis/player1/#") ==
          strings{"sport/tennis/player1", "sport/tennis/player1/ranking", "sport/tennis/player1/score/wimbledon"});
    CHECK(retained(t, "sport/#") == strings{"sport", "sport/", "sport/tennis", "sport/tennis/player1",
                                            "sport/tennis/player1/ranking", "sport/tennis/player1/score/wimbledon",
                                            "sport/tennis/player2"});
    CHECK(retained(t, "sport/tennis/+") == strings{"sport/tennis/player1", "sport/tennis/player2"});
    CHECK(retained(t, "sport/+") == strings{"sport/", "sport/tennis"});
    CHECK(retained(t, "+") == strings{"finance", "sport"});
    CHECK(retained(t, "+/+") == strings{"/finance", "sport/", "sport/tennis"});
    CHECK(retained(t, "/+") == strings{"/finance"});
    CHECK(retained(t, "+/tennis/#") == strings{"sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking",
                                               "sport/tennis/player1/score/wimbledon", "sport/tennis/player2"});
    CHECK(retained(t, "sport/+/player1") == strings{"sport/tennis/player1"});
    CHECK(retained(t, "sport/tennis/player1") == strings{"sport/tennis/player1"});
    CHECK(retained(t, "sport/tennis/player3").empty());
    CHECK(retained(t, "#").size() == 9);
}

TEST_CASE("MQTT-4.7.2-1 retained $ topics not matched by # or +") {
    auto t = with_topics({"$SYS", "$SYS/broker/uptime", "$SYS/monitor/Clients", "$other", "SYS/monitor/Clients", "a/$x"});
    CHECK(retained(t, "#") == strings{"SYS/monitor/Clients", "a/$x"});
    CHECK(retained(t, "+") == strings{});
    CHECK(retained(t, "+/monitor/Clients") == strings{"SYS/monitor/Clients"});
    CHECK(retained(t, "+/+") == strings{"a/$x"});
    CHECK(retained(t, "$SYS/#") == strings{"$SYS", "$SYS/broker/uptime", "$SYS/monitor/Clients"});
    CHECK(retained(t, "$SYS/+/Clients") == strings{"$SYS/monitor/Clients"});
    CHECK(retained(t, "$other") == strings{"$other"});
    CHECK(retained(t, "a/+") == strings{"a/$x"});
}

TEST_CASE("MQTT-4.7.1 retained empty levels and slash edge cases") {
    auto t = with_topics({"/", "//", "a/", "a", "/a", "a//b", "a/b"});
    CHECK(retained(t, "/") == strings{"/"});
    CHECK(retained(t, "+/+") == strings{"/", "/a", "a/", "a/b"});
    CHECK(retained(t, "/#") == strings{"/", "//", "/a"});
    CHECK(retained(t, "a/#") == strings{"a", "a/", "a//b", "a/b"});
    CHECK(retained(t, "a/+") == strings{"a/", "a/b"});
    CHECK(retained(t, "a/+/b") == strings{"a//b"});
    CHECK(retained(t, "+/") == strings{"/", "a/"});
    CHECK(retained(t, "+/+/+") == strings{"//", "a//b"});
    CHECK(retained(t, "+") == strings{"a"});
}

TEST_CASE("erase_if removes matching values and prunes") {
    retained_tree<int> t;
    std::vector<std::string> topics;
    for (int i = 0; i < 200; ++i) {
        topics.push_back((i % 3 == 0 ? "$SYS/" : "") + std::string("t/") + std::to_string(i % 7) + "/" + std::to_string(i));
        t.set(topics.back(), i);
    }
    t.set("t", 1000);
    t.set("t/3", 1001);
    CHECK(t.size() == 202);
    CHECK(t.erase_if([](const int& v) { return v % 2 == 0; }) == 101);
    CHECK(t.size() == 101);
    for (int i = 0; i < 200; ++i) {
        const int* found = t.find(topics[i]);
        if (i % 2 == 0) {
            CHECK(found == nullptr);
        } else {
            REQUIRE(found != nullptr);
            CHECK(*found == i);
        }
    }
    CHECK(*t.find("t/3") == 1001);
    CHECK(retained(t, "t/3").size() == 1);
    CHECK(t.erase_if([](const int&) { return false; }) == 0);
    CHECK(t.erase_if([](const int&) { return true; }) == 101);
    CHECK(t.empty());
    CHECK(t.node_count() == 0);
    CHECK(retained(t, "#").empty());
}

TEST_CASE("erase_if prunes only the emptied branches") {
    retained_tree<int> t;
    t.set("a/b/c", 1);
    t.set("a/b", 2);
    t.set("a/x/y/z", 3);
    CHECK(t.node_count() == 6);
    CHECK(t.erase_if([](const int& v) { return v != 2; }) == 2);
    CHECK(t.node_count() == 2);  // a, a/b
    CHECK(*t.find("a/b") == 2);
}

TEST_CASE("retained for_each lists topic names") {
    const strings topics = {"a", "a/b", "/", "//x", "a//", "$SYS/x", "$", "b/c/d/e"};
    auto t = with_topics(topics);
    std::map<std::string, std::string> seen;
    t.for_each([&](std::string_view topic, const std::string& value) { seen.emplace(std::string(topic), value); });
    CHECK(seen.size() == topics.size());
    for (const auto& [topic, value] : seen) CHECK(topic == value);
}

TEST_CASE("deep retained topics neither recurse nor overflow") {
    retained_tree<int> t;
    std::string topic;
    for (int i = 0; i < 30000; ++i) topic += i ? "/x" : "x";
    t.set(topic, 1);
    t.set("x", 2);
    CHECK(*t.find(topic) == 1);
    CHECK(retained(t, "#") == std::vector<int>{1, 2});
    CHECK(retained(t, topic) == std::vector<int>{1});
    CHECK(t.erase(topic));
    CHECK(t.node_count() == 1);
    t.set(topic, 1);
    CHECK(t.erase_if([](const int& v) { return v == 1; }) == 1);
    CHECK(t.node_count() == 1);
    t.set(topic, 1);
    // The destructor tears the 30000 levels down too.
}
