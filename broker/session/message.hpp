// The application message as the broker keeps it: stored once, shared by every
// session it is delivered to (one shared_ptr<const message> per publish).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace edgemq::session {

using clock = std::chrono::steady_clock;
using time_point = clock::time_point;

inline constexpr time_point never = time_point::max();

struct message {
    std::string topic;
    std::string payload;
    // v5 properties passed through unchanged (payload format, content type, response
    // topic, correlation data, user properties), encoded once by
    // protocol::encode_forwarded_properties.
    std::string forwarded_properties;
    time_point expires_at = never;  // from Message Expiry Interval [MQTT-3.3.2-5]
    std::uint64_t origin = 0;       // session key of the publisher, for No Local
    std::uint64_t store_id = 0;     // id in the durable store; 0 while not stored
    std::uint8_t qos = 0;           // as published
    bool retain = false;            // as published

    bool expired(time_point now) const noexcept { return now >= expires_at; }

    // Seconds left of the Message Expiry Interval, rounded up so that a message is never
    // reported as expired (0) while still deliverable [MQTT-3.3.2-6].
    std::uint32_t remaining_expiry(time_point now) const noexcept {
        if (expires_at == never) return 0;
        auto left = std::chrono::ceil<std::chrono::seconds>(expires_at - now).count();
        return left <= 0 ? 0u : static_cast<std::uint32_t>(left);
    }

    // Bytes counted against queue limits.
    std::size_t footprint() const noexcept {
        return topic.size() + payload.size() + forwarded_properties.size();
    }
};

using message_ptr = std::shared_ptr<const message>;

// One message bound for one session, with what that session's subscriptions made of it.
struct delivery {
    message_ptr msg;
    std::vector<std::uint32_t> subscription_ids;  // [MQTT-3.3.4-3]
    std::uint8_t qos = 0;       // min(published QoS, granted QoS) [MQTT-3.8.4-8]
    bool retain = false;        // RETAIN flag to send
    // Row of this delivery in the durable store; 0 when it is not stored (QoS 0,
    // non-persistent session, durability none).
    std::uint64_t store_row = 0;
};

}  // namespace edgemq::session
