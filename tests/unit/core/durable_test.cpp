// The core with a store: what is stored, and that acknowledgements and deliveries wait
// for the store to commit (the store's commits are driven by the test).
#include <doctest/doctest.h>

#include "broker/core/log.hpp"
#include "broker/core/restore.hpp"
#include "tests/unit/core/harness.hpp"

using namespace edgemq;
using namespace edgemq::protocol;
using test::fake_broker;
using test::fake_connection;
using test::manual_store;
using test::expect;
using namespace std::chrono_literals;

namespace {

const bool quiet_logs = (log::set_level(log::level::warn), true);

connect persistent(std::string id, protocol_version v = protocol_version::v5) {
    connect c;
    c.version = v;
    c.client_id = std::move(id);
    c.clean_start = false;
    c.keep_alive = 60;
    if (v == protocol_version::v5) c.props.session_expiry_interval = 3600;
    return c;
}

connect transient(std::string id, protocol_version v = protocol_version::v5) {
    connect c = persistent(std::move(id), v);
    c.clean_start = true;
    c.props.session_expiry_interval.reset();
    return c;
}

void open(fake_connection& c, const connect& conn, manual_store& st) {
    c.version = conn.version;
    c.send(conn.version, conn);
    st.commit();
    expect<connack>(c);
}

void subscribe_to(fake_connection& c, const std::string& filter, std::uint8_t qos, manual_store& st) {
    subscribe s;
    s.packet_id = 1;
    s.entries.push_back({filter, subscription_options{qos}});
    c.send(c.version, s);
    st.commit();
    expect<suback>(c);
}

publish message(std::string topic, std::string payload, std::uint8_t qos, std::uint16_t id) {
    publish p;
    p.topic = std::move(topic);
    p.payload = std::move(payload);
    p.qos = qos;
    p.packet_id = qos ? id : 0;
    return p;
}

}  // namespace

TEST_CASE("QoS 1 to a persistent subscriber: the delivery goes out at once and the PUBACK waits for the commit") {
    manual_store st;
    fake_broker b({}, 2, &st);
    auto sub = b.connect(0);
    auto pub = b.connect(1);
    open(*sub, persistent("keeper"), st);
    open(*pub, transient("pub"), st);
    subscribe_to(*sub, "d/#", 1, st);
    CHECK(st.count<core::store_ops::put_session>() == 1);
    CHECK(st.count<core::store_ops::put_subscription>() == 1);

    pub->send(protocol_version::v5, message("d/1", "kept", 1, 5));
    CHECK_FALSE(pub->receive());  // no PUBACK before the commit
    // The message's rows are in the store's queue before the delivery leaves, so the
    // subscriber's acknowledgement can never reach the store ahead of them.
    CHECK(st.count<core::store_ops::put_message>() == 1);
    CHECK(st.count<core::store_ops::put_delivery>() == 1);
    auto got = expect<publish>(*sub);
    CHECK(got.payload == "kept");
    st.commit();
    CHECK(expect<puback>(*pub).packet_id == 5);

    puback ack;
    ack.packet_id = got.packet_id;
    sub->send(protocol_version::v5, ack);
    b.run();
    st.commit();
    CHECK(st.count<core::store_ops::remove_delivery>() == 1);
}

TEST_CASE("acknowledgements keep their order behind a pending commit and deliveries keep theirs, QoS 0 included") {
    manual_store st;
    fake_broker b({}, 2, &st);
    auto sub = b.connect(0);
    auto pub = b.connect(0);
    open(*sub, persistent("order-sub"), st);
    open(*pub, transient("order-pub"), st);
    subscribe_to(*sub, "o", 1, st);
    std::string both;
    encode(protocol_version::v5, message("o", "first", 1, 1), both);
    encode(protocol_version::v5, message("o", "second", 0, 0), both);
    pub->send_bytes(both);
    CHECK(expect<publish>(*sub).payload == "first");
    CHECK(expect<publish>(*sub).payload == "second");
    CHECK_FALSE(pub->receive());  // the PUBACK waits for the commit
    st.commit();
    CHECK(expect<puback>(*pub).packet_id == 1);

    // A QoS 2 message is held until its commit, and the QoS 1 and 0 messages behind it
    // wait for it [MQTT-4.6.0-5].
    std::string three;
    encode(protocol_version::v5, message("o", "third", 2, 2), three);
    encode(protocol_version::v5, message("o", "fourth", 1, 3), three);
    encode(protocol_version::v5, message("o", "fifth", 0, 0), three);
    pub->send_bytes(three);
    CHECK_FALSE(sub->receive());
    st.commit();
    CHECK(expect<publish>(*sub).payload == "third");
    CHECK(expect<publish>(*sub).payload == "fourth");
    CHECK(expect<publish>(*sub).payload == "fifth");
}

TEST_CASE("[MQTT-3.3.2-5] an expired retained message leaves the store too and only that message") {
    manual_store st;
    fake_broker b({}, 1, &st);
    auto pub = b.connect(0);
    open(*pub, transient("ret-pub"), st);
    publish p = message("ret/t", "short-lived", 1, 7);
    p.retain = true;
    p.props.message_expiry_interval = 1;
    pub->send(protocol_version::v5, p);
    st.commit();
    CHECK(expect<puback>(*pub).packet_id == 7);
    REQUIRE(st.count<core::store_ops::put_retained>() == 1);
    std::uint64_t stored_id = 0;
    for (const auto& op : st.log)
        if (const auto* r = std::get_if<core::store_ops::put_retained>(&op)) stored_id = r->message_id;

    b.advance(std::chrono::seconds(6));  // past the expiry and the 5 s retained sweep
    st.commit();
    REQUIRE(st.count<core::store_ops::remove_retained>() == 1);
    for (const auto& op : st.log) {
        if (const auto* r = std::get_if<core::store_ops::remove_retained>(&op)) {
            CHECK(r->topic == "ret/t");
            CHECK(r->only_message_id == stored_id);  // never a newer message on that topic
        }
    }
}

TEST_CASE("nothing persistent to keep: no store write and no wait") {
    manual_store st;
    fake_broker b({}, 2, &st);
    auto sub = b.connect(0);
    auto pub = b.connect(1);
    open(*sub, transient("plain-sub"), st);
    open(*pub, transient("plain-pub"), st);
    subscribe_to(*sub, "p", 1, st);
    const std::size_t before = st.log.size();
    pub->send(protocol_version::v5, message("p", "fast", 1, 3));
    CHECK(expect<puback>(*pub).packet_id == 3);
    CHECK(expect<publish>(*sub).payload == "fast");
    CHECK(st.log.size() == before);
}

TEST_CASE("QoS 0 to a persistent session never touches the store") {
    manual_store st;
    fake_broker b({}, 2, &st);
    auto sub = b.connect(0);
    auto pub = b.connect(1);
    open(*sub, persistent("q0"), st);
    open(*pub, transient("q0-pub"), st);
    subscribe_to(*sub, "z", 0, st);
    pub->send(protocol_version::v5, message("z", "a", 1, 1));  // downgraded to QoS 0
    expect<puback>(*pub);
    CHECK(st.count<core::store_ops::put_message>() == 0);
    CHECK(expect<publish>(*sub).qos == 0);
}

TEST_CASE("disk full: v5 publisher gets 0x97 and once the store fails nothing is routed; 3.1.1 publisher is disconnected") {
    manual_store st;
    fake_broker b({}, 2, &st);
    auto sub = b.connect(0);
    open(*sub, persistent("full-sub"), st);
    subscribe_to(*sub, "f", 1, st);

    auto v5 = b.connect(1);
    open(*v5, transient("full-v5"), st);
    // QoS 1 goes out before the commit while the store works: the first message after
    // the disk filled up reaches the subscriber, and its publisher still gets 0x97 (and
    // may send it again: a duplicate, as QoS 1 allows).
    v5->send(protocol_version::v5, message("f", "first", 1, 9));
    CHECK(expect<publish>(*sub).payload == "first");
    st.commit(false);
    CHECK(expect<puback>(*v5).code == reason_code::quota_exceeded);
    v5->send(protocol_version::v5, message("f", "lost", 1, 10));
    st.commit(false);
    auto ack = expect<puback>(*v5);
    CHECK(ack.packet_id == 10);
    CHECK(ack.code == reason_code::quota_exceeded);
    CHECK_FALSE(sub->receive());

    auto v3 = b.connect(1);
    open(*v3, transient("full-v3", protocol_version::v311), st);
    v3->send(protocol_version::v311, message("f", "lost", 1, 9));
    st.commit(false);
    CHECK_FALSE(v3->receive());
    CHECK(v3->closed());
    CHECK_FALSE(sub->receive());
}

TEST_CASE("MQTT-4.3.3 QoS 2 from a persistent session: PUBREC after its id is stored, PUBCOMP after it is forgotten") {
    manual_store st;
    fake_broker b({}, 2, &st);
    auto pub = b.connect(0);
    open(*pub, persistent("q2-pub"), st);
    pub->send(protocol_version::v5, message("nobody", "x", 2, 4));
    CHECK_FALSE(pub->receive());
    CHECK(st.count<core::store_ops::put_inbound>() == 1);
    st.commit();
    CHECK(expect<pubrec>(*pub).packet_id == 4);
    pubrel rel;
    rel.packet_id = 4;
    pub->send(protocol_version::v5, rel);
    CHECK_FALSE(pub->receive());
    CHECK(st.count<core::store_ops::remove_inbound>() == 1);
    st.commit();
    CHECK(expect<pubcomp>(*pub).packet_id == 4);
}

TEST_CASE("QoS 2 to a persistent subscriber goes out only once its packet id is durable") {
    manual_store st;
    fake_broker b({}, 2, &st);
    auto sub = b.connect(0);
    auto pub = b.connect(1);
    open(*sub, persistent("q2-sub"), st);
    open(*pub, transient("q2-src"), st);
    subscribe_to(*sub, "t2", 2, st);
    pub->send(protocol_version::v5, message("t2", "once", 2, 1));
    st.commit();  // the message and its delivery row
    expect<pubrec>(*pub);
    CHECK_FALSE(sub->receive());
    CHECK(st.count<core::store_ops::mark_sent>() == 1);
    st.commit();  // the packet id reservation
    auto got = expect<publish>(*sub);
    CHECK(got.payload == "once");
    auto sent = std::find_if(st.log.begin(), st.log.end(), [](const core::store_op& op) {
        return std::holds_alternative<core::store_ops::mark_sent>(op);
    });
    // A new session's first delivery: its sequence number must not be 0, which the
    // store reads as "not sent yet".
    CHECK(std::get<core::store_ops::mark_sent>(*sent).send_seq != 0);
    CHECK(std::get<core::store_ops::mark_sent>(*sent).send_seq % 65535 + 1 == got.packet_id);

    // [MQTT-4.3.3-9] The client forgets the id at PUBREL: PUBREL waits until "released"
    // is stored, so that a crash never makes the broker send the PUBLISH again.
    pubrec rec;
    rec.packet_id = got.packet_id;
    sub->send(protocol_version::v5, rec);
    CHECK_FALSE(sub->receive());
    CHECK(st.count<core::store_ops::mark_released>() == 1);
    st.commit();
    CHECK(expect<pubrel>(*sub).packet_id == got.packet_id);
}

TEST_CASE("restore: an offline session comes back with its subscriptions, queue and in-flight QoS 2") {
    fake_broker b({}, 2);
    core::stored_state state;
    core::stored_message m;
    m.id = 7;
    m.topic = "r/t";
    m.payload = "from before";
    m.qos = 2;
    state.messages.push_back(m);
    core::stored_message retained = m;
    retained.id = 8;
    retained.topic = "r/kept";
    retained.payload = "retained";
    retained.retain = true;
    state.messages.push_back(retained);
    state.retained.push_back({"r/kept", 8});
    core::stored_session s;
    s.id = 3;
    s.client_id = "back";
    s.expiry_interval = 3600;
    s.disconnected_at = 0;
    state.sessions.push_back(s);
    state.subscriptions.push_back({3, "r/#", subscription_options{2}, 0});
    state.deliveries.push_back({3, 10, 7, 2, false, {}, 131070 + 41, false});  // sent with packet id 42
    state.deliveries.push_back({3, 11, 7, 1, false, {}, 0, false});            // queued
    state.inbound.push_back({3, 99});
    state.max_message_id = 8;
    state.max_session_id = 3;
    state.max_delivery_row = 11;
    auto summary = core::restore_state(b.shared(), std::move(state));
    CHECK(summary.sessions == 1);
    CHECK(summary.deliveries == 2);
    CHECK(summary.retained == 1);

    auto c = b.connect();
    auto conn = persistent("back");
    c->version = protocol_version::v5;
    c->send(protocol_version::v5, conn);
    CHECK(expect<connack>(*c).session_present);
    auto again = expect<publish>(*c);
    CHECK(again.packet_id == 42);
    CHECK(again.dup);
    CHECK(again.payload == "from before");
    auto queued = expect<publish>(*c);
    CHECK(queued.qos == 1);
    CHECK_FALSE(queued.dup);
    // The QoS 2 id it sent before the restart still counts as received.
    publish resent = message("r/t", "dup", 2, 99);
    resent.dup = true;
    c->send(protocol_version::v5, resent);
    CHECK(expect<pubrec>(*c).packet_id == 99);
    CHECK_FALSE(c->receive());  // not routed again
}

TEST_CASE("MQTT-4.3.3 restore: a released QoS 2 delivery without a packet id is never sent as a PUBLISH") {
    // A released row loses its send sequence only when another row of the session took
    // it: then its packet id is unknown and the client, which has the message, cannot be
    // sent a PUBREL for it; above all the placeholder must not go out as an empty PUBLISH.
    test::manual_store st;
    fake_broker b({}, 2, &st);
    core::stored_state state;
    core::stored_message m;
    m.id = 7;
    m.topic = "r/t";
    m.payload = "next";
    m.qos = 2;
    state.messages.push_back(m);
    core::stored_session s;
    s.id = 3;
    s.client_id = "back";
    s.expiry_interval = 3600;
    s.disconnected_at = 0;
    state.sessions.push_back(s);
    state.deliveries.push_back({3, 10, 6, 2, false, {}, 0, true});   // released, message 6 gone, no seq
    state.deliveries.push_back({3, 11, 7, 2, false, {}, 0, false});  // queued
    state.max_message_id = 7;
    state.max_session_id = 3;
    state.max_delivery_row = 11;
    core::restore_state(b.shared(), std::move(state));
    auto c = b.connect();
    c->version = protocol_version::v5;
    c->send(protocol_version::v5, persistent("back"));
    CHECK(expect<connack>(*c).session_present);
    st.commit();  // the QoS 2 packet id is reserved in the store first
    auto only = expect<publish>(*c);
    CHECK(only.payload == "next");
    CHECK(only.topic == "r/t");
    CHECK_FALSE(c->receive());
}

TEST_CASE("MQTT-3.3.4-9 QoS 1 PUBLISHes waiting for the store count against Receive Maximum and their PUBACKs keep order") {
    core::broker_settings settings;
    settings.listeners.front().limits.receive_maximum = 2;
    manual_store st;
    fake_broker b(settings, 2, &st);
    auto sub = b.connect(0);
    auto pub = b.connect(1);
    open(*sub, persistent("slow-keeper"), st);
    open(*pub, transient("eager"), st);
    subscribe_to(*sub, "k/#", 1, st);
    pub->send(protocol_version::v5, message("k/1", "a", 1, 1));
    // Not routed (nobody may publish to $SYS), answered at once: yet its PUBACK waits
    // behind the first one's [MQTT-4.6.0-2].
    pub->send(protocol_version::v5, message("$SYS/x", "b", 1, 2));
    CHECK_FALSE(pub->receive());
    st.commit();
    CHECK(expect<puback>(*pub).packet_id == 1);
    CHECK(expect<puback>(*pub).packet_id == 2);
    // Two unanswered: the third exceeds Receive Maximum 2.
    pub->send(protocol_version::v5, message("k/2", "c", 1, 3));
    pub->send(protocol_version::v5, message("k/3", "d", 1, 4));
    pub->send(protocol_version::v5, message("k/4", "e", 1, 5));
    CHECK(expect<disconnect>(*pub).code == reason_code::receive_maximum_exceeded);
}
