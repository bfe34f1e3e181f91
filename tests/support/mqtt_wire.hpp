// mqtt_wire: a deliberately small, independent MQTT 3.1.1 / 5.0 encoder and decoder
// for tests.
//
// Independent of broker/protocol on purpose: the conformance and integration suites
// must not share the code they check. Builders produce exactly the bytes asked for
// (including wrong ones: any flags, any property); parsers are strict enough to read
// what a correct broker sends and throw std::runtime_error on anything else, which
// doctest reports as a test failure with the message.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace edgemq::test::wire {

using bytes = std::vector<std::uint8_t>;

inline constexpr std::uint8_t v311 = 4;
inline constexpr std::uint8_t v5 = 5;

enum packet_type : std::uint8_t {
    CONNECT = 1, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP,
    SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH
};
std::string_view type_name(std::uint8_t type);

// "10 0c 00 04", "100c0004" or "10:0c"; anything else throws std::invalid_argument.
bytes from_hex(std::string_view hex);
std::string to_hex(std::span<const std::uint8_t> data);

// MQTT 5.0 property identifiers (section 2.2.2.2).
namespace prop {
inline constexpr std::uint8_t payload_format = 0x01, message_expiry = 0x02, content_type = 0x03,
    response_topic = 0x08, correlation_data = 0x09, subscription_id = 0x0B, session_expiry = 0x11,
    assigned_client_id = 0x12, server_keep_alive = 0x13, auth_method = 0x15, auth_data = 0x16,
    request_problem_info = 0x17, will_delay = 0x18, request_response_info = 0x19,
    response_info = 0x1A, server_reference = 0x1C, reason_string = 0x1F, receive_maximum = 0x21,
    topic_alias_maximum = 0x22, topic_alias = 0x23, maximum_qos = 0x24, retain_available = 0x25,
    user_property = 0x26, maximum_packet_size = 0x27, wildcard_sub_available = 0x28,
    sub_id_available = 0x29, shared_sub_available = 0x2A;
}

// Appends big-endian integers, variable byte integers and length-prefixed data.
struct writer {
    bytes out;
    writer& u8(std::uint8_t v);
    writer& u16(std::uint16_t v);
    writer& u32(std::uint32_t v);
    writer& varint(std::uint32_t v);
    writer& str(std::string_view s);  // 2-byte length + bytes (no UTF-8 check: tests send bad ones)
    writer& bin(std::span<const std::uint8_t> b);
    writer& raw(std::span<const std::uint8_t> b);
};

// A v5 property list being built; encode() prefixes the length.
struct props {
    writer w;
    props& byte(std::uint8_t id, std::uint8_t v) { w.u8(id).u8(v); return *this; }
    props& u16(std::uint8_t id, std::uint16_t v) { w.u8(id).u16(v); return *this; }
    props& u32(std::uint8_t id, std::uint32_t v) { w.u8(id).u32(v); return *this; }
    props& varint(std::uint8_t id, std::uint32_t v) { w.u8(id).varint(v); return *this; }
    props& str(std::uint8_t id, std::string_view s) { w.u8(id).str(s); return *this; }
    props& pair(std::uint8_t id, std::string_view k, std::string_view v) { w.u8(id).str(k).str(v); return *this; }
    bytes encode() const;
    bool empty() const { return w.out.empty(); }
};

struct property {
    std::uint8_t id = 0;
    std::uint32_t value = 0;  // byte, two byte, four byte and varint properties
    std::string str;          // string and binary properties; the name of a user property
    std::string str2;         // the value of a user property
};
using property_list = std::vector<property>;
// Parses length + properties at data[pos...]; advances pos. Throws on malformed input.
property_list parse_properties(std::span<const std::uint8_t> data, std::size_t& pos);
const property* find(const property_list& list, std::uint8_t id);
std::vector<std::uint32_t> values(const property_list& list, std::uint8_t id);

// A whole control packet: first byte and the bytes after the remaining length.
struct packet {
    std::uint8_t header = 0;
    bytes body;
    std::uint8_t type() const { return header >> 4; }
    std::uint8_t flags() const { return header & 0x0F; }
    bytes encode() const;
    std::string describe() const;  // "PUBLISH flags=0x2 [32 00 ...]" for failure messages
};
// Frames header + varint(body.size()) + body.
bytes frame(std::uint8_t header, std::span<const std::uint8_t> body);

// ---- builders ----

struct will_spec {
    std::string topic;
    std::string payload;
    std::uint8_t qos = 0;
    bool retain = false;
    props properties;  // v5 only
};

struct connect_spec {
    std::uint8_t version = v5;
    std::string client_id;
    bool clean = true;
    std::uint16_t keep_alive = 60;
    props properties;  // v5 only
    std::optional<will_spec> will;
    std::optional<std::string> username;
    std::optional<std::string> password;
};
bytes connect(const connect_spec& c);

struct publish_spec {
    std::uint8_t version = v5;
    std::string topic;
    std::string payload;
    std::uint8_t qos = 0;
    bool retain = false;
    bool dup = false;
    std::uint16_t packet_id = 0;
    props properties;  // v5 only
};
bytes publish(const publish_spec& p);

// PUBACK/PUBREC/PUBREL/PUBCOMP. v5 with reason 0 and no properties uses the short form.
bytes ack(std::uint8_t type, std::uint16_t packet_id, std::uint8_t version = v5, std::uint8_t reason = 0);

// Subscription options byte: QoS | No Local << 2 | Retain As Published << 3 | Retain Handling << 4.
constexpr std::uint8_t sub_options(std::uint8_t qos, bool no_local = false, bool rap = false,
                                   std::uint8_t retain_handling = 0) {
    return static_cast<std::uint8_t>(qos | (no_local ? 4 : 0) | (rap ? 8 : 0) | (retain_handling << 4));
}
struct subscription {
    std::string filter;
    std::uint8_t options = 0;
};
bytes subscribe(std::uint16_t packet_id, const std::vector<subscription>& subs, std::uint8_t version = v5,
                const props& properties = {});
bytes unsubscribe(std::uint16_t packet_id, const std::vector<std::string>& filters, std::uint8_t version = v5);
bytes pingreq();
bytes disconnect(std::uint8_t version = v5, std::uint8_t reason = 0, const props& properties = {});

// ---- parsers (throw std::runtime_error when the packet is not what they read) ----

struct connack_view {
    bool session_present = false;
    std::uint8_t reason = 0;  // v5 reason code or 3.1.1 return code
    property_list properties;
};
connack_view parse_connack(const packet& p, std::uint8_t version);

struct publish_view {
    std::string topic;
    std::string payload;
    std::uint8_t qos = 0;
    bool dup = false;
    bool retain = false;
    std::uint16_t packet_id = 0;
    property_list properties;
};
publish_view parse_publish(const packet& p, std::uint8_t version);

// PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK, SUBACK (reasons = the payload codes).
struct ack_view {
    std::uint16_t packet_id = 0;
    std::uint8_t reason = 0;  // first reason code, 0 when absent (short v5 form)
    property_list properties;
    bytes reasons;  // SUBACK/UNSUBACK payload
};
ack_view parse_ack(const packet& p, std::uint8_t version);

struct disconnect_view {
    std::uint8_t reason = 0;
    property_list properties;
};
disconnect_view parse_disconnect(const packet& p);

}  // namespace edgemq::test::wire
