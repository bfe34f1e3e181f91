// MQTT 5.0 properties (section 2.2.2): one struct with a field per property.
//
// Absent properties are empty optionals. Which properties a packet may carry is
// checked by the decoder (a property not allowed in that packet is a Malformed Packet,
// a property given twice where only one is allowed is a Protocol Error); the encoder
// writes whatever is set, in identifier order, and never checks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace edgemq::protocol {

enum class property_id : std::uint8_t {
    payload_format_indicator = 0x01,
    message_expiry_interval = 0x02,
    content_type = 0x03,
    response_topic = 0x08,
    correlation_data = 0x09,
    subscription_identifier = 0x0B,
    session_expiry_interval = 0x11,
    assigned_client_identifier = 0x12,
    server_keep_alive = 0x13,
    authentication_method = 0x15,
    authentication_data = 0x16,
    request_problem_information = 0x17,
    will_delay_interval = 0x18,
    request_response_information = 0x19,
    response_information = 0x1A,
    server_reference = 0x1C,
    reason_string = 0x1F,
    receive_maximum = 0x21,
    topic_alias_maximum = 0x22,
    topic_alias = 0x23,
    maximum_qos = 0x24,
    retain_available = 0x25,
    user_property = 0x26,
    maximum_packet_size = 0x27,
    wildcard_subscription_available = 0x28,
    subscription_identifier_available = 0x29,
    shared_subscription_available = 0x2A,
};

using user_property = std::pair<std::string, std::string>;

struct properties {
    std::optional<std::uint8_t> payload_format_indicator;
    std::optional<std::uint32_t> message_expiry_interval;
    std::optional<std::string> content_type;
    std::optional<std::string> response_topic;
    std::optional<std::string> correlation_data;  // binary data
    // PUBLISH from the server may carry several; SUBSCRIBE at most one. Values 1..268435455.
    std::vector<std::uint32_t> subscription_identifiers;
    std::optional<std::uint32_t> session_expiry_interval;
    std::optional<std::string> assigned_client_identifier;
    std::optional<std::uint16_t> server_keep_alive;
    std::optional<std::string> authentication_method;
    std::optional<std::string> authentication_data;  // binary data
    std::optional<std::uint8_t> request_problem_information;
    std::optional<std::uint32_t> will_delay_interval;
    std::optional<std::uint8_t> request_response_information;
    std::optional<std::string> response_information;
    std::optional<std::string> server_reference;
    std::optional<std::string> reason_string;
    std::optional<std::uint16_t> receive_maximum;
    std::optional<std::uint16_t> topic_alias_maximum;
    std::optional<std::uint16_t> topic_alias;
    std::optional<std::uint8_t> maximum_qos;
    std::optional<std::uint8_t> retain_available;
    std::vector<user_property> user_properties;  // order preserved [MQTT-3.3.2-18]
    std::optional<std::uint32_t> maximum_packet_size;
    std::optional<std::uint8_t> wildcard_subscription_available;
    std::optional<std::uint8_t> subscription_identifier_available;
    std::optional<std::uint8_t> shared_subscription_available;

    bool operator==(const properties&) const = default;
};

// Number of bytes the encoded property block takes, excluding its length prefix.
std::size_t encoded_size(const properties& props);

}  // namespace edgemq::protocol
