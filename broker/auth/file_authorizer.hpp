// core::authorizer from a Mosquitto password file and ACL file (password_file.hpp,
// acl_file.hpp), both optional.
//
// Who may connect (authenticate):
// - no user name (anonymous): allowed when allow_anonymous says so; unset, it means
//   "true without a password file, false with one". Refused: not_authorized (CONNACK
//   0x87 / 5, as Mosquitto answers an anonymous client it does not let in).
// - a user name, with a password file: allowed only if the user is in the file and the
//   password matches; an unknown user, a wrong password or no password at all are
//   bad_credentials.
// - a user name, without a password file: allowed, unless allow_anonymous is false, in
//   which case nothing can check the name and the client is refused with not_authorized
//   (as Mosquitto 2.0 refuses everyone when allow_anonymous is false and no password
//   file or plugin is configured). Listeners that take the user name from a client
//   certificate do not call authenticate() at all.
//
// What they may do:
// - without an ACL file everything is allowed and restricts_reads() is false;
// - with one, everything not granted is refused (see acl_file.hpp): may_publish checks
//   write access, may_receive read access, may_subscribe that the whole filter is
//   readable, so a subscription to "#" never leaks a topic the client may not read.
//
// begin_exchange() returns nullptr: no enhanced authentication method yet.
//
// Immutable after construction; every call is safe from many threads at once.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "broker/auth/acl_file.hpp"
#include "broker/auth/file_error.hpp"
#include "broker/auth/password_file.hpp"
#include "broker/core/authorizer.hpp"

namespace edgemq::auth {

struct file_authorizer_options {
    std::optional<std::string> password_file;  // path; absent: no password checks
    std::optional<std::string> acl_file;       // path; absent: no ACL checks
    std::optional<bool> allow_anonymous;       // absent: true without a password file, false with one
};

class file_authorizer final : public core::authorizer {
public:
    // Loads the files the options name. Throws file_error ("FILE:LINE: why").
    static std::unique_ptr<file_authorizer> load(const file_authorizer_options& options);

    file_authorizer(std::optional<password_file> passwords, std::optional<acl_file> acl,
                    std::optional<bool> allow_anonymous);

    core::auth_decision authenticate(const std::optional<std::string>& username,
                                     const std::optional<std::string>& password,
                                     std::string_view client_id) const override;
    bool may_publish(const core::client_identity& who, std::string_view topic) const override;
    bool may_subscribe(const core::client_identity& who, std::string_view filter) const override;
    bool may_receive(const core::client_identity& who, std::string_view topic) const override;
    bool restricts_reads() const noexcept override { return acl_.has_value(); }

    bool allows_anonymous() const noexcept { return allow_anonymous_; }

private:
    std::optional<password_file> passwords_;
    std::optional<acl_file> acl_;
    bool allow_anonymous_;
    bool named_without_password_file_;  // false when allow_anonymous was set to false
};

}  // namespace edgemq::auth
