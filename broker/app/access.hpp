// The broker's authorizer from the configuration: password and ACL files (auth/).
#pragma once

#include <memory>
#include <string>

#include "broker/core/authorizer.hpp"
#include "broker/core/settings.hpp"

namespace edgemq::app {

// Reads the files `settings` names. nullptr when nothing restricts anyone (no files,
// anonymous access not turned off), so the core skips every check. Throws
// auth::file_error naming file and line.
std::shared_ptr<const core::authorizer> load_authorizer(const core::auth_settings& settings);

// One line for the start-up log: which files, and whether anonymous clients get in.
std::string describe_access(const core::auth_settings& settings);

}  // namespace edgemq::app
