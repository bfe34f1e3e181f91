// Helpers for the protocol unit tests: hex in, packets out, and the other way round.
#pragma once

#include <doctest/doctest.h>

#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>

#include "broker/protocol/codec.hpp"
#include "broker/protocol/varint.hpp"

namespace edgemq::protocol::test {

inline constexpr auto v31 = protocol_version::v31;
inline constexpr auto v311 = protocol_version::v311;
inline constexpr auto v5 = protocol_version::v5;

// "00 0a 61" -> bytes; spaces are ignored.
inline std::string unhex(std::string_view text) {
    std::string out;
    int high = -1;
    for (char c : text) {
        if (std::isspace(static_cast<unsigned char>(c))) continue;
        const int nibble = std::isdigit(static_cast<unsigned char>(c))
                               ? c - '0'
                               : std::tolower(static_cast<unsigned char>(c)) - 'a' + 10;
        REQUIRE(nibble >= 0);
        REQUIRE(nibble < 16);
        if (high < 0) {
            high = nibble;
        } else {
            out.push_back(static_cast<char>(high << 4 | nibble));
            high = -1;
        }
    }
    REQUIRE(high < 0);
    return out;
}

inline std::string to_hex(std::string_view bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
        if (!out.empty()) out.push_back(' ');
        out.push_back(digits[c >> 4]);
        out.push_back(digits[c & 15]);
    }
    return out;
}

// A UTF-8 string or binary field as hex: two-byte length, then the bytes.
inline std::string str_hex(std::string_view s) {
    std::string field;
    field.push_back(static_cast<char>(s.size() >> 8));
    field.push_back(static_cast<char>(s.size() & 0xFF));
    field.append(s);
    return to_hex(field);
}

// A property block as hex: Property Length, then the given property bytes.
inline std::string props_hex(std::string_view body_hex) {
    const std::string body = unhex(body_hex);
    std::string out;
    write_varint(static_cast<std::uint32_t>(body.size()), out);
    out += body;
    return to_hex(out);
}

// A whole packet: the first byte, the Remaining Length computed from the body.
inline std::string frame(std::uint8_t first_byte, std::string_view body_hex) {
    const std::string body = unhex(body_hex);
    std::string out(1, static_cast<char>(first_byte));
    write_varint(static_cast<std::uint32_t>(body.size()), out);
    out += body;
    return out;
}

inline result<packet> decode_bytes(protocol_version version, std::string_view bytes) {
    fixed_header header;
    REQUIRE(parse_fixed_header(bytes, header) == frame_status::ready);
    REQUIRE(bytes.size() == header.packet_size());
    return decode(version, header, bytes.substr(header.header_size));
}

inline result<packet> decode_frame(protocol_version version, std::uint8_t first_byte,
                                   std::string_view body_hex) {
    return decode_bytes(version, frame(first_byte, body_hex));
}

// The reason code a malformed frame is rejected with (fails the test if it decodes).
inline reason_code rejection(protocol_version version, std::uint8_t first_byte,
                             std::string_view body_hex) {
    const result<packet> r = decode_frame(version, first_byte, body_hex);
    REQUIRE_MESSAGE(!r.ok(), "decoded although malformed: ", body_hex);
    INFO(r.err().what);
    return r.err().code;
}

template <class T>
T decoded_as(protocol_version version, std::uint8_t first_byte, std::string_view body_hex) {
    result<packet> r = decode_frame(version, first_byte, body_hex);
    if (!r.ok()) FAIL("decode failed: ", r.err().what);
    REQUIRE(std::holds_alternative<T>(*r));
    return std::get<T>(std::move(r).value());
}

inline std::string encoded(protocol_version version, const packet& p) {
    std::string out;
    encode(version, p, out);
    CHECK(out.size() == encoded_size(version, p));
    return out;
}

// Encodes, checks the size prediction, decodes again.
inline packet round_trip(protocol_version version, const packet& p) {
    const std::string bytes = encoded(version, p);
    result<packet> r = decode_bytes(version, bytes);
    if (!r.ok()) FAIL("re-decode failed: ", r.err().what, " bytes: ", to_hex(bytes));
    return std::move(r).value();
}

// Properties with every field allowed in each packet (MQTT 5.0 table 2-4).
inline properties connect_properties() {
    properties p;
    p.session_expiry_interval = 3600;
    p.authentication_method = "SCRAM-SHA-1";
    p.authentication_data = std::string("\x00\x01\xff", 3);
    p.request_problem_information = 0;
    p.request_response_information = 1;
    p.receive_maximum = 20;
    p.topic_alias_maximum = 10;
    p.user_properties = {{"k", "v"}, {"k", "v2"}, {"", ""}};
    p.maximum_packet_size = 1 << 20;
    return p;
}

inline properties will_properties() {
    properties p;
    p.payload_format_indicator = 1;
    p.message_expiry_interval = 60;
    p.content_type = "text/plain";
    p.response_topic = "reply/here";
    p.correlation_data = std::string("\x00\x01", 2);
    p.will_delay_interval = 5;
    p.user_properties = {{"w", "1"}};
    return p;
}

inline properties connack_properties() {
    properties p;
    p.session_expiry_interval = 0xFFFFFFFF;
    p.assigned_client_identifier = "auto-1234";
    p.server_keep_alive = 30;
    p.authentication_method = "SCRAM-SHA-1";
    p.authentication_data = "server-first";
    p.response_information = "resp/";
    p.server_reference = "other:1883";
    p.reason_string = "welcome";
    p.receive_maximum = 65535;
    p.topic_alias_maximum = 100;
    p.maximum_qos = 1;
    p.retain_available = 0;
    p.user_properties = {{"a", "b"}};
    p.maximum_packet_size = 268435460;
    p.wildcard_subscription_available = 1;
    p.subscription_identifier_available = 0;
    p.shared_subscription_available = 1;
    return p;
}

inline properties publish_properties() {
    properties p;
    p.payload_format_indicator = 0;
    p.message_expiry_interval = 120;
    p.content_type = "application/json";
    p.response_topic = "r/t";
    p.correlation_data = std::string("\xde\xad\x00\xbe\xef", 5);
    p.subscription_identifiers = {1, 127, 128, 268435455};
    p.topic_alias = 7;
    p.user_properties = {{"z", "1"}, {"a", "2"}, {"z", "3"}};
    return p;
}

inline properties reason_properties() {
    properties p;
    p.reason_string = "because";
    p.user_properties = {{"x", "y"}};
    return p;
}

}  // namespace edgemq::protocol::test
