// The MQTT control packets of 3.1.1 and 5.0 as plain values.
//
// Fields that exist only in 5.0 (properties, reason codes of acks, subscription
// options beyond QoS) are ignored by the 3.1.1 encoder and left at their defaults by
// the 3.1.1 decoder. Strings hold raw bytes; UTF-8 fields have been validated by the
// decoder.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "broker/protocol/properties.hpp"
#include "broker/protocol/reason_code.hpp"

namespace edgemq::protocol {

// The protocol level byte of CONNECT.
enum class protocol_version : std::uint8_t {
    v31 = 3,   // "MQIsdp", accepted and treated as 3.1.1
    v311 = 4,
    v5 = 5,
};

enum class packet_type : std::uint8_t {
    reserved = 0,
    connect = 1,
    connack = 2,
    publish = 3,
    puback = 4,
    pubrec = 5,
    pubrel = 6,
    pubcomp = 7,
    subscribe = 8,
    suback = 9,
    unsubscribe = 10,
    unsuback = 11,
    pingreq = 12,
    pingresp = 13,
    disconnect = 14,
    auth = 15,
};

struct will_message {
    std::string topic;
    std::string payload;
    std::uint8_t qos = 0;
    bool retain = false;
    properties props;  // will properties (v5)
    bool operator==(const will_message&) const = default;
};

struct connect {
    protocol_version version = protocol_version::v5;
    bool clean_start = true;  // "Clean Session" in 3.1.1
    std::uint16_t keep_alive = 0;
    std::string client_id;
    std::optional<will_message> will;
    std::optional<std::string> username;
    std::optional<std::string> password;  // binary data
    properties props;
    bool operator==(const connect&) const = default;
};

struct connack {
    bool session_present = false;
    reason_code code = reason_code::success;  // mapped to a 3.1.1 return code on encode
    properties props;
    bool operator==(const connack&) const = default;
};

struct publish {
    std::string topic;  // may be empty in v5 when a topic alias is set
    std::uint16_t packet_id = 0;  // 0 iff qos == 0
    std::uint8_t qos = 0;
    bool retain = false;
    bool dup = false;
    properties props;
    std::string payload;
    bool operator==(const publish&) const = default;
};

// PUBACK, PUBREC, PUBREL and PUBCOMP share one layout; the type is in the variant.
// In v5 the reason code and properties may be omitted on the wire when they are
// success and empty [MQTT-3.4.2-1 ff.].
struct puback {
    std::uint16_t packet_id = 0;
    reason_code code = reason_code::success;
    properties props;
    bool operator==(const puback&) const = default;
};
struct pubrec : puback {
    bool operator==(const pubrec&) const = default;
};
struct pubrel : puback {
    bool operator==(const pubrel&) const = default;
};
struct pubcomp : puback {
    bool operator==(const pubcomp&) const = default;
};

struct subscription_options {
    std::uint8_t qos = 0;
    bool no_local = false;             // v5
    bool retain_as_published = false;  // v5
    std::uint8_t retain_handling = 0;  // v5: 0 send, 1 send if new, 2 don't send
    bool operator==(const subscription_options&) const = default;
};

struct subscription_request {
    // As sent, including any "$share/group/" prefix. decode() checked its UTF-8 only:
    // the session runs validate_topic_filter() and refuses a bad one in SUBACK (0x8F).
    std::string filter;
    subscription_options options;
    bool operator==(const subscription_request&) const = default;
};

struct subscribe {
    std::uint16_t packet_id = 0;
    properties props;
    std::vector<subscription_request> entries;  // at least one
    bool operator==(const subscribe&) const = default;
};

struct suback {
    std::uint16_t packet_id = 0;
    properties props;
    // granted_qos_N / success, or a failure code (3.1.1: any failure encodes as 0x80).
    std::vector<reason_code> codes;
    bool operator==(const suback&) const = default;
};

struct unsubscribe {
    std::uint16_t packet_id = 0;
    properties props;
    std::vector<std::string> filters;  // at least one; syntax unchecked, as in subscribe
    bool operator==(const unsubscribe&) const = default;
};

struct unsuback {
    std::uint16_t packet_id = 0;
    properties props;
    std::vector<reason_code> codes;  // v5 only; 3.1.1 UNSUBACK has no payload
    bool operator==(const unsuback&) const = default;
};

struct pingreq {
    bool operator==(const pingreq&) const = default;
};
struct pingresp {
    bool operator==(const pingresp&) const = default;
};

struct disconnect {
    reason_code code = reason_code::success;  // v5 only
    properties props;
    bool operator==(const disconnect&) const = default;
};

struct auth {  // v5 only
    reason_code code = reason_code::success;
    properties props;
    bool operator==(const auth&) const = default;
};

using packet = std::variant<connect, connack, publish, puback, pubrec, pubrel, pubcomp,
                            subscribe, suback, unsubscribe, unsuback, pingreq, pingresp,
                            disconnect, auth>;

packet_type type_of(const packet& p) noexcept;
std::string_view to_string(packet_type type) noexcept;  // "PUBLISH", ...

// Packets a client may send to a server (CONNECT, PUBLISH, PUBACK, PUBREC, PUBREL,
// PUBCOMP, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT, AUTH); the rest only flow
// from server to client.
constexpr bool sent_by_client(packet_type t) noexcept {
    switch (t) {
        case packet_type::connack:
        case packet_type::suback:
        case packet_type::unsuback:
        case packet_type::pingresp:
        case packet_type::reserved:
            return false;
        default:
            return true;
    }
}
constexpr bool sent_by_server(packet_type t) noexcept {
    switch (t) {
        case packet_type::connect:
        case packet_type::subscribe:
        case packet_type::unsubscribe:
        case packet_type::pingreq:
        case packet_type::reserved:
            return false;
        default:
            return true;
    }
}

}  // namespace edgemq::protocol
