// The edgemq binary as an operator meets it: command line, configuration errors,
// signals, rebinding its port after a crash, and the log lines it prints. The real
// binary (tests/support/broker_process.hpp, run_process.hpp), loopback only.
//
// Command-line and log-format tests are edgemq's own and do not run against
// Mosquitto; the signal and rebind tests do (EDGEMQ_TEST_BROKER=mosquitto).
#include "helpers.hpp"
#include "support/run_process.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>

using namespace edgemq::test;

TEST_SUITE_BEGIN("integration");

namespace {

#ifndef EDGEMQ_PROJECT_VERSION
#define EDGEMQ_PROJECT_VERSION ""
#endif

bool edgemq_only() {
    if (!testing_mosquitto()) return false;
    MESSAGE("edgemq's own command line and log: not run against Mosquitto");
    return true;
}

process_result run_edgemq(std::vector<std::string> args, std::chrono::milliseconds timeout = 5000ms) {
    args.insert(args.begin(), edgemq_binary());
    return run_process(args, timeout, output_mode::separate);
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

std::size_t count_of(const std::string& haystack, const std::string& needle) {
    std::size_t n = 0;
    for (auto pos = haystack.find(needle); pos != std::string::npos; pos = haystack.find(needle, pos + 1)) ++n;
    return n;
}

// A file in a fresh temporary directory, removed with it.
class temp_file {
public:
    temp_file(const std::string& name, const std::string& content) {
        std::string tmpl = (std::filesystem::temp_directory_path() / "edgemq-bin-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        dir_ = tmpl;
        path_ = dir_ / name;
        std::ofstream(path_) << content;
    }
    ~temp_file() {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    std::string path() const { return path_.string(); }

private:
    std::filesystem::path dir_, path_;
};

// A configuration error: exit status 1, nothing on stdout, and exactly one line on
// stderr that names the file and contains every one of `expected` (key, why).
void check_config_error(const std::string& content, const std::vector<std::string>& expected) {
    temp_file file("edgemq.json", content);
    INFO("config file:\n" << content);
    auto r = run_edgemq({"-c", file.path(), "-p", "0", "--bind", "127.0.0.1"});
    INFO("stdout: " << r.output);
    INFO("stderr: " << r.error_output);
    REQUIRE_MESSAGE(!r.timed_out, "edgemq started with a bad configuration file (still running after 5 s)");
    CHECK(r.exit_code == 1);
    CHECK(r.output.empty());
    CHECK(count_of(r.error_output, "\n") == 1);
    CHECK(r.error_output.ends_with("\n"));
    CHECK(r.error_output.find(file.path()) != std::string::npos);
    for (const auto& e : expected) CHECK_MESSAGE(r.error_output.find(e) != std::string::npos, "missing: " << e);
}

// Sockets in TIME_WAIT whose local end is 127.0.0.1:port, from /proc/net/tcp.
int time_wait_count(std::uint16_t port) {
    std::ifstream in("/proc/net/tcp");
    char local[32];
    std::snprintf(local, sizeof local, "0100007F:%04X", port);
    int n = 0;
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string slot, local_address, remote_address, state;
        fields >> slot >> local_address >> remote_address >> state;
        if (local_address == local && state == "06") ++n;
    }
    return n;
}

// Whether a listening socket bound WITHOUT SO_REUSEADDR could take 127.0.0.1:port
// now; false with the errno (EADDRINUSE while TIME_WAIT sockets hold the port).
bool plain_bind_possible(std::uint16_t port, int& error) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    error = ok ? 0 : errno;
    ::close(fd);
    return ok;
}

std::string iso_line(const std::string& rest) {
    return R"((^|\n)\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z )" + rest + R"((\n|$))";
}

}  // namespace

// ---- command line ----------------------------------------------------------------

TEST_CASE("edgemq --help exits 0 and lists every option") {
    if (edgemq_only()) return;
    for (const char* flag : {"--help", "-h"}) {
        INFO(flag);
        auto r = run_edgemq({flag});
        CHECK(r.exit_code == 0);
        CHECK(r.error_output.empty());
        for (const char* option : {"-c, --config", "-p, --port", "--bind", "--data-dir", "--workers", "--log-level",
                                   "-h, --help", "-V, --version"})
            CHECK_MESSAGE(r.output.find(option) != std::string::npos, "--help does not list " << option);
        CHECK(r.output.starts_with("Usage: edgemq"));
    }
}

TEST_CASE("edgemq --version exits 0 and prints 'edgemq <version>' with the project's version") {
    if (edgemq_only()) return;
    for (const char* flag : {"--version", "-V"}) {
        INFO(flag);
        auto r = run_edgemq({flag});
        CHECK(r.exit_code == 0);
        CHECK(r.error_output.empty());
        CHECK(std::regex_match(r.output, std::regex(R"(edgemq \d+\.\d+\.\d+\n)")));
        // The binary's version string and CMake's project(VERSION) must not drift apart.
        if (*EDGEMQ_PROJECT_VERSION) CHECK(r.output == std::string("edgemq ") + EDGEMQ_PROJECT_VERSION + "\n");
    }
}

TEST_CASE("edgemq with an unknown option exits 2 and names the option") {
    if (edgemq_only()) return;
    struct usage_case {
        std::vector<std::string> args;
        std::string named;
    };
    const std::vector<usage_case> cases = {
        {{"--frobnicate"}, "'--frobnicate'"},
        {{"-x"}, "'-x'"},
        {{"-p", "0", "--bind", "127.0.0.1", "--no-such-thing=1"}, "'--no-such-thing=1'"},
        {{"--port"}, "--port needs a value"},             // missing value
        {{"-p", "70000"}, "-p: '70000' is not a number"},  // out of range
        {{"--workers", "two"}, "--workers: 'two'"},
        {{"--log-level", "loud", "-p", "0"}, "--log-level: 'loud'"},
    };
    for (const auto& c : cases) {
        std::string cmd;
        for (auto& a : c.args) cmd += " " + a;
        INFO("edgemq" << cmd);
        auto r = run_edgemq(c.args);
        INFO("stderr: " << r.error_output);
        REQUIRE_MESSAGE(!r.timed_out, "edgemq started despite the bad command line");
        CHECK(r.exit_code == 2);
        CHECK(r.output.empty());
        CHECK(r.error_output.find(c.named) != std::string::npos);
        CHECK(r.error_output.find("--help") != std::string::npos);  // where to look next
    }
}

// ---- configuration file errors: exit 1, one line naming file, key and why ----------

TEST_CASE("edgemq config error: invalid JSON names the line and column") {
    if (edgemq_only()) return;
    check_config_error("{\n  \"workers\": 1,\n  \"log_level\": \n}\n", {"not valid JSON", "line 4, column 1"});
    check_config_error("{ \"workers\": 1 ", {"not valid JSON", "line 1"});
    check_config_error("[1, 2]", {"must hold a JSON object"});
}

TEST_CASE("edgemq config error: an unknown key is named") {
    if (edgemq_only()) return;
    check_config_error(R"({"workers": 1, "wrokers": 2})", {"key 'wrokers'", "unknown key"});
    check_config_error(R"({"listeners": [{"type": "mqtt", "port": 0, "tls": true}]})",
                       {"key 'listeners[0].tls'", "unknown key"});
}

TEST_CASE("edgemq config error: a value of the wrong type names key and expected type") {
    if (edgemq_only()) return;
    check_config_error(R"({"workers": "two"})", {"key 'workers'", "whole number"});
    check_config_error(R"({"retain_available": 1})", {"key 'retain_available'", "true or false"});
    check_config_error(R"({"data_dir": 7})", {"key 'data_dir'", "must be a string"});
    check_config_error(R"({"listeners": {"type": "mqtt"}})", {"key 'listeners'", "array"});
    check_config_error(R"({"max_packet_size": 1.5})", {"key 'max_packet_size'", "whole number"});
}

TEST_CASE("edgemq config error: a value out of range names key and range") {
    if (edgemq_only()) return;
    check_config_error(R"({"receive_maximum": 0})", {"key 'receive_maximum'", "0 is out of range 1..65535"});
    check_config_error(R"({"receive_maximum": 65536})", {"key 'receive_maximum'", "out of range"});
    check_config_error(R"({"commit_delay_ms": 1001})", {"key 'commit_delay_ms'", "1001 is out of range 0..1000"});
    check_config_error(R"({"max_packet_size": -1})", {"key 'max_packet_size'", "whole number"});
    check_config_error(R"({"maximum_qos": 3})", {"key 'maximum_qos'", "out of range 0..2"});
    check_config_error(R"({"connect_timeout": 0})", {"key 'connect_timeout'", "more than 0"});
    check_config_error(R"({"listeners": [{"type": "mqtt", "port": 70000}]})", {"key 'listeners[0].port'", "out of range"});
    check_config_error(R"({"queue_full_policy": "drop_random"})", {"key 'queue_full_policy'", "drop_oldest"});
    check_config_error(R"({"durability": "fast"})", {"key 'durability'", R"(must be "none", "process" or "power")"});
    check_config_error(R"({"log_level": "loud"})", {"key 'log_level'", "one of error, warn, info"});
}

TEST_CASE("edgemq config error: an unsupported listener type names it") {
    if (edgemq_only()) return;
    check_config_error(R"({"listeners": [{"type": "websocket", "port": 0}]})",
                       {"key 'listeners[0].type'", "'websocket' is not one of mqtt, mqtts, ws, wss"});
}

TEST_CASE("edgemq config error: TLS listener keys are checked and named") {
    if (edgemq_only()) return;
    check_config_error(R"({"listeners": [{"type": "mqtts", "port": 0, "key_file": "k.pem"}]})",
                       {"key 'listeners[0].cert_file'", "needs a certificate"});
    check_config_error(R"({"listeners": [{"type": "mqtt", "port": 0}, {"type": "wss", "port": 0, "cert_file": "c",
                           "key_file": "k", "require_certificate": true}]})",
                       {"key 'listeners[1].ca_file'", "required"});
    check_config_error(R"({"listeners": [{"type": "mqtt", "port": 0, "cert_file": "c.pem"}]})",
                       {"key 'listeners[0].cert_file'", "only mqtts and wss listeners use TLS"});
    check_config_error(R"({"listeners": [{"type": "ws", "port": 0, "path": "mqtt"}]})",
                       {"key 'listeners[0].path'", "must start with '/'"});
    check_config_error(R"({"listeners": [{"type": "mqtts", "port": 0, "cert_file": "c", "key_file": "k",
                           "ca_file": "ca", "use_identity_as_username": "email"}]})",
                       {"key 'listeners[0].use_identity_as_username'"});
    check_config_error(R"({"max_publish_rate": -1})", {"key 'max_publish_rate'"});
    check_config_error(R"({"listeners": [{"type": "mqtt", "port": 0, "max_subscriptions": "ten"}]})",
                       {"key 'listeners[0].max_subscriptions'", "whole number"});
    check_config_error(R"({"allow_anonymous": "yes"})", {"key 'allow_anonymous'", "true or false"});
}

TEST_CASE("edgemq config error: a missing configuration file is named") {
    if (edgemq_only()) return;
    std::string missing = (std::filesystem::temp_directory_path() / "edgemq-no-such-dir-7f3a/edgemq.json").string();
    auto r = run_edgemq({"-c", missing, "-p", "0"});
    INFO("stderr: " << r.error_output);
    REQUIRE(!r.timed_out);
    CHECK(r.exit_code == 1);
    CHECK(r.output.empty());
    CHECK(count_of(r.error_output, "\n") == 1);
    CHECK(r.error_output.find(missing) != std::string::npos);
    CHECK(r.error_output.find("No such file or directory") != std::string::npos);
}

TEST_CASE("edgemq config: // and /* */ comments are allowed and the file's settings apply") {
    if (edgemq_only()) return;
    broker_config cfg;
    cfg.config_text = R"(// edgemq configuration with comments
{
  /* a block comment
     over two lines */
  "workers": 1,            // one worker
  "receive_maximum": 7     /* advertised in CONNACK */
}
)";
    broker_process broker(cfg);
    raw_client c(broker);
    auto ack = c.connect(wire::v5, "comments");
    const auto* rm = wire::find(ack.properties, wire::prop::receive_maximum);
    REQUIRE_MESSAGE(rm, "CONNACK has no Receive Maximum: the file was not applied");
    CHECK(rm->value == 7);
    CHECK(broker.log_contains("edgemq started with 1 worker"));
}

// ---- signals -------------------------------------------------------------------------

namespace {

// Graceful shutdown on `signo`: exit status 0, DISCONNECT 0x8B to v5 clients before the
// close [MQTT-3.14.0-1: the server may send DISCONNECT], a plain close for 3.1.1.
void check_graceful_shutdown(int signo, const char* name) {
    broker_process broker;
    raw_client v5a(broker), v5b(broker), v311(broker);
    v5a.connect(wire::v5, std::string("sig-a-") + name);
    v5b.connect(wire::v5, std::string("sig-b-") + name);
    v5b.subscribe("sig/#", wire::sub_options(1));
    v311.connect(wire::v311, std::string("sig-c-") + name);

    const auto start = std::chrono::steady_clock::now();
    broker.send_signal(signo);
    for (raw_client* c : {&v5a, &v5b}) {
        auto r = c->read(3000ms);
        REQUIRE_MESSAGE(r.what == raw_client::status::packet, "no DISCONNECT before the close");
        if (broker.kind() == broker_kind::mosquitto) {
            CHECK(r.pkt.type() == wire::DISCONNECT);
        } else {
            REQUIRE(r.pkt.type() == wire::DISCONNECT);
            CHECK(wire::parse_disconnect(r.pkt).reason == 0x8B);  // Server shutting down
        }
        CHECK(c->expect_closed(3000ms));
    }
    wire::packet unexpected;
    CHECK_MESSAGE(v311.expect_closed(3000ms, &unexpected), "3.1.1 client got " << unexpected.describe());

    // The clients closed their ends: the broker has no reason to linger.
    auto status = broker.wait_exit(5000ms);
    REQUIRE_MESSAGE(status, "the broker did not exit within 5 s of " << name << "; log:\n" << broker.log());
    CHECK(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 0);
    CHECK(seconds_since(start) < 5.0 * time_scale());
    if (broker.kind() == broker_kind::edgemq) {
        const std::string log = broker.log();
        INFO(log);
        CHECK(log.find(std::string("received ") + name + ", shutting down") != std::string::npos);
        CHECK(log.find("client disconnected: sig-a-" + std::string(name) + " (broker shutting down)") !=
              std::string::npos);
        CHECK(log.find("edgemq stopped") != std::string::npos);
    }
}

}  // namespace

TEST_CASE("edgemq SIGTERM: exit status 0 and v5 clients get DISCONNECT 0x8B before the close") {
    check_graceful_shutdown(SIGTERM, "SIGTERM");
}

TEST_CASE("edgemq SIGINT: exit status 0 and v5 clients get DISCONNECT 0x8B before the close") {
    check_graceful_shutdown(SIGINT, "SIGINT");
}

TEST_CASE("edgemq SIGTERM with no clients exits 0 at once") {
    broker_process broker;
    const auto start = std::chrono::steady_clock::now();
    int status = broker.stop(5000ms, SIGTERM);
    INFO(broker.log());
    CHECK(status != -1);  // -1: had to be killed
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(seconds_since(start) < 2.0 * time_scale());
}

TEST_CASE("edgemq SIGTERM while still starting and a second SIGTERM during the shutdown: exit status 0") {
    // Signals are blocked from the first lines of main() and taken by the main thread
    // once the broker runs (broker/app/process_signals.hpp): a SIGTERM right after the
    // "starting" line waits for that instead of killing the process, and the second one
    // changes nothing. The shell sends both by PID as soon as the line appears.
    if (edgemq_only()) return;
    temp_file marker("unused", "");
    const std::string dir = std::filesystem::path(marker.path()).parent_path().string();
    const std::string script = R"(
"$0" -p 0 --bind 127.0.0.1 --data-dir "$1" > "$1/log" 2>&1 &
pid=$!
n=0
while ! grep -q ' starting' "$1/log" 2>/dev/null && [ $n -lt 5000 ]; do n=$((n+1)); sleep 0.001; done
kill -TERM $pid
kill -TERM $pid
wait $pid
echo "exit status $?"
cat "$1/log"
)";
    auto r = run_process({"/bin/sh", "-c", script, edgemq_binary(), dir}, scaled(20000ms));
    INFO(r.output);
    REQUIRE(!r.timed_out);
    CHECK(r.output.find("exit status 0") != std::string::npos);
    CHECK(r.output.find("received SIGTERM, shutting down") != std::string::npos);
    CHECK(r.output.find("edgemq stopped") != std::string::npos);
}

// ---- port rebind after a crash --------------------------------------------------------

TEST_CASE("edgemq restarted after kill -9 listens on the same port at once despite TIME_WAIT") {
    // Debian's Mosquitto fails this: "Address already in use" until TIME_WAIT ends
    // (60 s) when it rebinds without SO_REUSEADDR.
    std::uint16_t port = 0;
    {
        broker_process first;
        port = first.port();
        raw_client sub(first), pub(first);
        sub.connect(wire::v5, "rebind-sub");
        sub.subscribe("rebind/#", wire::sub_options(1));
        pub.connect(wire::v311, "rebind-pub");
        raw_publish(pub, "rebind/a", "before the crash", 1);
        CHECK(sub.expect_publish().payload == "before the crash");

        // Sockets whose server side closes first end in TIME_WAIT on the server side:
        // a protocol error (a second CONNECT [MQTT-3.1.0-2]) and a session takeover
        // [MQTT-3.1.4-3]. Each client waits for the broker's FIN, then closes too.
        raw_client bad(first);
        bad.connect(wire::v5, "rebind-bad");
        bad.send(wire::connect({wire::v5, "rebind-bad"}));
        for (int i = 0; i < 2 && bad.read(3000ms).what == raw_client::status::packet; ++i) {
        }
        CHECK_FALSE(bad.is_open());
        raw_client old_conn(first), new_conn(first);
        old_conn.connect(wire::v5, "rebind-take");
        new_conn.connect(wire::v5, "rebind-take");
        for (int i = 0; i < 2 && old_conn.read(3000ms).what == raw_client::status::packet; ++i) {
        }
        CHECK_FALSE(old_conn.is_open());
        CHECK(wait_until([&] { return time_wait_count(port) >= 2; }, scaled(3000ms)));
        INFO("server-side TIME_WAIT sockets on port " << port << ": " << time_wait_count(port));

        first.kill9();  // no chance to close anything: connected sockets die with it
        CHECK(time_wait_count(port) >= 2);
    }
    // The premise: a listener bound the naive way (no SO_REUSEADDR) fails now with
    // EADDRINUSE, and keeps failing until TIME_WAIT ends (60 s on Linux).
    int bind_error = 0;
    CHECK_FALSE(plain_bind_possible(port, bind_error));
    CHECK(bind_error == EADDRINUSE);

    broker_config cfg;
    cfg.port = port;
    const auto start = std::chrono::steady_clock::now();
    std::optional<broker_process> second;
    try {
        second.emplace(cfg);
    } catch (const std::exception& e) {
        FAIL("a broker restarted on port " << port << " did not listen: " << e.what());
    }
    CHECK(second->port() == port);
    CHECK(seconds_since(start) < 5.0 * time_scale());

    // And it serves.
    raw_client sub(*second), pub(*second);
    sub.connect(wire::v5, "rebind-sub2");
    sub.subscribe("rebind/#", wire::sub_options(1));
    pub.connect(wire::v311, "rebind-pub2");
    raw_publish(pub, "rebind/b", "after the restart", 1);
    CHECK(sub.expect_publish().payload == "after the restart");
}

// ---- log lines -----------------------------------------------------------------------

TEST_CASE("edgemq log: ISO UTC timestamps and 'listening mqtt' and one line per connect and per disconnect with the reason") {
    if (edgemq_only()) return;
    broker_process broker;
    const std::string port = std::to_string(broker.port());
    CHECK(std::regex_search(broker.log(), std::regex(iso_line(R"(info listening mqtt 127\.0\.0\.1:)" + port))));

    struct ending {
        std::string id;
        std::string reason;  // as logged in "client disconnected: ID (REASON)"
    };
    const std::vector<ending> endings = {
        {"log-normal", "client disconnected"},
        {"log-will", "Disconnect with Will Message"},
        {"log-eof", "connection closed by client"},
        {"log-protocol", "[MQTT-3.1.0-2] second CONNECT"},
        {"log-takeover", "session taken over"},
        {"log-keepalive", "[MQTT-3.1.2-24] Keep Alive timeout"},
    };
    std::map<std::string, std::uint16_t> peer_port;
    raw_client again(broker);  // takes log-takeover's session over; open till the end
    {
        raw_client normal(broker), will(broker), eof(broker), protocol(broker), takeover(broker), keepalive(broker);
        normal.connect(wire::v5, "log-normal");
        peer_port["log-normal"] = normal.local_port();
        will.connect(wire::v5, "log-will");
        peer_port["log-will"] = will.local_port();
        eof.connect(wire::v311, "log-eof");
        peer_port["log-eof"] = eof.local_port();
        protocol.connect(wire::v311, "log-protocol");
        peer_port["log-protocol"] = protocol.local_port();
        takeover.connect(wire::v5, "log-takeover");
        peer_port["log-takeover"] = takeover.local_port();
        wire::connect_spec ka{wire::v5, "log-keepalive"};
        ka.keep_alive = 1;
        keepalive.connect(ka);
        peer_port["log-keepalive"] = keepalive.local_port();

        normal.send(wire::disconnect(wire::v5, 0x00));
        CHECK(normal.expect_closed());
        will.send(wire::disconnect(wire::v5, 0x04));
        CHECK(will.expect_closed());
        eof.close();
        protocol.send(wire::connect({wire::v311, "log-protocol"}));
        CHECK(protocol.expect_closed());
        again.connect(wire::v5, "log-takeover");
        CHECK(takeover.expect(wire::DISCONNECT).body.at(0) == 0x8E);
        // Keep Alive 1 s: closed after 1.5 s of silence.
        CHECK(keepalive.expect(wire::DISCONNECT, 4000ms).body.at(0) == 0x8D);

        for (const auto& e : endings) {
            const std::string line = "client disconnected: " + e.id + " (" + e.reason + ")";
            CHECK_MESSAGE(wait_until([&] { return broker.log_contains(line); }, scaled(3000ms)), "no log line: " << line);
        }
    }

    const std::string log = broker.log();
    INFO(log);
    for (const auto& e : endings) {
        INFO(e.id);
        // "client connected: ID from PEER (MQTT ..., ...)", once, with the client's address.
        const std::string connected = "client connected: " + e.id + " from 127.0.0.1:" + std::to_string(peer_port[e.id]) + " (MQTT ";
        CHECK(count_of(log, connected) == 1);
        CHECK(count_of(log, "client disconnected: " + e.id + " (") == 1);
        CHECK(std::regex_search(log, std::regex(iso_line("info client disconnected: " + e.id + R"( \(.+\))"))));
    }
    // The takeover's new connection is the second "client connected" of that id.
    CHECK(count_of(log, "client connected: log-takeover from ") == 2);
    // Every line: "<ISO 8601 UTC with milliseconds> <level> <text>".
    static const std::regex line_format(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z (error|warn|info|debug|trace) \S.*)");
    for (const auto& line : lines_of(log)) CHECK_MESSAGE(std::regex_match(line, line_format), "log line: " << line);
}

TEST_SUITE_END();
