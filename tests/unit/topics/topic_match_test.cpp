// topic_matches(), the level cursor and the $share split: the oracle the tree tests
// rely on, so it is checked against every example of MQTT 5.0 section 4.7.
#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include "broker/topics/topic_levels.hpp"
#include "broker/topics/topic_match.hpp"

using edgemq::topics::level_cursor;
using edgemq::topics::split_share;
using edgemq::topics::topic_matches;

namespace {

std::vector<std::string> levels_of(std::string_view s) {
    std::vector<std::string> out;
    level_cursor c(s);
    while (!c.at_end()) out.emplace_back(c.next());
    return out;
}

}  // namespace

TEST_CASE("MQTT-4.7.1 level cursor keeps empty levels") {
    using v = std::vector<std::string>;
    CHECK(levels_of("a") == v{"a"});
    CHECK(levels_of("a/b/c") == v{"a", "b", "c"});
    CHECK(levels_of("a//b") == v{"a", "", "b"});
    CHECK(levels_of("/a") == v{"", "a"});
    CHECK(levels_of("a/") == v{"a", ""});
    CHECK(levels_of("/") == v{"", ""});
    CHECK(levels_of("//") == v{"", "", ""});
    CHECK(levels_of("") == v{""});
    CHECK(level_cursor().at_end());
}

TEST_CASE("MQTT-4.8.2 split_share separates share name and filter") {
    auto p = split_share("$share/g1/sport/tennis/#");
    CHECK(p.share_name == "g1");
    CHECK(p.filter == "sport/tennis/#");
    p = split_share("$share/g/#");
    CHECK(p.share_name == "g");
    CHECK(p.filter == "#");
    p = split_share("$share/g//a");
    CHECK(p.share_name == "g");
    CHECK(p.filter == "/a");
    p = split_share("$share/g/$SYS/#");
    CHECK(p.share_name == "g");
    CHECK(p.filter == "$SYS/#");
    for (std::string_view plain : {"sport/#", "$SYS/#", "$shared/g/a", "$Share/g/a", "a/$share/g/b", "$share"}) {
        CAPTURE(plain);
        p = split_share(plain);
        CHECK(p.share_name.empty());
        CHECK(p.filter == plain);
    }
}

TEST_CASE("MQTT-4.7.1-2 multi-level wildcard examples") {
    // The example of section 4.7.1.2.
    CHECK(topic_matches("sport/tennis/player1/#", "sport/tennis/player1"));
    CHECK(topic_matches("sport/tennis/player1/#", "sport/tennis/player1/ranking"));
    CHECK(topic_matches("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon"));
    CHECK_FALSE(topic_matches("sport/tennis/player1/#", "sport/tennis/player2"));
    CHECK_FALSE(topic_matches("sport/tennis/player1/#", "sport/tennis"));
    // "sport/#" also matches the singular "sport", since # includes the parent level.
    CHECK(topic_matches("sport/#", "sport"));
    CHECK(topic_matches("sport/#", "sport/"));
    CHECK(topic_matches("sport/#", "sport/tennis/player1"));
    CHECK_FALSE(topic_matches("sport/#", "sports"));
    CHECK_FALSE(topic_matches("sport/#", "Sport"));
    // "#" alone matches every topic not starting with '$'.
    CHECK(topic_matches("#", "sport"));
    CHECK(topic_matches("#", "/"));
    CHECK(topic_matches("#", "a/b/c/d"));
}

TEST_CASE("MQTT-4.7.1-3 single-level wildcard examples") {
    // The examples of section 4.7.1.3.
    CHECK(topic_matches("sport/tennis/+", "sport/tennis/player1"));
    CHECK(topic_matches("sport/tennis/+", "sport/tennis/player2"));
    CHECK_FALSE(topic_matches("sport/tennis/+", "sport/tennis/player1/ranking"));
    CHECK_FALSE(topic_matches("sport/+", "sport"));
    CHECK(topic_matches("sport/+", "sport/"));
    CHECK(topic_matches("+", "sport"));
    CHECK(topic_matches("+/+", "/finance"));
    CHECK(topic_matches("/+", "/finance"));
    CHECK_FALSE(topic_matches("+", "/finance"));
    CHECK(topic_matches("+/tennis/#", "sport/tennis/player1"));
    CHECK(topic_matches("+/tennis/#", "sport/tennis"));
    CHECK(topic_matches("sport/+/player1", "sport/tennis/player1"));
    CHECK_FALSE(topic_matches("sport/+/player1", "sport/tennis/player2"));
    CHECK(topic_matches("+/+/+", "a/b/c"));
    CHECK_FALSE(topic_matches("+/+/+", "a/b"));
    CHECK_FALSE(topic_matches("+/+/+", "a/b/c/d"));
}

TEST_CASE("MQTT-4.7.2-1 $SYS not matched by # or +/...") {
    CHECK_FALSE(topic_matches("#", "$SYS"));
    CHECK_FALSE(topic_matches("#", "$SYS/broker/uptime"));
    CHECK_FALSE(topic_matches("+/monitor/Clients", "$SYS/monitor/Clients"));
    CHECK_FALSE(topic_matches("+", "$SYS"));
    CHECK_FALSE(topic_matches("+/#", "$SYS/a"));
    CHECK(topic_matches("$SYS/#", "$SYS/monitor/Clients"));
    CHECK(topic_matches("$SYS/#", "$SYS"));
    CHECK(topic_matches("$SYS/monitor/+", "$SYS/monitor/Clients"));
    CHECK(topic_matches("$SYS/monitor/Clients", "$SYS/monitor/Clients"));
    CHECK(topic_matches("$", "$"));
    // Only the first character of the topic counts.
    CHECK(topic_matches("+/$x", "a/$x"));
    CHECK(topic_matches("a/+", "a/$x"));
    CHECK(topic_matches("#", "a/$SYS"));
    CHECK(topic_matches("+", "x$"));
}

TEST_CASE("MQTT-4.7.3-4 matching is case sensitive and byte exact") {
    CHECK_FALSE(topic_matches("ACCOUNTS", "Accounts"));
    CHECK(topic_matches("Accounts payable", "Accounts payable"));
    CHECK_FALSE(topic_matches("Accounts payable", "Accounts  payable"));
    CHECK(topic_matches("caf\xc3\xa9/+", "caf\xc3\xa9/x"));
    CHECK_FALSE(topic_matches("cafe/+", "caf\xc3\xa9/x"));
    CHECK_FALSE(topic_matches("a", "a "));
    CHECK_FALSE(topic_matches("a/b", "a/bc"));
    CHECK_FALSE(topic_matches("a/bc", "a/b"));
}

TEST_CASE("MQTT-4.7.1 empty levels and slash edge cases") {
    CHECK(topic_matches("a//b", "a//b"));
    CHECK(topic_matches("a/+/b", "a//b"));
    CHECK(topic_matches("a/#", "a//b"));
    CHECK(topic_matches("+/+/+", "a//b"));
    CHECK_FALSE(topic_matches("a/b", "a//b"));
    CHECK_FALSE(topic_matches("a//b", "a/b"));
    CHECK(topic_matches("/", "/"));
    CHECK(topic_matches("+/+", "/"));
    CHECK(topic_matches("/+", "/"));
    CHECK(topic_matches("+/", "/"));
    CHECK(topic_matches("/#", "/"));
    CHECK(topic_matches("#", "/"));
    CHECK_FALSE(topic_matches("+", "/"));
    CHECK(topic_matches("/a", "/a"));
    CHECK_FALSE(topic_matches("a", "/a"));
    CHECK(topic_matches("a/", "a/"));
    CHECK_FALSE(topic_matches("a", "a/"));
    CHECK_FALSE(topic_matches("a/", "a"));
    CHECK(topic_matches("a/+", "a/"));
    CHECK(topic_matches("a/#", "a/"));
    CHECK(topic_matches("a/#", "a"));
    CHECK(topic_matches("a/+/#", "a/"));
    CHECK_FALSE(topic_matches("a/+/#", "a"));
}
