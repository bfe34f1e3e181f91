// Everything the broker core is configured with. Plain data: config/ fills it from the
// JSON file and the command line, app/ hands it to the core and the network layer.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "broker/core/store.hpp"
#include "broker/session/outbound_flow.hpp"

namespace edgemq::core {

struct listener_settings {
    std::string type = "mqtt";       // "mqtt" (plain TCP); TLS and WebSocket come later
    std::string bind = "0.0.0.0";
    std::uint16_t port = 1883;       // 0 = any free port
};

struct broker_settings {
    std::vector<listener_settings> listeners{listener_settings{}};
    unsigned workers = 0;                         // 0 = one per core
    // Where durable state lives; empty: the default (see app/data_dir.hpp).
    std::string data_dir;
    // What an acknowledgement promises (see core::durability and docs/DURABILITY.md).
    durability durability_mode = durability::process;
    // How long the store's writer waits for more work before it commits (see
    // storage/sqlite_store.hpp): fewer, fuller commits, and rows a subscriber has
    // acknowledged meanwhile are never written. Delays PUBACK/PUBREC by as much.
    std::uint32_t commit_delay_ms = 1;

    // A socket that has not completed CONNECT within this time is closed.
    std::chrono::milliseconds connect_timeout{10'000};
    // 0: accept any Keep Alive. Otherwise clients asking for more, or for 0, are told
    // this value as Server Keep Alive (v5) [MQTT-3.2.2-21].
    std::uint16_t max_keep_alive = 0;
    // Largest packet we accept; advertised in CONNACK when below the protocol limit.
    std::uint32_t max_packet_size = 268'435'455;
    // QoS 1/2 PUBLISHes a client may have unacknowledged towards us [MQTT-3.3.4-9].
    std::uint16_t receive_maximum = 1024;
    // Topic aliases a client may define towards us (0 disables them).
    std::uint16_t topic_alias_maximum = 64;
    // Assign topic aliases on PUBLISHes to v5 clients that accept them.
    bool send_topic_aliases = true;
    // Upper bound on the Session Expiry Interval a client can ask for, in seconds.
    std::uint32_t max_session_expiry = 0xFFFF'FFFF;
    bool retain_available = true;
    std::uint8_t maximum_qos = 2;
    // Per-session queue of messages not yet sent (offline, or beyond Receive Maximum).
    session::queue_limits queue{};
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
    // = 1) [MQTT-3.2.2-?]: the basis of their response topics. "%c" becomes the client
    // id. Empty: none is sent.
    std::string response_information;
    // Seconds between updates of the retained $SYS/broker/... statistics; 0 disables.
    std::uint32_t sys_interval = 10;
    // Largest CONNECT accepted before a client is authenticated.
    std::uint32_t max_connect_packet_size = 1 << 20;
};

}  // namespace edgemq::core
