// ACL files in Mosquitto 2.0's syntax and with its decisions (src/security_default.c):
// user blocks, the anonymous section, patterns, deny precedence, $SYS, and the stricter
// subscription check that keeps "#" from leaking.
#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "auth_test_support.hpp"
#include "broker/auth/acl_file.hpp"
#include "broker/topics/topic_match.hpp"

using namespace edgemq::auth;
using edgemq::core::client_identity;

namespace {

client_identity user(std::string name, std::string client_id = "client-1") {
    return {std::move(client_id), std::move(name)};
}

client_identity anonymous(std::string client_id = "client-1") {
    return {std::move(client_id), std::nullopt};
}

acl_file acl(const std::string& text) {
    return acl_file::parse(text, "acl.conf");
}

std::string error_of(const std::string& text) {
    try {
        (void)acl(text);
    } catch (const file_error& e) {
        return e.what();
    }
    return "(accepted)";
}

}  // namespace

TEST_CASE("acl: user blocks apply to their user and the rules before them to anonymous clients") {
    const auto a = acl(
        "# anonymous clients\n"
        "topic read public/#\n"
        "\n"
        "user alice\n"
        "topic alice/#\n"
        "user bob\n"
        "topic readwrite bob/#\n"
        "user alice\n"  // a second block for alice adds up
        "topic write shared/in\n");
    CHECK(a.rule_count() == 4);

    CHECK(a.may_read(anonymous(), "public/news"));
    CHECK_FALSE(a.may_write(anonymous(), "public/news"));
    CHECK_FALSE(a.may_read(anonymous(), "alice/x"));

    CHECK(a.may_read(user("alice"), "alice/x"));
    CHECK(a.may_write(user("alice"), "alice/x/y"));
    CHECK(a.may_write(user("alice"), "shared/in"));
    CHECK_FALSE(a.may_read(user("alice"), "shared/in"));
    CHECK_FALSE(a.may_read(user("alice"), "bob/x"));
    // Anonymous rules are not a default for named users (Mosquitto: one list per client).
    CHECK_FALSE(a.may_read(user("alice"), "public/news"));

    CHECK(a.may_write(user("bob"), "bob"));  // "bob/#" matches its parent [MQTT-4.7.1-2]
    CHECK_FALSE(a.may_read(user("carol"), "alice/x"));  // a user with no block: nothing
    CHECK_FALSE(a.may_read(user(""), "public/news"));
}

TEST_CASE("acl: read write readwrite and no access word") {
    const auto a = acl(
        "topic read r\n"
        "topic write w\n"
        "topic readwrite rw\n"
        "topic plain\n");
    const auto c = anonymous();
    CHECK(a.may_read(c, "r"));
    CHECK_FALSE(a.may_write(c, "r"));
    CHECK_FALSE(a.may_read(c, "w"));
    CHECK(a.may_write(c, "w"));
    CHECK(a.may_read(c, "rw"));
    CHECK(a.may_write(c, "rw"));
    CHECK(a.may_read(c, "plain"));
    CHECK(a.may_write(c, "plain"));
    CHECK_FALSE(a.may_read(c, "other"));  // deny by default
    CHECK_FALSE(a.may_write(c, "other"));
}

TEST_CASE("acl: deny rules win within a block wherever they stand") {
    const auto a = acl(
        "user alice\n"
        "topic readwrite plant/#\n"
        "topic deny plant/secret/#\n"
        "topic read plant/+/alarm\n");
    const auto alice = user("alice");
    CHECK(a.may_read(alice, "plant/line1/temp"));
    CHECK(a.may_write(alice, "plant/line1/temp"));
    CHECK_FALSE(a.may_read(alice, "plant/secret"));
    CHECK_FALSE(a.may_write(alice, "plant/secret/key"));
    CHECK_FALSE(a.may_read(alice, "plant/secret/alarm"));
}

TEST_CASE("acl: a client's own rules are consulted before patterns") {
    const auto a = acl(
        "pattern deny devices/%c/private\n"
        "pattern read devices/#\n"
        "user alice\n"
        "topic read devices/d1/private\n"
        "topic deny devices/d1/blocked\n");
    // Own allow beats a pattern deny, own deny beats a pattern allow (Mosquitto 2.0).
    CHECK(a.may_read(user("alice", "d1"), "devices/d1/private"));
    CHECK_FALSE(a.may_read(user("alice", "d1"), "devices/d1/blocked"));
    CHECK(a.may_read(user("alice", "d1"), "devices/d2/other"));
    CHECK_FALSE(a.may_read(user("bob", "d1"), "devices/d1/private"));
    CHECK(a.may_read(user("bob", "d1"), "devices/d1/blocked"));
    CHECK(a.may_read(user("bob", "d1"), "devices/d2/private"));
}

TEST_CASE("acl: patterns substitute the client id and the user name") {
    const auto a = acl(
        "pattern readwrite devices/%c/#\n"
        "pattern read users/%u/inbox\n"
        "pattern write logs/%u-%c\n"  // inside a level, as Mosquitto 2.0 substitutes
        "pattern read lit/%%c/%x\n");
    const auto alice = user("alice", "sensor7");
    CHECK(a.may_write(alice, "devices/sensor7/temp"));
    CHECK(a.may_read(alice, "devices/sensor7"));
    CHECK_FALSE(a.may_write(alice, "devices/sensor8/temp"));
    CHECK(a.may_read(alice, "users/alice/inbox"));
    CHECK_FALSE(a.may_read(alice, "users/bob/inbox"));
    CHECK(a.may_write(alice, "logs/alice-sensor7"));
    CHECK_FALSE(a.may_write(alice, "logs/alice-sensor"));
    CHECK_FALSE(a.may_write(alice, "logs/alice-sensor77"));
    CHECK(a.may_read(alice, "lit/%sensor7/%x"));
    // Patterns apply to anonymous clients too, except those that need %u.
    CHECK(a.may_write(anonymous("sensor9"), "devices/sensor9/x"));
    CHECK_FALSE(a.may_read(anonymous("sensor9"), "users//inbox"));
    CHECK_FALSE(a.may_read(anonymous("sensor9"), "users/%u/inbox"));
    // An empty client id or user name matches nothing.
    CHECK_FALSE(a.may_write(anonymous(""), "devices//x"));
    CHECK_FALSE(a.may_read(user("", "c"), "users//inbox"));
    // "topic" lines never substitute.
    const auto literal = acl("topic read t/%c\n");
    CHECK(literal.may_read(anonymous("x"), "t/%c"));
    CHECK_FALSE(literal.may_read(anonymous("x"), "t/x"));
}

TEST_CASE("acl: client ids and user names with + # or / never widen a pattern") {
    const auto a = acl(
        "pattern readwrite devices/%c/#\n"
        "pattern read users/%u\n"
        "user alice\n"
        "topic read own/#\n");
    for (const auto* hostile : {"#", "+", "a/b", "x+", "y#z", "/"}) {
        CAPTURE(hostile);
        CHECK_FALSE(a.may_write(anonymous(hostile), "devices/other/x"));
        CHECK_FALSE(a.may_write(anonymous(hostile), std::string("devices/") + hostile + "/x"));
        CHECK_FALSE(a.may_read(user(hostile, "fine"), "users/x"));
        CHECK_FALSE(a.may_read(user(hostile, "fine"), std::string("users/") + hostile));
        CHECK_FALSE(a.may_subscribe(anonymous(hostile), "devices/#"));
        // The whole pattern step is refused, even patterns that do not use the bad value.
        CHECK_FALSE(a.may_write(user(hostile, "fine"), "devices/fine/x"));
    }
    // "a/b" would otherwise reach into client "a"'s subtree.
    CHECK(a.may_write(anonymous("a"), "devices/a/b/x"));
    CHECK_FALSE(a.may_write(anonymous("a/b"), "devices/a/b/x"));
    // The client's own rules still apply (Mosquitto checks them first).
    CHECK(a.may_read(user("alice", "bad#id"), "own/x"));
    // Nor does a '$' id reach $SYS.
    const auto b = acl("pattern read %c/#\n");
    CHECK(b.may_read(anonymous("room"), "room/t"));
    CHECK_FALSE(b.may_read(anonymous("$SYS"), "$SYS/broker/uptime"));
    CHECK_FALSE(b.may_subscribe(anonymous("$SYS"), "$SYS/#"));
}

TEST_CASE("acl: $SYS is only granted by rules that name it (MQTT-4.7.2-1)") {
    const auto a = acl(
        "topic readwrite #\n"
        "topic read +/broker/#\n"
        "user admin\n"
        "topic read $SYS/#\n"
        "topic readwrite #\n");
    CHECK(a.may_read(anonymous(), "anything/at/all"));
    CHECK_FALSE(a.may_read(anonymous(), "$SYS/broker/uptime"));
    CHECK_FALSE(a.may_read(anonymous(), "$other"));
    CHECK(a.may_read(user("admin"), "$SYS/broker/uptime"));
    CHECK_FALSE(a.may_read(user("admin"), "$OTHER/x"));
    CHECK(a.may_subscribe(anonymous(), "#"));
    CHECK_FALSE(a.may_subscribe(anonymous(), "$SYS/#"));
    CHECK(a.may_subscribe(user("admin"), "$SYS/broker/+"));
}

TEST_CASE("acl: publishing to $SYS or $share is refused whatever the rules say") {
    const auto a = acl("topic readwrite $SYS/#\ntopic readwrite $share/#\ntopic readwrite $SYSTEM\n");
    CHECK(a.may_read(anonymous(), "$SYS/broker/uptime"));
    CHECK_FALSE(a.may_write(anonymous(), "$SYS/broker/uptime"));
    CHECK_FALSE(a.may_write(anonymous(), "$SYSTEM"));  // Mosquitto compares 4 characters
    CHECK_FALSE(a.may_write(anonymous(), "$share/g/t"));
    CHECK_FALSE(a.may_read(anonymous(), "$share/g/t"));
}

TEST_CASE("acl: a subscription is granted when one read rule covers the whole filter") {
    const auto a = acl("topic read a/+/c\ntopic write w/#\ntopic read x/#\ntopic read e/+\n");
    const auto c = anonymous();
    CHECK(a.may_subscribe(c, "a/b/c"));
    CHECK(a.may_subscribe(c, "a/+/c"));
    CHECK_FALSE(a.may_subscribe(c, "a/#"));
    CHECK_FALSE(a.may_subscribe(c, "a/+/#"));
    CHECK_FALSE(a.may_subscribe(c, "a/b/+"));
    CHECK_FALSE(a.may_subscribe(c, "#"));
    CHECK_FALSE(a.may_subscribe(c, "+/+/c"));
    CHECK_FALSE(a.may_subscribe(c, "a/b/c/d"));
    CHECK_FALSE(a.may_subscribe(c, "a/b"));
    CHECK_FALSE(a.may_subscribe(c, "w/#"));  // write only
    CHECK(a.may_subscribe(c, "x/#"));
    CHECK(a.may_subscribe(c, "x"));  // "x/#" matches "x" too
    CHECK(a.may_subscribe(c, "x/+/+/#"));
    CHECK(a.may_subscribe(c, "e/"));  // '+' matches the empty level
    CHECK_FALSE(a.may_subscribe(c, "e/+/#"));  // "e/+/#" matches "e/f" and "e/f/g"
    CHECK_FALSE(a.may_subscribe(c, "e"));
    // Invalid filters and unstripped shared ones are never granted.
    CHECK_FALSE(a.may_subscribe(c, "x/#/y"));
    CHECK_FALSE(a.may_subscribe(c, "x/a+"));
    CHECK_FALSE(a.may_subscribe(c, ""));
    CHECK_FALSE(a.may_subscribe(c, "$share/g/x/y"));
}

TEST_CASE("acl: a deny rule refuses the subscriptions it covers and deliveries do the rest") {
    const auto a = acl(
        "topic readwrite #\n"
        "topic deny a/secret\n"
        "topic deny +/hidden/#\n");
    const auto c = anonymous();
    CHECK(a.may_subscribe(c, "b/c"));
    CHECK(a.may_subscribe(c, "b/c/#"));
    CHECK(a.may_subscribe(c, "a/public"));
    // Granted though they reach denied topics: those are dropped at delivery.
    CHECK(a.may_subscribe(c, "b/#"));
    CHECK(a.may_subscribe(c, "#"));
    CHECK(a.may_subscribe(c, "a/+"));
    CHECK_FALSE(a.may_read(c, "b/hidden"));
    CHECK_FALSE(a.may_read(c, "a/secret"));
    CHECK(a.may_read(c, "a/public"));
    // Refused: every topic they can match is denied.
    CHECK_FALSE(a.may_subscribe(c, "a/secret"));
    CHECK_FALSE(a.may_subscribe(c, "x/hidden"));
    CHECK_FALSE(a.may_subscribe(c, "x/hidden/#"));
    CHECK_FALSE(a.may_subscribe(c, "+/hidden/y"));
    CHECK(a.may_subscribe(c, "x/shown/y"));
    // A deny in $SYS does not touch filters that cannot match $ topics, and the other way.
    const auto b = acl("topic read #\ntopic read $SYS/#\ntopic deny $SYS/secret\n");
    CHECK(b.may_subscribe(c, "#"));
    CHECK(b.may_subscribe(c, "+/secret"));
    CHECK(b.may_subscribe(c, "$SYS/#"));
    CHECK_FALSE(b.may_subscribe(c, "$SYS/secret"));
    CHECK_FALSE(b.may_read(c, "$SYS/secret"));
    CHECK(b.may_subscribe(c, "$SYS/broker/#"));
}

TEST_CASE("acl: subscriptions through patterns") {
    const auto a = acl(
        "pattern read devices/%c/#\n"
        "pattern deny devices/%c/keys\n"
        "pattern read inbox/%u/+\n");
    CHECK(a.may_subscribe(user("alice", "d1"), "devices/d1/status"));
    CHECK(a.may_subscribe(user("alice", "d1"), "devices/d1/+/x"));
    CHECK(a.may_subscribe(user("alice", "d1"), "devices/d1/#"));  // keys: dropped at delivery
    CHECK_FALSE(a.may_read(user("alice", "d1"), "devices/d1/keys"));
    CHECK_FALSE(a.may_subscribe(user("alice", "d1"), "devices/d1/keys"));
    CHECK_FALSE(a.may_subscribe(user("alice", "d1"), "devices/+/status"));
    CHECK_FALSE(a.may_subscribe(user("alice", "d1"), "devices/d2/status"));
    CHECK(a.may_subscribe(user("alice", "d1"), "inbox/alice/+"));
    CHECK_FALSE(a.may_subscribe(user("alice", "d1"), "inbox/+/+"));
    CHECK_FALSE(a.may_subscribe(anonymous("d1"), "inbox/alice/x"));
}

TEST_CASE("acl: a granted subscription covers only topics a read rule allows") {
    // Soundness of may_subscribe against may_read, over every filter and topic built
    // from a small alphabet of levels: every topic a granted filter matches is readable
    // by the rules without their deny lines (the denies are applied at delivery).
    const std::string rules_text =
        "topic read a/#\n"
        "topic deny a/b/x\n"
        "topic read +/b\n"
        "topic read $SYS/+\n"
        "pattern read c/%c/#\n"
        "pattern deny c/%c/b\n"
        "user u\n"
        "topic read #\n"
        "topic deny +/x/#\n";
    const auto a = acl(rules_text);
    std::string allows_only;
    for (std::size_t at = 0; at < rules_text.size();) {
        const std::size_t end = rules_text.find('\n', at) + 1;
        const std::string line = rules_text.substr(at, end - at);
        if (line.find(" deny ") == std::string::npos) allows_only += line;
        at = end;
    }
    const auto without_denies = acl(allows_only);
    const std::vector<std::string> level_names{"a", "b", "x", "id", "c", "$SYS"};
    std::vector<std::string> topics;
    std::vector<std::string> filters{"#", "+"};
    for (const auto& l1 : level_names) {
        topics.push_back(l1);
        filters.push_back(l1);
        filters.push_back(l1 + "/#");
        filters.push_back(l1 + "/+");
        for (const auto& l2 : level_names) {
            if (l2 == "$SYS") continue;
            topics.push_back(l1 + "/" + l2);
            filters.push_back(l1 + "/" + l2);
            filters.push_back("+/" + l2);
            filters.push_back(l1 + "/" + l2 + "/#");
            for (const auto& l3 : level_names) {
                if (l3 == "$SYS") continue;
                topics.push_back(l1 + "/" + l2 + "/" + l3);
                filters.push_back(l1 + "/+/" + l3);
                filters.push_back("+/" + l2 + "/" + l3);
            }
        }
    }
    std::size_t granted = 0;
    for (const auto& who : {anonymous("id"), user("u", "id"), user("v", "id")}) {
        for (const auto& filter : filters) {
            if (!a.may_subscribe(who, filter)) continue;
            ++granted;
            for (const auto& topic : topics) {
                if (!edgemq::topics::topic_matches(filter, topic)) continue;
                CAPTURE(filter);
                CAPTURE(topic);
                CHECK(without_denies.may_read(who, topic));
            }
        }
    }
    CHECK(granted > 20);  // the check above is not vacuous
}

TEST_CASE("acl: syntax details follow Mosquitto") {
    const auto a = acl(
        "   # indented comment\n"
        "topic read\n"                   // one word: the topic "read", read and write
        "topic read with space/x  \r\n"  // the rest of the line is the filter
        "  topic\twrite\ttabbed\n"
        "user   spaced name  \n"
        "topic  deny  d\n"
        "topic readwrite #\n");
    const auto c = anonymous();
    CHECK(a.may_read(c, "read"));
    CHECK(a.may_write(c, "read"));
    CHECK(a.may_read(c, "with space/x"));
    CHECK_FALSE(a.may_read(c, "with"));
    CHECK(a.may_write(c, "tabbed"));
    CHECK(a.may_write(user("spaced name"), "x"));
    CHECK_FALSE(a.may_write(user("spaced name"), "d"));
    CHECK(a.rule_count() == 5);
    CHECK(acl("").rule_count() == 0);
    CHECK_FALSE(acl("").may_read(c, "x"));
    CHECK_FALSE(acl("user alice\n").may_read(user("alice"), "x"));
}

TEST_CASE("acl: malformed lines name the file and line") {
    CHECK(error_of("topic a\nsubscribe b\n") ==
          "acl.conf:2: unknown keyword 'subscribe' (expected topic, pattern or user)");
    CHECK(error_of("Topic a\n").starts_with("acl.conf:1: unknown keyword 'Topic'"));  // case sensitive
    CHECK(error_of("topic\n") == "acl.conf:1: 'topic' without a topic");
    CHECK(error_of("\n\npattern   \n") == "acl.conf:3: 'pattern' without a topic");
    CHECK(error_of("user\n") == "acl.conf:1: 'user' without a user name");
    CHECK(error_of("topic readonly a/b\n") ==
          "acl.conf:1: unknown access 'readonly' (expected read, write, readwrite or deny)");
    CHECK(error_of("topic read a/#/b\n").starts_with("acl.conf:1: invalid topic filter 'a/#/b': "));
    CHECK(error_of("pattern read a+/%c\n").starts_with("acl.conf:1: invalid topic filter 'a+/%c': "));
    CHECK(error_of("topic read \xff\n").starts_with("acl.conf:1: invalid topic filter"));

    edgemq::auth_test::temp_dir dir;
    try {
        (void)acl_file::load(dir.file("missing.acl"));
        FAIL("loaded a missing file");
    } catch (const file_error& e) {
        CHECK(std::string(e.what()) == dir.file("missing.acl") + ": cannot open: No such file or directory");
    }
}

namespace {

struct mqtt_client {
    std::string client_id;
    std::optional<std::string> username;
};

std::vector<std::string> client_args(const char* program, int port, const mqtt_client& c) {
    std::vector<std::string> args{program, "-h", "127.0.0.1", "-p", std::to_string(port), "-i", c.client_id};
    if (c.username) {
        args.push_back("-u");
        args.push_back(*c.username);
    }
    return args;
}

void publish_retained(int port, const mqtt_client& c, const std::string& topic) {
    auto args = client_args("mosquitto_pub", port, c);
    args.insert(args.end(), {"-t", topic, "-m", "x", "-r", "-q", "1"});
    const auto r = edgemq::auth_test::run(args);
    REQUIRE_MESSAGE(r.exit_code == 0, r.output);
}

// The retained topics the broker delivers to `c` when it subscribes to "#".
std::set<std::string> retained_topics_seen(int port, const mqtt_client& c) {
    auto args = client_args("mosquitto_sub", port, c);
    // Retained messages arrive right after SUBACK; the wait only has to outlast that.
    const auto wait = std::to_string(static_cast<int>(2 * edgemq::test::time_scale()));
    args.insert(args.end(), {"-t", "#", "-v", "-W", wait, "--retained-only"});
    const auto r = edgemq::auth_test::run(args, std::chrono::seconds(30));
    REQUIRE_FALSE(r.timed_out);
    std::set<std::string> seen;
    std::istringstream lines(r.output);
    for (std::string line; std::getline(lines, line);) {
        if (line.ends_with(" x")) seen.insert(line.substr(0, line.size() - 2));
    }
    return seen;
}

}  // namespace

TEST_CASE("acl: reads and writes agree with the mosquitto broker on the same file") {
    EDGEMQ_REQUIRE_PROGRAM("mosquitto");
    EDGEMQ_REQUIRE_PROGRAM("mosquitto_pub");
    EDGEMQ_REQUIRE_PROGRAM("mosquitto_sub");
    const std::string text =
        "# anonymous clients\n"
        "topic read public/#\n"
        "user admin\n"
        "topic readwrite #\n"
        "user alice\n"
        "topic readwrite plant/#\n"
        "topic deny plant/secret\n"
        "topic read devices/d1/override\n"
        "pattern read devices/%c/#\n"
        "pattern deny devices/%c/keys\n"
        "pattern deny devices/%c/override\n"
        "pattern write outbox/%u/%c\n";
    const std::vector<std::string> topics{"plant/a",         "plant/secret",    "plant/secret/x",
                                          "devices/d1/t",    "devices/d1/keys", "devices/d1/override",
                                          "devices/d2/t",    "devices/d2/keys", "devices/d3/t",
                                          "public/x",        "outbox/alice/d1", "outbox/bob/d3",
                                          "other"};
    const mqtt_client admin{"admin-1", "admin"};
    const std::vector<mqtt_client> clients{{"d1", "alice"}, {"d2", std::nullopt}, {"d3", "bob"}};

    edgemq::auth_test::temp_dir dir;
    const auto path = dir.file("acl");
    edgemq::auth_test::write_file(path, text);
    const auto ours = acl_file::load(path);

    SUBCASE("reads") {
        edgemq::auth_test::mosquitto_broker broker(dir, "allow_anonymous true\nacl_file " + path + "\n");
        for (const auto& topic : topics) publish_retained(broker.port(), admin, topic);
        for (const auto& c : clients) {
            std::set<std::string> expected;
            for (const auto& topic : topics) {
                if (ours.may_read({c.client_id, c.username}, topic)) expected.insert(topic);
            }
            CAPTURE(c.client_id);
            CHECK(retained_topics_seen(broker.port(), c) == expected);
            CHECK(!expected.empty());
        }
    }
    SUBCASE("writes") {
        for (const auto& c : clients) {
            edgemq::auth_test::mosquitto_broker broker(dir, "allow_anonymous true\nacl_file " + path + "\n");
            std::set<std::string> expected;
            for (const auto& topic : topics) {
                publish_retained(broker.port(), c, topic);
                if (ours.may_write({c.client_id, c.username}, topic)) expected.insert(topic);
            }
            CAPTURE(c.client_id);
            CHECK(retained_topics_seen(broker.port(), admin) == expected);
        }
    }
}
