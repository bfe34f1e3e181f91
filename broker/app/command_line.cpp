#include "broker/app/command_line.hpp"

#include <charconv>
#include <string_view>

namespace edgemq::app {

namespace {

template <class T>
T parse_number(std::string_view option, std::string_view text, T max) {
    T value{};
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || value > max)
        throw usage_error("option " + std::string(option) + ": '" + std::string(text) +
                          "' is not a number from 0 to " + std::to_string(max));
    return value;
}

}  // namespace

command_line parse_command_line(int argc, const char* const* argv) {
    command_line cl;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        std::string_view value;
        bool has_inline_value = false;
        if (arg.starts_with("--")) {
            if (auto eq = arg.find('='); eq != std::string_view::npos) {
                value = arg.substr(eq + 1);
                arg = arg.substr(0, eq);
                has_inline_value = true;
            }
        }
        auto take_value = [&]() -> std::string_view {
            if (has_inline_value) return value;
            if (i + 1 >= argc) throw usage_error("option " + std::string(arg) + " needs a value");
            return argv[++i];
        };
        if (arg == "-h" || arg == "--help") {
            cl.help = true;
        } else if (arg == "-V" || arg == "--version") {
            cl.version = true;
        } else if (arg == "-c" || arg == "--config") {
            cl.config_file = std::string(take_value());
        } else if (arg == "-p" || arg == "--port") {
            cl.port = parse_number<std::uint16_t>(arg, take_value(), 65535);
        } else if (arg == "--bind") {
            cl.bind = std::string(take_value());
        } else if (arg == "--data-dir") {
            cl.data_dir = std::string(take_value());
        } else if (arg == "--durability") {
            cl.durability = std::string(take_value());
        } else if (arg == "--workers") {
            cl.workers = parse_number<unsigned>(arg, take_value(), 1024);
        } else if (arg == "--log-level") {
            cl.log_level = std::string(take_value());
        } else if (arg == "--listen") {
            const std::string url(take_value());
            parse_listen_url(url);  // reports a bad URL now, naming it
            cl.listen.push_back(url);
        } else if (arg == "--cert") {
            cl.cert_file = std::string(take_value());
        } else if (arg == "--key") {
            cl.key_file = std::string(take_value());
        } else if (arg == "--cafile") {
            cl.ca_file = std::string(take_value());
        } else if (arg == "--require-cert") {
            cl.require_certificate = true;
        } else if (arg == "--password-file") {
            cl.password_file = std::string(take_value());
        } else if (arg == "--acl-file") {
            cl.acl_file = std::string(take_value());
        } else if (arg == "--allow-anonymous") {
            const std::string_view v = take_value();
            if (v != "true" && v != "false") throw usage_error("option --allow-anonymous: '" + std::string(v) + "' is not true or false");
            cl.allow_anonymous = v == "true";
        } else {
            throw usage_error("unknown option '" + std::string(argv[i]) + "'");
        }
    }
    return cl;
}

listen_url parse_listen_url(std::string_view url) {
    const auto bad = [&](std::string_view why) -> usage_error {
        return usage_error("option --listen: '" + std::string(url) + "': " + std::string(why) +
                           " (e.g. mqtt://0.0.0.0:1883, mqtts://0.0.0.0:8883, ws://0.0.0.0:8080/mqtt, wss://0.0.0.0:8443/mqtt)");
    };
    listen_url out;
    const auto scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos) throw bad("no scheme");
    out.type = std::string(url.substr(0, scheme_end));
    if (out.type != "mqtt" && out.type != "mqtts" && out.type != "ws" && out.type != "wss")
        throw bad("the scheme must be mqtt, mqtts, ws or wss");
    std::string_view rest = url.substr(scheme_end + 3);
    const auto slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    if (slash != std::string_view::npos) out.path = std::string(rest.substr(slash));
    const bool websocket = out.type == "ws" || out.type == "wss";
    if (!websocket && !out.path.empty() && out.path != "/") throw bad("only ws and wss listeners have a path");
    if (websocket && (out.path.empty() || out.path == "/")) out.path = out.path.empty() ? "/mqtt" : out.path;
    std::string_view port_text;
    if (authority.starts_with('[')) {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) throw bad("unclosed [");
        out.host = std::string(authority.substr(1, close - 1));
        if (authority.size() <= close + 1 || authority[close + 1] != ':') throw bad("no port");
        port_text = authority.substr(close + 2);
    } else {
        const auto colon = authority.rfind(':');
        if (colon == std::string_view::npos) throw bad("no port");
        out.host = std::string(authority.substr(0, colon));
        port_text = authority.substr(colon + 1);
    }
    if (out.host.empty()) throw bad("no host (use 0.0.0.0 for every interface)");
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc{} || end != port_text.data() + port_text.size() || port > 65535)
        throw bad("the port must be a number from 0 to 65535");
    out.port = static_cast<std::uint16_t>(port);
    return out;
}

std::string usage_text() {
    return R"(Usage: edgemq [OPTIONS]
       edgemq passwd [-c | -D] [-b] [-I ITERATIONS] FILE USERNAME [PASSWORD]
       edgemq passwd -U FILE

An MQTT 3.1.1 / 5.0 broker for the edge. 'edgemq passwd' writes password files
(Mosquitto's format: mosquitto_passwd's files work unchanged, and the other way round).

Options:
  -c, --config FILE      JSON configuration file (comments allowed); see docs/CONFIGURATION.md
  -p, --port PORT        listen for MQTT on PORT (0 = any free port); replaces the
                         listeners of the configuration file
      --bind ADDRESS     address for --port (default 0.0.0.0)
      --listen URL       listen on URL; repeatable; replaces the listeners of the
                         configuration file (with --port too):
                           mqtt://HOST:PORT       MQTT over TCP
                           mqtts://HOST:PORT      MQTT over TLS
                           ws://HOST:PORT/PATH    MQTT over WebSocket (PATH: /mqtt),
                                                  plain HTTP on other paths
                           wss://HOST:PORT/PATH   MQTT over WebSocket over TLS
      --cert FILE        server certificate (PEM) for mqtts and wss listeners
      --key FILE         its private key (PEM)
      --cafile FILE      CA certificates (PEM) that client certificates must chain to;
                         with it, clients may present a certificate
      --require-cert     clients must present a certificate signed by --cafile
      --password-file FILE  users and password hashes (Mosquitto's format, see
                         'edgemq passwd'); anonymous clients are then refused unless
                         --allow-anonymous true
      --allow-anonymous true|false
                         whether clients without a user name may connect (default:
                         true without a password file, false with one)
      --acl-file FILE    who may publish and subscribe to what (Mosquitto's syntax);
                         with it, everything not allowed is denied
      --data-dir DIR     directory for durable state (default: $STATE_DIRECTORY under
                         systemd, /var/lib/edgemq as root, else ~/.local/state/edgemq)
      --durability MODE  what an acknowledgement promises: process (default: survives
                         kill -9 of edgemq), power (survives power loss: fsync on each
                         commit), none (memory only)
      --workers N        worker threads (default: one per CPU core)
      --log-level LEVEL  error, warn, info (default), debug or trace
  -h, --help             show this help and exit
  -V, --version          show the version and exit

Signals: SIGINT or SIGTERM shut down gracefully. SIGHUP reloads the password file,
the ACL file and the TLS certificates without dropping connections.
)";
}

}  // namespace edgemq::app
