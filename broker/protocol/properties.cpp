#include "broker/protocol/properties.hpp"

#include "broker/protocol/validate.hpp"
#include "broker/protocol/wire.hpp"

namespace edgemq::protocol {

std::size_t encoded_size(const properties& props) {
    wire::size_sink sink;
    wire::put_property_values(props, sink);
    return sink.n;
}

namespace wire {

namespace {

using id = property_id;

constexpr std::uint64_t bit(id i) { return std::uint64_t{1} << static_cast<unsigned>(i); }
template <class... Ids>
constexpr std::uint64_t bits(Ids... ids) { return (bit(ids) | ...); }

constexpr std::uint64_t known_ids =
    bits(id::payload_format_indicator, id::message_expiry_interval, id::content_type,
         id::response_topic, id::correlation_data, id::subscription_identifier,
         id::session_expiry_interval, id::assigned_client_identifier, id::server_keep_alive,
         id::authentication_method, id::authentication_data, id::request_problem_information,
         id::will_delay_interval, id::request_response_information, id::response_information,
         id::server_reference, id::reason_string, id::receive_maximum, id::topic_alias_maximum,
         id::topic_alias, id::maximum_qos, id::retain_available, id::user_property,
         id::maximum_packet_size, id::wildcard_subscription_available,
         id::subscription_identifier_available, id::shared_subscription_available);

// MQTT 5.0 section 2.2.2.2, table 2-4: which packet may carry which property.
constexpr std::uint64_t allowed_ids(property_context c) {
    switch (c) {
        case property_context::connect:
            return bits(id::session_expiry_interval, id::authentication_method,
                        id::authentication_data, id::request_problem_information,
                        id::request_response_information, id::receive_maximum,
                        id::topic_alias_maximum, id::user_property, id::maximum_packet_size);
        case property_context::will:
            return bits(id::payload_format_indicator, id::message_expiry_interval,
                        id::content_type, id::response_topic, id::correlation_data,
                        id::will_delay_interval, id::user_property);
        case property_context::connack:
            return bits(id::session_expiry_interval, id::assigned_client_identifier,
                        id::server_keep_alive, id::authentication_method,
                        id::authentication_data, id::response_information, id::server_reference,
                        id::reason_string, id::receive_maximum, id::topic_alias_maximum,
                        id::maximum_qos, id::retain_available, id::user_property,
                        id::maximum_packet_size, id::wildcard_subscription_available,
                        id::subscription_identifier_available, id::shared_subscription_available);
        case property_context::publish:
            return bits(id::payload_format_indicator, id::message_expiry_interval,
                        id::content_type, id::response_topic, id::correlation_data,
                        id::subscription_identifier, id::topic_alias, id::user_property);
        case property_context::ack:
        case property_context::suback:
        case property_context::unsuback:
            return bits(id::reason_string, id::user_property);
        case property_context::subscribe:
            return bits(id::subscription_identifier, id::user_property);
        case property_context::unsubscribe:
            return bits(id::user_property);
        case property_context::disconnect:
            return bits(id::session_expiry_interval, id::server_reference, id::reason_string,
                        id::user_property);
        case property_context::auth:
            return bits(id::authentication_method, id::authentication_data, id::reason_string,
                        id::user_property);
    }
    return 0;
}

// Byte properties whose only values are 0 and 1. The spec calls any other value a
// Protocol Error for Request Problem/Response Information (3.1.2.11.6-7), Maximum QoS,
// Retain/Wildcard/Subscription Identifier/Shared Subscription Available (3.2.2.3.4 ff.).
// Payload Format Indicator (3.3.2.3.2) defines only 0 and 1 without naming the error;
// it is treated the same way.
bool read_flag(reader& r, std::optional<std::uint8_t>& out, const char* what) {
    std::uint8_t v;
    if (!r.u8(v)) return false;
    if (v > 1) return r.fail(reason_code::protocol_error, what);
    out = v;
    return true;
}

bool read_u32(reader& r, std::optional<std::uint32_t>& out) {
    std::uint32_t v;
    if (!r.u32(v)) return false;
    out = v;
    return true;
}

bool read_u16(reader& r, std::optional<std::uint16_t>& out) {
    std::uint16_t v;
    if (!r.u16(v)) return false;
    out = v;
    return true;
}

bool read_utf8(reader& r, std::optional<std::string>& out, const char* what) {
    std::string_view v;
    if (!r.utf8(v, what)) return false;
    out.emplace(v);
    return true;
}

bool read_binary(reader& r, std::optional<std::string>& out) {
    std::string_view v;
    if (!r.prefixed(v)) return false;
    out.emplace(v);
    return true;
}

bool read_one(reader& r, id property, property_context context, properties& out) {
    switch (property) {
        case id::payload_format_indicator:
            return read_flag(r, out.payload_format_indicator,
                             "[MQTT-3.3.2.3.2] Payload Format Indicator other than 0 or 1");
        case id::message_expiry_interval:
            return read_u32(r, out.message_expiry_interval);
        case id::content_type:
            return read_utf8(r, out.content_type, "[MQTT-3.3.2-19] Content Type is not valid UTF-8");
        case id::response_topic: {
            std::string_view v;
            if (!r.utf8(v, "[MQTT-3.3.2-13] Response Topic is not valid UTF-8")) return false;
            // A Response Topic is a Topic Name [MQTT-3.3.2-13]; wildcards are forbidden
            // [MQTT-3.3.2-14]. No reason code is named; this is a Protocol Error.
            if (!validate_topic_name(v))
                return r.fail(reason_code::protocol_error,
                              "[MQTT-3.3.2-14] Response Topic is not a valid Topic Name");
            out.response_topic.emplace(v);
            return true;
        }
        case id::correlation_data:
            return read_binary(r, out.correlation_data);
        case id::subscription_identifier: {
            std::uint32_t v;
            if (!r.varint(v)) return false;
            if (v == 0)
                return r.fail(reason_code::protocol_error,
                              context == property_context::subscribe
                                  ? "[MQTT-3.8.2.1.2] Subscription Identifier 0"
                                  : "[MQTT-3.3.2.3.8] Subscription Identifier 0");
            out.subscription_identifiers.push_back(v);
            return true;
        }
        case id::session_expiry_interval:
            return read_u32(r, out.session_expiry_interval);
        case id::assigned_client_identifier:
            return read_utf8(r, out.assigned_client_identifier,
                             "[MQTT-1.5.4-1] Assigned Client Identifier is not valid UTF-8");
        case id::server_keep_alive:
            return read_u16(r, out.server_keep_alive);
        case id::authentication_method:
            return read_utf8(r, out.authentication_method,
                             "[MQTT-1.5.4-1] Authentication Method is not valid UTF-8");
        case id::authentication_data:
            return read_binary(r, out.authentication_data);
        case id::request_problem_information:
            return read_flag(r, out.request_problem_information,
                             "[MQTT-3.1.2.11.7] Request Problem Information other than 0 or 1");
        case id::will_delay_interval:
            return read_u32(r, out.will_delay_interval);
        case id::request_response_information:
            return read_flag(r, out.request_response_information,
                             "[MQTT-3.1.2.11.6] Request Response Information other than 0 or 1");
        case id::response_information:
            return read_utf8(r, out.response_information,
                             "[MQTT-1.5.4-1] Response Information is not valid UTF-8");
        case id::server_reference:
            return read_utf8(r, out.server_reference,
                             "[MQTT-1.5.4-1] Server Reference is not valid UTF-8");
        case id::reason_string:
            return read_utf8(r, out.reason_string, "[MQTT-1.5.4-1] Reason String is not valid UTF-8");
        case id::receive_maximum: {
            if (!read_u16(r, out.receive_maximum)) return false;
            if (*out.receive_maximum == 0)
                return r.fail(reason_code::protocol_error, "[MQTT-3.1.2.11.3] Receive Maximum 0");
            return true;
        }
        case id::topic_alias_maximum:
            return read_u16(r, out.topic_alias_maximum);
        case id::topic_alias: {
            if (!read_u16(r, out.topic_alias)) return false;
            if (*out.topic_alias == 0)
                return r.fail(reason_code::topic_alias_invalid, "[MQTT-3.3.2-8] Topic Alias 0");
            return true;
        }
        case id::maximum_qos:
            return read_flag(r, out.maximum_qos, "[MQTT-3.2.2.3.4] Maximum QoS other than 0 or 1");
        case id::retain_available:
            return read_flag(r, out.retain_available,
                             "[MQTT-3.2.2.3.5] Retain Available other than 0 or 1");
        case id::user_property: {
            std::string_view key, value;
            if (!r.utf8(key, "[MQTT-1.5.7-1] User Property name is not valid UTF-8") ||
                !r.utf8(value, "[MQTT-1.5.7-1] User Property value is not valid UTF-8"))
                return false;
            out.user_properties.emplace_back(std::string(key), std::string(value));
            return true;
        }
        case id::maximum_packet_size: {
            if (!read_u32(r, out.maximum_packet_size)) return false;
            if (*out.maximum_packet_size == 0)
                return r.fail(reason_code::protocol_error, "[MQTT-3.1.2.11.4] Maximum Packet Size 0");
            return true;
        }
        case id::wildcard_subscription_available:
            return read_flag(r, out.wildcard_subscription_available,
                             "[MQTT-3.2.2.3.11] Wildcard Subscription Available other than 0 or 1");
        case id::subscription_identifier_available:
            return read_flag(r, out.subscription_identifier_available,
                             "[MQTT-3.2.2.3.12] Subscription Identifier Available other than 0 or 1");
        case id::shared_subscription_available:
            return read_flag(r, out.shared_subscription_available,
                             "[MQTT-3.2.2.3.13] Shared Subscription Available other than 0 or 1");
    }
    return r.fail(reason_code::malformed_packet, "[MQTT-2.2.2] unknown property identifier");
}

}  // namespace

bool read_properties(reader& r, property_context context, properties& out) {
    std::uint32_t length;
    if (!r.varint(length)) return false;
    if (length > r.remaining())
        return r.fail(reason_code::malformed_packet, "[MQTT-2.2.2] Property Length runs past the packet");
    std::string_view block;
    r.take(length, block);
    reader pr(block);
    const std::uint64_t allowed = allowed_ids(context);
    std::uint64_t seen = 0;
    while (!pr.empty()) {
        std::uint8_t raw;
        pr.u8(raw);
        // Identifiers are Variable Byte Integers, but all defined ones fit in one byte,
        // so a byte >= 0x40 (continuation bit included) is never a known id.
        const std::uint64_t mask = raw < 64 ? std::uint64_t{1} << raw : 0;
        if ((known_ids & mask) == 0)
            return r.fail(reason_code::malformed_packet, "[MQTT-2.2.2] unknown property identifier");
        if ((allowed & mask) == 0)
            return r.fail(reason_code::malformed_packet,
                          "[MQTT-2.2.2.2] property not allowed in this packet");
        const auto property = static_cast<id>(raw);
        const bool repeatable =
            property == id::user_property ||
            (property == id::subscription_identifier && context == property_context::publish);
        if (!repeatable && (seen & mask) != 0)
            return r.fail(reason_code::protocol_error, "[MQTT-2.2.2] property included more than once");
        seen |= mask;
        if (!read_one(pr, property, context, out)) return r.fail(pr.err());
    }
    return true;
}

}  // namespace wire

}  // namespace edgemq::protocol
