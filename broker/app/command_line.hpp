// Command-line options of the edgemq binary.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace edgemq::app {

struct command_line {
    bool help = false;
    bool version = false;
    std::optional<std::string> config_file;
    std::optional<std::uint16_t> port;
    std::optional<std::string> bind;
    std::optional<std::string> data_dir;
    std::optional<std::string> durability;
    std::optional<unsigned> workers;
    std::optional<std::string> log_level;
    std::vector<std::string> listen;   // --listen URL, in order
    std::optional<std::string> cert_file;
    std::optional<std::string> key_file;
    std::optional<std::string> ca_file;
    bool require_certificate = false;
    std::optional<std::string> password_file;
    std::optional<std::string> acl_file;
    std::optional<bool> allow_anonymous;
};

// A --listen URL: mqtt://HOST:PORT, mqtts://HOST:PORT, ws://HOST:PORT/PATH,
// wss://HOST:PORT/PATH (HOST may be [IPv6]; PATH defaults to /mqtt). Throws usage_error.
struct listen_url {
    std::string type;
    std::string host;
    std::uint16_t port = 0;
    std::string path;
};
listen_url parse_listen_url(std::string_view url);

class usage_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Throws usage_error naming the offending argument.
command_line parse_command_line(int argc, const char* const* argv);

std::string usage_text();

}  // namespace edgemq::app
