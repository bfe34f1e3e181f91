// The broker core fed packets with a fake clock: CONNECT to DISCONNECT, routing across
// workers, sessions, wills, flow control. The bytes each side sees are real encodings.
#include <doctest/doctest.h>

#include "broker/core/log.hpp"
#include "tests/unit/core/harness.hpp"

using namespace edgemq;
using namespace edgemq::protocol;
using test::fake_broker;
using test::fake_connection;
using test::expect;
using namespace std::chrono_literals;

namespace {

// The core logs every connect and disconnect at info; keep test output readable.
const bool quiet_logs = (log::set_level(log::level::warn), true);

connect make_connect(std::string id, protocol_version v = protocol_version::v5, bool clean = true) {
    connect c;
    c.version = v;
    c.client_id = std::move(id);
    c.clean_start = clean;
    c.keep_alive = 60;
    return c;
}

connack open(fake_connection& c, connect conn) {
    c.version = conn.version == protocol_version::v31 ? protocol_version::v311 : conn.version;
    c.send(conn.version, conn);
    return expect<connack>(c);
}

void subscribe_to(fake_connection& c, std::string filter, std::uint8_t qos, std::uint32_t id = 0,
                  subscription_options extra = {}) {
    subscribe s;
    s.packet_id = 1;
    extra.qos = qos;
    s.entries.push_back({std::move(filter), extra});
    if (id) s.props.subscription_identifiers.push_back(id);
    c.send(c.version, s);
    auto ack = expect<suback>(c);
    REQUIRE(ack.codes.size() == 1);
}

void publish_to(fake_connection& c, std::string topic, std::string payload, std::uint8_t qos = 0,
                bool retain = false, std::uint16_t id = 0) {
    publish p;
    p.topic = std::move(topic);
    p.payload = std::move(payload);
    p.qos = qos;
    p.retain = retain;
    p.packet_id = qos ? (id ? id : 7) : 0;
    c.send(c.version, p);
}

}  // namespace

TEST_CASE("MQTT-3.2.2 CONNACK for v5 and v3.1.1, and routing between workers") {
    fake_broker b;
    auto sub = b.connect(0);
    auto pub = b.connect(1);
    auto ack = open(*sub, make_connect("sub"));
    CHECK(ack.code == reason_code::success);
    CHECK_FALSE(ack.session_present);
    CHECK(ack.props.receive_maximum == 1024);
    open(*pub, make_connect("pub", protocol_version::v311));
    subscribe_to(*sub, "sensors/+/temp", 1);
    publish_to(*pub, "sensors/a/temp", "21.5", 1);
    CHECK(expect<puback>(*pub).packet_id == 7);
    auto got = expect<publish>(*sub);
    CHECK(got.topic == "sensors/a/temp");
    CHECK(got.payload == "21.5");
    CHECK(got.qos == 1);
    CHECK(got.packet_id != 0);
}

TEST_CASE("MQTT-3.1.3-6 an empty client id gets an assigned one (v5)") {
    fake_broker b;
    auto c = b.connect();
    auto ack = open(*c, make_connect(""));
    REQUIRE(ack.props.assigned_client_identifier);
    CHECK_FALSE(ack.props.assigned_client_identifier->empty());
}

TEST_CASE("MQTT-3.1.3-8 v3.1.1 empty client id with clean session 0 is refused with 0x02") {
    fake_broker b;
    auto c = b.connect();
    c->version = protocol_version::v311;
    c->send(protocol_version::v311, make_connect("", protocol_version::v311, false));
    auto ack = expect<connack>(*c);
    CHECK(ack.code == reason_code::client_identifier_not_valid);
    CHECK(c->closed());
}

TEST_CASE("MQTT-3.1.0-1 a first packet other than CONNECT closes without CONNACK") {
    fake_broker b;
    auto c = b.connect();
    c->send_bytes(std::string("\xC0\x00", 2));  // PINGREQ
    CHECK(c->closed());
    CHECK_FALSE(c->receive());
}

TEST_CASE("MQTT-3.1.0-2 a second CONNECT is a protocol error") {
    fake_broker b;
    auto c = b.connect();
    open(*c, make_connect("twice"));
    c->send(protocol_version::v5, make_connect("twice"));
    CHECK(c->closed());
    CHECK_FALSE(c->receive());  // no DISCONNECT: the client is waiting for a CONNACK
}

TEST_CASE("MQTT-3.1.4-3 takeover: the old v5 connection gets DISCONNECT 0x8E, even from another worker") {
    fake_broker b;
    connect persistent = make_connect("dup", protocol_version::v5, false);
    persistent.props.session_expiry_interval = 60;
    auto first = b.connect(0);
    open(*first, persistent);
    auto second = b.connect(1);  // lands on the other worker: the socket moves to worker 0
    auto ack = open(*second, persistent);
    CHECK(ack.code == reason_code::success);
    CHECK(ack.session_present);
    CHECK(expect<disconnect>(*first).code == reason_code::session_taken_over);
    CHECK(first->closed());
}

TEST_CASE("MQTT-3.1.2-6 takeover of a session that ends with its connection: nothing reused and its Will is sent") {
    for (const auto old_version : {protocol_version::v311, protocol_version::v5}) {
        CAPTURE(static_cast<int>(old_version));
        fake_broker b;
        auto watcher = b.connect(0);
        open(*watcher, make_connect("watcher"));
        subscribe_to(*watcher, "wills/#", 0);
        // 3.1.1 Clean Session 1, or v5 Session Expiry 0: the session lasts as long as
        // its connection.
        auto first = b.connect(1);
        connect old_connect = make_connect("short", old_version, true);
        old_connect.will = will_message{"wills/short", "gone", 0, false, {}};
        open(*first, old_connect);
        subscribe_to(*first, "mine/#", 0);
        auto second = b.connect(0);
        auto ack = open(*second, make_connect("short", protocol_version::v5, false));
        CHECK_FALSE(ack.session_present);  // [MQTT-3.2.2-2]
        CHECK(first->closed());
        CHECK(expect<publish>(*watcher).topic == "wills/short");  // [MQTT-3.1.2-8]
        auto pub = b.connect(1);
        open(*pub, make_connect("pub"));
        publish_to(*pub, "mine/x", "not for the new session");
        CHECK_FALSE(second->receive());
    }
}

TEST_CASE("MQTT-3.3.4-3 overlapping subscriptions: one PUBLISH, highest QoS, every identifier") {
    fake_broker b;
    auto sub = b.connect(0);
    auto pub = b.connect(1);
    open(*sub, make_connect("s"));
    open(*pub, make_connect("p"));
    subscribe_to(*sub, "a/#", 0, 11);
    subscribe_to(*sub, "a/+/c", 2, 22);
    publish_to(*pub, "a/b/c", "x", 2);
    expect<pubrec>(*pub);
    auto got = expect<publish>(*sub);
    CHECK(got.qos == 2);
    auto ids = got.props.subscription_identifiers;
    std::sort(ids.begin(), ids.end());
    CHECK(ids == std::vector<std::uint32_t>{11, 22});
    CHECK_FALSE(sub->receive());
}

TEST_CASE("MQTT-3.8.3-3 No Local: not sent back to the publisher") {
    fake_broker b;
    auto c = b.connect();
    open(*c, make_connect("self"));
    subscription_options opts;
    opts.no_local = true;
    subscribe_to(*c, "loop", 0, 0, opts);
    publish_to(*c, "loop", "x");
    CHECK_FALSE(c->receive());
}

TEST_CASE("MQTT-3.3.1-5 retained: set, replace, delete; Retain Handling 0/1/2") {
    fake_broker b;
    auto pub = b.connect();
    open(*pub, make_connect("p"));
    publish_to(*pub, "r/1", "first", 0, true);
    publish_to(*pub, "r/1", "second", 0, true);
    publish_to(*pub, "r/2", "other", 1, true);
    expect<puback>(*pub);

    auto sub = b.connect();
    open(*sub, make_connect("s"));
    subscribe_to(*sub, "r/#", 1);
    auto all = sub->receive_all();
    REQUIRE(all.size() == 2);
    for (auto& p : all) {
        auto& m = std::get<publish>(p);
        CHECK(m.retain);  // [MQTT-3.3.1-8]
        CHECK((m.payload == "second" || m.payload == "other"));
    }
    SUBCASE("Retain Handling 1: only for a new subscription") {
        subscription_options o;
        o.retain_handling = 1;
        subscribe_to(*sub, "r/#", 1, 0, o);
        CHECK_FALSE(sub->receive());
    }
    SUBCASE("Retain Handling 2: never") {
        subscription_options o;
        o.retain_handling = 2;
        subscribe_to(*sub, "r/+", 1, 0, o);
        CHECK_FALSE(sub->receive());
    }
    SUBCASE("MQTT-3.3.1-6 empty payload deletes") {
        publish_to(*pub, "r/1", "", 0, true);
        sub->receive_all();
        auto late = b.connect();
        open(*late, make_connect("late"));
        subscribe_to(*late, "r/#", 0);
        auto got = late->receive_all();
        REQUIRE(got.size() == 1);
        CHECK(std::get<publish>(got[0]).topic == "r/2");
    }
}

TEST_CASE("MQTT-3.3.1-12 forwarding clears RETAIN unless Retain As Published") {
    fake_broker b;
    auto sub = b.connect();
    open(*sub, make_connect("s"));
    subscribe_to(*sub, "plain", 0);
    subscription_options rap;
    rap.retain_as_published = true;
    subscribe_to(*sub, "rap", 0, 0, rap);
    auto pub = b.connect();
    open(*pub, make_connect("p"));
    publish_to(*pub, "plain", "x", 0, true);
    CHECK_FALSE(expect<publish>(*sub).retain);
    publish_to(*pub, "rap", "x", 0, true);
    CHECK(expect<publish>(*sub).retain);
}

TEST_CASE("MQTT-4.4.0-1 persistent session: offline queue, then redelivery with DUP and original id") {
    fake_broker b;
    auto sub = b.connect();
    auto c = make_connect("persist", protocol_version::v5, false);
    c.props.session_expiry_interval = 3600;
    open(*sub, c);
    subscribe_to(*sub, "q/#", 1);
    auto pub = b.connect();
    open(*pub, make_connect("p"));
    publish_to(*pub, "q/1", "one", 1);
    auto first = expect<publish>(*sub);  // received, never acknowledged
    sub->drop();
    publish_to(*pub, "q/2", "two", 1, false, 8);
    publish_to(*pub, "q/3", "three", 0);

    auto again = b.connect();
    auto ack = open(*again, c);
    CHECK(ack.session_present);
    auto redelivered = expect<publish>(*again);
    CHECK(redelivered.dup);
    CHECK(redelivered.packet_id == first.packet_id);
    CHECK(redelivered.payload == "one");
    CHECK(expect<publish>(*again).payload == "two");
    CHECK(expect<publish>(*again).payload == "three");
}

TEST_CASE("MQTT-4.3.3 inbound QoS 2: a resent PUBLISH is acknowledged but delivered once") {
    fake_broker b;
    auto sub = b.connect();
    open(*sub, make_connect("s"));
    subscribe_to(*sub, "x", 2);
    auto pub = b.connect();
    open(*pub, make_connect("p"));
    publish_to(*pub, "x", "once", 2, false, 42);
    CHECK(expect<pubrec>(*pub).packet_id == 42);
    publish p;
    p.topic = "x";
    p.payload = "once";
    p.qos = 2;
    p.dup = true;
    p.packet_id = 42;
    pub->send(protocol_version::v5, p);
    CHECK(expect<pubrec>(*pub).packet_id == 42);
    pubrel rel;
    rel.packet_id = 42;
    pub->send(protocol_version::v5, rel);
    CHECK(expect<pubcomp>(*pub).code == reason_code::success);
    CHECK(expect<publish>(*sub).payload == "once");
    CHECK_FALSE(sub->receive());
}

TEST_CASE("MQTT-3.3.4-9 a client exceeding our Receive Maximum gets DISCONNECT 0x93") {
    core::broker_settings s;
    s.listeners.front().limits.receive_maximum = 2;
    fake_broker b(s);
    auto c = b.connect();
    open(*c, make_connect("greedy"));
    publish_to(*c, "t", "1", 2, false, 1);
    publish_to(*c, "t", "2", 2, false, 2);
    publish_to(*c, "t", "3", 2, false, 3);
    expect<pubrec>(*c);
    expect<pubrec>(*c);
    CHECK(expect<disconnect>(*c).code == reason_code::receive_maximum_exceeded);
}

TEST_CASE("MQTT-3.3.4-9 Receive Maximum counts only what was received on this connection") {
    // The quota starts afresh with each connection [MQTT-4.9.0]: QoS 2 flows left by the
    // previous connection (PUBREC sent, PUBREL not yet come) do not count against it.
    core::broker_settings s;
    s.listeners.front().limits.receive_maximum = 2;
    fake_broker b(s);
    connect persistent = make_connect("returning", protocol_version::v5, false);
    persistent.props.session_expiry_interval = 60;
    auto first = b.connect();
    open(*first, persistent);
    publish_to(*first, "t", "1", 2, false, 1);
    publish_to(*first, "t", "2", 2, false, 2);
    expect<pubrec>(*first);
    expect<pubrec>(*first);
    first->send(protocol_version::v5, disconnect{});
    auto second = b.connect();
    CHECK(open(*second, persistent).session_present);
    publish_to(*second, "t", "3", 2, false, 3);
    publish_to(*second, "t", "4", 2, false, 4);
    CHECK(expect<pubrec>(*second).packet_id == 3);
    CHECK(expect<pubrec>(*second).packet_id == 4);
    CHECK_FALSE(second->closed());
    // A PUBCOMP gives one back: a fifth may come, a sixth with two open may not.
    pubrel rel;
    rel.packet_id = 3;
    second->send(protocol_version::v5, rel);
    expect<pubcomp>(*second);
    publish_to(*second, "t", "5", 2, false, 5);
    CHECK(expect<pubrec>(*second).packet_id == 5);
    publish_to(*second, "t", "6", 2, false, 6);
    CHECK(expect<disconnect>(*second).code == reason_code::receive_maximum_exceeded);
}

TEST_CASE("MQTT-3.1.2-24 Keep Alive: silent for 1.5x closes with 0x8D and publishes the Will") {
    fake_broker b;
    auto watcher = b.connect();
    open(*watcher, make_connect("w"));
    subscribe_to(*watcher, "wills/#", 0);
    auto c = b.connect();
    auto conn = make_connect("sleepy");
    conn.keep_alive = 2;
    conn.will = will_message{"wills/sleepy", "gone", 0, false, {}};
    open(*c, conn);
    b.advance(2900ms);
    CHECK_FALSE(c->closed());
    b.advance(200ms);
    CHECK(expect<disconnect>(*c).code == reason_code::keep_alive_timeout);
    CHECK(expect<publish>(*watcher).payload == "gone");
}

TEST_CASE("MQTT-3.1.3-9 Will Delay: not sent if the client returns in time, sent after the delay otherwise") {
    fake_broker b;
    auto watcher = b.connect();
    open(*watcher, make_connect("w"));
    subscribe_to(*watcher, "wills/#", 0);
    auto conn = make_connect("flaky", protocol_version::v5, false);
    conn.props.session_expiry_interval = 100;
    conn.will = will_message{"wills/flaky", "gone", 0, false, {}};
    conn.will->props.will_delay_interval = 5;

    auto c = b.connect();
    open(*c, conn);
    c->drop();
    b.advance(3s);
    CHECK_FALSE(watcher->receive());
    auto back = b.connect();
    open(*back, conn);
    b.advance(10s);
    CHECK_FALSE(watcher->receive());  // reconnected before the delay

    back->drop();
    b.advance(4s);
    CHECK_FALSE(watcher->receive());
    b.advance(2s);
    CHECK(expect<publish>(*watcher).payload == "gone");
}

TEST_CASE("MQTT-3.14.4-3 DISCONNECT 0x00 discards the Will, 0x04 sends it") {
    fake_broker b;
    auto watcher = b.connect();
    open(*watcher, make_connect("w"));
    subscribe_to(*watcher, "wills/#", 0);
    auto conn = make_connect("polite");
    conn.will = will_message{"wills/polite", "bye", 0, false, {}};
    auto c = b.connect();
    open(*c, conn);
    c->send(protocol_version::v5, disconnect{});
    CHECK_FALSE(watcher->receive());
    auto c2 = b.connect();
    open(*c2, conn);
    disconnect with_will;
    with_will.code = reason_code::disconnect_with_will_message;
    c2->send(protocol_version::v5, with_will);
    CHECK(expect<publish>(*watcher).payload == "bye");
}

TEST_CASE("MQTT-3.3.2 topic aliases: inbound defined then used; 0 and above maximum are 0x94") {
    fake_broker b;
    auto sub = b.connect();
    open(*sub, make_connect("s"));
    subscribe_to(*sub, "long/topic/name", 0);
    auto pub = b.connect();
    open(*pub, make_connect("p"));
    publish p;
    p.topic = "long/topic/name";
    p.payload = "1";
    p.props.topic_alias = 3;
    pub->send(protocol_version::v5, p);
    p.topic.clear();
    p.payload = "2";
    pub->send(protocol_version::v5, p);
    CHECK(expect<publish>(*sub).payload == "1");
    auto second = expect<publish>(*sub);
    CHECK(second.payload == "2");
    CHECK(second.topic == "long/topic/name");

    p.props.topic_alias = 65;  // above the default maximum of 64
    p.topic = "x";
    pub->send(protocol_version::v5, p);
    CHECK(expect<disconnect>(*pub).code == reason_code::topic_alias_invalid);
}

TEST_CASE("outbound topic aliases for clients that accept them") {
    fake_broker b;
    auto sub = b.connect();
    auto conn = make_connect("s");
    conn.props.topic_alias_maximum = 5;
    open(*sub, conn);
    subscribe_to(*sub, "t/#", 0);
    auto pub = b.connect();
    open(*pub, make_connect("p"));
    publish_to(*pub, "t/a", "1");
    publish_to(*pub, "t/a", "2");
    auto first = expect<publish>(*sub);
    auto second = expect<publish>(*sub);
    REQUIRE(first.props.topic_alias);
    CHECK(first.topic == "t/a");
    CHECK(second.topic.empty());
    CHECK(second.props.topic_alias == first.props.topic_alias);
}

TEST_CASE("MQTT-3.1.2-25 messages larger than the client's Maximum Packet Size are not sent") {
    fake_broker b;
    auto sub = b.connect();
    auto conn = make_connect("small");
    conn.props.maximum_packet_size = 64;
    open(*sub, conn);
    subscribe_to(*sub, "t", 1);
    auto pub = b.connect();
    open(*pub, make_connect("p"));
    publish_to(*pub, "t", std::string(100, 'x'), 1);
    publish_to(*pub, "t", "fits", 1);
    auto got = expect<publish>(*sub);
    CHECK(got.payload == "fits");
}

TEST_CASE("MQTT-3.3.2-6 Message Expiry is counted down, and expired messages are not delivered") {
    fake_broker b;
    auto conn = make_connect("offline", protocol_version::v5, false);
    conn.props.session_expiry_interval = 3600;
    auto sub = b.connect();
    open(*sub, conn);
    subscribe_to(*sub, "e/#", 1);
    sub->drop();
    auto pub = b.connect();
    open(*pub, make_connect("p"));
    publish p;
    p.topic = "e/short";
    p.qos = 1;
    p.packet_id = 1;
    p.payload = "short";
    p.props.message_expiry_interval = 2;
    pub->send(protocol_version::v5, p);
    p.topic = "e/long";
    p.payload = "long";
    p.props.message_expiry_interval = 60;
    pub->send(protocol_version::v5, p);
    b.advance(10s);
    auto back = b.connect();
    open(*back, conn);
    auto got = expect<publish>(*back);
    CHECK(got.payload == "long");
    CHECK(got.props.message_expiry_interval == 50);
    CHECK_FALSE(back->receive());
}

TEST_CASE("session expiry removes the session and its subscriptions") {
    fake_broker b;
    auto conn = make_connect("brief", protocol_version::v5, false);
    conn.props.session_expiry_interval = 5;
    auto c = b.connect(0);
    open(*c, conn);
    subscribe_to(*c, "x", 0);
    c->drop();
    CHECK(b.worker(0).find_session("brief"));
    b.advance(6s);
    CHECK_FALSE(b.worker(0).find_session("brief"));
    auto back = b.connect(0);
    CHECK_FALSE(open(*back, conn).session_present);
}

TEST_CASE("CONNECT timeout closes a socket that never sends CONNECT") {
    core::broker_settings s;
    s.listeners.front().limits.connect_timeout = 2s;
    fake_broker b(s);
    auto c = b.connect();
    b.advance(1s);
    CHECK_FALSE(c->closed());
    b.advance(1500ms);
    CHECK(c->closed());
}

TEST_CASE("shared subscriptions: round robin within a group, each group gets a copy") {
    fake_broker b;
    auto a = b.connect();
    auto c = b.connect();
    auto other = b.connect();
    open(*a, make_connect("a"));
    open(*c, make_connect("c"));
    open(*other, make_connect("o"));
    subscribe_to(*a, "$share/g/jobs/#", 1);
    subscribe_to(*c, "$share/g/jobs/#", 1);
    subscribe_to(*other, "$share/h/jobs/#", 1);
    auto pub = b.connect();
    open(*pub, make_connect("p"));
    for (int i = 0; i < 10; ++i) publish_to(*pub, "jobs/" + std::to_string(i), "x", 0);
    CHECK(a->receive_all().size() == 5);
    CHECK(c->receive_all().size() == 5);
    CHECK(other->receive_all().size() == 10);
}

TEST_CASE("MQTT-4.7.2-1 $ topics are not matched by a leading wildcard") {
    fake_broker b;
    auto sub = b.connect();
    open(*sub, make_connect("s"));
    subscribe_to(*sub, "#", 0);
    subscribe_to(*sub, "+/info", 0);
    auto pub = b.connect();
    open(*pub, make_connect("p"));
    publish_to(*pub, "$app/info", "x");
    CHECK_FALSE(sub->receive());
}

TEST_CASE("MQTT-1.5.5-1 a remaining length of five bytes is malformed") {
    fake_broker b;
    auto c = b.connect();
    open(*c, make_connect("m"));
    c->send_bytes(std::string("\x30\xFF\xFF\xFF\xFF\x01", 6));
    CHECK(expect<disconnect>(*c).code == reason_code::malformed_packet);
    CHECK(c->closed());
}

TEST_CASE("MQTT-3.2.2-15 a packet above our Maximum Packet Size gets DISCONNECT 0x95") {
    core::broker_settings s;
    s.listeners.front().limits.max_packet_size = 128;
    fake_broker b(s);
    auto c = b.connect();
    CHECK(open(*c, make_connect("big")).props.maximum_packet_size == 128);
    publish_to(*c, "t", std::string(200, 'x'));
    CHECK(expect<disconnect>(*c).code == reason_code::packet_too_large);
}

TEST_CASE("v3.1.1 subscriber receives v5 publisher's message without properties") {
    fake_broker b;
    auto sub = b.connect();
    open(*sub, make_connect("old", protocol_version::v311));
    subscribe_to(*sub, "mixed", 1);
    auto pub = b.connect();
    open(*pub, make_connect("new"));
    publish p;
    p.topic = "mixed";
    p.payload = "hello";
    p.props.user_properties.push_back({"k", "v"});
    p.props.content_type = "text/plain";
    pub->send(protocol_version::v5, p);
    auto got = expect<publish>(*sub);
    CHECK(got.payload == "hello");
}

TEST_CASE("MQTT-3.3.2-18 user properties and content type pass through in order") {
    fake_broker b;
    auto sub = b.connect();
    open(*sub, make_connect("s"));
    subscribe_to(*sub, "props", 0);
    auto pub = b.connect();
    open(*pub, make_connect("p"));
    publish p;
    p.topic = "props";
    p.payload = "x";
    p.props.user_properties = {{"b", "2"}, {"a", "1"}, {"b", "3"}};
    p.props.content_type = "application/json";
    p.props.response_topic = "reply/here";
    p.props.correlation_data = std::string("\x00\x01", 2);
    p.props.payload_format_indicator = 1;
    pub->send(protocol_version::v5, p);
    auto got = expect<publish>(*sub);
    CHECK(got.props.user_properties == p.props.user_properties);
    CHECK(got.props.content_type == p.props.content_type);
    CHECK(got.props.response_topic == p.props.response_topic);
    CHECK(got.props.correlation_data == p.props.correlation_data);
    CHECK(got.props.payload_format_indicator == 1);
}

TEST_CASE("publisher backpressure: a draining but slow subscriber slows publishers; a stalled one does not") {
    fake_broker b;
    auto sub = b.connect(0);
    auto pub = b.connect(0);
    open(*sub, make_connect("slow"));
    open(*pub, make_connect("fast"));
    subscribe_to(*sub, "flood", 0);
    const std::string payload(200, 'x');
    std::string burst;
    publish p;
    p.topic = "flood";
    p.payload = payload;
    for (int i = 0; i < 200; ++i) encode(protocol_version::v5, p, burst);
    // The subscriber reads nothing: its output fills (max_output_buffer), then its queue.
    bool slowed = false;
    for (int round = 0; round < 100 && !slowed; ++round) {
        pub->send_bytes(burst);
        slowed = pub->protocol().take_slow_down();
    }
    CHECK(slowed);
    CHECK(b.shared().settings().publisher_backpressure);

    // A subscriber that takes nothing for longer than the stall timeout no longer holds
    // publishers back; its queue limit applies instead.
    // (The flag is re-evaluated as deliveries arrive, so one more burst clears it.)
    b.advance(1500ms);
    pub->send_bytes(burst);
    pub->protocol().take_slow_down();
    pub->send_bytes(burst);
    CHECK_FALSE(pub->protocol().take_slow_down());
}

TEST_CASE("publisher backpressure: a client is not slowed down by its own subscription") {
    fake_broker b;
    auto c = b.connect(0);
    open(*c, make_connect("echo"));
    subscribe_to(*c, "echo", 0);
    publish p;
    p.topic = "echo";
    p.payload = std::string(200, 'x');
    std::string burst;
    for (int i = 0; i < 200; ++i) encode(protocol_version::v5, p, burst);
    bool slowed = false;
    for (int round = 0; round < 100; ++round) {
        c->send_bytes(burst);
        slowed = slowed || c->protocol().take_slow_down();
    }
    CHECK_FALSE(slowed);
}

TEST_CASE("MQTT-3.1.2-28 Response Information only when requested and configured") {
    core::broker_settings s;
    s.response_information = "replies/%c/";
    fake_broker b(s);
    auto asks = b.connect();
    auto c = make_connect("asker");
    c.props.request_response_information = 1;
    CHECK(open(*asks, c).props.response_information == "replies/asker/");
    auto quiet = b.connect();
    CHECK_FALSE(open(*quiet, make_connect("quiet")).props.response_information);
}

TEST_CASE("$SYS statistics are retained and readable, but clients may not publish there") {
    fake_broker b;
    auto c = b.connect(0);
    open(*c, make_connect("ops"));
    b.advance(300ms);  // worker 0 publishes $SYS on its first tick
    subscribe_to(*c, "$SYS/broker/clients/connected", 0);
    auto got = expect<publish>(*c);
    CHECK(got.retain);
    CHECK(got.payload == "1");
    // A leading wildcard never matches $SYS [MQTT-4.7.2-1], and a client's publish there is dropped.
    subscribe_to(*c, "#", 0);
    publish_to(*c, "$SYS/broker/clients/connected", "999", 1);
    CHECK(expect<puback>(*c).code == reason_code::not_authorized);
    b.advance(10s);
    for (auto& p : c->receive_all())  // the periodic update of the first subscription
        CHECK(std::get<publish>(p).topic == "$SYS/broker/clients/connected");
    subscribe_to(*c, "$SYS/broker/version", 0);
    CHECK(expect<publish>(*c).topic == "$SYS/broker/version");
}
