// TLS (mqtts, wss) and MQTT over WebSocket (ws, wss) with real clients: mosquitto_pub
// and mosquitto_sub over TLS with and without client certificates, Paho C++ over TLS and
// over WebSocket, refused handshakes (wrong CA, expired certificate, plain MQTT to the
// TLS port), certificate identities as user names, plain HTTP on the WebSocket port,
// and certificate reload on SIGHUP. Certificates are made by the test with openssl.
#include <fstream>

#include "helpers.hpp"
#include "support/run_process.hpp"
#include "support/temp_dir.hpp"
#include "support/test_certs.hpp"
#include "support/wait.hpp"

using namespace edgemq::test;
namespace fs = std::filesystem;

TEST_SUITE_BEGIN("integration");

namespace {

// A broker with every kind of listener on loopback; client certificates optional
// unless `require` (then required on both TLS listeners).
broker_config all_listeners(const test_certificates& certs, bool require = false, std::vector<std::string> more = {}) {
    broker_config cfg;
    cfg.extra_args = {"--listen", "mqtts://127.0.0.1:0", "--listen", "ws://127.0.0.1:0/mqtt",
                      "--listen", "wss://127.0.0.1:0/mqtt", "--cert", certs.server_cert.string(),
                      "--key", certs.server_key.string(), "--cafile", certs.ca_cert.string()};
    if (require) cfg.extra_args.push_back("--require-cert");
    cfg.extra_args.insert(cfg.extra_args.end(), more.begin(), more.end());
    return cfg;
}

std::vector<std::string> tls_cli(const std::string& tool, const broker_process& b, const test_certificates& certs,
                                 const std::string& version, std::vector<std::string> args) {
    std::vector<std::string> argv = {tool, "-h", "localhost", "-p", std::to_string(b.port_of("mqtts")), "-V", version,
                                     "--cafile", certs.ca_cert.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
}

std::string describe(const process_result& r) {
    return "exit " + std::to_string(r.exit_code) + (r.timed_out ? " (timed out)" : "") + ": " + r.output;
}

mqtt::ssl_options paho_tls(const test_certificates& certs, bool with_client_cert) {
    mqtt::ssl_options ssl;
    ssl.set_trust_store(certs.ca_cert.string());
    ssl.set_enable_server_cert_auth(true);
    if (with_client_cert) {
        ssl.set_key_store(certs.client_cert.string());
        ssl.set_private_key(certs.client_key.string());
    }
    return ssl;
}

mqtt::connect_options paho_options(int version, std::optional<mqtt::ssl_options> ssl = std::nullopt) {
    mqtt::connect_options_builder b;
    b.mqtt_version(version).keep_alive_interval(std::chrono::seconds(30)).connect_timeout(scaled(std::chrono::seconds(5)));
    if (version == v5) b.clean_start(true);
    else b.clean_session(true);
    if (ssl) b.ssl(std::move(*ssl));
    return b.finalize();
}

}  // namespace

TEST_CASE("mosquitto_pub and mosquitto_sub over TLS with and without client certificates") {
    temp_dir dir("edgemq-tls");
    const auto certs = make_test_certificates(dir.path());
    broker_process broker(all_listeners(certs));
    for (const std::string version : {"mqttv311", "mqttv5"}) {
        INFO(version);
        const std::string topic = "tls/" + version;
        auto sub = tls_cli("mosquitto_sub", broker, certs, version, {"-t", topic, "-C", "2", "-W", "10", "-v"});
        // The subscriber connects with a client certificate, the publishers with and without.
        sub.insert(sub.end(), {"--cert", certs.client_cert.string(), "--key", certs.client_key.string()});
        process_result sub_result;
        std::thread subscriber([&] { sub_result = run_process(sub, 15s); });
        REQUIRE(wait_until([&] { return broker.log_contains("client connected: "); }, scaled(5s)));
        // Retry while the subscriber is still subscribing: QoS 1 publishes, checked by count.
        std::this_thread::sleep_for(300ms);
        auto with_cert = tls_cli("mosquitto_pub", broker, certs, version,
                                 {"-t", topic, "-m", "with-cert", "-q", "1", "--cert", certs.client_cert.string(),
                                  "--key", certs.client_key.string()});
        auto without = tls_cli("mosquitto_pub", broker, certs, version, {"-t", topic, "-m", "no-cert", "-q", "1"});
        const auto r1 = run_process(with_cert, 10s);
        CHECK_MESSAGE(r1.exit_code == 0, describe(r1));
        const auto r2 = run_process(without, 10s);
        CHECK_MESSAGE(r2.exit_code == 0, describe(r2));
        subscriber.join();
        CHECK_MESSAGE(sub_result.exit_code == 0, describe(sub_result));
        CHECK(sub_result.output == topic + " with-cert\n" + topic + " no-cert\n");
    }
}

TEST_CASE("Refused TLS clients: no certificate where required or wrong CA or expired certificate or plain MQTT") {
    temp_dir dir("edgemq-tls");
    const auto certs = make_test_certificates(dir.path());
    broker_process broker(all_listeners(certs, /*require=*/true));
    auto pub = [&](std::vector<std::string> extra) {
        auto argv = tls_cli("mosquitto_pub", broker, certs, "mqttv5", {"-t", "t", "-m", "x"});
        argv.insert(argv.end(), extra.begin(), extra.end());
        return run_process(argv, 10s);
    };
    const auto good = pub({"--cert", certs.client_cert.string(), "--key", certs.client_key.string()});
    CHECK_MESSAGE(good.exit_code == 0, describe(good));
    CHECK(pub({}).exit_code != 0);
    CHECK(pub({"--cert", certs.expired_cert.string(), "--key", certs.expired_key.string()}).exit_code != 0);
    CHECK(pub({"--cert", certs.other_client_cert.string(), "--key", certs.other_client_key.string()}).exit_code != 0);
    CHECK(wait_until([&] { return broker.log_contains("TLS handshake with "); }, scaled(3s)));
    // The client refuses a server whose CA it does not trust, too.
    auto wrong_ca = std::vector<std::string>{"mosquitto_pub", "-h", "localhost", "-p",
                                             std::to_string(broker.port_of("mqtts")), "--cafile",
                                             certs.other_ca_cert.string(), "-t", "t", "-m", "x"};
    CHECK(run_process(wrong_ca, 10s).exit_code != 0);
    // Plain MQTT to the TLS port: the handshake fails and the socket closes, quickly.
    raw_client plain(broker.host(), broker.port_of("mqtts"));
    plain.send(wire::connect({wire::v5, "plain"}));
    const auto start = std::chrono::steady_clock::now();
    CHECK(plain.expect_closed(3s));
    CHECK(seconds_since(start) < 2.0);
    // The broker goes on serving.
    CHECK(pub({"--cert", certs.client_cert.string(), "--key", certs.client_key.string()}).exit_code == 0);
}

TEST_CASE("A TLS handshake that never finishes is closed at the connect timeout") {
    temp_dir dir("edgemq-tls");
    const auto certs = make_test_certificates(dir.path());
    auto cfg = all_listeners(certs);
    cfg.connect_timeout = 0.5;
    broker_process broker(cfg);
    raw_client idle(broker.host(), broker.port_of("mqtts"));
    const auto start = std::chrono::steady_clock::now();
    CHECK(idle.expect_closed(3s));
    CHECK(seconds_since(start) < 2.5);
    raw_client ws_idle(broker.host(), broker.port_of("ws"));
    CHECK(ws_idle.expect_closed(3s));
}

TEST_CASE("The certificate's CN as the user name feeds the ACL") {
    temp_dir dir("edgemq-tls");
    const auto certs = make_test_certificates(dir.path(), "device-7");
    std::ofstream(dir.path() / "acl") << "user device-7\ntopic readwrite devices/device-7/#\n";
    broker_config cfg;
    cfg.listeners_from_config = true;
    cfg.config_text = R"({"acl_file": ")" + (dir.path() / "acl").string() + R"(", "listeners": [
        {"type": "mqtt", "bind": "127.0.0.1", "port": 0},
        {"type": "mqtts", "bind": "127.0.0.1", "port": 0, "cert_file": ")" + certs.server_cert.string() +
                      R"(", "key_file": ")" + certs.server_key.string() + R"(", "ca_file": ")" +
                      certs.ca_cert.string() + R"(", "require_certificate": true, "use_identity_as_username": "cn"}]})";
    broker_process broker(cfg);
    auto pub = [&](const std::string& topic) {
        auto argv = tls_cli("mosquitto_pub", broker, certs, "mqttv5",
                            {"-t", topic, "-m", "x", "-q", "1", "--cert", certs.client_cert.string(), "--key",
                             certs.client_key.string(), "-d"});
        return run_process(argv, 10s);
    };
    const auto allowed = pub("devices/device-7/temp");
    CHECK_MESSAGE(allowed.exit_code == 0, describe(allowed));
    CHECK(allowed.output.find("PUBACK") != std::string::npos);
    const auto denied = pub("devices/device-8/temp");
    // mosquitto_pub -d prints the PUBACK reason; v5 says Not authorized (0x87 = 135).
    CHECK(denied.output.find("135") != std::string::npos);
}

TEST_CASE("Paho C++ over TLS and over WebSocket (ws and wss) exchanges messages with a plain TCP client") {
    temp_dir dir("edgemq-tls");
    const auto certs = make_test_certificates(dir.path());
    broker_process broker(all_listeners(certs));
    for (int version : versions) {
        CAPTURE(version_name(version));
        paho_client plain(broker, "plain-" + version_name(version), version);
        plain.connect();
        plain.subscribe("mixed/#", 1);
        paho_client tls("ssl://localhost:" + std::to_string(broker.port_of("mqtts")), "tls", version);
        tls.connect(paho_options(version, paho_tls(certs, true)));
        paho_client ws("ws://127.0.0.1:" + std::to_string(broker.port_of("ws")) + "/mqtt", "ws", version);
        ws.connect(paho_options(version));
        paho_client wss("wss://localhost:" + std::to_string(broker.port_of("wss")) + "/mqtt", "wss", version);
        wss.connect(paho_options(version, paho_tls(certs, false)));
        ws.subscribe("mixed/#", 2);
        tls.publish("mixed/tls", "from-tls", 1);
        wss.publish("mixed/wss", std::string(100'000, 'w'), 2);
        plain.publish("mixed/plain", "from-plain", 0);
        auto at_plain = plain.take(3, std::chrono::milliseconds(5000));
        auto at_ws = ws.take(3, std::chrono::milliseconds(5000));
        REQUIRE(at_plain.size() == 3);
        REQUIRE(at_ws.size() == 3);
        for (auto* got : {&at_plain, &at_ws}) {
            std::map<std::string, std::string> by_topic;
            for (auto& m : *got) by_topic[m->get_topic()] = payload(m);
            CHECK(by_topic["mixed/tls"] == "from-tls");
            CHECK(by_topic["mixed/wss"] == std::string(100'000, 'w'));
            CHECK(by_topic["mixed/plain"] == "from-plain");
        }
        ws.disconnect();
        wss.disconnect();
        tls.disconnect();
        plain.disconnect();
    }
}

TEST_CASE("A session taken over from another worker moves a TLS or WebSocket connection with it") {
    temp_dir dir("edgemq-tls");
    const auto certs = make_test_certificates(dir.path());
    auto cfg = all_listeners(certs);
    cfg.workers = 4;
    broker_process broker(cfg);
    // The same client id again and again: each connection lands on the next worker and
    // must move to the one that owns the session, TLS and WebSocket state included.
    for (int round = 0; round < 6; ++round) {
        CAPTURE(round);
        const bool use_ws = round % 2 == 0;
        const std::string uri = use_ws ? "wss://localhost:" + std::to_string(broker.port_of("wss")) + "/mqtt"
                                       : "ssl://localhost:" + std::to_string(broker.port_of("mqtts"));
        paho_client c(uri, "roamer", v5);
        c.connect(paho_options(v5, paho_tls(certs, false)));
        c.subscribe("roam/" + std::to_string(round), 1);
        c.publish("roam/" + std::to_string(round), "hello", 1);
        CHECK(payload(c.next()) == "hello");
        c.disconnect();
    }
}

TEST_CASE("The WebSocket port answers plain HTTP and refuses other subprotocols") {
    broker_config cfg;
    cfg.extra_args = {"--listen", "ws://127.0.0.1:0/mqtt"};
    broker_process broker(cfg);
    const std::string port = std::to_string(broker.port_of("ws"));
    auto http = [&](const std::string& request) {
        raw_client c(broker.host(), broker.port_of("ws"));
        c.send(std::span(reinterpret_cast<const std::uint8_t*>(request.data()), request.size()));
        std::string reply;
        // raw_client reads MQTT packets; read the HTTP answer as bytes with a plain read.
        reply = c.read_raw(3s);
        return reply;
    };
    CHECK(http("GET / HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 200"));
    CHECK(http("GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 404"));
    CHECK(http("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").starts_with("HTTP/1.1 405"));
    CHECK(http("garbage\r\n\r\n").starts_with("HTTP/1.1 400"));
    const std::string upgrade =
        "GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    const auto ok = http(upgrade + "Sec-WebSocket-Protocol: mqtt\r\n\r\n");
    CHECK(ok.starts_with("HTTP/1.1 101"));
    CHECK(ok.find("Sec-WebSocket-Protocol: mqtt") != std::string::npos);
    CHECK(ok.find("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != std::string::npos);  // RFC 6455 1.3 example
    CHECK(http(upgrade + "Sec-WebSocket-Protocol: chat\r\n\r\n").starts_with("HTTP/1.1 400"));
    // Old clients offer "mqttv3.1" and get it; a client offering none is accepted without one.
    const auto legacy = http(upgrade + "Sec-WebSocket-Protocol: chat, mqttv3.1\r\n\r\n");
    CHECK(legacy.starts_with("HTTP/1.1 101"));
    CHECK(legacy.find("Sec-WebSocket-Protocol: mqttv3.1") != std::string::npos);
    const auto none = http(upgrade + "\r\n");
    CHECK(none.starts_with("HTTP/1.1 101"));
    CHECK(none.find("Sec-WebSocket-Protocol") == std::string::npos);
    // An oversized request is refused, not buffered without end.
    CHECK(http("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n").starts_with("HTTP/1.1 431"));
}

TEST_CASE("SIGHUP reloads the server certificate without dropping TLS connections") {
    temp_dir dir("edgemq-tls");
    const auto certs = make_test_certificates(dir.path());
    // The broker reads copies, which the test replaces.
    fs::copy_file(certs.server_cert, dir.path() / "live.crt");
    fs::copy_file(certs.server_key, dir.path() / "live.key");
    broker_config cfg;
    cfg.extra_args = {"--listen", "mqtts://127.0.0.1:0", "--cert", (dir.path() / "live.crt").string(), "--key",
                      (dir.path() / "live.key").string()};
    broker_process broker(cfg);
    paho_client before("ssl://localhost:" + std::to_string(broker.port_of("mqtts")), "before", v5);
    before.connect(paho_options(v5, paho_tls(certs, false)));
    before.subscribe("reload", 1);

    // A certificate from another CA: new clients trusting only the first CA now fail,
    // clients trusting the other CA succeed; the connected client is unaffected.
    const auto other = make_test_certificates(dir.path() / "other");
    fs::copy_file(other.server_cert, dir.path() / "live.crt", fs::copy_options::overwrite_existing);
    fs::copy_file(other.server_key, dir.path() / "live.key", fs::copy_options::overwrite_existing);
    broker.send_signal(SIGHUP);
    REQUIRE(wait_until([&] { return broker.log_contains("received SIGHUP"); }, scaled(3s)));
    const std::string port = std::to_string(broker.port_of("mqtts"));
    REQUIRE(wait_until([&] {
        return run_process({"mosquitto_pub", "-h", "localhost", "-p", port, "--cafile", other.ca_cert.string(), "-t",
                            "reload", "-m", "new-cert", "-q", "1"}, 10s).exit_code == 0;
    }, scaled(5s)));
    CHECK(run_process({"mosquitto_pub", "-h", "localhost", "-p", port, "--cafile", certs.ca_cert.string(), "-t",
                       "reload", "-m", "old-ca", "-q", "1"}, 10s).exit_code != 0);
    auto got = before.next();
    CHECK(payload(got) == "new-cert");
    CHECK(before.lost() == 0);

    // Broken files: the previous certificate stays, and the log says why.
    std::ofstream(dir.path() / "live.key") << "not a key";
    broker.send_signal(SIGHUP);
    REQUIRE(wait_until([&] { return broker.log_contains("keeping the previous certificates"); }, scaled(3s)));
    CHECK(run_process({"mosquitto_pub", "-h", "localhost", "-p", port, "--cafile", other.ca_cert.string(), "-t",
                       "reload", "-m", "still", "-q", "1"}, 10s).exit_code == 0);
}

TEST_CASE("TLS listener configuration errors name the file and key") {
    temp_dir dir("edgemq-tls");
    const auto certs = make_test_certificates(dir.path());
    auto start = [&](std::vector<std::string> args) {
        std::vector<std::string> argv = {edgemq_binary(), "--durability", "none"};
        argv.insert(argv.end(), args.begin(), args.end());
        return run_process(argv, 10s);
    };
    const auto no_cert = start({"--listen", "mqtts://127.0.0.1:0"});
    CHECK(no_cert.exit_code == 2);
    CHECK(no_cert.output.find("--cert") != std::string::npos);
    const auto missing = start({"--listen", "mqtts://127.0.0.1:0", "--cert", (dir.path() / "nope.pem").string(), "--key",
                                certs.server_key.string()});
    CHECK(missing.exit_code == 1);
    CHECK(missing.output.find("nope.pem") != std::string::npos);
    const auto mismatched = start({"--listen", "mqtts://127.0.0.1:0", "--cert", certs.server_cert.string(), "--key",
                                   certs.client_key.string()});
    CHECK(mismatched.exit_code == 1);
    const auto bad_url = start({"--listen", "wss//127.0.0.1:0"});
    CHECK(bad_url.exit_code == 2);
    CHECK(bad_url.output.find("wss//127.0.0.1:0") != std::string::npos);
}
