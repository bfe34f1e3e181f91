// Sessions: offline queueing, resume, redelivery with DUP and the same packet ids,
// PUBREL resend, clean start, session expiry, assigned client ids, takeover.
#include "helpers.hpp"

using namespace edgemq::test;

TEST_SUITE_BEGIN("integration");

TEST_CASE("[MQTT-3.1.2-4] [MQTT-3.1.2-5] persistent session keeps subscriptions and queues QoS 0/1/2 while offline") {
    broker_process broker;
    for (int pv : versions) {
        for (int sv : versions) {
            INFO(pair_name(pv, sv));
            std::string suffix = std::to_string(pv) + std::to_string(sv);
            paho_client pub(broker, "offline-pub" + suffix, pv);
            paho_client sub(broker, "offline-sub" + suffix, sv);
            connect_all({&pub});
            {
                // The session is set up over a raw socket so the test can wait for the
                // broker's close after DISCONNECT: only then is the session offline. A
                // QoS 0 message sent before that goes to the closing connection and may be
                // lost, which is allowed.
                raw_client setup(broker);
                std::uint8_t raw_version = sv == v5 ? wire::v5 : wire::v311;
                setup.connect(raw_version, sub.id(), false, sv == v5 ? session_expiry(300) : wire::props{});
                CHECK(setup.subscribe("offline/" + suffix, wire::sub_options(2)) == wire::bytes{2});
                setup.send(wire::disconnect(raw_version));
                REQUIRE(setup.expect_closed());
            }

            for (int q = 0; q <= 2; ++q) pub.publish("offline/" + suffix, "q" + std::to_string(q), q);

            auto rsp = sub.connect(false, sv == v5 ? paho_session_expiry(300) : mqtt::properties{});
            CHECK(rsp.is_session_present());
            auto got = sub.take(3);
            std::string received;
            for (auto& m : got) received += payload(m) + " ";
            INFO("received: " << received);
            REQUIRE(got.size() == 3);
            for (int q = 0; q <= 2; ++q) {
                CHECK(payload(got[static_cast<std::size_t>(q)]) == "q" + std::to_string(q));
                CHECK(got[static_cast<std::size_t>(q)]->get_qos() == q);
            }
            CHECK(sub.silent(100ms));
            sub.disconnect();
        }
    }
}

TEST_CASE("[MQTT-3.1.2-6] clean session / clean start discards the old session and its queue") {
    broker_process broker;
    for (int sv : versions) {
        INFO("sub " << version_name(sv));
        std::string id = "clean-" + std::to_string(sv);
        paho_client pub(broker, id + "-pub", v5);
        paho_client sub(broker, id, sv);
        pub.connect();
        sub.connect(false, sv == v5 ? paho_session_expiry(300) : mqtt::properties{});
        sub.subscribe("clean/" + id, 1);
        sub.disconnect();
        pub.publish("clean/" + id, "queued", 1);
        auto rsp = sub.connect(true);
        CHECK_FALSE(rsp.is_session_present());
        // The subscription went with the session: a new message is not delivered either.
        pub.publish("clean/" + id, "after", 1);
        CHECK(sub.silent(300ms));
    }
}

TEST_CASE("[MQTT-4.4.0-1] [MQTT-3.3.1-1] unacknowledged QoS 1 messages are resent on resume with DUP 1 and the same packet ids") {
    broker_process broker;
    for (std::uint8_t ver : {wire::v311, wire::v5}) {
        INFO("subscriber " << raw_version_name(ver));
        std::string id = std::string("redeliver-") + raw_version_name(ver);
        const wire::connect_spec spec = persistent_spec(ver, id, 300);

        std::vector<std::uint16_t> ids;
        {
            raw_client sub(broker);
            REQUIRE(sub.connect(spec).reason == 0);
            CHECK(sub.subscribe("rd/" + id, wire::sub_options(1)) == wire::bytes{1});
            raw_client pub(broker);
            pub.connect(wire::v5, id + "-pub");
            for (int i = 0; i < 3; ++i) raw_publish(pub, "rd/" + id, "m" + std::to_string(i), 1, static_cast<std::uint16_t>(10 + i));
            for (int i = 0; i < 3; ++i) {
                auto p = sub.expect_publish();
                CHECK_FALSE(p.dup);
                CHECK(p.qos == 1);
                CHECK(p.payload == "m" + std::to_string(i));
                ids.push_back(p.packet_id);
            }
            // No PUBACK: the socket just closes.
        }
        raw_client sub(broker);
        auto ack = sub.connect(spec);
        REQUIRE(ack.reason == 0);
        CHECK(ack.session_present);
        for (int i = 0; i < 3; ++i) {
            auto p = sub.expect_publish();
            CHECK(p.dup);
            CHECK(p.qos == 1);
            CHECK(p.packet_id == ids[static_cast<std::size_t>(i)]);
            CHECK(p.payload == "m" + std::to_string(i));
            sub.send(wire::ack(wire::PUBACK, p.packet_id, ver));
        }
        CHECK(sub.expect_silence(300ms));
        sub.close();
        // Acknowledged now: a further resume sends nothing.
        raw_client again(broker);
        CHECK(again.connect(spec).session_present);
        CHECK(again.expect_silence(300ms));
    }
}

TEST_CASE("[MQTT-4.4.0-1] QoS 2 on resume: PUBLISH resent with DUP before PUBREC PUBREL resent after it") {
    broker_process broker;
    for (std::uint8_t ver : {wire::v311, wire::v5}) {
        INFO("subscriber " << raw_version_name(ver));
        std::string id = std::string("qos2-resume-") + raw_version_name(ver);
        const wire::connect_spec spec = persistent_spec(ver, id, 300);

        wire::publish_view a, b;
        {
            raw_client sub(broker);
            REQUIRE(sub.connect(spec).reason == 0);
            sub.subscribe("q2/" + id, wire::sub_options(2));
            raw_client pub(broker);
            pub.connect(wire::v311, id + "-pub");
            raw_publish(pub, "q2/" + id, "A", 2, 1);
            raw_publish(pub, "q2/" + id, "B", 2, 2);
            a = sub.expect_publish();
            b = sub.expect_publish();
            REQUIRE(a.payload == "A");
            REQUIRE(b.payload == "B");
            sub.send(wire::ack(wire::PUBREC, a.packet_id, ver));
            auto rel = sub.expect(wire::PUBREL);
            CHECK(wire::parse_ack(rel, ver).packet_id == a.packet_id);
            // Neither PUBCOMP for A nor PUBREC for B: close.
        }
        raw_client sub(broker);
        auto ack = sub.connect(spec);
        REQUIRE(ack.reason == 0);
        CHECK(ack.session_present);
        bool got_pubrel_a = false, got_publish_b = false;
        for (int i = 0; i < 2; ++i) {
            auto p = sub.expect();
            if (p.type() == wire::PUBREL) {
                CHECK(p.header == 0x62);
                CHECK(wire::parse_ack(p, ver).packet_id == a.packet_id);
                got_pubrel_a = true;
            } else {
                auto pub = wire::parse_publish(p, ver);
                CHECK(pub.payload == "B");  // never A again: its PUBREC was received
                CHECK(pub.dup);
                CHECK(pub.packet_id == b.packet_id);
                got_publish_b = true;
            }
        }
        CHECK(got_pubrel_a);
        CHECK(got_publish_b);
        sub.send(wire::ack(wire::PUBCOMP, a.packet_id, ver));
        sub.send(wire::ack(wire::PUBREC, b.packet_id, ver));
        CHECK(wire::parse_ack(sub.expect(wire::PUBREL), ver).packet_id == b.packet_id);
        sub.send(wire::ack(wire::PUBCOMP, b.packet_id, ver));
        CHECK(sub.expect_silence(300ms));
    }
}

TEST_CASE("[MQTT-3.1.2-23] v5 session expiry: kept while the interval runs gone after it") {
    broker_process broker;
    auto connect_persistent = [&](raw_client& c, const std::string& id, std::optional<std::uint32_t> expiry) {
        wire::connect_spec spec;
        spec.client_id = id;
        spec.clean = false;
        if (expiry) spec.properties = session_expiry(*expiry);
        auto ack = c.connect(spec);
        REQUIRE(ack.reason == 0);
        return ack.session_present;
    };
    {
        raw_client a(broker), b(broker), c(broker);
        connect_persistent(a, "expiry-60", 60);
        connect_persistent(b, "expiry-1", 1);
        connect_persistent(c, "expiry-absent", std::nullopt);
        for (auto* x : {&a, &b, &c}) {
            x->subscribe("exp", wire::sub_options(1));
            x->send(wire::disconnect());
        }
    }
    // Time is under test here: let the 1 s interval run out (checks may be once a second).
    std::this_thread::sleep_for(scaled(2500ms));
    raw_client a(broker), b(broker), c(broker);
    CHECK(connect_persistent(a, "expiry-60", 60));
    CHECK_FALSE(connect_persistent(b, "expiry-1", 1));
    // 3.1.2.11.2: no Session Expiry Interval means 0: the session ended with the connection.
    CHECK_FALSE(connect_persistent(c, "expiry-absent", std::nullopt));
}

TEST_CASE("[MQTT-3.2.2-16] [MQTT-3.1.3-6] an empty client id gets an Assigned Client Identifier (v5) or is accepted (3.1.1 clean)") {
    broker_process broker;
    raw_client c(broker);
    wire::connect_spec spec;
    spec.client_id = "";
    auto ack = c.connect(spec);
    REQUIRE(ack.reason == 0);
    auto* assigned = wire::find(ack.properties, wire::prop::assigned_client_id);
    REQUIRE(assigned);
    CHECK_FALSE(assigned->str.empty());
    // The assigned id is a usable client id, and unique: a second one differs.
    raw_client c2(broker);
    auto ack2 = c2.connect(spec);
    auto* assigned2 = wire::find(ack2.properties, wire::prop::assigned_client_id);
    REQUIRE(assigned2);
    CHECK(assigned2->str != assigned->str);

    raw_client old(broker);
    spec.version = wire::v311;
    CHECK(old.connect(spec).reason == 0);
    old.send(wire::pingreq());
    CHECK(old.expect().header == 0xD0);
}

TEST_CASE("[MQTT-3.1.4-3] session takeover: the old v5 connection gets DISCONNECT 0x8E and is closed") {
    broker_process broker;
    for (std::uint8_t old_ver : {wire::v311, wire::v5}) {
        for (std::uint8_t new_ver : {wire::v311, wire::v5}) {
            INFO("old " << raw_version_name(old_ver) << ", new " << raw_version_name(new_ver));
            std::string id = std::string("takeover-") + raw_version_name(old_ver) + "-" + raw_version_name(new_ver);
            raw_client first(broker);
            first.connect(old_ver, id, false, old_ver == wire::v5 ? session_expiry(60) : wire::props{});
            first.subscribe("takeover/" + id, wire::sub_options(1));
            raw_client second(broker);
            auto ack = second.connect(persistent_spec(new_ver, id, 60));
            REQUIRE(ack.reason == 0);
            CHECK(ack.session_present);  // [MQTT-3.2.2-2] the session moved to the new connection
            auto r = first.read();
            if (old_ver == wire::v5) {
                CHECK_MESSAGE(r.what == raw_client::status::packet, "no DISCONNECT 0x8E before the close");
                if (r.what == raw_client::status::packet) {
                    CHECK(r.pkt.type() == wire::DISCONNECT);
                    CHECK(wire::parse_disconnect(r.pkt).reason == 0x8E);
                    r = first.read();
                }
            }
            CHECK(r.what == raw_client::status::closed);
            // The subscription is the new connection's now.
            raw_client pub(broker);
            pub.connect(wire::v311, id + "-pub");
            raw_publish(pub, "takeover/" + id, "x", 0);
            CHECK(second.expect_publish().payload == "x");
        }
    }
}

TEST_CASE("[MQTT-4.1.0-1] persistent sessions and queued messages survive a graceful broker restart") {
    broker_process broker;
    {
        paho_client sub(broker, "restart-sub", v5);
        sub.connect(false, paho_session_expiry(3600));
        sub.subscribe("restart/t", 1);
        sub.disconnect();
        paho_client pub(broker, "restart-pub", v311);
        pub.connect();
        pub.publish("restart/t", "queued before restart", 1);
        pub.disconnect();
    }
    broker.restart();
    paho_client sub(broker, "restart-sub", v5);
    auto rsp = sub.connect(false, paho_session_expiry(3600));
    CHECK(rsp.is_session_present());
    auto m = sub.next();
    REQUIRE(m);
    CHECK(payload(m) == "queued before restart");
}

TEST_CASE("[MQTT-4.3.2] durability: an acknowledged QoS 1 message queued for an offline session survives kill -9") {
    // edgemq sends PUBACK only once the message is durable (docs: STYLE.md, storage).
    broker_process broker;
    {
        raw_client sub(broker);
        sub.connect(wire::v5, "crash-sub", false, session_expiry(3600));
        sub.subscribe("crash/t", wire::sub_options(1));
        sub.send(wire::disconnect());
        CHECK(sub.expect_closed());
    }
    {
        raw_client pub(broker);
        pub.connect(wire::v5, "crash-pub");
        raw_publish(pub, "crash/t", "acked before crash", 1, 1);  // waits for the PUBACK
    }
    broker.kill9();
    broker.restart();
    raw_client sub(broker);
    auto ack = sub.connect(wire::v5, "crash-sub", false, session_expiry(3600));
    CHECK(ack.session_present);
    auto p = sub.expect_publish();
    CHECK(p.payload == "acked before crash");
}

TEST_SUITE_END();
