// Offline queue limits and policies (edgemq config: max_queued_messages,
// queue_full_policy, queue_qos0_offline), retained message expiry, and the test
// harness itself (broker_process restart / kill9).
#include "helpers.hpp"

using namespace edgemq::test;

TEST_SUITE_BEGIN("integration");

namespace {

// Creates an offline persistent v5 session subscribed to `topic` at QoS 1, publishes
// `n` messages "0".."n-1" at `qos`, reconnects and returns the payloads received.
std::vector<std::string> offline_round(broker_process& broker, const std::string& topic, int n, std::uint8_t qos) {
    wire::connect_spec spec;
    spec.client_id = "queue-" + topic;
    spec.clean = false;
    spec.properties = session_expiry(300);
    {
        raw_client sub(broker);
        REQUIRE(sub.connect(spec).reason == 0);
        sub.subscribe(topic, wire::sub_options(1));
        sub.send(wire::disconnect());
        CHECK(sub.expect_closed());
    }
    raw_client pub(broker);
    pub.connect(wire::v5, "queue-pub-" + topic);
    for (int i = 0; i < n; ++i) raw_publish(pub, topic, std::to_string(i), qos, static_cast<std::uint16_t>(i + 1));
    // QoS 0 has no acknowledgement to wait for: a QoS 1 publish to a topic nobody
    // subscribed to, acknowledged, shows the messages before it have been routed.
    raw_publish(pub, topic + "/fence", "fence", 1, 999);
    raw_client sub(broker);
    CHECK(sub.connect(spec).session_present);
    std::vector<std::string> got;
    for (;;) {
        auto r = sub.read(300ms);
        if (r.what != raw_client::status::packet) break;
        auto p = wire::parse_publish(r.pkt, wire::v5);
        got.push_back(p.payload);
        if (p.qos == 1) sub.send(wire::ack(wire::PUBACK, p.packet_id));
    }
    return got;
}

using strings = std::vector<std::string>;

}  // namespace

TEST_CASE("[MQTT-4.1.0-2] offline queue full with queue_full_policy drop_oldest keeps the newest messages") {
    broker_config cfg;
    cfg.max_queued_messages = 3;
    cfg.queue_full_policy = "drop_oldest";
    broker_process broker(cfg);
    CHECK(offline_round(broker, "oldest", 5, 1) == strings{"2", "3", "4"});
}

TEST_CASE("[MQTT-4.1.0-2] offline queue full with queue_full_policy drop_newest keeps the oldest messages") {
    broker_config cfg;
    cfg.max_queued_messages = 3;
    cfg.queue_full_policy = "drop_newest";
    broker_process broker(cfg);
    CHECK(offline_round(broker, "newest", 5, 1) == strings{"0", "1", "2"});
}

TEST_CASE("[MQTT-3.1.2-5] queue_qos0_offline false: QoS 0 messages are not queued for offline sessions") {
    broker_config cfg;
    cfg.queue_qos0_offline = false;
    broker_process broker(cfg);
    CHECK(offline_round(broker, "qos0-off", 2, 0).empty());
    // QoS 1 still is.
    CHECK(offline_round(broker, "qos1-on", 2, 1) == strings{"0", "1"});
}

TEST_CASE("[MQTT-3.1.2-5] queue_qos0_offline true (default): QoS 0 messages are queued for offline sessions") {
    broker_process broker;
    CHECK(offline_round(broker, "qos0-on", 2, 0) == strings{"0", "1"});
}

TEST_CASE("[MQTT-3.3.2-5] an expired retained message is not sent to new subscribers") {
    broker_process broker;
    raw_client pub(broker);
    pub.connect(wire::v5, "retained-expiry");
    wire::props expiry;
    expiry.u32(wire::prop::message_expiry, 1);
    raw_publish(pub, "rexp/short", "short", 1, 1, expiry, true);
    raw_publish(pub, "rexp/long", "long", 1, 2, {}, true);
    // Time is under test: let the 1 s expiry pass.
    std::this_thread::sleep_for(scaled(2100ms));
    raw_client sub(broker);
    sub.connect(wire::v5, "retained-expiry-sub");
    sub.subscribe("rexp/+", wire::sub_options(0));
    auto p = sub.expect_publish();
    CHECK(p.topic == "rexp/long");
    CHECK(p.retain);
    CHECK(sub.expect_silence(300ms));
}

TEST_CASE("harness: broker_process logs and restarts on the same data dir and survives kill9") {
    broker_process broker;
    CHECK(broker.running());
    CHECK(std::filesystem::is_directory(broker.data_dir()));
    if (broker.kind() == broker_kind::edgemq) CHECK(broker.log_contains("listening mqtt"));
    auto dir = broker.data_dir();
    broker.restart();
    CHECK(broker.data_dir() == dir);
    { raw_client c(broker); c.connect(wire::v311, "after-restart"); }
    broker.kill9();
    CHECK_FALSE(broker.running());
    broker.restart();
    raw_client c(broker);
    c.connect(wire::v5, "after-kill9");
    CHECK(broker.stop() == 0);  // SIGTERM: a clean, zero exit within the grace period
}

TEST_SUITE_END();
