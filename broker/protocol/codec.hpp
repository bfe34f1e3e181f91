// The MQTT 3.1.1 / 5.0 codec: bytes to packets and packets to bytes, no I/O.
//
// Decoding is two-step so a connection can work on partial reads:
//   1. parse_fixed_header() on whatever bytes have arrived tells whether a whole
//      packet is there and how long it is (check the length against the Maximum Packet
//      Size before buffering the body);
//   2. decode() on exactly the packet's body yields the packet or an error carrying the
//      reason code the spec asks for (malformed_packet, protocol_error, ...).
// Nothing here throws on wire input and nothing reads past the given bytes.
//
// Validation done here is everything that can be judged from one packet alone:
// reserved fixed-header flags [MQTT-2.1.3-1], QoS 3 [MQTT-3.3.1-4], DUP with QoS 0
// [MQTT-3.3.1-2], packet identifier 0 [MQTT-2.2.1-3], UTF-8 rules [MQTT-1.5.4-1..2],
// topic name and filter syntax, property ids allowed per packet, duplicated
// properties, property value ranges, reason codes allowed per packet, subscription
// option reserved bits, empty SUBSCRIBE/UNSUBSCRIBE payloads, trailing bytes, and the
// CONNECT flag rules. State-dependent rules (topic alias ranges, Receive Maximum,
// packet direction, a second CONNECT) belong to the session.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "broker/protocol/packets.hpp"
#include "broker/protocol/result.hpp"

namespace edgemq::protocol {

struct fixed_header {
    packet_type type = packet_type::reserved;
    std::uint8_t flags = 0;                 // low nibble of the first byte
    std::uint32_t remaining_length = 0;
    std::uint8_t header_size = 0;           // 2..5 bytes

    std::size_t packet_size() const noexcept { return header_size + std::size_t{remaining_length}; }
};

enum class frame_status : std::uint8_t {
    need_more,  // not even the fixed header is complete yet
    ready,      // `out` is filled; the packet is complete iff buf.size() >= packet_size()
    malformed,  // remaining length needs more than 4 bytes [MQTT-1.5.5-1]
};

// Parses the fixed header at the front of `buf`. Does not validate type or flags
// (decode() does, so the error gets the right reason code).
frame_status parse_fixed_header(std::string_view buf, fixed_header& out) noexcept;

// Decodes the body (exactly `header.remaining_length` bytes following the fixed header)
// of any packet type. `version` is the connection's protocol version; for CONNECT it is
// ignored and taken from the packet.
result<packet> decode(protocol_version version, const fixed_header& header, std::string_view body);

// The protocol name and level of a CONNECT body when they can be read, so that a
// failed CONNECT can be answered in the client's own protocol version: v5 CONNACK with
// a reason code, 3.1.1 CONNACK with a return code. nullopt for unreadable input.
struct connect_preamble {
    std::string_view protocol_name;
    std::uint8_t level = 0;
};
std::optional<connect_preamble> peek_connect_preamble(std::string_view body) noexcept;

// Appends the complete encoding of `p` to `out`. 3.1.1 encodings drop everything v5
// only. The packet must be valid (encoding never fails).
void encode(protocol_version version, const packet& p, std::string& out);

// Size of the encoding encode() would produce, for Maximum Packet Size checks.
std::size_t encoded_size(protocol_version version, const packet& p);

// --- the broker's delivery path ----------------------------------------------------
//
// The broker forwards one stored message to many sessions. Each gets its own packet
// id, topic alias, subscription identifiers and remaining expiry, but the payload and
// the pass-through properties are shared. These two calls let the caller encode the
// pass-through properties once and then write just a PUBLISH header per delivery,
// sending the payload from the shared buffer.

// Appends the properties of a PUBLISH that the broker passes through unchanged
// [MQTT-3.3.2-...]: Payload Format Indicator, Content Type, Response Topic,
// Correlation Data and User Properties (in order [MQTT-3.3.2-18]), without a length
// prefix. Message Expiry Interval, Topic Alias and Subscription Identifier are skipped.
void encode_forwarded_properties(const properties& props, std::string& out);

struct publish_header {
    std::string_view topic;           // empty when only an alias is sent (v5)
    std::uint8_t qos = 0;
    bool retain = false;
    bool dup = false;
    std::uint16_t packet_id = 0;      // written iff qos > 0
    // v5 only, ignored for 3.1.1:
    std::optional<std::uint32_t> message_expiry_interval;
    std::uint16_t topic_alias = 0;    // 0 = none
    std::span<const std::uint32_t> subscription_identifiers;
    std::string_view forwarded_properties;  // from encode_forwarded_properties()
};

// Size of the whole PUBLISH packet (fixed header through payload) for this header and
// a payload of `payload_size` bytes.
std::size_t publish_packet_size(protocol_version version, const publish_header& h,
                                std::size_t payload_size) noexcept;

// Appends everything of a PUBLISH except the payload, which the caller sends right
// after. Returns the number of bytes appended.
std::size_t encode_publish_header(protocol_version version, const publish_header& h,
                                  std::size_t payload_size, std::string& out);

}  // namespace edgemq::protocol
