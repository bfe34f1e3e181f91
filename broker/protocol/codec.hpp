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
//
// Reason codes decode() returns (v5 terms; a 3.1.1 session just closes):
//   malformed_packet  framing: reserved type 0, AUTH in 3.1.1, reserved fixed-header
//                     flags [MQTT-2.1.3-1], PUBLISH QoS 3 [MQTT-3.3.1-4], DUP on QoS 0
//                     [MQTT-3.3.1-2], Packet Identifier 0 in any packet that has one
//                     [MQTT-2.2.1-3], ill-formed UTF-8 in any UTF-8 field [MQTT-1.5.4-1..2],
//                     a length running past the packet, bytes after the last field,
//                     unknown property ids and ids not allowed in that packet (table 2-4),
//                     reason codes not allowed in that packet (table 2-6), reserved
//                     CONNECT/CONNACK flag bits, Will QoS 3 or Will QoS/Retain without the
//                     Will Flag [MQTT-3.1.2-11..13], 3.1.1 password without user name
//                     [MQTT-3.1.2-22], protocol names other than "MQTT"/"MQIsdp"
//                     [MQTT-3.1.2-1], reserved subscription option bits (3.1.1 bits 2-7
//                     and QoS 3 [MQTT-3-8.3-4]; v5 bits 6-7 [MQTT-3.8.3-5]), an empty
//                     SUBSCRIBE/UNSUBSCRIBE/SUBACK in 3.1.1, 3.1.1 CONNACK/SUBACK return
//                     codes outside their tables.
//   protocol_error    a property given twice (User Property, and Subscription Identifier
//                     in PUBLISH, may repeat); 0/1 properties with another value (Payload
//                     Format Indicator, Request Problem/Response Information, Maximum QoS,
//                     Retain/Wildcard/Subscription Identifier/Shared Subscription
//                     Available); Receive Maximum 0; Maximum Packet Size 0; Subscription
//                     Identifier 0; Authentication Data without Authentication Method in
//                     CONNECT; a Response Topic that is not a valid Topic Name
//                     [MQTT-3.3.2-14]; v5 empty topic without Topic Alias (3.3.2.3.4); v5
//                     subscription option QoS 3 or Retain Handling 3 (3.8.3.1); No Local
//                     on a $share filter [MQTT-3.8.3-4]; v5 SUBSCRIBE/UNSUBSCRIBE without
//                     filters [MQTT-3.8.3-2, MQTT-3.10.3-2] and SUBACK/UNSUBACK without
//                     codes; v5 CONNACK with Session Present and a failure [MQTT-3.2.2-6].
//   topic_name_invalid   PUBLISH topic or Will Topic with '+' or '#' [MQTT-3.3.2-2],
//                        an empty Will Topic, an empty 3.1.1 PUBLISH topic [MQTT-4.7.3-1].
//   topic_alias_invalid  Topic Alias 0 [MQTT-3.3.2-8].
//   unsupported_protocol_version  CONNECT "MQTT" with a level other than 4 or 5, or
//                        "MQIsdp" with a level other than 3; peek_connect_preamble()
//                        then tells which CONNACK to answer with.
//
// Decisions the spec leaves open, made here:
// - Topic Filter syntax in SUBSCRIBE and UNSUBSCRIBE ('#' not last, '+' or '#' not alone
//   in a level, empty filter, bad $share name) does NOT fail decode. MQTT 5 lets the
//   server refuse just that entry (SUBACK/UNSUBACK reason code 0x8F Topic Filter
//   invalid; 3.1.1 SUBACK 0x80), so the session must call validate_topic_filter() on
//   every entry and answer per entry. Only UTF-8 errors, option bits and the
//   No Local/$share rule (which concern the packet, not the filter's meaning) fail it.
// - The Payload Format Indicator's claim is not checked against the payload (the
//   receiver MAY check it, 3.3.2.3.2, and the answer is an ack code, not a close).
// - AUTH without Authentication Method decodes: the session compares the method with
//   the CONNECT's anyway [MQTT-4.12.0-5], which covers its absence.
// - Non-minimal Variable Byte Integers are accepted (see varint.hpp); property ids are
//   one byte, so a byte >= 0x80 is an unknown id.
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
// ignored and taken from the packet. A body whose size differs from the header's
// Remaining Length is malformed.
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
// only (properties, ack reason codes, subscription options beyond QoS); a 3.1.1 CONNACK
// carries to_v311_connack_code(code), a 3.1.1 SUBACK writes every failure as 0x80.
// As in decode(), a CONNECT is written in its own `version` field ("MQIsdp" level 3 for
// v31), whatever `version` says. v5 acks, DISCONNECT and AUTH use the shortest form
// (no reason code when Success without properties, no Property Length when empty).
// The packet must be valid (encoding never fails); AUTH in 3.1.1 writes nothing.
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
