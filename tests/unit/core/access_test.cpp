// The core asking its authorizer: CONNECT refused with the right codes, PUBLISH and
// SUBSCRIBE denied per version, deliveries filtered (retained and wildcard ones too),
// Wills checked, rules replaced at run time, the v5 AUTH exchange, and the per-listener
// limits (publish rate, subscriptions, inflight). The authorizer here is a small table
// the test controls; the file-based one (auth/) is tested in tests/unit/auth.
#include <doctest/doctest.h>

#include <map>
#include <set>

#include "broker/core/log.hpp"
#include "broker/topics/topic_match.hpp"
#include "tests/unit/core/harness.hpp"

using namespace edgemq;
using namespace edgemq::protocol;
using test::expect;
using test::fake_broker;
using test::fake_connection;
using namespace std::chrono_literals;

namespace {

const bool quiet_logs = (log::set_level(log::level::error), true);

// Users with passwords; per user, filters they may read and write (topic_matches), and
// filters they may subscribe with (exact).
class table_authorizer final : public core::authorizer {
public:
    std::map<std::string, std::string> passwords;
    std::map<std::string, std::vector<std::string>> readable;
    std::map<std::string, std::vector<std::string>> writable;
    std::map<std::string, std::set<std::string>> subscribable;
    bool anonymous = false;
    std::string exchange_method;  // supported enhanced method ("" none)

    core::auth_decision authenticate(const std::optional<std::string>& user, const std::optional<std::string>& password,
                                     std::string_view) const override {
        if (!user) return anonymous ? core::auth_decision::allow : core::auth_decision::bad_credentials;
        auto it = passwords.find(*user);
        if (it == passwords.end() || !password || *password != it->second) return core::auth_decision::bad_credentials;
        if (*user == "banned") return core::auth_decision::not_authorized;
        return core::auth_decision::allow;
    }
    bool may_publish(const core::client_identity& who, std::string_view topic) const override {
        return matches(writable, who, topic);
    }
    bool may_subscribe(const core::client_identity& who, std::string_view filter) const override {
        auto it = subscribable.find(who.username.value_or(""));
        return it != subscribable.end() && it->second.count(std::string(filter)) != 0;
    }
    bool may_receive(const core::client_identity& who, std::string_view topic) const override {
        return matches(readable, who, topic);
    }
    bool restricts_reads() const noexcept override { return true; }

    // A challenge-response method: the client must answer "pong" to "ping".
    class ping_exchange final : public core::auth_exchange {
    public:
        step on_data(std::string_view data) override {
            step s;
            if (!asked_) {
                asked_ = true;
                s.result = step::outcome::continue_auth;
                s.data = "ping";
                return s;
            }
            s.result = data == "pong" ? step::outcome::success : step::outcome::failure;
            s.username = "exchanged";
            return s;
        }

    private:
        bool asked_ = false;
    };
    std::unique_ptr<core::auth_exchange> begin_exchange(std::string_view method) const override {
        if (method != exchange_method || exchange_method.empty()) return nullptr;
        return std::make_unique<ping_exchange>();
    }

private:
    static bool matches(const std::map<std::string, std::vector<std::string>>& table, const core::client_identity& who,
                        std::string_view topic) {
        auto it = table.find(who.username.value_or(""));
        if (it == table.end()) return false;
        for (const auto& f : it->second)
            if (topics::topic_matches(f, topic)) return true;
        return false;
    }
};

std::shared_ptr<table_authorizer> standard_rules() {
    auto a = std::make_shared<table_authorizer>();
    a->passwords = {{"alice", "secret"}, {"bob", "hunter2"}, {"banned", "x"}};
    a->readable["alice"] = {"sensors/#"};
    a->writable["alice"] = {"sensors/alice/#"};
    a->subscribable["alice"] = {"sensors/#", "sensors/+/temp", "#"};
    a->readable["bob"] = {"sensors/bob/#", "$SYS/#"};
    a->writable["bob"] = {"sensors/bob/#", "sensors/alice/secret"};
    a->subscribable["bob"] = {"sensors/bob/#", "#", "$SYS/#"};
    return a;
}

connect make_connect(std::string id, protocol_version v, std::optional<std::string> user = std::nullopt,
                     std::optional<std::string> password = std::nullopt) {
    connect c;
    c.version = v;
    c.client_id = std::move(id);
    c.keep_alive = 60;
    c.username = std::move(user);
    c.password = std::move(password);
    return c;
}

connack open(fake_connection& c, const connect& conn) {
    c.version = conn.version;
    c.send(conn.version, conn);
    return expect<connack>(c);
}

suback subscribe_to(fake_connection& c, std::string filter, std::uint8_t qos = 1) {
    subscribe s;
    s.packet_id = 3;
    s.entries.push_back({std::move(filter), subscription_options{.qos = qos}});
    c.send(c.version, s);
    return expect<suback>(c);
}

void publish_to(fake_connection& c, std::string topic, std::string payload, std::uint8_t qos = 0, bool retain = false,
                std::uint16_t id = 9) {
    publish p;
    p.topic = std::move(topic);
    p.payload = std::move(payload);
    p.qos = qos;
    p.retain = retain;
    p.packet_id = qos ? id : 0;
    c.send(c.version, p);
}

std::vector<std::string> received_topics(fake_connection& c) {
    std::vector<std::string> topics;
    for (auto& p : c.receive_all())
        if (auto* pub = std::get_if<publish>(&p)) topics.push_back(pub->topic);
    return topics;
}

struct rig {
    explicit rig(core::broker_settings s = {}) : broker(std::move(s)) {
        rules = standard_rules();
        broker.shared().set_authorizer(rules);
        broker.run();
    }
    fake_broker broker;
    std::shared_ptr<table_authorizer> rules;
};

}  // namespace

TEST_CASE("MQTT-3.2.2 CONNACK 0x86 and 0x87 for v5 and return codes 4 and 5 for v3.1.1") {
    rig r;
    auto c1 = r.broker.connect();
    CHECK(open(*c1, make_connect("a", protocol_version::v5, "alice", "wrong")).code == reason_code::bad_user_name_or_password);
    CHECK(c1->closed());
    auto c2 = r.broker.connect();
    CHECK(open(*c2, make_connect("b", protocol_version::v5)).code == reason_code::bad_user_name_or_password);
    auto c3 = r.broker.connect();
    CHECK(open(*c3, make_connect("c", protocol_version::v5, "banned", "x")).code == reason_code::not_authorized);
    // 3.1.1: the same refusals as return codes 4 and 5 (the codec maps them).
    auto c4 = r.broker.connect();
    CHECK(open(*c4, make_connect("d", protocol_version::v311, "nobody", "x")).code == reason_code::bad_user_name_or_password);
    auto c5 = r.broker.connect();
    CHECK(open(*c5, make_connect("e", protocol_version::v311, "banned", "x")).code == reason_code::not_authorized);
    auto ok = r.broker.connect();
    CHECK(open(*ok, make_connect("f", protocol_version::v311, "alice", "secret")).code == reason_code::success);
}

TEST_CASE("MQTT-3.3.5 denied PUBLISH gets PUBACK 0x87 in v5 and a plain PUBACK in v3.1.1 and is not routed") {
    for (auto v : {protocol_version::v5, protocol_version::v311}) {
        CAPTURE(static_cast<int>(v));
        rig r;
        auto bob = r.broker.connect();
        open(*bob, make_connect("bob", protocol_version::v5, "bob", "hunter2"));
        CHECK(subscribe_to(*bob, "#").codes.front() == reason_code::granted_qos_1);
        auto alice = r.broker.connect();
        open(*alice, make_connect("alice", v, "alice", "secret"));
        publish_to(*alice, "sensors/bob/temp", "forged", 1);
        auto ack = expect<puback>(*alice);
        CHECK(ack.code == (v == protocol_version::v5 ? reason_code::not_authorized : reason_code::success));
        publish_to(*alice, "sensors/alice/temp", "21", 2, false, 10);
        CHECK(expect<pubrec>(*alice).code == reason_code::success);
        // bob reads sensors/bob/# only: alice's allowed publish is not readable by him either.
        CHECK(received_topics(*bob).empty());
        CHECK(r.broker.worker(0).counters().publish_denied + r.broker.worker(1).counters().publish_denied == 1);
    }
}

TEST_CASE("SUBSCRIBE denied per filter with 0x87 in v5 and 0x80 in v3.1.1") {
    rig r;
    auto alice = r.broker.connect();
    open(*alice, make_connect("alice", protocol_version::v5, "alice", "secret"));
    CHECK(subscribe_to(*alice, "private/#").codes.front() == reason_code::not_authorized);
    CHECK(subscribe_to(*alice, "$share/g/sensors/#").codes.front() == reason_code::granted_qos_1);
    auto old = r.broker.connect();
    open(*old, make_connect("old", protocol_version::v311, "alice", "secret"));
    CHECK(subscribe_to(*old, "private/#").codes.front() == reason_code::unspecified_error);  // 0x80 on the wire
}

TEST_CASE("A wildcard subscription never delivers a topic the user may not read and retained ones neither") {
    rig r;
    auto bob = r.broker.connect();
    open(*bob, make_connect("bob", protocol_version::v5, "bob", "hunter2"));
    publish_to(*bob, "sensors/bob/temp", "retained-ok", 1, true);
    expect<puback>(*bob);
    // Retained on a topic bob may not read: published by alice.
    auto alice = r.broker.connect();
    open(*alice, make_connect("alice", protocol_version::v5, "alice", "secret"));
    publish_to(*alice, "sensors/alice/temp", "retained-secret", 1, true);
    expect<puback>(*alice);

    auto sub = r.broker.connect();
    open(*sub, make_connect("bob-2", protocol_version::v5, "bob", "hunter2"));
    subscribe s;
    s.packet_id = 4;
    s.entries.push_back({"#", subscription_options{.qos = 1}});
    sub->send(sub->version, s);
    std::vector<std::string> topics;
    for (auto& p : sub->receive_all())
        if (auto* pub = std::get_if<publish>(&p)) topics.push_back(pub->topic);
    CHECK(topics == std::vector<std::string>{"sensors/bob/temp"});
    publish_to(*alice, "sensors/alice/temp", "live-secret", 0);
    publish_to(*bob, "sensors/bob/hum", "live-ok", 0);
    CHECK(received_topics(*sub) == std::vector<std::string>{"sensors/bob/hum"});
}

TEST_CASE("$SYS is delivered only where the rules allow it") {
    core::broker_settings s;
    s.sys_interval = 1;
    rig r(s);
    auto alice = r.broker.connect(0);
    open(*alice, make_connect("alice", protocol_version::v5, "alice", "secret"));
    auto bob = r.broker.connect(0);
    open(*bob, make_connect("bob", protocol_version::v5, "bob", "hunter2"));
    CHECK(subscribe_to(*bob, "$SYS/#", 0).codes.front() == reason_code::success);
    CHECK(subscribe_to(*alice, "$SYS/#", 0).codes.front() == reason_code::not_authorized);
    r.broker.advance(1500ms);
    CHECK(!received_topics(*bob).empty());
    CHECK(received_topics(*alice).empty());
}

TEST_CASE("MQTT-3.1.2 a Will on a topic the user may not publish to is refused at CONNECT") {
    rig r;
    for (auto v : {protocol_version::v5, protocol_version::v311}) {
        auto c = r.broker.connect();
        connect conn = make_connect(v == protocol_version::v5 ? "w5" : "w3", v, "alice", "secret");
        conn.will = will_message{};
        conn.will->topic = "sensors/bob/status";
        conn.will->payload = "gone";
        CHECK(open(*c, conn).code == reason_code::not_authorized);
        CHECK(c->closed());
    }
}

TEST_CASE("New rules remove subscriptions they no longer allow and deliveries stop") {
    rig r;
    auto alice = r.broker.connect();
    open(*alice, make_connect("alice", protocol_version::v5, "alice", "secret"));
    CHECK(subscribe_to(*alice, "sensors/#").codes.front() == reason_code::granted_qos_1);
    auto bob = r.broker.connect();
    open(*bob, make_connect("bob", protocol_version::v5, "bob", "hunter2"));
    publish_to(*bob, "sensors/bob/temp", "1", 0);
    CHECK(received_topics(*alice).size() == 1);

    auto stricter = standard_rules();
    stricter->subscribable["alice"] = {"sensors/alice/#"};
    r.broker.shared().set_authorizer(stricter);
    r.broker.run();
    publish_to(*bob, "sensors/bob/temp", "2", 0);
    CHECK(received_topics(*alice).empty());
    // Unsubscribing what was removed says so.
    unsubscribe u;
    u.packet_id = 5;
    u.filters.push_back("sensors/#");
    alice->send(alice->version, u);
    CHECK(expect<unsuback>(*alice).codes.front() == reason_code::no_subscription_existed);
}

TEST_CASE("MQTT-4.12 enhanced authentication: challenge and success or failure or unknown method") {
    rig r;
    r.rules->exchange_method = "PING";
    // CONNECT naming the PING method, on worker 0; the broker answers with its challenge.
    const auto start_exchange = [&](const std::string& id, std::optional<will_message> will = std::nullopt) {
        auto c = r.broker.connect(0);
        connect conn = make_connect(id, protocol_version::v5);
        conn.props.authentication_method = "PING";
        conn.will = std::move(will);
        c->version = protocol_version::v5;
        c->send(protocol_version::v5, conn);
        return c;
    };
    const auto answer = [](std::string data) {
        auth a;
        a.code = reason_code::continue_authentication;
        a.props.authentication_method = "PING";
        a.props.authentication_data = std::move(data);
        return a;
    };
    // Every way out of an unfinished exchange gives worker 0's claim on the client id
    // back: worker 1 may then take the id itself.
    const auto id_is_free = [&](const std::string& id) { return r.broker.shared().claim_home(id, 1) == 1; };
    {
        auto c = start_exchange("x1");
        auto challenge = expect<auth>(*c);
        CHECK(challenge.code == reason_code::continue_authentication);
        CHECK(challenge.props.authentication_data == std::optional<std::string>("ping"));
        c->send(protocol_version::v5, answer("pong"));
        auto ack = expect<connack>(*c);
        CHECK(ack.code == reason_code::success);
        CHECK(ack.props.authentication_method == std::optional<std::string>("PING"));
        // Re-authentication [MQTT-4.12.1]: the same method, started with 0x19.
        auth again;
        again.code = reason_code::re_authenticate;
        again.props.authentication_method = "PING";
        c->send(protocol_version::v5, again);
        CHECK(expect<auth>(*c).code == reason_code::continue_authentication);
        c->send(protocol_version::v5, answer("pong"));
        CHECK(expect<auth>(*c).code == reason_code::success);
        CHECK(!c->closed());
    }
    {
        auto c = start_exchange("x2");
        expect<auth>(*c);
        c->send(protocol_version::v5, answer("wrong"));
        CHECK(expect<connack>(*c).code == reason_code::not_authorized);
        CHECK(c->closed());
        CHECK(id_is_free("x2"));
        auto again = r.broker.connect(1);
        CHECK(open(*again, make_connect("x2", protocol_version::v5, "alice", "secret")).code == reason_code::success);
    }
    {
        auto c = r.broker.connect();
        connect conn = make_connect("x3", protocol_version::v5);
        conn.props.authentication_method = "SCRAM-SHA-1";
        CHECK(open(*c, conn).code == reason_code::bad_authentication_method);
    }
    {
        // Anything but AUTH during the exchange is a protocol error.
        auto c = start_exchange("x4");
        expect<auth>(*c);
        c->send(protocol_version::v5, pingreq{});
        CHECK(expect<connack>(*c).code == reason_code::protocol_error);
        CHECK(c->closed());
        CHECK(id_is_free("x4"));
    }
    {
        // A client may give up with DISCONNECT instead (3.1.2.11.9): closed, no CONNACK.
        auto c = start_exchange("x5");
        expect<auth>(*c);
        c->send(protocol_version::v5, disconnect{});
        CHECK(c->closed());
        CHECK_FALSE(c->receive().has_value());
        CHECK(id_is_free("x5"));
        auto again = r.broker.connect(1);
        CHECK(open(*again, make_connect("x5", protocol_version::v5, "alice", "secret")).code == reason_code::success);
    }
    {
        // Authenticated, then refused for its Will (user "exchanged" may publish nothing).
        will_message will;
        will.topic = "sensors/bob/status";
        will.payload = "gone";
        auto c = start_exchange("x6", will);
        expect<auth>(*c);
        c->send(protocol_version::v5, answer("pong"));
        CHECK(expect<connack>(*c).code == reason_code::not_authorized);
        CHECK(c->closed());
        CHECK(id_is_free("x6"));
    }
    {
        // Silent after the challenge: closed at the connect timeout.
        auto c = start_exchange("x7");
        expect<auth>(*c);
        r.broker.advance(std::chrono::seconds(11));
        CHECK(c->closed());
        CHECK(id_is_free("x7"));
    }
}

TEST_CASE("Publish rate limit disconnects with 0x96 Message rate too high") {
    core::broker_settings s;
    s.listeners.front().limits.max_publish_rate = 5;
    rig r(s);
    auto c = r.broker.connect();
    open(*c, make_connect("fast", protocol_version::v5, "alice", "secret"));
    for (int i = 0; i < 5; ++i) publish_to(*c, "sensors/alice/x", "1", 0);
    CHECK(!c->closed());
    publish_to(*c, "sensors/alice/x", "1", 0);
    CHECK(expect<disconnect>(*c).code == reason_code::message_rate_too_high);
    CHECK(c->closed());
    // At the rate, never disconnected.
    auto slow = r.broker.connect();
    open(*slow, make_connect("slow", protocol_version::v311, "alice", "secret"));
    for (int i = 0; i < 20; ++i) {
        publish_to(*slow, "sensors/alice/x", "1", 0);
        r.broker.advance(200ms);
    }
    CHECK(!slow->closed());
}

TEST_CASE("Publish bytes rate limit closes a v3.1.1 client") {
    core::broker_settings s;
    s.listeners.front().limits.max_publish_bytes_rate = 1000;
    rig r(s);
    auto c = r.broker.connect();
    open(*c, make_connect("big", protocol_version::v311, "alice", "secret"));
    publish_to(*c, "sensors/alice/x", std::string(900, 'x'), 0);
    CHECK(!c->closed());
    publish_to(*c, "sensors/alice/x", std::string(900, 'x'), 0);
    CHECK(c->closed());
}

TEST_CASE("max_subscriptions gives SUBACK 0x97 past the limit and replacing a filter still works") {
    core::broker_settings s;
    s.listeners.front().limits.max_subscriptions = 2;
    fake_broker b(s);
    auto c = b.connect();
    open(*c, make_connect("subs", protocol_version::v5));
    CHECK(subscribe_to(*c, "a").codes.front() == reason_code::granted_qos_1);
    CHECK(subscribe_to(*c, "b").codes.front() == reason_code::granted_qos_1);
    CHECK(subscribe_to(*c, "c").codes.front() == reason_code::quota_exceeded);
    CHECK(subscribe_to(*c, "a", 0).codes.front() == reason_code::success);
}

TEST_CASE("max_inflight caps unacknowledged deliveries below the client's Receive Maximum") {
    core::broker_settings s;
    s.listeners.front().limits.max_inflight = 3;
    fake_broker b(s);
    auto sub = b.connect(0);
    open(*sub, make_connect("sub", protocol_version::v5));
    subscribe_to(*sub, "t");
    auto pub = b.connect(0);
    open(*pub, make_connect("pub", protocol_version::v5));
    for (std::uint16_t i = 1; i <= 10; ++i) publish_to(*pub, "t", "m", 1, false, i);
    CHECK(received_topics(*sub).size() == 3);
}
