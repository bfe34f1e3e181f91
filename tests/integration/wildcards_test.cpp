// Topic filters end to end: + and # (with empty levels), and $-topics, for every
// publisher x subscriber protocol version pair.
#include "helpers.hpp"

using namespace edgemq::test;

TEST_SUITE_BEGIN("integration");

namespace {

// Two publishers and two subscribers, one of each protocol version, connected once.
struct matrix {
    broker_process broker;
    paho_client pub311{broker, "pub311", v311}, pub5{broker, "pub5", v5};
    paho_client sub311{broker, "sub311", v311}, sub5{broker, "sub5", v5};
    matrix() {
        connect_all({&pub311, &pub5, &sub311, &sub5});
        sub311.subscribe("sentinel", 1);
        sub5.subscribe("sentinel", 1);
    }

    // Subscribes `filter`, publishes every topic from each publisher, and returns the
    // sorted topics received; every publisher x subscriber pair must agree.
    std::vector<std::string> matched(const std::string& filter, const std::vector<std::string>& publish) {
        std::optional<std::vector<std::string>> first;
        for (auto* sub : {&sub311, &sub5}) sub->subscribe(filter, 1);
        for (auto* pub : {&pub311, &pub5}) {
            std::string mark = "end " + std::to_string(++round_);
            for (auto& t : publish) pub->publish(t, t, 1);
            pub->publish("sentinel", mark, 1);
            for (auto* sub : {&sub311, &sub5}) {
                INFO(pair_name(pub->version(), sub->version()) << ", filter " << filter);
                auto got = topics_until_sentinel(*sub, "sentinel", mark);
                if (!first) first = got;
                CHECK(got == *first);
            }
        }
        for (auto* sub : {&sub311, &sub5}) sub->unsubscribe(filter);
        return *first;
    }
    int round_ = 0;
};

using topics = std::vector<std::string>;

}  // namespace

TEST_CASE("[MQTT-4.7.1-3] single-level wildcard + matches exactly one level") {
    matrix m;
    auto got = m.matched("a/+/c", {"a/b/c", "a/c", "a/b/x/c", "a/b/c/d", "x/b/c", "a/bb/c"});
    CHECK(got == topics{"a/b/c", "a/bb/c"});
}

TEST_CASE("[MQTT-4.7.1-2] multi-level wildcard # matches the parent and every child level") {
    matrix m;
    auto got = m.matched("sport/tennis/#", {"sport/tennis", "sport/tennis/p1", "sport/tennis/p1/ranking",
                                          "sport/tennisx", "sport", "sport/tennis/"});
    CHECK(got == topics{"sport/tennis", "sport/tennis/", "sport/tennis/p1", "sport/tennis/p1/ranking"});
}

TEST_CASE("[MQTT-4.7.1-3] + matches an empty level and leading or trailing empty levels are levels") {
    matrix m;
    CHECK(m.matched("+/+", {"/finance", "finance", "a/b/c", "a/"}) == topics{"/finance", "a/"});
    CHECK(m.matched("/+", {"/finance", "finance", "//x"}) == topics{"/finance"});
    CHECK(m.matched("a//c", {"a//c", "a/b/c", "a/c"}) == topics{"a//c"});
    CHECK(m.matched("a/+/c", {"a//c"}) == topics{"a//c"});
}

TEST_CASE("[MQTT-4.7.1-2] # alone matches every topic not starting with $") {
    matrix m;
    CHECK(m.matched("#", {"a", "/", "a/b/c", "//"}) == topics{"/", "//", "a", "a/b/c"});
}

TEST_CASE("[MQTT-4.7.2-1] $-topics are not matched by filters starting with + or #") {
    matrix m;
    for (auto* sub : {&m.sub311, &m.sub5}) {
        sub->subscribe("#", 1);
        sub->subscribe("+/monitor/clients", 1);
        sub->subscribe("+/+", 1);
    }
    m.pub5.publish("$edge/monitor/clients", "hidden", 1);
    m.pub5.publish("$edge/x", "hidden", 1);
    m.pub5.publish("sentinel", "end", 1);
    for (auto* sub : {&m.sub311, &m.sub5}) {
        INFO("sub " << version_name(sub->version()));
        auto got = topics_until_sentinel(*sub, "sentinel", "end");
        CHECK(got.empty());
        for (auto f : {"#", "+/monitor/clients", "+/+"}) sub->unsubscribe(f);
        // An explicit $ filter does match.
        sub->subscribe("$edge/#", 1);
    }
    m.pub311.publish("$edge/monitor/clients", "seen", 1);
    for (auto* sub : {&m.sub311, &m.sub5}) {
        INFO("sub " << version_name(sub->version()));
        auto msg = sub->next();
        while (msg && msg->get_topic() == "sentinel") msg = sub->next();  // extra copies
        REQUIRE(msg);
        CHECK(msg->get_topic() == "$edge/monitor/clients");
        CHECK(payload(msg) == "seen");
    }
}

TEST_SUITE_END();
