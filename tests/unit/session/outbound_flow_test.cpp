// The broker-to-client QoS machinery, driven directly with a fake clock and a sink that
// records what would go on the wire.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "broker/session/outbound_flow.hpp"

using namespace edgemq::session;

namespace {

struct sent {
    std::string topic;
    std::uint16_t packet_id;
    bool dup;
    bool pubrel;
    std::uint64_t seq = 0;
};

struct recording_sink {
    std::vector<sent> out;
    bool open = true;
    std::size_t too_large_over = SIZE_MAX;  // payloads longer than this are "too large"
    bool can_send() const { return open; }
    bool publish(const delivery& d, std::uint16_t id, bool dup, std::uint64_t seq) {
        if (d.msg->payload.size() > too_large_over) return false;
        out.push_back({d.msg->topic, id, dup, false, seq});
        return true;
    }
    void pubrel(std::uint16_t id) { out.push_back({"", id, false, true}); }
};

delivery make(std::string topic, std::uint8_t qos, std::string payload = "x",
              time_point expires = never) {
    auto m = std::make_shared<message>();
    m->topic = std::move(topic);
    m->payload = std::move(payload);
    m->qos = qos;
    m->expires_at = expires;
    delivery d;
    d.msg = m;
    d.qos = qos;
    return d;
}

const time_point t0 = clock::now();

}  // namespace

TEST_CASE("MQTT-3.3.4-9 never more than Receive Maximum QoS 1/2 PUBLISHes unacknowledged") {
    outbound_flow flow;
    recording_sink sink;
    for (int i = 0; i < 5; ++i) flow.enqueue(make("t/" + std::to_string(i), 1));
    flow.pump(t0, 2, sink);
    REQUIRE(sink.out.size() == 2);
    CHECK(flow.inflight() == 2);
    CHECK(flow.pending() == 3);
    CHECK(flow.on_puback(sink.out[0].packet_id));
    flow.pump(t0, 2, sink);
    REQUIRE(sink.out.size() == 3);
    CHECK(sink.out[2].topic == "t/2");
}

TEST_CASE("QoS 0 is not limited by Receive Maximum and keeps its place in the order") {
    outbound_flow flow;
    recording_sink sink;
    flow.enqueue(make("a", 1));
    flow.enqueue(make("b", 0));
    flow.enqueue(make("c", 1));
    flow.enqueue(make("d", 0));
    flow.pump(t0, 1, sink);
    // "c" waits for a slot, and "d" waits behind it: order per topic is kept [MQTT-4.6.0-6].
    REQUIRE(sink.out.size() == 2);
    CHECK(sink.out[0].topic == "a");
    CHECK(sink.out[1].topic == "b");
    CHECK(sink.out[1].packet_id == 0);
    flow.on_puback(sink.out[0].packet_id);
    flow.pump(t0, 1, sink);
    REQUIRE(sink.out.size() == 4);
    CHECK(sink.out[2].topic == "c");
    CHECK(sink.out[3].topic == "d");
}

TEST_CASE("MQTT-2.2.1-3 packet ids are non-zero and unique among those in flight, also across wrap-around") {
    outbound_flow flow;
    recording_sink sink;
    std::vector<std::uint16_t> in_flight;
    // Hold one id for the whole run, ack the others, and go around the id space twice.
    flow.enqueue(make("held", 2));
    flow.pump(t0, 65535, sink);
    const std::uint16_t held = sink.out.back().packet_id;
    for (int round = 0; round < 140; ++round) {
        for (int i = 0; i < 1000; ++i) flow.enqueue(make("t", 1));
        sink.out.clear();
        flow.pump(t0, 65535, sink);
        for (const sent& s : sink.out) {
            REQUIRE(s.packet_id != 0);
            REQUIRE(s.packet_id != held);
            REQUIRE(flow.on_puback(s.packet_id));
        }
        if (sink.out.empty()) break;  // window span exhausted behind the held id
    }
    CHECK(flow.on_pubrec(held, false) == outbound_flow::pubrec_outcome::send_pubrel);
    CHECK(flow.on_pubcomp(held));
    CHECK(flow.inflight() == 0);
    sink.out.clear();
    flow.pump(t0, 65535, sink);
    CHECK(flow.pending() == 0);
}

TEST_CASE("MQTT-4.3.3 QoS 2 flow: PUBREC leads to PUBREL, PUBCOMP completes; repeats are harmless") {
    outbound_flow flow;
    recording_sink sink;
    flow.enqueue(make("q2", 2));
    flow.pump(t0, 10, sink);
    const auto id = sink.out.at(0).packet_id;
    CHECK_FALSE(flow.on_puback(id));  // wrong ack for QoS 2
    CHECK(flow.on_pubrec(id, false) == outbound_flow::pubrec_outcome::send_pubrel);
    CHECK(flow.on_pubrec(id, false) == outbound_flow::pubrec_outcome::send_pubrel);
    CHECK(flow.inflight() == 1);  // the id stays in use until PUBCOMP
    CHECK(flow.on_pubcomp(id));
    CHECK_FALSE(flow.on_pubcomp(id));
    CHECK(flow.inflight() == 0);
    CHECK(flow.on_pubrec(id, false) == outbound_flow::pubrec_outcome::unknown_id);
}

TEST_CASE("MQTT-4.3.3 a PUBREC with a failure code ends the flow without PUBREL") {
    outbound_flow flow;
    recording_sink sink;
    flow.enqueue(make("q2", 2));
    flow.pump(t0, 10, sink);
    CHECK(flow.on_pubrec(sink.out[0].packet_id, true) == outbound_flow::pubrec_outcome::released);
    CHECK(flow.inflight() == 0);
}

TEST_CASE("MQTT-4.4.0-1 resume resends PUBLISH with DUP and original ids, and PUBREL, in order") {
    outbound_flow flow;
    recording_sink sink;
    flow.enqueue(make("one", 1));
    flow.enqueue(make("two", 2));
    flow.enqueue(make("three", 2));
    flow.pump(t0, 10, sink);
    REQUIRE(sink.out.size() == 3);
    const auto id1 = sink.out[0].packet_id, id2 = sink.out[1].packet_id, id3 = sink.out[2].packet_id;
    flow.on_pubrec(id2, false);  // "two" reached PUBREL stage
    flow.enqueue(make("four", 1));  // queued while the client is away
    flow.resume();
    recording_sink again;
    flow.pump(t0, 10, again);
    REQUIRE(again.out.size() == 4);
    CHECK(again.out[0].topic == "one");
    CHECK(again.out[0].packet_id == id1);
    CHECK(again.out[0].dup);
    CHECK(again.out[1].pubrel);
    CHECK(again.out[1].packet_id == id2);
    CHECK(again.out[2].topic == "three");
    CHECK(again.out[2].packet_id == id3);
    CHECK(again.out[2].dup);
    CHECK(again.out[3].topic == "four");
    CHECK_FALSE(again.out[3].dup);
}

TEST_CASE("resume respects a smaller Receive Maximum of the new connection") {
    outbound_flow flow;
    recording_sink sink;
    for (int i = 0; i < 4; ++i) flow.enqueue(make("t" + std::to_string(i), 1));
    flow.pump(t0, 10, sink);
    flow.resume();
    recording_sink again;
    flow.pump(t0, 2, again);
    REQUIRE(again.out.size() == 2);
    flow.on_puback(again.out[0].packet_id);
    flow.pump(t0, 2, again);
    REQUIRE(again.out.size() == 3);
    CHECK(again.out[2].topic == "t2");
    CHECK(again.out[2].dup);
}

TEST_CASE("an ack for an old id after resume counts, and the message is not resent") {
    outbound_flow flow;
    recording_sink sink;
    flow.enqueue(make("a", 1));
    flow.enqueue(make("b", 1));
    flow.pump(t0, 10, sink);
    flow.resume();
    CHECK(flow.on_puback(sink.out[0].packet_id));
    recording_sink again;
    flow.pump(t0, 10, again);
    REQUIRE(again.out.size() == 1);
    CHECK(again.out[0].topic == "b");
}

TEST_CASE("MQTT-3.3.2-5 expired messages are dropped from the queue, not sent") {
    outbound_flow flow;
    recording_sink sink;
    flow.enqueue(make("old", 1, "x", t0 + std::chrono::seconds(1)));
    flow.enqueue(make("fresh", 1, "x", t0 + std::chrono::seconds(100)));
    flow.pump(t0 + std::chrono::seconds(2), 10, sink);
    REQUIRE(sink.out.size() == 1);
    CHECK(sink.out[0].topic == "fresh");
    CHECK(flow.counters().dropped_expired == 1);
}

TEST_CASE("MQTT-3.1.2-25 a PUBLISH too large for the client is discarded as if sent") {
    outbound_flow flow;
    recording_sink sink;
    sink.too_large_over = 3;
    flow.enqueue(make("big", 1, "0123456789"));
    flow.enqueue(make("small", 1, "ok"));
    flow.pump(t0, 10, sink);
    REQUIRE(sink.out.size() == 1);
    CHECK(sink.out[0].topic == "small");
    CHECK(flow.inflight() == 1);
    CHECK(flow.counters().dropped_too_large == 1);
}

TEST_CASE("queue limits: drop_oldest keeps the newest, drop_newest keeps the oldest, both counted") {
    SUBCASE("drop_oldest") {
        outbound_flow flow({3, 1 << 20, queue_full_policy::drop_oldest});
        for (int i = 0; i < 5; ++i) flow.enqueue(make("t" + std::to_string(i), 1));
        recording_sink sink;
        flow.pump(t0, 10, sink);
        REQUIRE(sink.out.size() == 3);
        CHECK(sink.out[0].topic == "t2");
        CHECK(flow.counters().dropped_queue_full == 2);
    }
    SUBCASE("drop_newest") {
        outbound_flow flow({3, 1 << 20, queue_full_policy::drop_newest});
        for (int i = 0; i < 5; ++i) flow.enqueue(make("t" + std::to_string(i), 1));
        recording_sink sink;
        flow.pump(t0, 10, sink);
        REQUIRE(sink.out.size() == 3);
        CHECK(sink.out[2].topic == "t2");
        CHECK(flow.counters().dropped_queue_full == 2);
    }
    SUBCASE("byte limit") {
        outbound_flow flow({100, 25, queue_full_policy::drop_oldest});
        for (int i = 0; i < 5; ++i) flow.enqueue(make("t" + std::to_string(i), 1, "0123456789"));  // 12 bytes each
        CHECK(flow.pending() == 2);
        CHECK(flow.pending_bytes() == 24);
    }
}

TEST_CASE("a backed-up connection stops the pump; nothing is lost") {
    outbound_flow flow;
    recording_sink sink;
    sink.open = false;
    flow.enqueue(make("a", 0));
    flow.enqueue(make("b", 1));
    flow.pump(t0, 10, sink);
    CHECK(sink.out.empty());
    sink.open = true;
    flow.pump(t0, 10, sink);
    CHECK(sink.out.size() == 2);
}

TEST_CASE("clear() forgets everything, an idle flow owns no memory") {
    outbound_flow flow;
    recording_sink sink;
    for (int i = 0; i < 10; ++i) flow.enqueue(make("t", 1));
    flow.pump(t0, 5, sink);
    flow.clear();
    CHECK(flow.idle());
    CHECK(flow.pending_bytes() == 0);
    CHECK_FALSE(flow.on_puback(sink.out[0].packet_id));
}

TEST_CASE("MQTT-2.2.1-3 packet ids cycle through 1..65535 and never 0") {
    outbound_flow flow;
    recording_sink sink;
    std::uint16_t previous = 0;
    int wraps = 0;
    for (int i = 0; i < 150'000; ++i) {
        flow.enqueue(make("t", 1));
        sink.out.clear();
        flow.pump(t0, 3, sink);
        REQUIRE(sink.out.size() == 1);
        const std::uint16_t id = sink.out[0].packet_id;
        REQUIRE(id != 0);
        if (id < previous) ++wraps;
        previous = id;
        REQUIRE(flow.on_puback(id));
    }
    CHECK(wraps == 2);
}

TEST_CASE("store rows of dropped deliveries are reported, acks report theirs") {
    outbound_flow flow({2, 1 << 20, queue_full_policy::drop_oldest});
    recording_sink sink;
    for (std::uint64_t row = 1; row <= 3; ++row) {
        delivery d = make("t", 1);
        d.store_row = row;
        flow.enqueue(std::move(d));
    }
    CHECK(flow.take_dropped_rows() == std::vector<std::uint64_t>{1});
    flow.pump(t0, 10, sink);
    std::uint64_t row = 0;
    CHECK(flow.on_puback(sink.out[0].packet_id, &row));
    CHECK(row == 2);
    delivery expiring = make("old", 1, "x", t0 + std::chrono::seconds(1));
    expiring.store_row = 9;
    flow.enqueue(std::move(expiring));
    flow.pump(t0 + std::chrono::seconds(5), 10, sink);
    CHECK(flow.take_dropped_rows() == std::vector<std::uint64_t>{9});
    CHECK_FALSE(flow.has_dropped_rows());
}

TEST_CASE("MQTT-4.4.0-1 restore from the store: sent deliveries keep their packet ids and go out with DUP, then the queue") {
    // First life: three sent (one PUBREC'd), the middle one acknowledged.
    outbound_flow before;
    recording_sink first;
    for (int i = 0; i < 4; ++i) before.enqueue(make("m" + std::to_string(i), 2));
    before.pump(t0, 4, first);
    REQUIRE(first.out.size() == 4);
    // Rebuilt from what the store would hold: m0 sent, m1 acknowledged (gone), m2 released, m3 sent; m4 queued.
    std::vector<outbound_flow::restored_delivery> sent;
    sent.push_back({make("m0", 2), first.out[0].seq, false});
    sent.push_back({make("m2", 2), first.out[2].seq, true});
    sent.push_back({make("m3", 2), first.out[3].seq, false});
    std::vector<delivery> queued;
    queued.push_back(make("m4", 2));
    outbound_flow after;
    after.restore(std::move(sent), std::move(queued));
    CHECK(after.inflight() == 3);
    recording_sink again;
    after.pump(t0, 10, again);
    REQUIRE(again.out.size() == 4);
    CHECK(again.out[0].topic == "m0");
    CHECK(again.out[0].packet_id == first.out[0].packet_id);
    CHECK(again.out[0].dup);
    CHECK(again.out[1].pubrel);
    CHECK(again.out[1].packet_id == first.out[2].packet_id);
    CHECK(again.out[2].packet_id == first.out[3].packet_id);
    CHECK(again.out[3].topic == "m4");
    CHECK_FALSE(again.out[3].dup);
    // New ids continue after the restored ones and never collide with them.
    CHECK(again.out[3].seq > first.out[3].seq);
    CHECK(after.on_pubcomp(first.out[2].packet_id));
    CHECK(after.on_pubrec(first.out[0].packet_id, false) == outbound_flow::pubrec_outcome::send_pubrel);
}

TEST_CASE("MQTT-4.3.3 no QoS 1/2 send has sequence number 0 which the store reads as not sent") {
    // The kill loop found this: a new session's first QoS 2 delivery was marked sent with
    // sequence 0, came back after kill -9 as queued and went out again under another
    // packet id, which the client took for a new message.
    outbound_flow flow;
    recording_sink sink;
    flow.enqueue(make("first", 2));
    flow.enqueue(make("second", 1));
    flow.pump(t0, 10, sink);
    REQUIRE(sink.out.size() == 2);
    CHECK(sink.out[0].seq != 0);
    CHECK(sink.out[0].packet_id == 1);  // ids still start at 1
    CHECK(sink.out[1].seq == sink.out[0].seq + 1);
    flow.clear();  // Clean Start: fresh numbers, still never 0
    flow.enqueue(make("again", 2));
    flow.pump(t0, 10, sink);
    REQUIRE(sink.out.size() == 3);
    CHECK(sink.out[2].seq > sink.out[1].seq);
    CHECK(sink.out[2].packet_id == 1);
}
