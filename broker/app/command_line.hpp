// Command-line options of the edgemq binary.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

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
};

class usage_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Throws usage_error naming the offending argument.
command_line parse_command_line(int argc, const char* const* argv);

std::string usage_text();

}  // namespace edgemq::app
