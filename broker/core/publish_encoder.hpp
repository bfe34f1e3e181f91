// Encodes PUBLISH headers for deliveries, once per message and layout.
//
// Fanning one message out to many sessions of a worker produces the same PUBLISH
// header for every subscriber with the same layout (protocol version, QoS, RETAIN,
// DUP, remaining expiry) except for the packet identifier. The encoder keeps the
// header of the message it saw last, per layout, and patches the packet id in. Headers
// that differ per subscriber (subscription identifiers, topic alias) are encoded
// directly. One encoder per worker; not thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "broker/protocol/codec.hpp"
#include "broker/session/message.hpp"

namespace edgemq::core {

class publish_encoder {
public:
    // Appends the PUBLISH header of `h` (payload of `payload_size` bytes) to `out`.
    // `msg` identifies the message h was made from.
    void append_header(const session::message_ptr& msg, protocol::protocol_version version,
                       const protocol::publish_header& h, std::size_t payload_size, std::string& out);

    std::uint64_t cache_hits() const noexcept { return hits_; }

private:
    struct layout_slot {
        bool valid = false;
        std::optional<std::uint32_t> expiry;
        std::string header;
        std::size_t packet_id_offset = 0;  // position of the 2-byte packet id (QoS > 0)
    };
    static std::size_t slot_index(protocol::protocol_version v, const protocol::publish_header& h) noexcept {
        return ((v == protocol::protocol_version::v5 ? 1u : 0u) * 3 + h.qos) * 4 + (h.retain ? 2u : 0u) +
               (h.dup ? 1u : 0u);
    }

    session::message_ptr current_;  // held, so its address cannot be reused meanwhile
    std::array<layout_slot, 24> slots_;
    std::uint64_t hits_ = 0;
};

}  // namespace edgemq::core
