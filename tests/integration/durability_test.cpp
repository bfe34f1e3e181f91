// What survives a restart, graceful (SIGTERM) and kill -9, per docs/DURABILITY.md:
// retained messages (and their deletion), persistent sessions with their subscriptions
// and options, and their Wills; not sessions or messages that expired while the broker
// was down. And the durability modes: none keeps nothing and writes nothing; process and
// power keep everything and say where at start-up.
//
// Where the broker stays down longer than a session or message expiry, that wait is a
// fixed sleep: time itself is under test (1 s expiries, 1.5 s down).
#include "helpers.hpp"

#include "support/proc_io.hpp"
#include "support/qos_peers.hpp"

#include <filesystem>
#include <thread>

using namespace edgemq::test;

TEST_SUITE_BEGIN("integration");

namespace {

enum class stop_kind { graceful, kill9 };
constexpr stop_kind stop_kinds[] = {stop_kind::graceful, stop_kind::kill9};
std::string name_of(stop_kind k) { return k == stop_kind::graceful ? "graceful restart" : "kill -9"; }

// Stops the broker as asked, keeps it down for `down`, starts it again.
void bounce(broker_process& broker, stop_kind how, std::chrono::milliseconds down = 0ms) {
    if (how == stop_kind::graceful) broker.stop();
    else broker.kill9();
    if (down.count() > 0) std::this_thread::sleep_for(down);
    broker.restart();
}

wire::props sub_id(std::uint32_t id) {
    wire::props p;
    p.varint(wire::prop::subscription_id, id);
    return p;
}

wire::props message_expiry(std::uint32_t seconds) {
    wire::props p;
    p.u32(wire::prop::message_expiry, seconds);
    return p;
}

// A v5 or 3.1.1 raw client whose session outlives its connection.
void connect_persistent(raw_client& c, std::uint8_t version, const std::string& id, bool expect_present,
                        std::uint32_t expiry = 3600) {
    auto ack = c.connect(version, id, false, version == wire::v5 ? session_expiry(expiry) : wire::props{});
    CHECK(ack.session_present == expect_present);
}

// Disconnects cleanly and waits for the broker's close: the session is offline after.
void go_offline(raw_client& c) {
    c.send(wire::disconnect(c.version()));
    CHECK(c.expect_closed());
}

// Reads `n` PUBLISHes, completing their QoS 1/2 flows as a subscriber (the broker may
// interleave the next PUBLISH with a PUBREL), and returns them in arrival order.
std::vector<wire::publish_view> receive(raw_client& c, std::size_t n) {
    std::vector<wire::publish_view> got;
    while (got.size() < n) {
        auto pkt = c.expect();
        if (pkt.type() == wire::PUBREL) {
            c.send(wire::ack(wire::PUBCOMP, wire::parse_ack(pkt, c.version()).packet_id, c.version()));
            continue;
        }
        auto p = wire::parse_publish(pkt, c.version());
        if (p.qos == 1) c.send(wire::ack(wire::PUBACK, p.packet_id, c.version()));
        if (p.qos == 2) c.send(wire::ack(wire::PUBREC, p.packet_id, c.version()));
        got.push_back(std::move(p));
    }
    return got;
}

// Reads PUBLISHes until `marker` arrives on topic `marker_topic`; returns
// "topic=payload" of those before it. The marker is published after everything else,
// so whatever should not arrive has had its chance.
std::vector<std::string> payloads_until(raw_client& c, const std::string& marker_topic, const std::string& marker) {
    std::vector<std::string> got;
    for (;;) {
        auto p = receive(c, 1).front();
        if (p.topic == marker_topic && p.payload == marker) return got;
        got.push_back(p.topic + "=" + p.payload);
    }
}

std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : " ") + s;
    return out;
}

bool has_db_file(const std::filesystem::path& dir) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec))
        if (e.path().filename().string().rfind("edgemq.db", 0) == 0) return true;
    return false;
}

}  // namespace

// ---- what survives ----

TEST_CASE("durability: retained messages and retained deletes survive graceful restart and kill -9") {
    for (stop_kind how : stop_kinds) {
        INFO(name_of(how));
        broker_process broker;
        {
            raw_client pub(broker);
            pub.connect(wire::v5, "ret-pub");
            raw_publish(pub, "ret/a", "A", 1, 1, {}, true);
            raw_publish(pub, "ret/b", "B", 0, 0, {}, true);
            raw_publish(pub, "ret/c", "C", 1, 2, {}, true);
            raw_publish(pub, "ret/c", "", 1, 3, {}, true);  // deletes ret/c [MQTT-3.3.1-6]
            raw_publish(pub, "ret/d", "D", 2, 4, {}, true);
            raw_publish(pub, "ret/a", "A2", 1, 5, {}, true);  // replaces ret/a
            // The store applies operations in the order they were submitted, so this
            // PUBACK also covers the QoS 0 retained message before it.
            raw_publish(pub, "other", "barrier", 1, 6);
        }
        bounce(broker, how);
        raw_client sub(broker);
        sub.connect(wire::v311, "ret-sub");
        sub.subscribe("ret/#", wire::sub_options(1));
        raw_client marker(broker);
        marker.connect(wire::v311, "ret-marker");
        raw_publish(marker, "ret/zz", "end", 0);
        auto got = payloads_until(sub, "ret/zz", "end");
        std::sort(got.begin(), got.end());
        INFO("retained after restart: " << join(got));
        CHECK(got == std::vector<std::string>{"ret/a=A2", "ret/b=B", "ret/d=D"});
    }
}

TEST_CASE("[MQTT-4.1.0-1] durability: subscriptions with their options survive graceful restart and kill -9") {
    for (stop_kind how : stop_kinds) {
        INFO(name_of(how));
        broker_process broker;
        raw_client c5(broker);
        connect_persistent(c5, wire::v5, "opts5", false);
        CHECK(c5.subscribe("opt/q2", wire::sub_options(2), 1, sub_id(7)) == wire::bytes{2});
        CHECK(c5.subscribe("opt/nl", wire::sub_options(1, true), 2, sub_id(8)) == wire::bytes{1});
        CHECK(c5.subscribe("opt/rap", wire::sub_options(1, false, true), 3, sub_id(9)) == wire::bytes{1});
        raw_client c3(broker);
        connect_persistent(c3, wire::v311, "opts3", false);
        CHECK(c3.subscribe("opt311/+", wire::sub_options(1)) == wire::bytes{1});
        go_offline(c3);
        // c5 stays connected: a session connected at the stop counts as disconnected at
        // the restart, with its subscriptions.
        bounce(broker, how);

        raw_client s5(broker);
        connect_persistent(s5, wire::v5, "opts5", true);
        raw_client s3(broker);
        connect_persistent(s3, wire::v311, "opts3", true);
        {
            raw_client other(broker);
            other.connect(wire::v5, "opts-other");
            raw_publish(other, "opt/q2", "q2", 2, 1);
            raw_publish(other, "opt/rap", "rap", 1, 2, {}, true);
            raw_publish(other, "opt311/x", "x", 1, 3);
        }
        auto got = receive(s5, 2);
        REQUIRE(got[0].topic == "opt/q2");
        CHECK(got[0].qos == 2);
        CHECK(wire::values(got[0].properties, wire::prop::subscription_id) == std::vector<std::uint32_t>{7});
        REQUIRE(got[1].topic == "opt/rap");
        CHECK(got[1].retain);  // Retain As Published kept
        CHECK(wire::values(got[1].properties, wire::prop::subscription_id) == std::vector<std::uint32_t>{9});
        // (A PUBREL of opt/q2 still to come is completed by the next receive().)
        // No Local kept: its own message on opt/nl does not come back, the marker does.
        raw_publish(s5, "opt/nl", "own", 0);
        raw_client marker(broker);
        marker.connect(wire::v5, "opts-marker");
        raw_publish(marker, "opt/nl", "from another client", 0);
        auto nl = receive(s5, 1).front();
        CHECK(nl.payload == "from another client");
        CHECK(wire::values(nl.properties, wire::prop::subscription_id) == std::vector<std::uint32_t>{8});
        auto x = s3.expect_publish();
        CHECK(x.topic == "opt311/x");
        CHECK(x.qos == 1);
    }
}

TEST_CASE("[MQTT-3.1.2-8] durability: wills of persistent sessions survive graceful restart and kill -9") {
    for (stop_kind how : stop_kinds) {
        INFO(name_of(how));
        broker_process broker;
        raw_client watcher(broker);
        connect_persistent(watcher, wire::v5, "will-watch", false);
        watcher.subscribe("wills/#", wire::sub_options(1));
        go_offline(watcher);

        // Connected when the broker stops: a 5.0 client with a Will Delay of 1 s and a
        // 3.1.1 client (no delay), both with sessions that outlive the connection.
        raw_client w5(broker);
        {
            wire::connect_spec spec;
            spec.version = wire::v5;
            spec.client_id = "will5";
            spec.clean = false;
            spec.properties = session_expiry(3600);
            spec.will = wire::will_spec{"wills/5", "will of will5", 1, false, {}};
            spec.will->properties.u32(wire::prop::will_delay, 1);
            REQUIRE(w5.connect(spec).reason == 0);
        }
        raw_client w3(broker);
        {
            wire::connect_spec spec;
            spec.version = wire::v311;
            spec.client_id = "will3";
            spec.clean = false;
            spec.will = wire::will_spec{"wills/3", "will of will3", 1, false, {}};
            REQUIRE(w3.connect(spec).reason == 0);
        }
        // CONNACK does not wait for the session row to be committed (docs/DURABILITY.md);
        // a SUBACK of a persistent session does, and the session row was submitted
        // before it: once both SUBACKs are in, both sessions and Wills are stored.
        w5.subscribe("will-sync/5", wire::sub_options(0));
        w3.subscribe("will-sync/3", wire::sub_options(0));

        bounce(broker, how);
        raw_client again(broker);
        connect_persistent(again, wire::v5, "will-watch", true);
        std::vector<std::string> got;
        for (int i = 0; i < 2; ++i) {
            auto r = again.read(4000ms);  // the 5.0 will waits its delay from the restart
            REQUIRE_MESSAGE(r.what == raw_client::status::packet, "wills so far: " << got.size());
            auto p = wire::parse_publish(r.pkt, wire::v5);
            if (p.qos == 1) again.send(wire::ack(wire::PUBACK, p.packet_id));
            got.push_back(p.topic + "=" + p.payload);
        }
        std::sort(got.begin(), got.end());
        INFO("wills: " << join(got));
        CHECK(got == std::vector<std::string>{"wills/3=will of will3", "wills/5=will of will5"});
        CHECK(again.expect_silence(500ms));  // each once
    }
}

TEST_CASE("[MQTT-3.1.2-23] durability: sessions that expire while the broker is down are gone after restart") {
    for (stop_kind how : stop_kinds) {
        INFO(name_of(how));
        broker_process broker;
        {
            raw_client short_lived(broker);
            connect_persistent(short_lived, wire::v5, "exp-short", false, 1);
            short_lived.subscribe("exp/t", wire::sub_options(1));
            go_offline(short_lived);
            raw_client long_lived(broker);
            connect_persistent(long_lived, wire::v5, "exp-long", false, 3600);
            long_lived.subscribe("exp/t", wire::sub_options(1));
            go_offline(long_lived);
            raw_client pub(broker);
            pub.connect(wire::v5, "exp-pub");
            raw_publish(pub, "exp/t", "queued", 1);
        }
        bounce(broker, how, 1500ms);  // longer than the 1 s expiry
        raw_client short_lived(broker);
        connect_persistent(short_lived, wire::v5, "exp-short", false, 1);
        CHECK(short_lived.expect_silence(300ms));  // no session, so no queued message
        raw_client long_lived(broker);
        connect_persistent(long_lived, wire::v5, "exp-long", true);
        CHECK(long_lived.expect_publish().payload == "queued");
    }
}

TEST_CASE("[MQTT-3.3.2-5] durability: messages that expire while the broker is down are not delivered after restart") {
    for (stop_kind how : stop_kinds) {
        INFO(name_of(how));
        broker_process broker;
        {
            raw_client sub(broker);
            connect_persistent(sub, wire::v5, "mexp-sub", false);
            sub.subscribe("mexp/#", wire::sub_options(1));
            go_offline(sub);
            raw_client pub(broker);
            pub.connect(wire::v5, "mexp-pub");
            raw_publish(pub, "mexp/short", "expires", 1, 1, message_expiry(1));
            raw_publish(pub, "mexp/long", "stays", 1, 2, message_expiry(3600));
            raw_publish(pub, "mexp/none", "no expiry", 1, 3);
            raw_publish(pub, "mret/short", "expires", 1, 4, message_expiry(1), true);
            raw_publish(pub, "mret/none", "no expiry", 1, 5, {}, true);
        }
        bounce(broker, how, 1500ms);
        raw_client sub(broker);
        connect_persistent(sub, wire::v5, "mexp-sub", true);
        auto a = sub.expect_publish();
        sub.send(wire::ack(wire::PUBACK, a.packet_id));
        auto b = sub.expect_publish();
        sub.send(wire::ack(wire::PUBACK, b.packet_id));
        CHECK(a.topic == "mexp/long");
        CHECK(b.topic == "mexp/none");
        CHECK(sub.expect_silence(300ms));
        raw_client ret(broker);
        ret.connect(wire::v311, "mret-sub");
        ret.subscribe("mret/#", wire::sub_options(1));
        auto r = ret.expect_publish();
        CHECK(r.topic == "mret/none");
        CHECK(r.retain);
        CHECK(ret.expect_silence(300ms));
    }
}

// ---- the durability modes ----

TEST_CASE("durability modes: none keeps nothing across a restart and creates no database file") {
    if (testing_mosquitto()) {
        MESSAGE("skipped: edgemq's --durability option");
        return;
    }
    // The command-line option, and the configuration key.
    for (int variant = 0; variant < 2; ++variant) {
        broker_config config;
        if (variant == 0) config.durability = "none";
        else config.config_text = "{\"durability\": \"none\"}\n";
        INFO((variant == 0 ? "--durability none" : "config durability none"));
        broker_process broker(config);
        CHECK(broker.log_contains("durability none"));
        CHECK_FALSE(broker.log_contains("edgemq.db"));
        // From here, not from exec: a sanitizer's runtime may write at start-up
        // (ThreadSanitizer was seen to account 512 KiB), edgemq itself must not.
        const auto io_before = read_proc_io(broker.pid());
        {
            raw_client sub(broker);
            connect_persistent(sub, wire::v5, "none-sub", false);
            sub.subscribe("none/t", wire::sub_options(1));
            go_offline(sub);
            raw_client pub(broker);
            pub.connect(wire::v5, "none-pub");
            raw_publish(pub, "none/t", "queued", 1);
            raw_publish(pub, "none/r", "retained", 1, 2, {}, true);
        }
        const auto io = read_proc_io(broker.pid());
        CHECK(io);
        CHECK(io_before);
        if (io && io_before) CHECK(io->write_bytes - io_before->write_bytes == 0);  // "no disk writes at all"
        CHECK_FALSE(has_db_file(broker.data_dir()));
        broker.kill9();
        broker.restart();
        raw_client sub(broker);
        connect_persistent(sub, wire::v5, "none-sub", false);  // no session
        CHECK(sub.expect_silence(300ms));
        raw_client ret(broker);
        ret.connect(wire::v5, "none-ret");
        ret.subscribe("none/#", wire::sub_options(1));
        CHECK(ret.expect_silence(300ms));  // no retained message
        CHECK_FALSE(has_db_file(broker.data_dir()));
    }
}

TEST_CASE("durability modes: process and power keep queued and retained messages across kill -9 and log the file and mode") {
    if (testing_mosquitto()) {
        MESSAGE("skipped: edgemq's --durability option");
        return;
    }
    struct variant {
        const char* name;
        std::optional<std::string> option;
        std::optional<std::string> config_text;
        const char* mode;
    };
    const variant variants[] = {
        {"default", std::nullopt, std::nullopt, "process"},
        {"--durability process", "process", std::nullopt, "process"},
        {"--durability power", "power", std::nullopt, "power"},
        {"config durability power", std::nullopt, "{\"durability\": \"power\"}\n", "power"},
    };
    for (const auto& v : variants) {
        INFO(v.name);
        broker_config config;
        config.durability = v.option;
        config.config_text = v.config_text;
        broker_process broker(config);
        const auto db = broker.data_dir() / "edgemq.db";
        const std::string line = "info state in " + db.string() + " (durability " + v.mode + ")";
        CHECK_MESSAGE(broker.log_contains(line), "no line '" << line << "' in:\n" << broker.log());
        {
            raw_client sub(broker);
            connect_persistent(sub, wire::v5, "mode-sub", false);
            sub.subscribe("mode/t", wire::sub_options(1));
            go_offline(sub);
            raw_client pub(broker);
            pub.connect(wire::v5, "mode-pub");
            raw_publish(pub, "mode/t", "queued", 1);
            raw_publish(pub, "mode/r", "retained", 1, 2, {}, true);
        }
        CHECK(std::filesystem::exists(db));
        broker.kill9();
        broker.restart();
        CHECK(broker.log_contains("restored 1 sessions"));
        raw_client sub(broker);
        connect_persistent(sub, wire::v5, "mode-sub", true);
        CHECK(sub.expect_publish().payload == "queued");
        raw_client ret(broker);
        ret.connect(wire::v5, "mode-ret");
        ret.subscribe("mode/r", wire::sub_options(1));
        CHECK(ret.expect_publish().payload == "retained");
    }
}

TEST_CASE("durability modes: disk bytes written per delivered QoS 1 message are reported") {
    if (testing_mosquitto()) {
        MESSAGE("skipped: edgemq's --durability option");
        return;
    }
    // Figures for the report (docs/BENCHMARKS.md has the benchmark); checked only where
    // the mode promises it: none writes nothing. 2000 QoS 1 messages, 64 in flight, to
    // an online persistent subscriber that acknowledges as they come.
    constexpr std::uint64_t n = 2000;
    for (const char* mode : {"none", "process", "power"}) {
        INFO("durability " << mode);
        broker_config config;
        config.durability = mode;
        broker_process broker(config);
        qos_subscriber sub("io-sub", wire::v5, "io/#", 1);
        sub.connect(broker.host(), broker.port(), false);
        sub.subscribe();
        qos_publisher pub("iopub", wire::v5, "io/t", 1, 64, 64);
        pub.set_limit(n);
        pub.connect(broker.host(), broker.port(), true);
        const auto before = read_proc_io(broker.pid());
        const auto t0 = std::chrono::steady_clock::now();
        auto r = pump({&pub, &sub}, scaled(20s), [&] { return pub.completed() == n && sub.distinct("iopub") == n; });
        const double secs = seconds_since(t0);
        const auto after = read_proc_io(broker.pid());
        REQUIRE(r == pump_result::stopped);
        REQUIRE(before);
        REQUIRE(after);
        const auto written = after->write_bytes - before->write_bytes;
        MESSAGE("durability " << mode << ": " << n << " QoS 1 messages in " << secs << " s, broker wrote " << written
                              << " bytes to disk (" << written / n << " per message; cancelled "
                              << after->cancelled_write_bytes - before->cancelled_write_bytes << ")");
        if (std::string(mode) == "none") CHECK(written == 0);
    }
}

TEST_SUITE_END();
