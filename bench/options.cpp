#include "options.hpp"

#include <charconv>
#include <cmath>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "stats.hpp"

namespace edgemq::bench {
namespace {

[[noreturn]] void bad(std::string_view opt, std::string_view why) {
    throw std::invalid_argument(std::string(opt) + ": " + std::string(why));
}

template <typename T>
T to_uint(std::string_view opt, std::string_view v, T lo, T hi) {
    unsigned long long x = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
    if (ec != std::errc{} || p != v.data() + v.size()) bad(opt, "not a whole number: '" + std::string(v) + "'");
    if (x < lo || x > hi) bad(opt, "out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return static_cast<T>(x);
}

double to_double(std::string_view opt, std::string_view v, double lo, double hi) {
    // from_chars for double is in libstdc++ 11+, so g++ 12 has it.
    double x = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
    if (ec != std::errc{} || p != v.data() + v.size() || !std::isfinite(x)) bad(opt, "not a number: '" + std::string(v) + "'");
    if (x < lo || x > hi) bad(opt, "out of range");
    return x;
}

}  // namespace

std::string usage() {
    return R"(usage: edgemq-bench [options]
MQTT load generator: N publishers -> M subscribers through one broker, many clients
per thread. Measures throughput, end-to-end latency, loss, duplicates and reordering.

connection
  --host H                 broker address (default 127.0.0.1)
  --port P                 broker port (default 1883)
  --transport T            tcp (default), tls (OpenSSL), ws or wss (MQTT over
                           WebSocket, subprotocol "mqtt", one binary message per write)
  --cafile FILE            tls/wss: verify the broker's certificate with these CAs
                           (default: the system's); its name or address must match --host
  --insecure               tls/wss: do not verify the broker's certificate
  --ws-path PATH           ws/wss: path of the WebSocket upgrade (default /mqtt)
  --mqtt-version 4|5       3.1.1 (4, also "3.1.1") or 5.0 (5) (default 4)
  --clean | --persistent   clean session (default) or a kept session (v5: expiry
                           --session-expiry seconds, default 300, ended by our
                           DISCONNECT; 3.1.1: the broker keeps it after the run)
  --keep-alive S           CONNECT keep alive, pings sent at half of it (default 60)
load
  --threads T              io_context threads (default: one per core)
  --publishers N           (default 1); publisher i publishes to <prefix>/<i>/data
  --subscribers M          (default 1), all subscribe to --sub-filter
  --topic-prefix P         (default "bench")
  --sub-filter F           (default "<prefix>/#"; "$share/g/..." spreads the load)
  --qos 0|1|2              publish and subscription QoS (default 0)
  --inflight K             max unacked QoS 1/2 PUBLISHes per publisher (default 64;
                           lowered to the broker's v5 Receive Maximum)
  --payload BYTES          payload size, at least 24 (default 64)
  --rate R                 msgs/s per publisher, 0 = as fast as possible (default 0)
  --qos0-window W          QoS 0: at most W messages per publisher published but not yet
                           seen by the subscribers (default 0 = off: only TCP
                           back-pressure limits a QoS 0 publisher)
  --batch-bytes B          most PUBLISH bytes per socket write (default 65536)
  --sndbuf BYTES           publishers' socket send buffer (default: the OS's autotuning);
                           smaller means less queued in the kernel at QoS 0
timing
  --warmup S               seconds of load before measuring (default 2)
  --duration S             measured seconds (default 10)
  --connect-timeout S      for all clients to connect and subscribe (default 10)
  --drain-timeout S        after the load stops, collect acks and deliveries until none
                           arrived for S seconds (default 5) ...
  --drain-max S            ... or S seconds passed (default 60): a saturated QoS 0 run
                           can leave many seconds of messages in socket buffers
  --max-time S             hard bound on the whole run (default: 2 x connect-timeout +
                           warmup + duration + drain-max + 15)
output
  --json                   print one JSON line on stdout (the summary goes to stderr)
  --label TEXT             copied into the JSON line
exit status: 0 run completed (loss is a result, not an error), 1 a connection failed
during the run, 2 bad options or broker unreachable, 3 hard deadline hit.
)";
}

options parse_options(int argc, char** argv) {
    options o;
    bool filter_set = false;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        std::string_view value;
        bool has_inline = false;
        if (auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
            value = arg.substr(eq + 1);
            arg = arg.substr(0, eq);
            has_inline = true;
        }
        auto next = [&]() -> std::string_view {
            if (has_inline) return value;
            if (i + 1 >= argc) bad(arg, "needs a value");
            return argv[++i];
        };
        if (arg == "--help" || arg == "-h") throw std::invalid_argument("");
        else if (arg == "--host") o.host = next();
        else if (arg == "--port") o.port = to_uint<std::uint16_t>(arg, next(), 1, 65535);
        else if (arg == "--transport") {
            auto v = next();
            if (v == "tcp" || v == "mqtt") o.transport = transport_kind::tcp;
            else if (v == "tls" || v == "mqtts") o.transport = transport_kind::tls;
            else if (v == "ws") o.transport = transport_kind::ws;
            else if (v == "wss") o.transport = transport_kind::wss;
            else bad(arg, "tcp, tls, ws or wss");
        }
        else if (arg == "--cafile") o.cafile = next();
        else if (arg == "--insecure") o.insecure = true;
        else if (arg == "--ws-path") {
            o.ws_path = next();
            if (!o.ws_path.starts_with('/')) bad(arg, "must start with '/'");
        }
        else if (arg == "--threads") o.threads = to_uint<unsigned>(arg, next(), 1, 256);
        else if (arg == "--publishers") o.publishers = to_uint<unsigned>(arg, next(), 0, 1'000'000);
        else if (arg == "--subscribers") o.subscribers = to_uint<unsigned>(arg, next(), 0, 1'000'000);
        else if (arg == "--topic-prefix") o.topic_prefix = next();
        else if (arg == "--sub-filter") { o.sub_filter = next(); filter_set = true; }
        else if (arg == "--qos") o.qos = to_uint<std::uint8_t>(arg, next(), 0, 2);
        else if (arg == "--inflight") o.inflight = to_uint<unsigned>(arg, next(), 1, 65535);
        else if (arg == "--payload") o.payload = to_uint<std::size_t>(arg, next(), min_payload, 256 * 1024 * 1024);
        else if (arg == "--duration") o.duration_s = to_double(arg, next(), 0.1, 86400);
        else if (arg == "--warmup") o.warmup_s = to_double(arg, next(), 0, 3600);
        else if (arg == "--rate") o.rate = to_double(arg, next(), 0, 1e9);
        else if (arg == "--mqtt-version") {
            auto v = next();
            if (v == "4" || v == "3.1.1" || v == "311") o.mqtt_version = 4;
            else if (v == "5" || v == "5.0") o.mqtt_version = 5;
            else bad(arg, "4 (3.1.1) or 5");
        }
        else if (arg == "--clean") o.clean = true;
        else if (arg == "--persistent") o.clean = false;
        else if (arg == "--session-expiry") o.session_expiry_s = to_uint<std::uint32_t>(arg, next(), 1, 0xffffffff);
        else if (arg == "--keep-alive") o.keep_alive_s = to_uint<std::uint16_t>(arg, next(), 0, 65535);
        else if (arg == "--json") o.json = true;
        else if (arg == "--qos0-window") o.qos0_window = to_uint<unsigned>(arg, next(), 0, 100'000'000);
        else if (arg == "--batch-bytes") o.batch_bytes = to_uint<std::size_t>(arg, next(), 1, 64 * 1024 * 1024);
        else if (arg == "--connect-timeout") o.connect_timeout_s = to_double(arg, next(), 0.1, 3600);
        else if (arg == "--drain-timeout") o.drain_timeout_s = to_double(arg, next(), 0, 3600);
        else if (arg == "--drain-max") o.drain_max_s = to_double(arg, next(), 0, 86400);
        else if (arg == "--sndbuf") o.sndbuf = to_uint<unsigned>(arg, next(), 1024, 1u << 30);
        else if (arg == "--max-time") o.max_time_s = to_double(arg, next(), 1, 7 * 86400);
        else if (arg == "--label") o.label = next();
        else bad(arg, "unknown option");
    }
    if (!o.cafile.empty() && o.insecure) bad("--cafile", "contradicts --insecure");
    if (o.threads == 0) o.threads = std::max(1u, std::thread::hardware_concurrency());
    if (!filter_set) o.sub_filter = o.topic_prefix + "/#";
    if (o.sub_filter.empty()) bad("--sub-filter", "must not be empty");
    if (o.topic_prefix.find_first_of("+#") != std::string::npos) bad("--topic-prefix", "must not contain wildcards");
    if (o.publishers == 0 && o.subscribers == 0) bad("--publishers", "no clients at all");
    if (o.max_time_s == 0)
        o.max_time_s = 2 * o.connect_timeout_s + o.warmup_s + o.duration_s + o.drain_max_s + 15;
    return o;
}

}  // namespace edgemq::bench
