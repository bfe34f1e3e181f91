#include "broker/auth/file_authorizer.hpp"

#include <utility>

namespace edgemq::auth {

std::unique_ptr<file_authorizer> file_authorizer::load(const file_authorizer_options& options) {
    std::optional<password_file> passwords;
    if (options.password_file) passwords = password_file::load(*options.password_file);
    std::optional<acl_file> acl;
    if (options.acl_file) acl = acl_file::load(*options.acl_file);
    return std::make_unique<file_authorizer>(std::move(passwords), std::move(acl), options.allow_anonymous);
}

file_authorizer::file_authorizer(std::optional<password_file> passwords, std::optional<acl_file> acl,
                                 std::optional<bool> allow_anonymous)
    : passwords_(std::move(passwords)),
      acl_(std::move(acl)),
      allow_anonymous_(allow_anonymous.value_or(!passwords_.has_value())),
      named_without_password_file_(allow_anonymous.value_or(true)) {}

core::auth_decision file_authorizer::authenticate(const std::optional<std::string>& username,
                                                  const std::optional<std::string>& password,
                                                  std::string_view /*client_id*/) const {
    using core::auth_decision;
    if (!username) return allow_anonymous_ ? auth_decision::allow : auth_decision::not_authorized;
    if (!passwords_) return named_without_password_file_ ? auth_decision::allow : auth_decision::not_authorized;
    // Returning early here tells nothing about which users exist: it does not look.
    if (!password) return auth_decision::bad_credentials;
    return passwords_->verify(*username, *password) ? auth_decision::allow : auth_decision::bad_credentials;
}

bool file_authorizer::may_publish(const core::client_identity& who, std::string_view topic) const {
    return !acl_ || acl_->may_write(who, topic);
}

bool file_authorizer::may_subscribe(const core::client_identity& who, std::string_view filter) const {
    return !acl_ || acl_->may_subscribe(who, filter);
}

bool file_authorizer::may_receive(const core::client_identity& who, std::string_view topic) const {
    return !acl_ || acl_->may_read(who, topic);
}

}  // namespace edgemq::auth
