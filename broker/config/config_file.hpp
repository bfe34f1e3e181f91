// The JSON configuration file (comments allowed). Every key is optional; a key that is
// absent keeps its default. Unknown keys, wrong types and values out of range are
// errors, reported as "FILE: key 'KEY': WHY" so an operator knows what to fix.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "broker/core/log.hpp"
#include "broker/core/settings.hpp"

namespace edgemq::config {

struct app_settings {
    core::broker_settings broker;
    // The top-level limits: listeners made from the command line get these.
    core::connection_limits default_limits;
    log::level log_level = log::level::info;
};

class config_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// "none", "process", "power".
bool parse_durability(std::string_view text, core::durability& out) noexcept;
std::string_view to_string(core::durability mode) noexcept;
// "none", "cn", "subject", "san".
bool parse_certificate_identity(std::string_view text, core::certificate_identity& out) noexcept;

// Reads `path` into `settings`. Throws config_error.
void load_file(const std::string& path, app_settings& settings);

// The same for text already in memory; `source` names it in errors.
void load_text(std::string_view text, const std::string& source, app_settings& settings);

}  // namespace edgemq::config
