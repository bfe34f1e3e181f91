// MQTT 5 features end to end: subscription identifiers, No Local, shared
// subscriptions, topic aliases both ways, message expiry, Maximum Packet Size and
// Receive Maximum in both directions, CONNACK limits, connect timeout.
#include "helpers.hpp"

using namespace edgemq::test;

TEST_SUITE_BEGIN("integration");

namespace {

wire::props sub_id(std::uint32_t id) {
    wire::props p;
    p.varint(wire::prop::subscription_id, id);
    return p;
}

}  // namespace

TEST_CASE("[MQTT-3.3.4-2] [MQTT-3.3.4-3] [MQTT-3.3.4-5] overlapping subscriptions: one PUBLISH at the highest QoS with every subscription identifier") {
    broker_process broker;
    raw_client sub(broker);
    sub.connect(wire::v5, "ids");
    CHECK(sub.subscribe("ids/+", wire::sub_options(0), 1, sub_id(1)) == wire::bytes{0});
    CHECK(sub.subscribe("ids/a", wire::sub_options(1), 2, sub_id(2)) == wire::bytes{1});
    CHECK(sub.subscribe("ids/#", wire::sub_options(1), 3) == wire::bytes{1});  // no identifier
    raw_client pub(broker);
    pub.connect(wire::v311, "ids-pub");
    raw_publish(pub, "ids/a", "x", 1);
    auto p = sub.expect_publish();
    CHECK(p.qos == 1);
    auto ids = wire::values(p.properties, wire::prop::subscription_id);
    std::sort(ids.begin(), ids.end());
    CHECK(ids == std::vector<std::uint32_t>{1, 2});
    sub.send(wire::ack(wire::PUBACK, p.packet_id));
    CHECK(sub.expect_silence(300ms));  // edgemq sends one copy (further copies are a MAY)
    // A message matching only the identifier-less filter carries no identifier.
    raw_publish(pub, "ids/x/y", "y", 0);
    auto q = sub.expect_publish();
    CHECK(q.payload == "y");
    CHECK(wire::values(q.properties, wire::prop::subscription_id).empty());
}

TEST_CASE("[MQTT-3.8.3-3] No Local: a client does not receive its own publications on that subscription") {
    broker_process broker;
    raw_client c(broker);
    c.connect(wire::v5, "nolocal");
    c.subscribe("nl/own", wire::sub_options(0, true), 1);
    c.subscribe("nl/other", wire::sub_options(0, false), 2);
    raw_publish(c, "nl/own", "mine", 0);
    raw_publish(c, "nl/other", "mine too", 0);
    auto p = c.expect_publish();
    CHECK(p.topic == "nl/other");  // not nl/own, which was published before
    raw_client other(broker);
    other.connect(wire::v311, "nolocal-other");
    raw_publish(other, "nl/own", "theirs", 0);
    p = c.expect_publish();
    CHECK(p.topic == "nl/own");
    CHECK(p.payload == "theirs");
}

TEST_CASE("[MQTT-4.8.2-3] shared subscription: each message goes to exactly one member round robin") {
    broker_process broker;
    paho_client m311(broker, "member311", v311), m5(broker, "member5", v5), plain(broker, "plain", v5),
        pub(broker, "share-pub", v5);
    connect_all({&m311, &m5, &plain, &pub});
    m311.subscribe("$share/g/sh/+", 1);
    m5.subscribe("$share/g/sh/+", 1);
    plain.subscribe("sh/+", 1);
    constexpr int n = 10;
    for (int i = 0; i < n; ++i) pub.publish("sh/t", std::to_string(i), 1);
    auto all = plain.take(n);
    CHECK(all.size() == n);  // a normal subscription still gets every message
    std::vector<mqtt::const_message_ptr> got311, got5;
    REQUIRE(wait_until(
        [&] {
            if (auto m = m311.next(1ms)) got311.push_back(m);
            if (auto m = m5.next(1ms)) got5.push_back(m);
            return got311.size() + got5.size() >= n;
        },
        scaled(3000ms), 0ms));
    CHECK(m311.silent(200ms));
    CHECK(m5.silent(1ms));
    std::set<std::string> seen;
    for (auto& m : got311) seen.insert(payload(m));
    for (auto& m : got5) seen.insert(payload(m));
    CHECK(seen.size() == n);  // each exactly once across the group
    // Round robin over two members: half each.
    CHECK(got311.size() == n / 2);
    CHECK(got5.size() == n / 2);
    // A member leaving: the rest of the group gets everything.
    m311.unsubscribe("$share/g/sh/+");
    for (int i = 0; i < 4; ++i) pub.publish("sh/t", "after" + std::to_string(i), 1);
    CHECK(m5.take(4).size() == 4);
}

TEST_CASE("[MQTT-3.8.3-4] No Local on a shared subscription is a Protocol Error (DISCONNECT 0x82)") {
    broker_process broker;
    raw_client c(broker);
    c.connect(wire::v5, "nl-shared");
    c.send(wire::subscribe(1, {{"$share/g/t", wire::sub_options(1, true)}}));
    auto r = c.read();
    if (r.what == raw_client::status::packet) {
        REQUIRE_MESSAGE(r.pkt.type() == wire::DISCONNECT, "got " << r.pkt.describe());
        CHECK(wire::parse_disconnect(r.pkt).reason == 0x82);
        r = c.read();
    }
    CHECK(r.what == raw_client::status::closed);
}

TEST_CASE("[MQTT-3.3.2-12] client-to-broker topic alias: set once then used with an empty topic") {
    broker_process broker;
    paho_client sub(broker, "alias-sub", v311);
    sub.connect();
    sub.subscribe("alias/#", 1);
    raw_client pub(broker);
    auto ack = pub.connect(wire::v5, "alias-pub");
    if (auto* tam = wire::find(ack.properties, wire::prop::topic_alias_maximum)) CHECK(tam->value >= 1);
    wire::props set;
    set.u16(wire::prop::topic_alias, 1);
    raw_publish(pub, "alias/long/topic/name", "1", 1, 1, set);
    raw_publish(pub, "", "2", 1, 2, set);
    // Re-map alias 1 to another topic 3.3.2.3.4: a new topic replaces the mapping.
    raw_publish(pub, "alias/other", "3", 1, 3, set);
    raw_publish(pub, "", "4", 1, 4, set);
    auto got = sub.take(4);
    REQUIRE(got.size() == 4);
    CHECK(got[0]->get_topic() == "alias/long/topic/name");
    CHECK(got[1]->get_topic() == "alias/long/topic/name");
    CHECK(got[2]->get_topic() == "alias/other");
    CHECK(got[3]->get_topic() == "alias/other");
}

TEST_CASE("[MQTT-3.3.2-9] [MQTT-3.3.2-10] broker-to-client topic aliases: only when the client allows them within its maximum") {
    if (testing_mosquitto()) {
        MESSAGE("Mosquitto 2.0.11 never assigns topic aliases on outgoing PUBLISH (no equivalent of send_topic_aliases)");
        return;
    }
    broker_process broker;
    raw_client allows(broker), refuses(broker), pub(broker);
    wire::props tam;
    tam.u16(wire::prop::topic_alias_maximum, 2);
    allows.connect(wire::v5, "alias-allows", true, tam);
    refuses.connect(wire::v5, "alias-refuses");
    pub.connect(wire::v5, "alias-source");
    allows.subscribe("ta/#", wire::sub_options(0));
    refuses.subscribe("ta/#", wire::sub_options(0));
    const std::vector<std::string> topics = {"ta/one", "ta/one", "ta/two", "ta/two", "ta/three", "ta/one"};
    for (auto& t : topics) raw_publish(pub, t, t, 0);

    std::map<std::uint32_t, std::string> aliases;
    int empty_topics = 0;
    for (auto& want : topics) {
        auto p = allows.expect_publish();
        auto* alias = wire::find(p.properties, wire::prop::topic_alias);
        std::string topic = p.topic;
        if (alias) {
            CHECK(alias->value >= 1);
            CHECK(alias->value <= 2);  // [MQTT-3.3.2-10] within the client's maximum
            if (topic.empty()) {
                REQUIRE_MESSAGE(aliases.count(alias->value), "alias " << alias->value << " used before it was set");
                topic = aliases[alias->value];
                ++empty_topics;
            } else {
                aliases[alias->value] = topic;
            }
        } else {
            CHECK_FALSE(topic.empty());
        }
        CHECK(topic == want);
        CHECK(p.payload == want);
    }
    CHECK(empty_topics >= 1);  // edgemq: send_topic_aliases defaults to true
    for (auto& want : topics) {
        auto p = refuses.expect_publish();
        CHECK(p.topic == want);  // [MQTT-3.3.2-9] no alias to a client that allowed none
        CHECK_FALSE(wire::find(p.properties, wire::prop::topic_alias));
    }
}

TEST_CASE("[MQTT-3.3.2-5] [MQTT-3.3.2-6] message expiry: expired messages are dropped from the offline queue - the rest carry the remaining interval") {
    broker_process broker;
    wire::connect_spec spec;
    spec.client_id = "expiry-sub";
    spec.clean = false;
    spec.properties = session_expiry(300);
    {
        raw_client sub(broker);
        REQUIRE(sub.connect(spec).reason == 0);
        sub.subscribe("expiry/t", wire::sub_options(1));
        sub.send(wire::disconnect());
        CHECK(sub.expect_closed());
    }
    raw_client pub(broker);
    pub.connect(wire::v5, "expiry-pub");
    wire::props short_lived, long_lived;
    short_lived.u32(wire::prop::message_expiry, 1);
    long_lived.u32(wire::prop::message_expiry, 30);
    raw_publish(pub, "expiry/t", "short", 1, 1, short_lived);
    raw_publish(pub, "expiry/t", "long", 1, 2, long_lived);
    raw_publish(pub, "expiry/t", "forever", 1, 3);
    auto published = std::chrono::steady_clock::now();
    // Time is under test: let the 1 s expiry pass.
    std::this_thread::sleep_for(scaled(2100ms));
    raw_client sub(broker);
    CHECK(sub.connect(spec).session_present);
    auto p = sub.expect_publish();
    CHECK(p.payload == "long");
    auto* left = wire::find(p.properties, wire::prop::message_expiry);
    REQUIRE(left);
    // Decremented by the time spent queued (> 2 s), give or take rounding.
    CHECK(left->value <= 28);
    CHECK(left->value >= 30 - static_cast<std::uint32_t>(seconds_since(published)) - 2);
    sub.send(wire::ack(wire::PUBACK, p.packet_id));
    p = sub.expect_publish();
    CHECK(p.payload == "forever");
    CHECK_FALSE(wire::find(p.properties, wire::prop::message_expiry));
    sub.send(wire::ack(wire::PUBACK, p.packet_id));
    CHECK(sub.expect_silence(300ms));
}

TEST_CASE("[MQTT-3.1.2-24] [MQTT-3.1.2-25] the broker does not send a packet larger than the client's Maximum Packet Size") {
    broker_process broker;
    raw_client sub(broker);
    wire::props limit;
    limit.u32(wire::prop::maximum_packet_size, 64);
    sub.connect(wire::v5, "small-client", true, limit);
    sub.subscribe("big/#", wire::sub_options(1));
    raw_client pub(broker);
    pub.connect(wire::v5, "big-pub");
    raw_publish(pub, "big/a", std::string(200, 'x'), 1, 1);  // dropped for this client
    raw_publish(pub, "big/b", "small", 1, 2);
    auto p = sub.expect_publish();
    CHECK(p.topic == "big/b");
    CHECK(p.payload == "small");
    sub.send(wire::ack(wire::PUBACK, p.packet_id));
    CHECK(sub.expect_silence(300ms));
}

TEST_CASE("[MQTT-3.2.2-15] a client exceeding the broker's Maximum Packet Size gets DISCONNECT 0x95") {
    broker_config cfg;
    cfg.max_packet_size = 128;
    broker_process broker(cfg);
    raw_client c(broker);
    auto ack = c.connect(wire::v5, "too-big");
    auto* mps = wire::find(ack.properties, wire::prop::maximum_packet_size);
    REQUIRE(mps);
    CHECK(mps->value == 128);
    raw_publish(c, "fits", std::string(100, 'x'), 1);  // 108 bytes on the wire
    wire::publish_spec p;
    p.topic = "too/big";
    p.payload = std::string(200, 'x');
    c.send(wire::publish(p));
    auto r = c.read();
    if (r.what == raw_client::status::packet) {
        REQUIRE_MESSAGE(r.pkt.type() == wire::DISCONNECT, "got " << r.pkt.describe());
        CHECK(wire::parse_disconnect(r.pkt).reason == 0x95);
        r = c.read();
    }
    CHECK(r.what == raw_client::status::closed);
}

TEST_CASE("[MQTT-3.3.4-9] the broker never has more unacknowledged QoS 1/2 PUBLISHes in flight than the client's Receive Maximum") {
    broker_process broker;
    raw_client sub(broker);
    wire::props rm;
    rm.u16(wire::prop::receive_maximum, 2);
    sub.connect(wire::v5, "slow-consumer", true, rm);
    sub.subscribe("rm/t", wire::sub_options(2));
    raw_client pub(broker);
    pub.connect(wire::v5, "fast-producer");
    for (int i = 0; i < 5; ++i)
        raw_publish(pub, "rm/t", std::to_string(i), static_cast<std::uint8_t>(1 + i % 2), static_cast<std::uint16_t>(i + 1));
    std::vector<wire::publish_view> inflight;
    inflight.push_back(sub.expect_publish());
    inflight.push_back(sub.expect_publish());
    CHECK(sub.expect_silence(300ms));  // window full
    int next = 2;
    while (!inflight.empty()) {
        auto done = inflight.front();
        inflight.erase(inflight.begin());
        if (done.qos == 1) {
            sub.send(wire::ack(wire::PUBACK, done.packet_id));
        } else {
            // QoS 2 stays in flight until PUBCOMP [MQTT-4.9.0-2 counts PUBCOMP].
            sub.send(wire::ack(wire::PUBREC, done.packet_id));
            sub.expect(wire::PUBREL);
            CHECK(sub.expect_silence(100ms));
            sub.send(wire::ack(wire::PUBCOMP, done.packet_id));
        }
        if (next < 5) {
            auto p = sub.expect_publish();
            CHECK(p.payload == std::to_string(next));
            ++next;
            inflight.push_back(p);
        }
    }
    CHECK(next == 5);
    CHECK(sub.expect_silence(200ms));
}

TEST_CASE("[MQTT-3.3.4-8] a client exceeding the broker's Receive Maximum gets DISCONNECT 0x93") {
    broker_config cfg;
    cfg.receive_maximum = 2;
    broker_process broker(cfg);
    raw_client c(broker);
    auto ack = c.connect(wire::v5, "greedy");
    auto* rm = wire::find(ack.properties, wire::prop::receive_maximum);
    REQUIRE(rm);
    CHECK(rm->value == 2);
    for (std::uint16_t id = 1; id <= 2; ++id) {
        wire::publish_spec p;
        p.topic = "rm";
        p.qos = 2;
        p.packet_id = id;
        c.send(wire::publish(p));
        c.expect(wire::PUBREC);  // PUBREL withheld: both stay in flight
    }
    wire::publish_spec p;
    p.topic = "rm";
    p.qos = 2;
    p.packet_id = 3;
    c.send(wire::publish(p));
    auto r = c.read();
    REQUIRE_MESSAGE(r.what == raw_client::status::packet, "connection closed without DISCONNECT 0x93");
    REQUIRE_MESSAGE(r.pkt.type() == wire::DISCONNECT, "got " << r.pkt.describe());
    CHECK(wire::parse_disconnect(r.pkt).reason == 0x93);
    CHECK(c.expect_closed());
}

TEST_CASE("[MQTT-3.2.2] CONNACK advertises the configured limits") {
    broker_config cfg;
    cfg.receive_maximum = 100;
    cfg.topic_alias_maximum = 5;
    cfg.max_packet_size = 4096;
    broker_process broker(cfg);
    raw_client c(broker);
    auto ack = c.connect(wire::v5, "limits");
    auto value = [&](std::uint8_t id) -> long {
        auto* p = wire::find(ack.properties, id);
        return p ? static_cast<long>(p->value) : -1;
    };
    CHECK(value(wire::prop::receive_maximum) == 100);
    CHECK(value(wire::prop::topic_alias_maximum) == 5);
    CHECK(value(wire::prop::maximum_packet_size) == 4096);
}

TEST_CASE("[MQTT-3.1.4] a socket that never sends CONNECT is closed after connect_timeout") {
    if (testing_mosquitto()) {
        MESSAGE("Mosquitto 2.0.11 has no connect timeout setting");
        return;
    }
    broker_config cfg;
    cfg.connect_timeout = 1;
    broker_process broker(cfg);
    raw_client idle(broker);
    auto start = std::chrono::steady_clock::now();
    CHECK(idle.expect_closed(4000ms));
    double elapsed = seconds_since(start);
    CHECK(elapsed >= 0.9);
    CHECK(elapsed <= 3.0 * time_scale());
    // A half-sent CONNECT does not extend the deadline.
    raw_client partial(broker);
    partial.send(wire::from_hex("10 0d 00 04 4d 51"));
    start = std::chrono::steady_clock::now();
    CHECK(partial.expect_closed(4000ms));
    CHECK(seconds_since(start) <= 3.0 * time_scale());
}

TEST_SUITE_END();
