#include "case_runner.hpp"

#include "support/raw_client.hpp"
#include "support/wait.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace edgemq::test::conformance {

namespace {

using namespace std::chrono_literals;

// How long one expectation may take. A broker answers a malformed packet at once;
// the slack is for a loaded 2-core machine running tests in parallel.
constexpr auto expect_timeout = 3000ms;

std::string trim(std::string s) {
    auto not_space = [](unsigned char c) { return !std::isspace(c); };
    s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
    s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
    return s;
}

std::vector<std::string> words(const std::string& s) {
    std::istringstream in(s);
    std::vector<std::string> out;
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

bool strict_mode() {
    const char* v = std::getenv("EDGEMQ_CONFORMANCE_STRICT");
    return v && *v && std::string_view(v) != "0";
}

std::uint8_t ack_type(const std::string& name) {
    if (name == "puback") return wire::PUBACK;
    if (name == "pubrec") return wire::PUBREC;
    if (name == "pubrel") return wire::PUBREL;
    if (name == "pubcomp") return wire::PUBCOMP;
    return 0;
}

expectation parse_expectation(const std::string& text) {
    expectation e;
    e.text = text;
    auto w = words(text);
    if (w.empty()) throw std::invalid_argument("empty expectation");
    const std::string& head = w[0];
    auto rest_hex = [&] {
        std::string joined;
        for (std::size_t i = 1; i < w.size(); ++i) joined += w[i] + " ";
        return wire::from_hex(joined);
    };
    if (head == "close") {
        e.what = expectation::kind::close;
    } else if (head == "disconnect") {
        e.what = expectation::kind::disconnect;
        e.codes = rest_hex();
        if (e.codes.size() != 1) throw std::invalid_argument("disconnect takes one reason code");
    } else if (head == "connack") {
        e.what = expectation::kind::connack;
        e.codes = rest_hex();
        if (e.codes.size() != 1) throw std::invalid_argument("connack takes one code");
    } else if (head == "suback" || head == "unsuback") {
        e.what = head == "suback" ? expectation::kind::suback : expectation::kind::unsuback;
        e.codes = rest_hex();
    } else if (ack_type(head)) {
        e.what = expectation::kind::ack;
        e.packet_type = ack_type(head);
        e.codes = rest_hex();
        if (e.codes.empty()) e.codes = {0};
    } else if (head == "pingresp") {
        e.what = expectation::kind::pingresp;
    } else if (head == "silence") {
        e.what = expectation::kind::silence;
        e.millis = w.size() > 1 ? std::stoi(w[1]) : 500;
    } else if (head == "any") {
        e.what = expectation::kind::any;
    } else {
        e.what = expectation::kind::bytes;
        e.data = wire::from_hex(text);
    }
    return e;
}

// The protocol level of a CONNECT we send ("MQTT" + level), to parse v5 properties.
std::optional<std::uint8_t> connect_level(const wire::bytes& b) {
    if (b.size() < 2 || b[0] != 0x10) return std::nullopt;
    std::size_t i = 1;
    while (i < b.size() && (b[i] & 0x80)) ++i;
    ++i;  // past the remaining length
    if (b.size() < i + 7 || b[i] != 0 || b[i + 1] != 4) return std::nullopt;
    return b[i + 6];
}

// Outcome of reading one thing from the broker, shared by all alternatives of a step.
struct observation {
    case_transport::status what = case_transport::status::timeout;
    wire::packet pkt;
    bool closed_after = false;  // for DISCONNECT: whether the close followed
    std::string describe() const {
        switch (what) {
        case case_transport::status::closed: return "connection closed";
        case case_transport::status::timeout: return "nothing (timeout)";
        default: return pkt.describe() + (closed_after ? " then close" : "");
        }
    }
};

bool codes_match(const wire::bytes& want, const wire::bytes& got) { return want == got; }

bool matches(const expectation& e, const observation& o, std::uint8_t version) {
    using k = expectation::kind;
    bool is_packet = o.what == case_transport::status::packet;
    try {
        switch (e.what) {
        case k::close: return o.what == case_transport::status::closed;
        case k::silence: return o.what == case_transport::status::timeout;
        case k::any: return is_packet;
        case k::bytes: return is_packet && o.pkt.encode() == e.data;
        case k::pingresp: return is_packet && o.pkt.header == 0xD0 && o.pkt.body.empty();
        case k::disconnect:
            return is_packet && o.pkt.header == 0xE0 && wire::parse_disconnect(o.pkt).reason == e.codes[0] &&
                   o.closed_after;
        case k::connack: {
            if (!is_packet || o.pkt.header != 0x20 || o.pkt.body.size() < 2) return false;
            // Either form is accepted (an unsupported level may be answered in 3.1.1 form).
            return o.pkt.body[1] == e.codes[0];
        }
        case k::suback:
        case k::unsuback: {
            std::uint8_t header = e.what == k::suback ? 0x90 : 0xB0;
            if (!is_packet || o.pkt.header != header) return false;
            return codes_match(e.codes, wire::parse_ack(o.pkt, version).reasons);
        }
        case k::ack: {
            std::uint8_t header = static_cast<std::uint8_t>(e.packet_type << 4 | (e.packet_type == wire::PUBREL ? 2 : 0));
            if (!is_packet || o.pkt.header != header) return false;
            return wire::parse_ack(o.pkt, version).reason == e.codes[0];
        }
        }
    } catch (const std::runtime_error&) {
        return false;  // a packet our parser rejects matches no structured expectation
    }
    return false;
}

}  // namespace

test_case parse_case(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error(path + ": cannot open");
    test_case tc;
    tc.path = path;
    std::string raw_line;
    for (int line_no = 1; std::getline(in, raw_line); ++line_no) {
        std::string line = trim(raw_line);
        if (auto hash = line.find('#'); hash != std::string::npos) line = trim(line.substr(0, hash));
        if (line.empty()) continue;
        try {
            if (line[0] == '>') {
                step s;
                s.line = line_no;
                s.what = step::kind::send;
                s.data = wire::from_hex(line.substr(1));
                tc.steps.push_back(std::move(s));
            } else if (line[0] == '<') {
                step s;
                s.line = line_no;
                s.what = step::kind::expect;
                std::string rest = line.substr(1);
                std::size_t start = 0;
                for (;;) {
                    auto bar = rest.find('|', start);
                    s.alternatives.push_back(parse_expectation(trim(rest.substr(start, bar - start))));
                    if (bar == std::string::npos) break;
                    start = bar + 1;
                }
                tc.steps.push_back(std::move(s));
            } else if (line.rfind("wait ", 0) == 0) {
                step s;
                s.line = line_no;
                s.what = step::kind::wait;
                auto w = words(line);
                std::size_t used = 0;
                s.millis = w.size() == 2 ? std::stoi(w[1], &used) : -1;
                if (w.size() != 2 || used != w[1].size() || s.millis <= 0)
                    throw std::invalid_argument("wait takes a number of milliseconds");
                tc.steps.push_back(std::move(s));
            } else if (line.rfind("mosquitto-deviation ", 0) == 0) {
                tc.mosquitto_deviation = trim(line.substr(20));
            } else if (line.rfind("config ", 0) == 0) {
                std::string kv = trim(line.substr(7));
                auto eq = kv.find('=');
                if (eq == std::string::npos) throw std::invalid_argument("config needs KEY=VALUE");
                tc.config.set(trim(kv.substr(0, eq)), trim(kv.substr(eq + 1)));
            } else {
                throw std::invalid_argument("unknown line (want '>', '<', 'wait', 'config' or '#')");
            }
        } catch (const std::exception& e) {
            throw std::runtime_error(path + ":" + std::to_string(line_no) + ": " + e.what());
        }
    }
    if (tc.steps.empty()) throw std::runtime_error(path + ": no steps");
    return tc;
}

std::string play(const test_case& tc, case_transport& transport) {
    const std::string& path = tc.path;
    const bool strict = strict_mode();
    std::uint8_t version = wire::v311;
    bool closed = false;

    for (const step& s : tc.steps) {
        std::string where = path + ":" + std::to_string(s.line);
        if (s.what == step::kind::send) {
            if (auto level = connect_level(s.data); level && (*level == 4 || *level == 5)) version = *level;
            transport.set_version(version);
            // Sending into a connection the broker already closed is not itself a
            // failure: the next expectation says whether the close was right.
            if (!closed && !transport.send(s.data)) closed = true;
            continue;
        }
        if (s.what == step::kind::wait) {
            transport.wait(std::chrono::milliseconds(s.millis));
            continue;
        }
        // Observe once, then compare with each alternative.
        observation o;
        bool wants_silence = std::any_of(s.alternatives.begin(), s.alternatives.end(),
                                         [](auto& e) { return e.what == expectation::kind::silence; });
        // Waiting for a packet stretches with EDGEMQ_TEST_TIME_SCALE (slow sanitizer
        // builds); a silence window does not: it is time under test, an upper bound on
        // when the broker may act (e.g. the keep-alive close).
        std::chrono::milliseconds timeout = scaled(expect_timeout);
        if (wants_silence)
            for (auto& e : s.alternatives)
                if (e.what == expectation::kind::silence) timeout = std::chrono::milliseconds(e.millis);
        auto r = transport.read(timeout);
        o.what = r.what;
        o.pkt = r.pkt;
        if (r.what == case_transport::status::closed) closed = true;
        if (r.what == case_transport::status::packet && r.pkt.header == 0xE0) {
            o.closed_after = transport.read(scaled(expect_timeout)).what == case_transport::status::closed;
            closed = o.closed_after;
        }
        auto first_match = std::find_if(s.alternatives.begin(), s.alternatives.end(),
                                        [&](const expectation& e) { return matches(e, o, version); });
        bool ok = first_match != s.alternatives.end() && (!strict || first_match == s.alternatives.begin());
        if (!ok) {
            std::string wanted;
            for (auto& e : s.alternatives) wanted += (wanted.empty() ? "" : " | ") + e.text;
            std::string mode = strict ? " (strict: the first)" : "";
            return where + ": expected " + wanted + mode + "\n  got " + o.describe() + "\n" +
                   transport.diagnostics();
        } else if (first_match != s.alternatives.begin()) {
            MESSAGE(where << ": accepted alternative '" << first_match->text << "' (not the first, '"
                          << s.alternatives.front().text << "')");
        }
    }
    return {};
}

namespace {

// A fresh broker process and a raw_client over a real socket; waits are real time.
class socket_transport final : public case_transport {
public:
    explicit socket_transport(const broker_config& config) : broker_(config), client_(broker_) {}

    bool send(const wire::bytes& data) override { return client_.try_send(data); }
    result read(std::chrono::milliseconds timeout) override {
        auto r = client_.read_unscaled(timeout);  // the runner decides what stretches
        result out;
        out.pkt = std::move(r.pkt);
        out.what = r.what == raw_client::status::packet  ? status::packet
                   : r.what == raw_client::status::closed ? status::closed
                                                          : status::timeout;
        return out;
    }
    // Real time passes (the `wait` directive is for time under test: keep alive).
    void wait(std::chrono::milliseconds d) override { std::this_thread::sleep_for(d); }
    void set_version(std::uint8_t version) override { client_.set_version(version); }
    std::string diagnostics() override {
        std::string log = broker_.log();
        if (log.size() > 2000) log = "..." + log.substr(log.size() - 2000);
        return "  broker log tail:\n" + log;
    }

private:
    broker_process broker_;
    raw_client client_;
};

}  // namespace

void run_case(const std::string& path) {
    test_case tc = parse_case(path);
    std::string failure;
    try {
        socket_transport transport(tc.config);
        failure = play(tc, transport);
    } catch (const std::exception& e) {
        // E.g. the broker refused the case's config: a failure like any other (and
        // subject to a listed Mosquitto deviation).
        failure = path + ": " + e.what();
    }
    // Known Mosquitto deviations are evidence, not noise: reported, not failed.
    if (testing_mosquitto() && !tc.mosquitto_deviation.empty()) {
        if (failure.empty())
            MESSAGE(path << ": listed as a Mosquitto deviation but passed: " << tc.mosquitto_deviation);
        else
            MESSAGE(path << ": known Mosquitto deviation (" << tc.mosquitto_deviation << ")\n" << failure);
        return;
    }
    if (!failure.empty()) FAIL(failure);
}

}  // namespace edgemq::test::conformance
