// Retained messages: store, replace, delete, RETAIN flag on delivery, Retain Handling
// and Retain As Published, for every publisher x subscriber version pair.
#include "helpers.hpp"

using namespace edgemq::test;

TEST_SUITE_BEGIN("integration");

namespace {

struct clients {
    broker_process broker;
    paho_client pub311{broker, "rpub311", v311}, pub5{broker, "rpub5", v5};
    paho_client sub311{broker, "rsub311", v311}, sub5{broker, "rsub5", v5};
    clients() { connect_all({&pub311, &pub5, &sub311, &sub5}); }
};

}  // namespace

TEST_CASE("[MQTT-3.3.1-5] [MQTT-3.3.1-6] retained message stored and replaced - new subscribers get the last one with RETAIN 1") {
    clients c;
    for (auto* pub : {&c.pub311, &c.pub5}) {
        for (auto* sub : {&c.sub311, &c.sub5}) {
            INFO(pair_name(pub->version(), sub->version()));
            std::string topic = "ret/" + pub->id() + "/" + sub->id();
            pub->publish(topic, "first", 1, true);
            pub->publish(topic, "second", 2, true);
            sub->subscribe(topic, 1);
            auto m = sub->next();
            REQUIRE(m);
            CHECK(payload(m) == "second");
            CHECK(m->is_retained());
            CHECK(m->get_qos() == 1);  // min(stored QoS 2, subscription QoS 1)
            // Only the last retained message per topic: a live message comes next.
            pub->publish(topic, "live", 0, false);
            m = sub->next();
            REQUIRE(m);
            CHECK(payload(m) == "live");
            CHECK_FALSE(m->is_retained());
        }
    }
}

TEST_CASE("[MQTT-3.3.1-10] [MQTT-3.3.1-11] an empty retained payload deletes the retained message and is forwarded once") {
    clients c;
    for (auto* pub : {&c.pub311, &c.pub5}) {
        for (auto* sub : {&c.sub311, &c.sub5}) {
            INFO(pair_name(pub->version(), sub->version()));
            std::string topic = "del/" + pub->id() + "/" + sub->id();
            pub->publish(topic, "keep me", 1, true);
            sub->subscribe(topic, 1);
            auto m = sub->next();
            REQUIRE(m);
            CHECK(payload(m) == "keep me");
            // Existing subscribers get the zero-byte message like any other.
            pub->publish(topic, "", 1, true);
            m = sub->next();
            REQUIRE(m);
            CHECK(payload(m).empty());
            sub->unsubscribe(topic);
            // A new subscription finds nothing retained: the next message is a live one.
            sub->subscribe(topic, 1);
            pub->publish(topic, "live", 1, false);
            m = sub->next();
            REQUIRE(m);
            CHECK(payload(m) == "live");
            sub->unsubscribe(topic);
        }
    }
}

TEST_CASE("[MQTT-3.3.1-9] [MQTT-3.3.1-12] [MQTT-3.3.1-13] live retained messages carry RETAIN 0 unless Retain As Published") {
    clients c;
    paho_client rap(c.broker, "rap", v5);
    rap.connect();
    c.sub311.subscribe("live/+", 1);
    c.sub5.subscribe("live/+", 1);
    rap.subscribe("live/+", 1, mqtt::subscribe_options(false, true));
    for (auto* pub : {&c.pub311, &c.pub5}) {
        INFO("pub " << version_name(pub->version()));
        std::string topic = "live/" + pub->id();
        pub->publish(topic, "r", 1, true);
        for (auto* sub : {&c.sub311, &c.sub5}) {
            auto m = sub->next();
            REQUIRE(m);
            CHECK(m->get_topic() == topic);
            CHECK_FALSE(m->is_retained());
        }
        auto m = rap.next();
        REQUIRE(m);
        CHECK(m->get_topic() == topic);
        CHECK(m->is_retained());
    }
}

TEST_CASE("[MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11] Retain Handling 0 sends always 1 only for a new subscription 2 never") {
    clients c;
    c.pub311.publish("rh/t", "retained", 1, true);
    auto& sub = c.sub5;
    using so = mqtt::subscribe_options;
    // The first message after each SUBACK is either the retained one or "live".
    auto first_after_subscribe = [&](int handling) {
        sub.subscribe("rh/t", 1, so(false, false, static_cast<so::RetainHandling>(handling)));
        c.pub5.publish("rh/t", "live", 1, false);
        auto m = sub.next();
        REQUIRE(m);
        std::string got = payload(m);
        if (got == "retained") {
            auto live = sub.next();
            REQUIRE(live);
            CHECK(payload(live) == "live");
        }
        return got;
    };
    CHECK(first_after_subscribe(2) == "live");      // new subscription, handling 2: none
    sub.unsubscribe("rh/t");
    CHECK(first_after_subscribe(1) == "retained");  // new subscription, handling 1: sent
    CHECK(first_after_subscribe(1) == "live");      // existing subscription, handling 1: not sent
    CHECK(first_after_subscribe(0) == "retained");  // handling 0: sent on every SUBSCRIBE
    CHECK(first_after_subscribe(2) == "live");
}

TEST_CASE("[MQTT-3.3.1-5] retained messages survive a graceful broker restart") {
    broker_process broker;
    {
        paho_client pub(broker, "persist-pub", v5);
        pub.connect();
        pub.publish("keep/a", "A", 1, true);
        pub.publish("keep/b", "B", 0, true);
        pub.disconnect();
    }
    broker.restart();
    paho_client sub(broker, "persist-sub", v311);
    sub.connect();
    sub.subscribe("keep/#", 1);
    auto got = sub.take(2);
    REQUIRE(got.size() == 2);
    std::set<std::string> payloads{payload(got[0]), payload(got[1])};
    CHECK(payloads == std::set<std::string>{"A", "B"});
    CHECK(got[0]->is_retained());
    CHECK(got[1]->is_retained());
}

TEST_SUITE_END();
