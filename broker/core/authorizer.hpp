// Who may connect, publish, subscribe and receive: declared by the core, implemented by
// auth/ (password and ACL files), wired up by app/. The core asks; it never reads files.
//
// Threading: an authorizer is immutable once built and is shared by every worker, so
// all its calls are const and safe from any thread at once. A reload (SIGHUP) builds a
// new one and each worker switches to it on its own thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace edgemq::core {

// A connected client as the ACLs see it.
struct client_identity {
    std::string client_id;
    // The CONNECT User Name, or the client certificate's identity on a listener that
    // maps it to the user name. Absent: an anonymous client.
    std::optional<std::string> username;
};

enum class auth_decision : std::uint8_t {
    allow,
    // Unknown user, wrong password, or no user name where one is required:
    // CONNACK 0x86 (v5) / 0x04 (3.1.1).
    bad_credentials,
    // Known but not allowed in: CONNACK 0x87 (v5) / 0x05 (3.1.1).
    not_authorized,
};

// One v5 enhanced-authentication exchange (CONNECT / AUTH ... / CONNACK) [MQTT-4.12].
// Owned by the connection for the length of the exchange.
class auth_exchange {
public:
    virtual ~auth_exchange() = default;
    struct step {
        enum class outcome : std::uint8_t { success, continue_auth, failure } result = outcome::failure;
        std::string data;         // Authentication Data for the client (may be empty)
        std::optional<std::string> username;  // the identity proven, on success
    };
    // The Authentication Data of the CONNECT, then of each AUTH the client sends.
    virtual step on_data(std::string_view data) = 0;
};

class authorizer {
public:
    virtual ~authorizer() = default;

    // CONNECT's User Name and Password (binary data) as the client sent them, or the
    // certificate identity in place of the User Name where the listener says so.
    virtual auth_decision authenticate(const std::optional<std::string>& username,
                                       const std::optional<std::string>& password,
                                       std::string_view client_id) const = 0;
    // PUBLISH from the client (Wills included) to `topic`.
    virtual bool may_publish(const client_identity& who, std::string_view topic) const = 0;
    // SUBSCRIBE with `filter` (without any "$share/GROUP/" prefix). Granted only when
    // every topic the filter can match is readable, so "#" never leaks a topic the
    // client may not read; deliveries are checked again by may_receive.
    virtual bool may_subscribe(const client_identity& who, std::string_view filter) const = 0;
    // A message on `topic` (retained ones included) going to the client.
    virtual bool may_receive(const client_identity& who, std::string_view topic) const = 0;
    // True when may_receive can say no: lets the core skip the per-delivery check.
    virtual bool restricts_reads() const noexcept = 0;
    // v5 CONNECT with an Authentication Method: an exchange, or nullptr when the
    // method is not supported (CONNACK 0x8C Bad authentication method).
    virtual std::unique_ptr<auth_exchange> begin_exchange(std::string_view /*method*/) const { return nullptr; }
};

}  // namespace edgemq::core
