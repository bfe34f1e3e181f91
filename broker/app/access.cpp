#include "broker/app/access.hpp"

#include "broker/auth/file_authorizer.hpp"

namespace edgemq::app {

namespace {
bool anonymous_allowed(const core::auth_settings& s) {
    return s.allow_anonymous.value_or(s.password_file.empty());
}
}  // namespace

std::shared_ptr<const core::authorizer> load_authorizer(const core::auth_settings& settings) {
    if (settings.password_file.empty() && settings.acl_file.empty() && anonymous_allowed(settings)) return nullptr;
    auth::file_authorizer_options options;
    if (!settings.password_file.empty()) options.password_file = settings.password_file;
    if (!settings.acl_file.empty()) options.acl_file = settings.acl_file;
    options.allow_anonymous = settings.allow_anonymous;
    return auth::file_authorizer::load(options);
}

std::string describe_access(const core::auth_settings& settings) {
    std::string out = "access: ";
    out += settings.password_file.empty() ? "no password file" : "passwords from " + settings.password_file;
    out += ", ";
    out += settings.acl_file.empty() ? "no ACL file (everything allowed)" : "ACL from " + settings.acl_file + " (deny by default)";
    out += anonymous_allowed(settings) ? ", anonymous clients allowed" : ", anonymous clients refused";
    return out;
}

}  // namespace edgemq::app
