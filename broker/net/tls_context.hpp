// TLS configuration shared by every connection of a listener (or of a bridge): the
// certificate and key, the CAs that verify the peer, and the random generator, loaded
// and checked once. Backed by mbedTLS 2.28, which speaks TLS 1.2 only (no TLS 1.3 until
// mbedTLS 3.x): TLS 1.2 is both the minimum and the maximum. A server context lets
// clients resume their sessions (tickets, session ids) for tls_session_lifetime_s.
//
// Immutable after construction and safe to share between worker threads (Debian builds
// mbedTLS with MBEDTLS_THREADING_C/PTHREAD: the random generator, the RSA blinding
// values, the ticket keys and the session cache lock internally). Shared as
// std::shared_ptr<const tls_context>: a reload (SIGHUP) builds a new context while open
// connections keep the one they started with.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace edgemq::net {

enum class tls_role : std::uint8_t { server, client };

// Server: how long a client may resume its TLS session (abbreviated handshake) after a
// full one, by ticket or from the session-id cache, and how many sessions that cache
// holds (clients with ticket support need no entry). As OpenSSL's default lifetime.
inline constexpr std::uint32_t tls_session_lifetime_s = 7200;
inline constexpr int tls_session_cache_entries = 256;

// Server: whether a client certificate is asked for. `optional`: a client may send none
// (then it is simply not authenticated), but one it sends must verify against ca_file,
// or the handshake fails. `required`: no certificate, no connection.
enum class client_certificates : std::uint8_t { none, optional, required };

struct tls_settings {
    tls_role role = tls_role::server;
    // PEM files. Server: cert_file and key_file are required. Client: both or neither
    // (a client certificate for mutual TLS).
    std::string cert_file;  // may hold the chain: leaf first, then intermediates
    std::string key_file;   // unencrypted private key matching cert_file's leaf
    // CAs that verify the peer. Server: required unless client_certificates is none.
    // Client: required when verify_peer.
    std::string ca_file;
    net::client_certificates client_certificates = net::client_certificates::none;  // server only
    // Client only: verify the server's certificate against ca_file and server_name.
    bool verify_peer = true;
    std::string server_name;  // client only: sent as SNI and matched against the certificate
};

class tls_context {
public:
    // Loads and checks everything; throws std::runtime_error naming the setting, the
    // file and what is wrong, e.g. "tls cert_file /x/y.pem: cannot parse certificate:
    // X509 - ..." or "tls key_file /x/k.pem: private key does not match the certificate
    // in cert_file /x/y.pem".
    explicit tls_context(const tls_settings& settings);
    static std::shared_ptr<const tls_context> create(const tls_settings& settings) {
        return std::make_shared<const tls_context>(settings);
    }
    ~tls_context();
    tls_context(const tls_context&) = delete;
    tls_context& operator=(const tls_context&) = delete;

    const tls_settings& settings() const noexcept { return settings_; }
    tls_role role() const noexcept { return settings_.role; }

    // The mbedTLS objects, for tls_stream (defined in tls_context.cpp).
    struct native;
    const native& get_native() const noexcept { return *native_; }

private:
    tls_settings settings_;
    std::unique_ptr<native> native_;
};

}  // namespace edgemq::net
