// The server-side state of one MQTT session [MQTT-4.1]: what survives a network
// connection while the session has not expired. Owned by one worker_core and touched
// only on its thread (except `online`, read by other workers' routing).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>

#include "broker/core/authorizer.hpp"
#include "broker/core/broker.hpp"
#include "broker/protocol/packets.hpp"
#include "broker/session/message.hpp"
#include "broker/session/outbound_flow.hpp"

namespace edgemq::core {

class client_connection;

struct subscription_record {
    protocol::subscription_options options;
    std::uint32_t identifier = 0;  // 0 = none
};

struct client_session {
    std::string client_id;
    std::uint64_t key = 0;
    session_status status;
    protocol::protocol_version version = protocol::protocol_version::v5;

    // Seconds; 0 ends the session with the connection, 0xFFFFFFFF never expires.
    std::uint32_t expiry_interval = 0;
    session::time_point expires_at = session::never;  // while offline

    // The Will of the current (or last) connection; published when the connection ends
    // abnormally, after will_delay seconds or when the session ends [MQTT-3.1.3-9].
    // Held by pointer: most sessions have none, and idle sessions should stay small.
    std::unique_ptr<protocol::will_message> will;
    std::uint32_t will_delay = 0;
    session::time_point will_at = session::never;  // set while a delayed Will waits

    std::map<std::string, subscription_record, std::less<>> subscriptions;
    session::outbound_flow outbound;
    // QoS 2 PUBLISHes received (and routed) whose PUBREL has not arrived yet; a
    // re-sent PUBLISH with one of these ids is acknowledged but not routed again
    // [MQTT-4.3.3-10..11].
    std::unordered_set<std::uint16_t> inbound_qos2;

    client_connection* connection = nullptr;  // while online
    // Who the session belongs to, as the ACLs see it: set when a client connects (absent
    // for a session restored from the store until its client comes back). Kept whole so
    // a delivery check builds nothing.
    std::optional<client_identity> identity;
    // When its connection last took something: a write completed or an ack freed a slot.
    session::time_point last_progress{};
};

}  // namespace edgemq::core
