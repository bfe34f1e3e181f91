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
        } else {
            throw usage_error("unknown option '" + std::string(argv[i]) + "'");
        }
    }
    return cl;
}

std::string usage_text() {
    return R"(Usage: edgemq [OPTIONS]

An MQTT 3.1.1 / 5.0 broker for the edge.

Options:
  -c, --config FILE      JSON configuration file (comments allowed); see docs/CONFIGURATION.md
  -p, --port PORT        listen for MQTT on PORT (0 = any free port); replaces the
                         listeners of the configuration file
      --bind ADDRESS     address for --port (default 0.0.0.0)
      --data-dir DIR     directory for durable state (default: $STATE_DIRECTORY under
                         systemd, /var/lib/edgemq as root, else ~/.local/state/edgemq)
      --durability MODE  what an acknowledgement promises: process (default: survives
                         kill -9 of edgemq), power (survives power loss: fsync on each
                         commit), none (memory only)
      --workers N        worker threads (default: one per CPU core)
      --log-level LEVEL  error, warn, info (default), debug or trace
  -h, --help             show this help and exit
  -V, --version          show the version and exit

Signals: SIGINT or SIGTERM shut down gracefully.
)";
}

}  // namespace edgemq::app
