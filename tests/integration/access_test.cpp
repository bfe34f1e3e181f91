// Authentication, authorization and per-listener limits, end to end: the real edgemq
// with password files written by `edgemq passwd` and by Mosquitto's mosquitto_passwd,
// an ACL file in Mosquitto's syntax, driven by raw sockets (exact reason codes), Paho
// and mosquitto_pub/sub; SIGHUP reloads.
#include <sys/stat.h>

#include <fstream>

#include "helpers.hpp"
#include "support/run_process.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

using namespace edgemq::test;
namespace fs = std::filesystem;

TEST_SUITE_BEGIN("integration");

namespace {

void write_file(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

process_result run_ok(const std::vector<std::string>& argv) {
    auto r = run_process(argv, 20s);
    if (r.exit_code != 0) {
        std::string cmd;
        for (auto& a : argv) cmd += a + " ";
        MESSAGE("command failed (exit " << r.exit_code << "): " << cmd << "\n" << r.output);
    }
    return r;
}

// alice and bob from `edgemq passwd`, carol from Mosquitto's own tool.
fs::path make_password_file(const fs::path& dir) {
    const fs::path file = dir / "passwd";
    REQUIRE(run_ok({edgemq_binary(), "passwd", "-c", "-b", file.string(), "alice", "secret"}).exit_code == 0);
    REQUIRE(run_ok({edgemq_binary(), "passwd", "-b", file.string(), "bob", "hunter2"}).exit_code == 0);
    REQUIRE(run_ok({"mosquitto_passwd", "-b", file.string(), "carol", "s3cret"}).exit_code == 0);
    return file;
}

const char* const acl_text = R"(# edgemq access test
user alice
topic read sensors/#
topic readwrite sensors/alice/#

user bob
topic write sensors/bob/#
topic read sensors/bob/#
topic read $SYS/#

user carol
topic readwrite #
topic deny sensors/secret/#

pattern readwrite clients/%c/#
)";

std::uint8_t connack_code(const broker_process& b, std::uint8_t version, std::optional<std::string> user,
                          std::optional<std::string> password, const std::string& id = "c") {
    raw_client c(b);
    wire::connect_spec spec;
    spec.version = version;
    spec.client_id = id;
    spec.username = std::move(user);
    spec.password = std::move(password);
    return c.connect(spec).reason;
}

raw_client& login(raw_client& c, std::uint8_t version, const std::string& id, const std::string& user,
                  const std::string& password) {
    wire::connect_spec spec;
    spec.version = version;
    spec.client_id = id;
    spec.username = user;
    spec.password = password;
    REQUIRE(c.connect(spec).reason == 0);
    return c;
}

broker_config secured(const fs::path& passwd, const fs::path& acl, std::vector<std::string> more = {}) {
    broker_config cfg;
    cfg.extra_args = {"--password-file", passwd.string(), "--acl-file", acl.string()};
    cfg.extra_args.insert(cfg.extra_args.end(), more.begin(), more.end());
    return cfg;
}

}  // namespace

TEST_CASE("Password file from edgemq passwd and mosquitto_passwd: right and wrong passwords and anonymous clients") {
    temp_dir dir("edgemq-access");
    const fs::path passwd = make_password_file(dir.path());
    struct stat st {};
    REQUIRE(::stat(passwd.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);  // hashes are secrets too
    broker_config cfg;
    cfg.extra_args = {"--password-file", passwd.string()};
    broker_process broker(cfg);
    CHECK(connack_code(broker, wire::v5, "alice", "secret") == 0x00);
    CHECK(connack_code(broker, wire::v5, "carol", "s3cret") == 0x00);
    CHECK(connack_code(broker, wire::v311, "bob", "hunter2") == 0x00);
    // [MQTT-3.2.2] v5: 0x86 Bad User Name or Password; 3.1.1: return code 4.
    CHECK(connack_code(broker, wire::v5, "alice", "wrong") == 0x86);
    CHECK(connack_code(broker, wire::v311, "alice", "wrong") == 0x04);
    CHECK(connack_code(broker, wire::v5, "mallory", "secret") == 0x86);
    // Anonymous clients are refused once a password file is configured.
    // Not authorized (0x87 / 5), as Mosquitto answers anonymous clients it refuses.
    CHECK(connack_code(broker, wire::v5, std::nullopt, std::nullopt) == 0x87);
    CHECK(connack_code(broker, wire::v311, std::nullopt, std::nullopt) == 0x05);
    // Mosquitto's client with the right and the wrong password.
    const auto base = std::vector<std::string>{"mosquitto_pub", "-h", broker.host(), "-p",
                                               std::to_string(broker.port()), "-t", "t", "-m", "x"};
    auto good = base;
    good.insert(good.end(), {"-u", "carol", "-P", "s3cret"});
    CHECK(run_ok(good).exit_code == 0);
    auto bad = base;
    bad.insert(bad.end(), {"-u", "carol", "-P", "nope"});
    CHECK(run_process(bad, 10s).exit_code != 0);
}

TEST_CASE("allow_anonymous true lets clients without a user name in beside a password file") {
    temp_dir dir("edgemq-access");
    const fs::path passwd = make_password_file(dir.path());
    broker_config cfg;
    cfg.extra_args = {"--password-file", passwd.string(), "--allow-anonymous", "true"};
    broker_process broker(cfg);
    CHECK(connack_code(broker, wire::v5, std::nullopt, std::nullopt) == 0x00);
    CHECK(connack_code(broker, wire::v5, "alice", "wrong") == 0x86);
}

TEST_CASE("ACL denies PUBLISH with PUBACK 0x87 in v5 and silently in v3.1.1 and nothing is delivered") {
    temp_dir dir("edgemq-access");
    write_file(dir.path() / "acl", acl_text);
    broker_process broker(secured(make_password_file(dir.path()), dir.path() / "acl"));
    raw_client watcher(broker);
    login(watcher, wire::v5, "watch", "carol", "s3cret");
    watcher.subscribe("#", 1);
    for (std::uint8_t v : {wire::v5, wire::v311}) {
        CAPTURE(int(v));
        raw_client bob(broker);
        login(bob, v, "bob-" + std::to_string(v), "bob", "hunter2");
        bob.send(wire::publish({v, "sensors/alice/temp", "forged", 1, false, false, 5}));
        const auto ack = wire::parse_ack(bob.expect(4), v);
        CHECK(ack.reason == (v == wire::v5 ? 0x87 : 0x00));
        // QoS 2: PUBREC 0x87 in v5; 3.1.1 completes the flow as usual [MQTT-3.3.5-2].
        bob.send(wire::publish({v, "sensors/alice/temp", "forged2", 2, false, false, 6}));
        const auto rec = wire::parse_ack(bob.expect(5), v);
        CHECK(rec.reason == (v == wire::v5 ? 0x87 : 0x00));
        if (v == wire::v311) {
            bob.send(wire::ack(6, 6, v));
            bob.expect(7);
        }
        // Allowed topic goes through.
        bob.send(wire::publish({v, "sensors/bob/temp", "ok", 1, false, false, 7}));
        CHECK(wire::parse_ack(bob.expect(4), v).reason == 0);
        const auto got = watcher.expect_publish();
        CHECK(got.topic == "sensors/bob/temp");
    }
    CHECK(watcher.expect_silence(300ms));
}

TEST_CASE("ACL on SUBSCRIBE: wildcards wider than the rules are refused and $SYS needs a rule") {
    temp_dir dir("edgemq-access");
    write_file(dir.path() / "acl", acl_text);
    broker_process broker(secured(make_password_file(dir.path()), dir.path() / "acl"));
    raw_client alice(broker);
    login(alice, wire::v5, "alice", "alice", "secret");
    CHECK(alice.subscribe("sensors/#", 1) == wire::bytes{0x01});
    CHECK(alice.subscribe("sensors/+/temp", 1, 2) == wire::bytes{0x01});
    CHECK(alice.subscribe("#", 1, 3) == wire::bytes{0x87});
    CHECK(alice.subscribe("+/+", 1, 4) == wire::bytes{0x87});
    CHECK(alice.subscribe("$SYS/#", 0, 5) == wire::bytes{0x87});
    CHECK(alice.subscribe("clients/alice/cmd", 1, 6) == wire::bytes{0x01});  // pattern %c
    CHECK(alice.subscribe("clients/bob/cmd", 1, 7) == wire::bytes{0x87});
    raw_client old(broker);
    login(old, wire::v311, "alice-old", "alice", "secret");
    CHECK(old.subscribe("#", 1) == wire::bytes{0x80});
    raw_client bob(broker);
    login(bob, wire::v5, "bob", "bob", "hunter2");
    CHECK(bob.subscribe("$SYS/broker/uptime", 0) == wire::bytes{0x00});
    CHECK(bob.subscribe("sensors/#", 0, 2) == wire::bytes{0x87});
}

TEST_CASE("A subscription to # never delivers a denied topic whether retained or live") {
    temp_dir dir("edgemq-access");
    write_file(dir.path() / "acl", acl_text);
    broker_process broker(secured(make_password_file(dir.path()), dir.path() / "acl"));
    raw_client carol(broker);
    login(carol, wire::v5, "carol", "carol", "s3cret");
    // carol may write sensors/secret (readwrite #) but the deny rule stops everything there.
    raw_client alice(broker);
    login(alice, wire::v5, "alice", "alice", "secret");
    alice.send(wire::publish({wire::v5, "sensors/alice/temp", "21", 1, true, false, 1}));
    CHECK(wire::parse_ack(alice.expect(4), wire::v5).reason < 0x80);  // 0x10: no subscriber yet
    raw_client reader(broker);
    login(reader, wire::v5, "carol-2", "carol", "s3cret");
    CHECK(reader.subscribe("#", 1) == wire::bytes{0x01});
    CHECK(reader.expect_publish().topic == "sensors/alice/temp");  // retained, allowed
    carol.send(wire::publish({wire::v5, "sensors/secret/key", "x", 1, true, false, 2}));
    CHECK(wire::parse_ack(carol.expect(4), wire::v5).reason == 0x87);
    carol.send(wire::publish({wire::v5, "other/x", "y", 1, false, false, 3}));
    CHECK(wire::parse_ack(carol.expect(4), wire::v5).reason == 0);
    CHECK(reader.expect_publish().topic == "other/x");
    CHECK(reader.expect_silence(300ms));
    // A new subscriber to sensors/# as alice gets only what she may read.
    raw_client alice_sub(broker);
    login(alice_sub, wire::v311, "alice-sub", "alice", "secret");
    alice_sub.subscribe("sensors/#", 1);
    CHECK(alice_sub.expect_publish().topic == "sensors/alice/temp");
    CHECK(alice_sub.expect_silence(300ms));
}

TEST_CASE("A Will the user may not publish is refused at CONNECT and an allowed one is delivered") {
    temp_dir dir("edgemq-access");
    write_file(dir.path() / "acl", acl_text);
    broker_process broker(secured(make_password_file(dir.path()), dir.path() / "acl"));
    for (std::uint8_t v : {wire::v5, wire::v311}) {
        raw_client c(broker);
        wire::connect_spec spec;
        spec.version = v;
        spec.client_id = "willer";
        spec.username = "bob";
        spec.password = "hunter2";
        spec.will = wire::will_spec{"sensors/alice/status", "gone", 1, false, {}};
        CHECK(c.connect(spec).reason == (v == wire::v5 ? 0x87 : 0x05));
    }
    raw_client watcher(broker);
    login(watcher, wire::v5, "watch", "carol", "s3cret");
    watcher.subscribe("sensors/#", 1);
    {
        raw_client c(broker);
        wire::connect_spec spec;
        spec.client_id = "willer";
        spec.username = "bob";
        spec.password = "hunter2";
        spec.will = wire::will_spec{"sensors/bob/status", "gone", 1, false, {}};
        REQUIRE(c.connect(spec).reason == 0);
        c.abort();
    }
    CHECK(watcher.expect_publish().topic == "sensors/bob/status");
}

TEST_CASE("SIGHUP reloads passwords and ACLs without dropping connections and removes subscriptions no longer allowed") {
    temp_dir dir("edgemq-access");
    const fs::path passwd = make_password_file(dir.path());
    write_file(dir.path() / "acl", acl_text);
    broker_process broker(secured(passwd, dir.path() / "acl"));
    raw_client alice(broker);
    login(alice, wire::v5, "alice", "alice", "secret");
    CHECK(alice.subscribe("sensors/#", 1) == wire::bytes{0x01});
    raw_client carol(broker);
    login(carol, wire::v5, "carol", "carol", "s3cret");
    carol.send(wire::publish({wire::v5, "sensors/x", "before", 0}));
    CHECK(alice.expect_publish().payload == "before");

    // alice loses sensors/#; dave is added; bob's password changes.
    std::string stricter = acl_text;
    stricter.replace(stricter.find("topic read sensors/#"), std::strlen("topic read sensors/#"), "topic read other/#");
    write_file(dir.path() / "acl", stricter);
    REQUIRE(run_ok({edgemq_binary(), "passwd", "-b", passwd.string(), "dave", "pw"}).exit_code == 0);
    REQUIRE(run_ok({edgemq_binary(), "passwd", "-b", passwd.string(), "bob", "changed"}).exit_code == 0);
    broker.send_signal(SIGHUP);
    REQUIRE(wait_until([&] { return broker.log_contains("removed: the ACL no longer allows it"); }, scaled(5s)));
    carol.send(wire::publish({wire::v5, "sensors/x", "after", 0}));
    CHECK(alice.expect_silence(500ms));
    CHECK(connack_code(broker, wire::v5, "dave", "pw") == 0);
    CHECK(connack_code(broker, wire::v5, "bob", "hunter2") == 0x86);
    // Nobody was disconnected by the reload.
    alice.send(wire::pingreq());
    CHECK(alice.expect(13).type() == 13);

    // A broken file keeps the previous rules (and says which line).
    write_file(dir.path() / "acl", "user alice\ntopic sometimes x\n");
    broker.send_signal(SIGHUP);
    REQUIRE(wait_until([&] { return broker.log_contains("keeping the previous password and ACL rules"); }, scaled(5s)));
    CHECK(broker.log_contains(":2:"));
    CHECK(connack_code(broker, wire::v5, "dave", "pw") == 0);
}

TEST_CASE("A broken password or ACL file stops the start with file and line") {
    temp_dir dir("edgemq-access");
    write_file(dir.path() / "acl", "user alice\ntopic maybe sensors/#\n");
    write_file(dir.path() / "passwd", "alice:$7$101$notbase64!$x\n");
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"--acl-file", (dir.path() / "acl").string()},
             {"--password-file", (dir.path() / "passwd").string()},
             {"--password-file", (dir.path() / "missing").string()}}) {
        std::vector<std::string> argv = {edgemq_binary(), "-p", "0", "--bind", "127.0.0.1", "--durability", "none"};
        argv.insert(argv.end(), args.begin(), args.end());
        const auto r = run_process(argv, 10s);
        CHECK(r.exit_code == 1);
        CHECK(r.output.find(args[1]) != std::string::npos);
    }
}

TEST_CASE("Publish rate limit disconnects with 0x96 and CONNECT timeout closes a silent socket") {
    broker_config cfg;
    cfg.config_text = R"({"max_publish_rate": 20, "connect_timeout": 0.5})";
    broker_process broker(cfg);
    raw_client fast(broker);
    fast.connect(wire::v5, "fast");
    bool disconnected = false;
    for (int i = 0; i < 100 && !disconnected; ++i) {
        if (!fast.try_send(wire::publish({wire::v5, "t", "x", 0}))) break;
    }
    auto r = fast.read(3s);
    REQUIRE(r.what == raw_client::status::packet);
    CHECK(r.pkt.type() == 14);
    CHECK(wire::parse_disconnect(r.pkt).reason == 0x96);
    CHECK(fast.expect_closed());

    raw_client silent(broker);
    const auto start = std::chrono::steady_clock::now();
    CHECK(silent.expect_closed(3s));
    CHECK(seconds_since(start) < 2.5);
}

TEST_CASE("Per-listener limits: max_connections and max_packet_size apply to their own listener only") {
    broker_config cfg;
    cfg.listeners_from_config = true;
    cfg.config_text = R"({"listeners": [
        {"type": "mqtt", "bind": "127.0.0.1", "port": 0, "max_connections": 2, "max_packet_size": 100},
        {"type": "mqtt", "bind": "127.0.0.1", "port": 0}]})";
    broker_process broker(cfg);
    const std::uint16_t limited = broker.port_of("mqtt", 0);
    const std::uint16_t open = broker.port_of("mqtt", 1);
    raw_client a(broker.host(), limited), b(broker.host(), limited);
    a.connect(wire::v5, "a");
    b.connect(wire::v5, "b");
    raw_client third(broker.host(), limited);
    CHECK(third.expect_closed());  // over max_connections: closed at once
    // The limit advertised and enforced: a 1000-byte PUBLISH is too large here...
    a.send(wire::publish({wire::v5, "t", std::string(1000, 'x'), 0}));
    auto r = a.read();
    REQUIRE(r.what == raw_client::status::packet);
    CHECK(wire::parse_disconnect(r.pkt).reason == 0x95);
    // ...and fine on the other listener, which has more room too.
    raw_client c(broker.host(), open), d(broker.host(), open), e(broker.host(), open);
    c.connect(wire::v5, "c");
    d.connect(wire::v5, "d");
    e.connect(wire::v5, "e");
    c.send(wire::publish({wire::v5, "t", std::string(1000, 'x'), 0}));
    c.send(wire::pingreq());
    CHECK(c.expect(13).type() == 13);
    // A closed connection frees its place.
    b.close();
    REQUIRE(wait_until([&] {
        raw_client again(broker.host(), limited);
        wire::connect_spec spec;
        spec.client_id = "again";
        auto res = again.read(50ms);
        if (res.what == raw_client::status::closed) return false;
        return again.connect(spec).reason == 0;
    }, scaled(5s)));
}
