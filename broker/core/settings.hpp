// Everything the broker core is configured with. Plain data: config/ fills it from the
// JSON file and the command line, app/ hands it to the core and the network layer.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "broker/core/store.hpp"
#include "broker/session/outbound_flow.hpp"

namespace edgemq::core {

// What one client connection may do, set per listener (a listener's own values, else
// the top-level ones of the configuration). Enforced by core::client_connection.
struct connection_limits {
    // A socket that has not completed its TLS/WebSocket handshake and CONNECT within
    // this time is closed.
    std::chrono::milliseconds connect_timeout{10'000};
    // Largest packet we accept; advertised in CONNACK when below the protocol limit.
    std::uint32_t max_packet_size = 268'435'455;
    // QoS 1/2 PUBLISHes a client may have unacknowledged towards us [MQTT-3.3.4-9].
    std::uint16_t receive_maximum = 1024;
    // QoS 1/2 PUBLISHes we keep unacknowledged towards the client (below its own
    // Receive Maximum, if it asks for more).
    std::uint16_t max_inflight = 65535;
    // Subscriptions a session may hold; 0: no limit. Past it, SUBACK 0x97 (v5) / 0x80.
    std::uint32_t max_subscriptions = 0;
    // Messages waiting for the client (offline, or beyond its window); see
    // session::queue_limits.
    session::queue_limits queue{};
    // PUBLISHes per second and payload bytes per second a client may send, measured
    // over one second with a burst of one second's worth; 0: no limit. Past it the
    // client is disconnected with 0x96 Message rate too high (v5) or closed (3.1.1).
    std::uint32_t max_publish_rate = 0;
    std::uint64_t max_publish_bytes_rate = 0;
};

// Where a certificate's identity goes, on a listener that maps it to the user name.
enum class certificate_identity : std::uint8_t { none, common_name, subject, subject_alt_name };

struct listener_settings {
    // "mqtt" (TCP), "mqtts" (TLS), "ws" (MQTT over WebSocket), "wss" (over TLS).
    std::string type = "mqtt";
    std::string bind = "0.0.0.0";
    std::uint16_t port = 1883;       // 0 = any free port
    std::string path = "/mqtt";      // ws/wss: where the WebSocket endpoint is
    // TLS (mqtts, wss): PEM files. ca_file verifies client certificates.
    std::string cert_file;
    std::string key_file;
    std::string ca_file;
    bool require_certificate = false;  // else a client certificate is optional (verified if sent)
    // Take the user name from the verified client certificate instead of CONNECT (and
    // skip the password check, like Mosquitto's use_identity_as_username).
    certificate_identity identity_as_username = certificate_identity::none;
    // Open connections on this listener; 0: no limit. Past it new sockets are closed.
    std::uint32_t max_connections = 0;
    connection_limits limits{};

    bool tls() const noexcept { return type == "mqtts" || type == "wss"; }
    bool websocket() const noexcept { return type == "ws" || type == "wss"; }
};

// Who may connect and what they may do (see auth/ and core::authorizer).
struct auth_settings {
    std::string password_file;  // empty: none
    std::string acl_file;       // empty: none
    // Unset: anonymous clients may connect unless a password file is configured.
    std::optional<bool> allow_anonymous;
};

struct broker_settings {
    std::vector<listener_settings> listeners{listener_settings{}};
    auth_settings auth;
    unsigned workers = 0;                         // 0 = one per core
    // Where durable state lives; empty: the default (see app/data_dir.hpp).
    std::string data_dir;
    // What an acknowledgement promises (see core::durability and docs/DURABILITY.md).
    durability durability_mode = durability::process;
    // How long the store's writer waits for more work before it commits (see
    // storage/sqlite_store.hpp): fewer, fuller commits, and rows a subscriber has
    // acknowledged meanwhile are never written. Delays PUBACK/PUBREC by as much.
    std::uint32_t commit_delay_ms = 1;

    // 0: accept any Keep Alive. Otherwise clients asking for more, or for 0, are told
    // this value as Server Keep Alive (v5) [MQTT-3.2.2-21].
    std::uint16_t max_keep_alive = 0;
    // Topic aliases a client may define towards us (0 disables them).
    std::uint16_t topic_alias_maximum = 64;
    // Assign topic aliases on PUBLISHes to v5 clients that accept them.
    bool send_topic_aliases = true;
    // Upper bound on the Session Expiry Interval a client can ask for, in seconds.
    std::uint32_t max_session_expiry = 0xFFFF'FFFF;
    bool retain_available = true;
    std::uint8_t maximum_qos = 2;
    // Queue QoS 0 messages for offline persistent sessions too (memory only).
    bool queue_qos0_offline = true;
    // Slow down publishers (pause reading from them for a few milliseconds) while a
    // connected subscriber they publish to has a backlog, instead of accepting
    // messages only to drop them from its full queue.
    bool publisher_backpressure = true;
    // Bytes of encoded packets a connection may have waiting for the socket; beyond it,
    // deliveries wait in the session queue (where the queue limits apply).
    std::size_t max_output_buffer = 1 << 20;
    // Response Information for v5 clients that ask for it (Request Response Information
    // = 1) (3.2.2.3.15): the basis of their response topics. "%c" becomes the client
    // id. Empty: none is sent.
    std::string response_information;
    // Seconds between updates of the retained $SYS/broker/... statistics; 0 disables.
    std::uint32_t sys_interval = 10;
    // Largest CONNECT accepted before a client is authenticated.
    std::uint32_t max_connect_packet_size = 1 << 20;
};

}  // namespace edgemq::core
