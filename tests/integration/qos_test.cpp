// QoS 0/1/2 end to end for every version pair and every (publish QoS, subscription
// QoS): delivered at min(publish, granted) [MQTT-3.8.4-8], exactly the payload sent.
#include "helpers.hpp"

using namespace edgemq::test;

TEST_SUITE_BEGIN("integration");

TEST_CASE("[MQTT-3.8.4-8] [MQTT-4.3] QoS 0/1/2 delivered at min(publish QoS subscription QoS)") {
    broker_process broker;
    for (int pv : versions) {
        for (int sv : versions) {
            INFO(pair_name(pv, sv));
            std::string suffix = std::to_string(pv) + std::to_string(sv);
            paho_client sub(broker, "q-sub" + suffix, sv);
            paho_client pub(broker, "q-pub" + suffix, pv);
            connect_all({&sub, &pub});
            for (int sq = 0; sq <= 2; ++sq) {
                std::string filter = "qos/" + suffix + "/sub" + std::to_string(sq) + "/+";
                auto granted = sub.subscribe(filter, sq);
                REQUIRE(granted.size() == 1);
                CHECK(static_cast<int>(granted[0]) == sq);
                for (int pq = 0; pq <= 2; ++pq) {
                    INFO("publish QoS " << pq << ", subscription QoS " << sq);
                    std::string topic = "qos/" + suffix + "/sub" + std::to_string(sq) + "/pub" + std::to_string(pq);
                    std::string body = "payload " + topic + std::string(100, 'x');
                    pub.publish(topic, body, pq);
                    auto m = sub.next();
                    REQUIRE(m);
                    CHECK(m->get_topic() == topic);
                    CHECK(payload(m) == body);
                    CHECK(m->get_qos() == std::min(pq, sq));
                    CHECK_FALSE(m->is_retained());
                }
            }
            CHECK(sub.silent(100ms));  // exactly once per publish, no duplicates
        }
    }
}

TEST_CASE("[MQTT-4.6.0-6] messages of one publisher on one topic arrive in order at every QoS") {
    broker_process broker;
    for (int q = 0; q <= 2; ++q) {
        INFO("QoS " << q);
        paho_client sub(broker, "order-sub" + std::to_string(q), v5);
        paho_client pub(broker, "order-pub" + std::to_string(q), v311);
        connect_all({&sub, &pub});
        sub.subscribe("order/" + std::to_string(q), 2);
        // One publish at a time: Paho stalls ~1 s whenever its in-flight window fills.
        for (int i = 0; i < 50; ++i) pub.publish("order/" + std::to_string(q), std::to_string(i), q);
        auto got = sub.take(50);
        REQUIRE(got.size() == 50);
        for (int i = 0; i < 50; ++i) CHECK(payload(got[static_cast<std::size_t>(i)]) == std::to_string(i));
    }
}

TEST_SUITE_END();
