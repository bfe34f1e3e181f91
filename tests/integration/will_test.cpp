// Will messages (when sent, when not, will delay) and keep-alive enforcement.
// The will-bearing client is a raw socket so the test controls exactly how the
// connection ends; the subscribers are Paho clients of both versions.
#include "helpers.hpp"

using namespace edgemq::test;

TEST_SUITE_BEGIN("integration");

namespace {

struct will_watchers {
    paho_client sub311, sub5;
    will_watchers(broker_process& broker, const std::string& filter)
        : sub311(broker, "will-watch311", v311), sub5(broker, "will-watch5", v5) {
        connect_all({&sub311, &sub5});
        sub311.subscribe(filter, 1);
        sub5.subscribe(filter, 1);
    }
    // Both watchers get the will (topic, payload) within `timeout`.
    void expect_will(const std::string& topic, const std::string& body, std::chrono::milliseconds timeout = 3000ms) {
        for (auto* sub : {&sub311, &sub5}) {
            INFO("watcher " << version_name(sub->version()));
            auto m = sub->next(timeout);
            REQUIRE_MESSAGE(m, "no will on " << topic);
            CHECK(m->get_topic() == topic);
            CHECK(payload(m) == body);
        }
    }
    bool silent(std::chrono::milliseconds quiet) { return sub311.silent(quiet) && sub5.silent(1ms); }
};

wire::connect_spec with_will(std::uint8_t version, const std::string& id, const std::string& topic,
                             std::uint16_t keep_alive = 60) {
    wire::connect_spec spec;
    spec.version = version;
    spec.client_id = id;
    spec.keep_alive = keep_alive;
    spec.will = wire::will_spec{topic, "will of " + id, 1, false, {}};
    return spec;
}

}  // namespace

TEST_CASE("[MQTT-3.1.2-8] the will is published when the network connection dies") {
    broker_process broker;
    will_watchers watch(broker, "will/#");
    for (std::uint8_t ver : {wire::v311, wire::v5}) {
        for (bool reset : {false, true}) {
            INFO("will sender " << raw_version_name(ver) << (reset ? ", RST" : ", FIN"));
            std::string id = std::string("dies-") + raw_version_name(ver) + (reset ? "-rst" : "-fin");
            raw_client c(broker);
            REQUIRE(c.connect(with_will(ver, id, "will/" + id)).reason == 0);
            if (reset) c.abort();
            else c.close();
            watch.expect_will("will/" + id, "will of " + id);
        }
    }
}

TEST_CASE("[MQTT-3.1.4-5] [MQTT-3.12.4-1] a client that half-closes after CONNECT and PINGREQ still gets CONNACK and PINGRESP then its Will") {
    // Both packets are whole and handled before the FIN: their answers must not be lost
    // with the close (the race is in the broker's read loop, so try it a few times).
    broker_process broker;
    will_watchers watch(broker, "half/#");
    for (int round = 0; round < 10; ++round) {
        for (std::uint8_t ver : {wire::v311, wire::v5}) {
            INFO("round " << round << ", " << raw_version_name(ver));
            const std::string id = "half-" + std::to_string(round) + "-" + raw_version_name(ver);
            raw_client c(broker);
            auto bytes = wire::connect(with_will(ver, id, "half/" + id));
            const auto ping = wire::pingreq();
            bytes.insert(bytes.end(), ping.begin(), ping.end());
            c.set_version(ver);
            c.send(bytes);
            c.shutdown_send();
            auto r = c.read();
            REQUIRE_MESSAGE(r.what == raw_client::status::packet, "no CONNACK before the close");
            CHECK(r.pkt.type() == wire::CONNACK);
            r = c.read();
            REQUIRE_MESSAGE(r.what == raw_client::status::packet, "no PINGRESP before the close");
            CHECK(r.pkt.type() == wire::PINGRESP);
            CHECK(c.expect_closed());
            watch.expect_will("half/" + id, "will of " + id);  // no DISCONNECT: the Will is due
        }
    }
}

TEST_CASE("[MQTT-3.1.2-6] [MQTT-3.2.2-2] takeover of a session that lasts only as long as its connection starts a new one and sends the old Will") {
    broker_process broker;
    will_watchers watch(broker, "short/will/#");
    for (std::uint8_t old_ver : {wire::v311, wire::v5}) {
        INFO("old connection " << raw_version_name(old_ver));
        const std::string id = std::string("short-") + raw_version_name(old_ver);
        raw_client first(broker);
        auto spec = with_will(old_ver, id, "short/will/" + id);
        spec.clean = true;  // 3.1.1 Clean Session 1; v5 Session Expiry 0 (absent)
        REQUIRE(first.connect(spec).reason == 0);
        first.subscribe("short/data/" + id, wire::sub_options(1));
        raw_client second(broker);
        wire::connect_spec again;
        again.version = wire::v5;
        again.client_id = id;
        again.clean = false;
        auto ack = second.connect(again);
        REQUIRE(ack.reason == 0);
        CHECK_FALSE(ack.session_present);  // nothing of the old session is reused
        watch.expect_will("short/will/" + id, "will of " + id);
        raw_client pub(broker);
        pub.connect(wire::v311, id + "-pub");
        raw_publish(pub, "short/data/" + id, "x", 0);
        CHECK(second.expect_silence(300ms));  // the old subscription went with the old session
    }
}

TEST_CASE("[MQTT-3.1.2-8] [MQTT-3.1.3-9] takeover of a persistent session: the old 3.1.1 connection's Will is published and a v5 one's is not") {
    // 3.1.1 knows no Will Delay: the taken-over connection closes without DISCONNECT, so
    // its Will is due (Mosquitto 2.0 drops it). In v5 the new connection arrived before
    // the Will Delay (here 0) ran out after the close.
    broker_process broker;
    will_watchers watch(broker, "kept/will/#");
    for (std::uint8_t old_ver : {wire::v311, wire::v5}) {
        INFO("old connection " << raw_version_name(old_ver));
        const std::string id = std::string("kept-") + raw_version_name(old_ver);
        raw_client first(broker);
        auto spec = persistent_spec(old_ver, id, 60);
        spec.will = with_will(old_ver, id, "kept/will/" + id).will;
        REQUIRE(first.connect(spec).reason == 0);
        raw_client second(broker);
        auto ack = second.connect(persistent_spec(old_ver, id, 60));
        REQUIRE(ack.reason == 0);
        CHECK(ack.session_present);
        if (old_ver == wire::v5) CHECK(watch.silent(500ms));
        else if (broker.kind() == broker_kind::edgemq) watch.expect_will("kept/will/" + id, "will of " + id);
    }
}

TEST_CASE("[MQTT-3.1.2-10] [MQTT-3.14.4-3] no will after a normal DISCONNECT (3.1.1 v5 0x00)") {
    broker_process broker;
    will_watchers watch(broker, "will/#");
    for (std::uint8_t ver : {wire::v311, wire::v5}) {
        std::string id = std::string("normal-") + raw_version_name(ver);
        raw_client c(broker);
        REQUIRE(c.connect(with_will(ver, id, "will/" + id)).reason == 0);
        c.send(wire::disconnect(ver));
        CHECK(c.expect_closed());
    }
    // Nothing was published: a marker published now is the first thing to arrive.
    raw_client pub(broker);
    pub.connect(wire::v5, "marker");
    raw_publish(pub, "will/marker", "marker", 1);
    for (auto* sub : {&watch.sub311, &watch.sub5}) {
        auto m = sub->next();
        REQUIRE(m);
        CHECK(m->get_topic() == "will/marker");
    }
}

TEST_CASE("[MQTT-3.14.4-3] v5 DISCONNECT with reason 0x04 publishes the will") {
    broker_process broker;
    will_watchers watch(broker, "will/#");
    raw_client c(broker);
    REQUIRE(c.connect(with_will(wire::v5, "disc04", "will/disc04")).reason == 0);
    c.send(wire::disconnect(wire::v5, 0x04));
    watch.expect_will("will/disc04", "will of disc04");
}

TEST_CASE("[MQTT-3.1.2-17] a will with Will Retain 1 is published retained") {
    broker_process broker;
    raw_client c(broker);
    auto spec = with_will(wire::v311, "retained-will", "will/retained");
    spec.will->retain = true;
    REQUIRE(c.connect(spec).reason == 0);
    c.abort();
    // The retained will reaches a subscriber that arrives later.
    paho_client late(broker, "late", v5);
    late.connect();
    REQUIRE(wait_until(
        [&] {
            late.subscribe("will/retained", 1);
            auto m = late.next(300ms);
            if (!m) return false;
            CHECK(m->is_retained());
            CHECK(payload(m) == "will of retained-will");
            return true;
        },
        scaled(3000ms), 1ms));
}

TEST_CASE("[MQTT-3.1.3-9] will delay interval: the will is published after the delay not before") {
    broker_process broker;
    will_watchers watch(broker, "will/#");
    raw_client c(broker);
    auto spec = with_will(wire::v5, "delayed", "will/delayed");
    spec.properties = session_expiry(30);
    spec.will->properties.u32(wire::prop::will_delay, 2);
    REQUIRE(c.connect(spec).reason == 0);
    auto start = std::chrono::steady_clock::now();
    c.abort();
    // Time is under test: 2 s delay, nothing during the first 1.5 s.
    CHECK(watch.silent(1500ms));
    watch.expect_will("will/delayed", "will of delayed", 3000ms);
    CHECK(seconds_since(start) >= 1.9);
}

TEST_CASE("[MQTT-3.1.3-9] will delay interval: reconnecting within the delay cancels the will") {
    broker_process broker;
    will_watchers watch(broker, "will/#");
    auto spec = with_will(wire::v5, "comeback", "will/comeback");
    spec.clean = false;
    spec.properties = session_expiry(30);
    spec.will->properties.u32(wire::prop::will_delay, 2);
    {
        raw_client c(broker);
        REQUIRE(c.connect(spec).reason == 0);
        c.abort();
    }
    raw_client again(broker);
    wire::connect_spec resume;
    resume.client_id = "comeback";
    resume.clean = false;
    resume.properties = session_expiry(30);
    CHECK(again.connect(resume).session_present);
    // Time is under test: well past the 2 s delay, still no will.
    CHECK(watch.silent(3000ms));
}

TEST_CASE("[MQTT-3.1.2-24] [MQTT-3.1.2-22] a client silent for 1.5x its keep alive is disconnected and its will published") {
    broker_process broker;
    will_watchers watch(broker, "will/#");
    for (std::uint8_t ver : {wire::v311, wire::v5}) {
        INFO("client " << raw_version_name(ver));
        std::string id = std::string("silent-") + raw_version_name(ver);
        raw_client c(broker);
        REQUIRE(c.connect(with_will(ver, id, "will/" + id, 1)).reason == 0);
        auto start = std::chrono::steady_clock::now();
        // Keep alive 1 s: the broker must act after 1.5 s; allow slack for a busy machine.
        watch.expect_will("will/" + id, "will of " + id, 4000ms);
        double elapsed = seconds_since(start);
        CHECK(elapsed >= 1.0);
        CHECK(elapsed <= 3.5 * time_scale());
        // v5: DISCONNECT 0x8D Keep Alive timeout MAY come first; then the close.
        auto r = c.read(1000ms);
        if (r.what == raw_client::status::packet) {
            CHECK(r.pkt.type() == wire::DISCONNECT);
            CHECK(wire::parse_disconnect(r.pkt).reason == 0x8D);
            r = c.read(1000ms);
        }
        CHECK(r.what == raw_client::status::closed);
    }
}

TEST_CASE("[MQTT-3.1.2-23] PINGREQ within the keep alive keeps the connection open") {
    broker_process broker;
    raw_client c(broker);
    wire::connect_spec spec;
    spec.client_id = "pinger";
    spec.keep_alive = 1;
    REQUIRE(c.connect(spec).reason == 0);
    // Time is under test: 3 s (twice the 1.5 s limit) of pings every 0.5 s.
    for (int i = 0; i < 6; ++i) {
        CHECK(c.expect_silence(500ms));
        c.send(wire::pingreq());
        auto p = c.expect();
        CHECK(p.header == 0xD0);
    }
}

TEST_CASE("[MQTT-3.2.2-21] [MQTT-3.1.2-21] Server Keep Alive: max_keep_alive caps what the client asked for") {
    broker_config cfg;
    cfg.max_keep_alive = 10;
    broker_process broker(cfg);
    for (std::uint16_t asked : {60, 0, 5}) {
        INFO("client keep alive " << asked);
        raw_client c(broker);
        wire::connect_spec spec;
        spec.client_id = "ka" + std::to_string(asked);
        spec.keep_alive = asked;
        auto ack = c.connect(spec);
        REQUIRE(ack.reason == 0);
        auto* ska = wire::find(ack.properties, wire::prop::server_keep_alive);
        if (asked == 5) {
            // Within the limit: either no Server Keep Alive or the client's own value.
            if (ska) CHECK(ska->value == 5);
        } else {
            REQUIRE(ska);
            CHECK(ska->value == 10);
        }
    }
}

TEST_SUITE_END();
