// Every malformed or forbidden packet we could list from the OASIS specifications, with
// the reason code the spec asks for. Test names cite the spec's normative ids
// ([MQTT-x.y.z-n]) or, where the rule has no id, its section.
#include <doctest/doctest.h>

#include "broker/protocol/validate.hpp"
#include "unit/protocol/codec_test_support.hpp"

using namespace edgemq::protocol;
using namespace edgemq::protocol::test;

namespace {

constexpr auto malformed_packet = reason_code::malformed_packet;
constexpr auto protocol_error = reason_code::protocol_error;

// CONNECT bodies up to and including the flags byte.
constexpr std::string_view mqtt5 = "0004 4d515454 05";
constexpr std::string_view mqtt311 = "0004 4d515454 04";

std::string connect5(std::string_view flags_hex, std::string_view props, std::string_view rest) {
    return std::string(mqtt5) + " " + std::string(flags_hex) + " 003c " + std::string(props) + " " +
           std::string(rest);
}
std::string connect311(std::string_view flags_hex, std::string_view rest) {
    return std::string(mqtt311) + " " + std::string(flags_hex) + " 003c " + std::string(rest);
}

// A v5 PUBLISH QoS 0 on topic "a" with the given property bytes.
std::string publish5_props(std::string_view props_body) { return "0001 61 " + props_hex(props_body); }

}  // namespace

// --- fixed header -------------------------------------------------------------------

TEST_CASE("MQTT-1.5.5-1 Remaining Length longer than four bytes is malformed") {
    fixed_header h;
    CHECK(parse_fixed_header(unhex("30 ff ff ff ff 01"), h) == frame_status::malformed);
    CHECK(parse_fixed_header(unhex("30 80 80 80 80"), h) == frame_status::malformed);
}

TEST_CASE("MQTT-2.1.4 fixed header waits for a complete Remaining Length") {
    fixed_header h;
    CHECK(parse_fixed_header("", h) == frame_status::need_more);
    CHECK(parse_fixed_header(unhex("30"), h) == frame_status::need_more);
    CHECK(parse_fixed_header(unhex("30 80"), h) == frame_status::need_more);
    CHECK(parse_fixed_header(unhex("30 ff ff ff"), h) == frame_status::need_more);
    REQUIRE(parse_fixed_header(unhex("3b ff ff ff 7f"), h) == frame_status::ready);
    CHECK(h.type == packet_type::publish);
    CHECK(h.flags == 0x0B);
    CHECK(h.remaining_length == 268'435'455);
    CHECK(h.header_size == 5);
    CHECK(h.packet_size() == 268'435'460);
    // Ready even when the body has not arrived yet: the caller compares packet_size().
    REQUIRE(parse_fixed_header(unhex("c0 00"), h) == frame_status::ready);
    CHECK(h.packet_size() == 2);
}

TEST_CASE("MQTT-2.1.2 packet type 0 is malformed") {
    CHECK(rejection(v5, 0x00, "") == malformed_packet);
    CHECK(rejection(v311, 0x00, "") == malformed_packet);
}

TEST_CASE("MQTT-2.1.2 AUTH in 3.1.1 is malformed") {
    CHECK(rejection(v311, 0xF0, "") == malformed_packet);
    CHECK(rejection(v31, 0xF0, "00") == malformed_packet);
}

TEST_CASE("MQTT-2.1.3-1 reserved fixed header flags are malformed") {
    struct bad_flags {
        std::uint8_t first;
        std::string_view body;
    };
    // Each packet type with otherwise valid bodies.
    const bad_flags cases[] = {
        {0x11, "0004 4d515454 05 02 003c 00 0000"},
        {0x18, "0004 4d515454 05 02 003c 00 0000"},
        {0x21, "00 00 00"},
        {0x41, "0001"},
        {0x52, "0001"},
        {0x60, "0001"},
        {0x63, "0001"},
        {0x6A, "0001"},
        {0x72, "0001"},
        {0x80, "0001 00 0001 61 00"},
        {0x83, "0001 00 0001 61 00"},
        {0x91, "0001 00 00"},
        {0xA0, "0001 00 0001 61"},
        {0xA3, "0001 00 0001 61"},
        {0xB2, "0001 00 00"},
        {0xC1, ""},
        {0xD8, ""},
        {0xE1, ""},
        {0xF1, ""},
    };
    for (const bad_flags& c : cases) {
        INFO("first byte " << int(c.first));
        CHECK(rejection(v5, c.first, c.body) == malformed_packet);
    }
    CHECK(rejection(v311, 0x60, "0001") == malformed_packet);
    CHECK(rejection(v311, 0x80, "0001 0001 61 00") == malformed_packet);
    CHECK(rejection(v311, 0xA0, "0001 0001 61") == malformed_packet);
    CHECK(rejection(v311, 0xE2, "") == malformed_packet);
}

TEST_CASE("MQTT-2.1.4 body shorter than the Remaining Length is malformed") {
    fixed_header h;
    REQUIRE(parse_fixed_header(unhex("40 02"), h) == frame_status::ready);
    const result<packet> r = decode(v5, h, unhex("00"));
    REQUIRE_FALSE(r.ok());
    CHECK(r.err().code == malformed_packet);
}

// --- PUBLISH ------------------------------------------------------------------------

TEST_CASE("MQTT-3.3.1-4 PUBLISH with QoS 3 is malformed") {
    CHECK(rejection(v5, 0x36, "0001 61 0001 00") == malformed_packet);
    CHECK(rejection(v311, 0x36, "0001 61 0001") == malformed_packet);
    CHECK(rejection(v311, 0x3F, "0001 61 0001") == malformed_packet);
}

TEST_CASE("MQTT-3.3.1-2 PUBLISH with DUP and QoS 0 is malformed") {
    CHECK(rejection(v5, 0x38, "0001 61 00") == malformed_packet);
    CHECK(rejection(v311, 0x39, "0001 61") == malformed_packet);
}

TEST_CASE("MQTT-2.2.1-3 PUBLISH QoS 1 or 2 with Packet Identifier 0 is malformed") {
    CHECK(rejection(v5, 0x32, "0001 61 0000 00") == malformed_packet);
    CHECK(rejection(v311, 0x34, "0001 61 0000") == malformed_packet);
}

TEST_CASE("MQTT-3.3.2-2 PUBLISH Topic Name with a wildcard is Topic Name invalid") {
    CHECK(rejection(v5, 0x30, "0003 612b62 00") == reason_code::topic_name_invalid);
    CHECK(rejection(v5, 0x30, "0001 23 00") == reason_code::topic_name_invalid);
    CHECK(rejection(v311, 0x30, "0003 612f23") == reason_code::topic_name_invalid);
    CHECK(rejection(v311, 0x30, "000c 61626364656667682b2f6162") == reason_code::topic_name_invalid);
}

TEST_CASE("MQTT-3.3.2.3.4 v5 PUBLISH with an empty topic and no Topic Alias is a Protocol Error") {
    CHECK(rejection(v5, 0x30, "0000 00") == protocol_error);
    CHECK(rejection(v5, 0x30, "0000 " + props_hex("01 01")) == protocol_error);
    const auto p = decoded_as<publish>(v5, 0x30, "0000 " + props_hex("23 0005") + " 78");
    CHECK(p.topic.empty());
    CHECK(p.props.topic_alias == 5);
    CHECK(p.payload == "x");
}

TEST_CASE("MQTT-4.7.3-1 3.1.1 PUBLISH with an empty topic is Topic Name invalid") {
    CHECK(rejection(v311, 0x30, "0000 78") == reason_code::topic_name_invalid);
}

TEST_CASE("MQTT-3.3.2-8 PUBLISH with Topic Alias 0 is Topic Alias invalid") {
    CHECK(rejection(v5, 0x30, publish5_props("23 0000")) == reason_code::topic_alias_invalid);
}

TEST_CASE("MQTT-3.3.2-1 PUBLISH Topic Name with ill-formed UTF-8 is malformed") {
    CHECK(rejection(v5, 0x30, "0003 ed a0 80 00") == malformed_packet);    // surrogate [MQTT-1.5.4-1]
    CHECK(rejection(v5, 0x30, "0002 c0 af 00") == malformed_packet);       // overlong
    CHECK(rejection(v311, 0x30, "0004 f4 90 80 80") == malformed_packet);  // above U+10FFFF
    CHECK(rejection(v311, 0x30, "0003 61 00 62") == malformed_packet);     // U+0000 [MQTT-1.5.4-2]
}

TEST_CASE("MQTT-1.5.4 PUBLISH topic length running past the packet is malformed") {
    CHECK(rejection(v5, 0x30, "0005 6162") == malformed_packet);
    CHECK(rejection(v311, 0x30, "00") == malformed_packet);
    CHECK(rejection(v311, 0x30, "") == malformed_packet);
}

TEST_CASE("MQTT-2.2.1 PUBLISH QoS 1 cut before its Packet Identifier is malformed") {
    CHECK(rejection(v311, 0x32, "0001 61") == malformed_packet);
    CHECK(rejection(v311, 0x32, "0001 61 00") == malformed_packet);
}

TEST_CASE("MQTT-2.2.2 v5 PUBLISH without a Property Length is malformed") {
    CHECK(rejection(v5, 0x30, "0001 61") == malformed_packet);
    CHECK(rejection(v5, 0x32, "0001 61 0001") == malformed_packet);
}

TEST_CASE("MQTT-2.2.2 Property Length running past the packet is malformed") {
    CHECK(rejection(v5, 0x30, "0001 61 05 0101") == malformed_packet);
    CHECK(rejection(v5, 0x30, "0001 61 ffffffff7f") == malformed_packet);  // 5-byte varint
    CHECK(rejection(v5, 0x30, "0001 61 80") == malformed_packet);          // varint cut short
}

TEST_CASE("MQTT-2.2.2 property value running past the property block is malformed") {
    CHECK(rejection(v5, 0x30, publish5_props("02 0000")) == malformed_packet);
    CHECK(rejection(v5, 0x30, publish5_props("03 0005 6162")) == malformed_packet);
    CHECK(rejection(v5, 0x30, publish5_props("23")) == malformed_packet);
    CHECK(rejection(v5, 0x30, publish5_props("26 0001 61")) == malformed_packet);
    CHECK(rejection(v5, 0x30, publish5_props("0b 80")) == malformed_packet);
}

TEST_CASE("MQTT-2.2.2.2 property not allowed in PUBLISH is malformed") {
    for (std::string_view prop : {"11 00000000", "12 0000", "13 0000", "15 0000", "16 0000", "17 00",
                                  "18 00000000", "19 00", "1a 0000", "1c 0000", "1f 0000", "21 0001",
                                  "22 0000", "24 00", "25 00", "27 00000001", "28 00", "29 00", "2a 00"}) {
        INFO(prop);
        CHECK(rejection(v5, 0x30, publish5_props(prop)) == malformed_packet);
    }
}

TEST_CASE("MQTT-2.2.2 unknown property identifier is malformed") {
    for (std::string_view prop : {"00 00", "04 00", "2b 00", "7f 00", "81 01 00"}) {
        INFO(prop);
        CHECK(rejection(v5, 0x30, publish5_props(prop)) == malformed_packet);
    }
}

TEST_CASE("MQTT-2.2.2 duplicated PUBLISH property is a Protocol Error") {
    CHECK(rejection(v5, 0x30, publish5_props("01 00 01 01")) == protocol_error);
    CHECK(rejection(v5, 0x30, publish5_props("02 00000001 02 00000002")) == protocol_error);
    CHECK(rejection(v5, 0x30, publish5_props("03 0000 03 0000")) == protocol_error);
    CHECK(rejection(v5, 0x30, publish5_props("08 0001 72 08 0001 72")) == protocol_error);
    CHECK(rejection(v5, 0x30, publish5_props("09 0000 09 0000")) == protocol_error);
    CHECK(rejection(v5, 0x30, publish5_props("23 0001 23 0001")) == protocol_error);
}

TEST_CASE("MQTT-3.3.2-18 User Properties repeat and keep their order") {
    const auto p = decoded_as<publish>(
        v5, 0x30, publish5_props("26 0001 62 0001 31  26 0001 61 0001 32  26 0001 62 0001 33"));
    CHECK(p.props.user_properties ==
          std::vector<user_property>{{"b", "1"}, {"a", "2"}, {"b", "3"}});
}

TEST_CASE("MQTT-3.3.4 PUBLISH may carry several Subscription Identifiers") {
    const auto p = decoded_as<publish>(v5, 0x30, publish5_props("0b 01 0b ffffff7f 0b 8001"));
    CHECK(p.props.subscription_identifiers == std::vector<std::uint32_t>{1, 268435455, 128});
}

TEST_CASE("MQTT-3.3.2.3.8 PUBLISH Subscription Identifier 0 is a Protocol Error") {
    CHECK(rejection(v5, 0x30, publish5_props("0b 00")) == protocol_error);
}

TEST_CASE("MQTT-1.5.5-1 Subscription Identifier above 268435455 is malformed") {
    CHECK(rejection(v5, 0x30, publish5_props("0b ffffffff7f")) == malformed_packet);
}

TEST_CASE("MQTT-3.3.2.3.2 Payload Format Indicator other than 0 or 1 is a Protocol Error") {
    CHECK(rejection(v5, 0x30, publish5_props("01 02")) == protocol_error);
    CHECK(rejection(v5, 0x30, publish5_props("01 ff")) == protocol_error);
}

TEST_CASE("MQTT-3.3.2-14 Response Topic with a wildcard is a Protocol Error") {
    CHECK(rejection(v5, 0x30, publish5_props("08 0003 612f23")) == protocol_error);
    CHECK(rejection(v5, 0x30, publish5_props("08 0000")) == protocol_error);
}

TEST_CASE("MQTT-3.3.2-13 Response Topic with ill-formed UTF-8 is malformed") {
    CHECK(rejection(v5, 0x30, publish5_props("08 0002 c0 80")) == malformed_packet);
}

TEST_CASE("MQTT-3.3.2-19 Content Type with ill-formed UTF-8 is malformed") {
    CHECK(rejection(v5, 0x30, publish5_props("03 0003 ed b0 80")) == malformed_packet);
}

TEST_CASE("MQTT-1.5.7-1 User Property with ill-formed UTF-8 is malformed") {
    CHECK(rejection(v5, 0x30, publish5_props("26 0001 ff 0000")) == malformed_packet);
    CHECK(rejection(v5, 0x30, publish5_props("26 0000 0001 00")) == malformed_packet);
}

TEST_CASE("MQTT-3.3.3 PUBLISH payload is opaque with NUL bytes and bad UTF-8 included") {
    const auto p = decoded_as<publish>(v5, 0x30, publish5_props("01 01") + " 00 ff c0 af");
    CHECK(p.payload == unhex("00 ff c0 af"));  // Payload Format Indicator is checked by the session
    const auto q = decoded_as<publish>(v311, 0x33, "0001 61 1234 00 ed a0 80");
    CHECK(q.packet_id == 0x1234);
    CHECK(q.qos == 1);
    CHECK(q.retain);
    CHECK(q.payload == unhex("00 ed a0 80"));
}

// --- CONNECT ------------------------------------------------------------------------

TEST_CASE("MQTT-3.1.2-1 CONNECT with an unknown protocol name is malformed") {
    CHECK(rejection(v5, 0x10, "0004 4d515454 ") == malformed_packet);  // cut before the level
    CHECK(rejection(v5, 0x10, "0004 6d717474 05 02 003c 00 0000") == malformed_packet);  // "mqtt"
    CHECK(rejection(v5, 0x10, "0003 4d5154 05 02 003c 00 0000") == malformed_packet);
    CHECK(rejection(v311, 0x10, "0006 4d5149736470 04 02 003c 0000") != reason_code::success);
}

TEST_CASE("MQTT-3.1.2-2 CONNECT with an unsupported protocol level") {
    CHECK(rejection(v5, 0x10, "0004 4d515454 06 02 003c 00 0000") == reason_code::unsupported_protocol_version);
    CHECK(rejection(v5, 0x10, "0004 4d515454 03 02 003c 0000") == reason_code::unsupported_protocol_version);
    CHECK(rejection(v5, 0x10, "0004 4d515454 00 02 003c 0000") == reason_code::unsupported_protocol_version);
    CHECK(rejection(v311, 0x10, "0006 4d5149736470 04 02 003c 0000") ==
          reason_code::unsupported_protocol_version);
}

TEST_CASE("MQTT-3.1.2-2 CONNECT MQIsdp level 3 decodes as MQTT 3.1") {
    const auto c = decoded_as<connect>(v311, 0x10, "0006 4d5149736470 03 02 003c 0003 616263");
    CHECK(c.version == v31);
    CHECK(c.client_id == "abc");
    CHECK(c.props == properties{});
}

TEST_CASE("MQTT-3.1.2-2 peek_connect_preamble reads name and level of any CONNECT") {
    // The preamble views into the body, so the bodies must outlive it.
    const std::string mqtt7 = unhex("0004 4d515454 07 ff");
    auto pre = peek_connect_preamble(mqtt7);
    REQUIRE(pre.has_value());
    CHECK(pre->protocol_name == "MQTT");
    CHECK(pre->level == 7);
    const std::string mqisdp = unhex("0006 4d5149736470 03");
    pre = peek_connect_preamble(mqisdp);
    REQUIRE(pre.has_value());
    CHECK(pre->protocol_name == "MQIsdp");
    CHECK_FALSE(peek_connect_preamble(unhex("0004 4d5154")).has_value());
    CHECK_FALSE(peek_connect_preamble(unhex("0004 4d515454")).has_value());
    CHECK_FALSE(peek_connect_preamble("").has_value());
}

TEST_CASE("MQTT-3.1.2-3 CONNECT with the reserved flag set is malformed") {
    CHECK(rejection(v5, 0x10, connect5("03", "00", "0000")) == malformed_packet);
    CHECK(rejection(v311, 0x10, connect311("01", "0000")) == malformed_packet);
}

TEST_CASE("MQTT-3.1.2-11 CONNECT with Will QoS but no Will Flag is malformed") {
    CHECK(rejection(v5, 0x10, connect5("0a", "00", "0000")) == malformed_packet);
    CHECK(rejection(v311, 0x10, connect311("12", "0000")) == malformed_packet);
}

TEST_CASE("MQTT-3.1.2-13 CONNECT with Will Retain but no Will Flag is malformed") {
    CHECK(rejection(v5, 0x10, connect5("22", "00", "0000")) == malformed_packet);
    CHECK(rejection(v311, 0x10, connect311("20", "0000")) == malformed_packet);
}

TEST_CASE("MQTT-3.1.2-12 CONNECT with Will QoS 3 is malformed") {
    CHECK(rejection(v5, 0x10, connect5("1e", "00", "0000 00 0001 74 0000")) == malformed_packet);
    CHECK(rejection(v311, 0x10, connect311("1c", "0000 0001 74 0000")) == malformed_packet);
}

TEST_CASE("MQTT-3.1.2-22 3.1.1 CONNECT with a password but no user name is malformed") {
    CHECK(rejection(v311, 0x10, connect311("42", "0000 0002 7077")) == malformed_packet);
    const auto c = decoded_as<connect>(v5, 0x10, connect5("42", "00", "0000 0002 7077"));
    CHECK(!c.username.has_value());
    CHECK(c.password == "pw");
}

TEST_CASE("MQTT-3.1.3-11 CONNECT Will Topic with a wildcard or empty is Topic Name invalid") {
    CHECK(rejection(v5, 0x10, connect5("06", "00", "0000 00 0001 23 0000")) == reason_code::topic_name_invalid);
    CHECK(rejection(v311, 0x10, connect311("06", "0000 0003 612b62 0000")) == reason_code::topic_name_invalid);
    CHECK(rejection(v311, 0x10, connect311("06", "0000 0000 0000")) == reason_code::topic_name_invalid);
}

TEST_CASE("MQTT-3.1.3-11 CONNECT Will Topic with ill-formed UTF-8 is malformed") {
    CHECK(rejection(v5, 0x10, connect5("06", "00", "0000 00 0002 c1 81 0000")) == malformed_packet);
}

TEST_CASE("MQTT-3.1.3-4 CONNECT Client Identifier with ill-formed UTF-8 is malformed") {
    CHECK(rejection(v5, 0x10, connect5("02", "00", "0002 c3 28")) == malformed_packet);
    CHECK(rejection(v311, 0x10, connect311("02", "0001 00")) == malformed_packet);
}

TEST_CASE("MQTT-3.1.3-12 CONNECT User Name with ill-formed UTF-8 is malformed") {
    CHECK(rejection(v5, 0x10, connect5("82", "00", "0000 0001 80")) == malformed_packet);
    CHECK(rejection(v311, 0x10, connect311("c2", "0000 0003 ed a0 80 0000")) == malformed_packet);
}

TEST_CASE("MQTT-3.1.3 CONNECT missing a field its flags announce is malformed") {
    CHECK(rejection(v5, 0x10, connect5("06", "00", "0000")) == malformed_packet);            // will
    CHECK(rejection(v5, 0x10, connect5("06", "00", "0000 00 0001 74")) == malformed_packet); // will payload
    CHECK(rejection(v311, 0x10, connect311("82", "0000")) == malformed_packet);              // user name
    CHECK(rejection(v311, 0x10, connect311("c2", "0000 0001 75")) == malformed_packet);      // password
    CHECK(rejection(v311, 0x10, connect311("02", "")) == malformed_packet);                  // client id
    CHECK(rejection(v311, 0x10, std::string(mqtt311) + " 02 00") == malformed_packet);       // keep alive
    CHECK(rejection(v5, 0x10, std::string(mqtt5) + " 02 003c") == malformed_packet);         // properties
}

TEST_CASE("MQTT-3.1.3 CONNECT with bytes after the last field is malformed") {
    CHECK(rejection(v5, 0x10, connect5("02", "00", "0000 00")) == malformed_packet);
    CHECK(rejection(v311, 0x10, connect311("02", "0000 ff")) == malformed_packet);
    CHECK(rejection(v311, 0x10, connect311("82", "0000 0001 75 0001 70")) == malformed_packet);
}

TEST_CASE("MQTT-3.1.2.11.3 CONNECT Receive Maximum 0 is a Protocol Error") {
    CHECK(rejection(v5, 0x10, connect5("02", props_hex("21 0000"), "0000")) == protocol_error);
}

TEST_CASE("MQTT-3.1.2.11.4 CONNECT Maximum Packet Size 0 is a Protocol Error") {
    CHECK(rejection(v5, 0x10, connect5("02", props_hex("27 00000000"), "0000")) == protocol_error);
}

TEST_CASE("MQTT-3.1.2.11.6 MQTT-3.1.2.11.7 CONNECT request flags other than 0 or 1 are Protocol Errors") {
    CHECK(rejection(v5, 0x10, connect5("02", props_hex("17 02"), "0000")) == protocol_error);
    CHECK(rejection(v5, 0x10, connect5("02", props_hex("19 02"), "0000")) == protocol_error);
}

TEST_CASE("MQTT-2.2.2 duplicated CONNECT property is a Protocol Error") {
    CHECK(rejection(v5, 0x10, connect5("02", props_hex("11 00000001 11 00000002"), "0000")) == protocol_error);
    CHECK(rejection(v5, 0x10, connect5("02", props_hex("15 0001 61 15 0001 61"), "0000")) == protocol_error);
    CHECK(rejection(v5, 0x10, connect5("02", props_hex("21 0001 21 0001"), "0000")) == protocol_error);
}

TEST_CASE("MQTT-2.2.2.2 property not allowed in CONNECT is malformed") {
    for (std::string_view prop : {"01 00", "02 00000000", "0b 01", "12 0000", "13 0000", "18 00000000",
                                  "1f 0000", "23 0001", "24 00", "2a 01"}) {
        INFO(prop);
        CHECK(rejection(v5, 0x10, connect5("02", props_hex(prop), "0000")) == malformed_packet);
    }
}

TEST_CASE("MQTT-2.2.2.2 property not allowed in Will Properties is malformed") {
    for (std::string_view prop : {"11 00000000", "23 0001", "0b 01", "21 0001", "1f 0000"}) {
        INFO(prop);
        CHECK(rejection(v5, 0x10, connect5("06", "00", "0000 " + props_hex(prop) + " 0001 74 0000")) ==
              malformed_packet);
    }
}

TEST_CASE("MQTT-2.2.2 duplicated Will Property is a Protocol Error") {
    CHECK(rejection(v5, 0x10, connect5("06", "00", "0000 " + props_hex("18 00000001 18 00000001") +
                                                       " 0001 74 0000")) == protocol_error);
}

TEST_CASE("MQTT-3.1.2.11.10 CONNECT Authentication Data without a method is a Protocol Error") {
    CHECK(rejection(v5, 0x10, connect5("02", props_hex("16 0001 00"), "0000")) == protocol_error);
}

TEST_CASE("MQTT-3.1.3 v5 CONNECT with a full will and every property decodes") {
    const auto c = decoded_as<connect>(
        v5, 0x10,
        connect5("f4", props_hex("11 0000000a 21 0010 27 00001000 22 0005 17 01 19 00 15 0001 6d 16 0001 00 26 0001 6b 0001 76"),
                 "0002 6964 " + props_hex("18 0000001e 01 01 02 0000003c 03 0001 63 08 0001 72 09 0002 0102 26 0000 0000") +
                     " 0001 77 0002 6279 0001 75 0001 70"));
    CHECK(c.keep_alive == 60);
    CHECK_FALSE(c.clean_start);
    CHECK(c.client_id == "id");
    CHECK(c.props.session_expiry_interval == 10);
    CHECK(c.props.receive_maximum == 16);
    CHECK(c.props.maximum_packet_size == 4096);
    REQUIRE(c.will.has_value());
    CHECK(c.will->qos == 2);
    CHECK(c.will->retain);
    CHECK(c.will->props.will_delay_interval == 30);
    CHECK(c.will->props.correlation_data == unhex("0102"));
    CHECK(c.will->topic == "w");
    CHECK(c.will->payload == "by");
    CHECK(c.username == "u");
    CHECK(c.password == "p");
}

// --- CONNACK ------------------------------------------------------------------------

TEST_CASE("MQTT-3.2.2-1 CONNACK with reserved acknowledge flags is malformed") {
    CHECK(rejection(v5, 0x20, "02 00 00") == malformed_packet);
    CHECK(rejection(v311, 0x20, "80 00") == malformed_packet);
}

TEST_CASE("MQTT-3.2.2.2 CONNACK with a reason code not allowed there is malformed") {
    for (std::string_view code : {"01", "04", "10", "8b", "8f", "a2", "ff"}) {
        INFO(code);
        CHECK(rejection(v5, 0x20, "00 " + std::string(code) + " 00") == malformed_packet);
    }
}

TEST_CASE("MQTT-3.2.2-4 3.1.1 CONNACK with a reserved return code is malformed") {
    CHECK(rejection(v311, 0x20, "00 06") == malformed_packet);
    CHECK(rejection(v311, 0x20, "00 80") == malformed_packet);
}

TEST_CASE("MQTT-3.2.2-6 CONNACK with Session Present and a failure is rejected") {
    CHECK(rejection(v5, 0x20, "01 87 00") == protocol_error);
    CHECK(rejection(v311, 0x20, "01 05") == malformed_packet);
}

TEST_CASE("MQTT-3.2.2.3 CONNACK flag properties other than 0 or 1 are Protocol Errors") {
    for (std::string_view prop : {"24 02", "25 02", "28 02", "29 02", "2a 02"}) {
        INFO(prop);
        CHECK(rejection(v5, 0x20, "00 00 " + props_hex(prop)) == protocol_error);
    }
    CHECK(rejection(v5, 0x20, "00 00 " + props_hex("21 0000")) == protocol_error);
    CHECK(rejection(v5, 0x20, "00 00 " + props_hex("27 00000000")) == protocol_error);
}

TEST_CASE("MQTT-2.2.2.2 property not allowed in CONNACK is malformed") {
    for (std::string_view prop : {"01 00", "0b 01", "17 00", "18 00000000", "19 00", "23 0001"}) {
        INFO(prop);
        CHECK(rejection(v5, 0x20, "00 00 " + props_hex(prop)) == malformed_packet);
    }
}

TEST_CASE("MQTT-3.2 CONNACK with a wrong length is malformed") {
    CHECK(rejection(v311, 0x20, "00 00 00") == malformed_packet);
    CHECK(rejection(v311, 0x20, "00") == malformed_packet);
    CHECK(rejection(v5, 0x20, "00 00") == malformed_packet);  // Property Length is required
    CHECK(rejection(v5, 0x20, "00 00 00 00") == malformed_packet);
}

// --- PUBACK, PUBREC, PUBREL, PUBCOMP --------------------------------------------------

TEST_CASE("MQTT-3.4.2-1 v5 acknowledgement with Remaining Length 2 is Success without properties") {
    const auto a = decoded_as<puback>(v5, 0x40, "1234");
    CHECK(a.packet_id == 0x1234);
    CHECK(a.code == reason_code::success);
    const auto b = decoded_as<pubrec>(v5, 0x50, "0001 10");  // Remaining Length 3: no Property Length
    CHECK(b.code == reason_code::no_matching_subscribers);
    CHECK(b.props == properties{});
    const auto c = decoded_as<pubrel>(v5, 0x62, "0001 92 " + props_hex("1f 0001 72"));
    CHECK(c.code == reason_code::packet_identifier_not_found);
    CHECK(c.props.reason_string == "r");
    const auto d = decoded_as<pubcomp>(v5, 0x70, "0001 00 00");
    CHECK(d.code == reason_code::success);
}

TEST_CASE("MQTT-3.4.2.1 acknowledgement with a reason code not allowed there is malformed") {
    CHECK(rejection(v5, 0x40, "0001 92") == malformed_packet);  // PUBREL/PUBCOMP only
    CHECK(rejection(v5, 0x50, "0001 81") == malformed_packet);
    CHECK(rejection(v5, 0x62, "0001 10") == malformed_packet);  // PUBACK/PUBREC only
    CHECK(rejection(v5, 0x70, "0001 80 00") == malformed_packet);
    CHECK(rejection(v5, 0x40, "0001 01") == malformed_packet);
}

TEST_CASE("MQTT-2.2.1-3 acknowledgement with Packet Identifier 0 is malformed") {
    CHECK(rejection(v5, 0x40, "0000") == malformed_packet);
    CHECK(rejection(v311, 0x50, "0000") == malformed_packet);
    CHECK(rejection(v311, 0x62, "0000") == malformed_packet);
    CHECK(rejection(v311, 0x70, "0000") == malformed_packet);
}

TEST_CASE("MQTT-3.4 acknowledgement with a wrong length is malformed") {
    CHECK(rejection(v311, 0x40, "0001 00") == malformed_packet);  // 3.1.1: exactly 2 bytes
    CHECK(rejection(v311, 0x40, "00") == malformed_packet);
    CHECK(rejection(v5, 0x40, "") == malformed_packet);
    CHECK(rejection(v5, 0x40, "0001 00 00 00") == malformed_packet);  // trailing byte
    CHECK(rejection(v5, 0x40, "0001 00 05 1f00") == malformed_packet);
}

TEST_CASE("MQTT-2.2.2.2 property not allowed in an acknowledgement is malformed") {
    CHECK(rejection(v5, 0x40, "0001 00 " + props_hex("23 0001")) == malformed_packet);
    CHECK(rejection(v5, 0x62, "0001 00 " + props_hex("11 00000000")) == malformed_packet);
}

TEST_CASE("MQTT-2.2.2 duplicated Reason String is a Protocol Error") {
    CHECK(rejection(v5, 0x50, "0001 00 " + props_hex("1f 0000 1f 0000")) == protocol_error);
    CHECK(rejection(v5, 0xE0, "00 " + props_hex("1f 0000 1f 0000")) == protocol_error);
}

TEST_CASE("MQTT-1.5.4-1 Reason String with ill-formed UTF-8 is malformed") {
    CHECK(rejection(v5, 0x40, "0001 00 " + props_hex("1f 0001 fe")) == malformed_packet);
}

// --- SUBSCRIBE ----------------------------------------------------------------------

TEST_CASE("MQTT-3.8.3-3 3.1.1 SUBSCRIBE without a Topic Filter is malformed") {
    CHECK(rejection(v311, 0x82, "0001") == malformed_packet);
}

TEST_CASE("MQTT-3.8.3-2 v5 SUBSCRIBE without a Topic Filter is a Protocol Error") {
    CHECK(rejection(v5, 0x82, "0001 00") == protocol_error);
}

TEST_CASE("MQTT-2.2.1-3 SUBSCRIBE with Packet Identifier 0 is malformed") {
    CHECK(rejection(v311, 0x82, "0000 0001 61 00") == malformed_packet);
    CHECK(rejection(v5, 0x82, "0000 00 0001 61 00") == malformed_packet);
}

TEST_CASE("MQTT-3-8.3-4 3.1.1 SUBSCRIBE with reserved option bits or QoS 3 is malformed") {
    CHECK(rejection(v311, 0x82, "0001 0001 61 04") == malformed_packet);
    CHECK(rejection(v311, 0x82, "0001 0001 61 80") == malformed_packet);
    CHECK(rejection(v311, 0x82, "0001 0001 61 03") == malformed_packet);
    CHECK(rejection(v311, 0x82, "0001 0001 61 00 0001 62 21") == malformed_packet);
}

TEST_CASE("MQTT-3.8.3-5 v5 SUBSCRIBE with reserved option bits 6-7 is malformed") {
    CHECK(rejection(v5, 0x82, "0001 00 0001 61 40") == malformed_packet);
    CHECK(rejection(v5, 0x82, "0001 00 0001 61 80") == malformed_packet);
}

TEST_CASE("MQTT-3.8.3.1 v5 SUBSCRIBE with Maximum QoS 3 is a Protocol Error") {
    CHECK(rejection(v5, 0x82, "0001 00 0001 61 03") == protocol_error);
}

TEST_CASE("MQTT-3.8.3.1 v5 SUBSCRIBE with Retain Handling 3 is a Protocol Error") {
    CHECK(rejection(v5, 0x82, "0001 00 0001 61 30") == protocol_error);
}

TEST_CASE("MQTT-3.8.3-4 v5 SUBSCRIBE with No Local on a Shared Subscription is a Protocol Error") {
    CHECK(rejection(v5, 0x82, "0001 00 " + str_hex("$share/g/t") + " 04") == protocol_error);
    const auto s = decoded_as<subscribe>(v5, 0x82, "0001 00 " + str_hex("$share/g/t") + " 0a");
    CHECK(s.entries.at(0).options.retain_as_published);
}

TEST_CASE("MQTT-3.8.3-1 SUBSCRIBE Topic Filter with ill-formed UTF-8 is malformed") {
    CHECK(rejection(v5, 0x82, "0001 00 0002 c0 80 00") == malformed_packet);
    CHECK(rejection(v311, 0x82, "0001 0001 00 00") == malformed_packet);
}

TEST_CASE("MQTT-3.8.3 SUBSCRIBE entry cut short is malformed") {
    CHECK(rejection(v5, 0x82, "0001 00 0001 61") == malformed_packet);        // no options byte
    CHECK(rejection(v311, 0x82, "0001 0001 61 00 0005 62") == malformed_packet);
    CHECK(rejection(v311, 0x82, "0001 0001 61 00 00") == malformed_packet);
}

TEST_CASE("MQTT-3.8.2.1.2 SUBSCRIBE Subscription Identifier 0 is a Protocol Error") {
    CHECK(rejection(v5, 0x82, "0001 " + props_hex("0b 00") + " 0001 61 00") == protocol_error);
}

TEST_CASE("MQTT-3.8.2.1.2 SUBSCRIBE with two Subscription Identifiers is a Protocol Error") {
    CHECK(rejection(v5, 0x82, "0001 " + props_hex("0b 01 0b 02") + " 0001 61 00") == protocol_error);
}

TEST_CASE("MQTT-2.2.2.2 property not allowed in SUBSCRIBE is malformed") {
    for (std::string_view prop : {"1f 0000", "23 0001", "11 00000000", "01 00"}) {
        INFO(prop);
        CHECK(rejection(v5, 0x82, "0001 " + props_hex(prop) + " 0001 61 00") == malformed_packet);
    }
}

TEST_CASE("MQTT-4.7.1-1 SUBSCRIBE with a bad filter decodes so the session can answer 0x8F for that entry") {
    // A filter that breaks the wildcard or share-name rules is not a framing error:
    // SUBACK can refuse just that entry (MQTT 5.0 3.9.3, reason code 0x8F), so decode
    // keeps the packet and validate_topic_filter() gives the per-entry answer.
    const auto s = decoded_as<subscribe>(
        v5, 0x82, "0001 00 " + str_hex("a/#/b") + " 01 " + str_hex("ok/+") + " 02 " + str_hex("") + " 00 " +
                      str_hex("$share//t") + " 00");
    REQUIRE(s.entries.size() == 4);
    CHECK(validate_topic_filter(s.entries[0].filter).err().code == reason_code::topic_filter_invalid);
    CHECK(validate_topic_filter(s.entries[1].filter).ok());
    CHECK(s.entries[1].options.qos == 2);
    CHECK(validate_topic_filter(s.entries[2].filter).err().code == reason_code::topic_filter_invalid);
    CHECK(validate_topic_filter(s.entries[3].filter).err().code == reason_code::topic_filter_invalid);
    const auto old = decoded_as<subscribe>(v311, 0x82, "0001 " + str_hex("a+") + " 00");
    CHECK_FALSE(validate_topic_filter(old.entries[0].filter).ok());
}

// --- SUBACK -------------------------------------------------------------------------

TEST_CASE("MQTT-3.9.3 v5 SUBACK with a reason code not allowed there is malformed") {
    CHECK(rejection(v5, 0x90, "0001 00 03") == malformed_packet);
    CHECK(rejection(v5, 0x90, "0001 00 00 81") == malformed_packet);
    CHECK(rejection(v5, 0x90, "0001 00 92") == malformed_packet);
}

TEST_CASE("MQTT-3.9.3-2 3.1.1 SUBACK return code other than 0x00-0x02 or 0x80 is malformed") {
    CHECK(rejection(v311, 0x90, "0001 03") == malformed_packet);
    CHECK(rejection(v311, 0x90, "0001 00 8f") == malformed_packet);
    const auto s = decoded_as<suback>(v311, 0x90, "0001 00 01 02 80");
    CHECK(s.codes.back() == reason_code::unspecified_error);
}

TEST_CASE("MQTT-3.9.3 SUBACK without return codes is rejected") {
    CHECK(rejection(v311, 0x90, "0001") == malformed_packet);
    CHECK(rejection(v5, 0x90, "0001 00") == protocol_error);
    CHECK(rejection(v5, 0x90, "0000 00 00") == malformed_packet);  // [MQTT-2.2.1-3]
}

// --- UNSUBSCRIBE / UNSUBACK ------------------------------------------------------------

TEST_CASE("MQTT-3.10.3-2 UNSUBSCRIBE without a Topic Filter is rejected") {
    CHECK(rejection(v311, 0xA2, "0001") == malformed_packet);
    CHECK(rejection(v5, 0xA2, "0001 00") == protocol_error);
}

TEST_CASE("MQTT-2.2.1-3 UNSUBSCRIBE with Packet Identifier 0 is malformed") {
    CHECK(rejection(v311, 0xA2, "0000 0001 61") == malformed_packet);
}

TEST_CASE("MQTT-3.10.3-1 UNSUBSCRIBE Topic Filter with ill-formed UTF-8 is malformed") {
    CHECK(rejection(v5, 0xA2, "0001 00 0001 ff") == malformed_packet);
    CHECK(rejection(v311, 0xA2, "0001 0001 61 0003 ed bf bf") == malformed_packet);
}

TEST_CASE("MQTT-3.10.3 UNSUBSCRIBE filter cut short is malformed") {
    CHECK(rejection(v311, 0xA2, "0001 0001 61 00") == malformed_packet);
    CHECK(rejection(v5, 0xA2, "0001 00 0004 61") == malformed_packet);
}

TEST_CASE("MQTT-2.2.2.2 property not allowed in UNSUBSCRIBE is malformed") {
    CHECK(rejection(v5, 0xA2, "0001 " + props_hex("0b 01") + " 0001 61") == malformed_packet);
    CHECK(rejection(v5, 0xA2, "0001 " + props_hex("1f 0000") + " 0001 61") == malformed_packet);
}

TEST_CASE("MQTT-3.11 3.1.1 UNSUBACK with a payload is malformed") {
    CHECK(rejection(v311, 0xB0, "0001 00") == malformed_packet);
    CHECK(rejection(v311, 0xB0, "0000") == malformed_packet);
}

TEST_CASE("MQTT-3.11.3 v5 UNSUBACK with a reason code not allowed there is malformed") {
    CHECK(rejection(v5, 0xB0, "0001 00 10") == malformed_packet);
    CHECK(rejection(v5, 0xB0, "0001 00 00 8e") == malformed_packet);
    CHECK(rejection(v5, 0xB0, "0001 00") == protocol_error);
}

// --- PINGREQ, PINGRESP, DISCONNECT, AUTH -----------------------------------------------

TEST_CASE("MQTT-3.12 MQTT-3.13 PINGREQ and PINGRESP with a body are malformed") {
    CHECK(rejection(v311, 0xC0, "00") == malformed_packet);
    CHECK(rejection(v5, 0xD0, "00") == malformed_packet);
}

TEST_CASE("MQTT-3.14 3.1.1 DISCONNECT with a body is malformed") {
    CHECK(rejection(v311, 0xE0, "00") == malformed_packet);
}

TEST_CASE("MQTT-3.14.2.1 v5 DISCONNECT forms and reason codes") {
    CHECK(decoded_as<disconnect>(v5, 0xE0, "").code == reason_code::success);
    CHECK(decoded_as<disconnect>(v5, 0xE0, "04").code == reason_code::disconnect_with_will_message);
    const auto d = decoded_as<disconnect>(v5, 0xE0, "9c " + props_hex("1c 0001 68 11 00000005"));
    CHECK(d.props.server_reference == "h");
    CHECK(d.props.session_expiry_interval == 5);
    CHECK(rejection(v5, 0xE0, "01") == malformed_packet);
    CHECK(rejection(v5, 0xE0, "84") == malformed_packet);
    CHECK(rejection(v5, 0xE0, "18") == malformed_packet);
}

TEST_CASE("MQTT-3.14 v5 DISCONNECT with a bad property block is rejected") {
    CHECK(rejection(v5, 0xE0, "00 " + props_hex("23 0001")) == malformed_packet);
    CHECK(rejection(v5, 0xE0, "00 " + props_hex("11 00000001 11 00000001")) == protocol_error);
    CHECK(rejection(v5, 0xE0, "00 00 00") == malformed_packet);
    CHECK(rejection(v5, 0xE0, "00 05 1f00") == malformed_packet);
}

TEST_CASE("MQTT-3.15.2.1 v5 AUTH forms and reason codes") {
    CHECK(decoded_as<auth>(v5, 0xF0, "").code == reason_code::success);
    CHECK(decoded_as<auth>(v5, 0xF0, "18").code == reason_code::continue_authentication);
    const auto a = decoded_as<auth>(v5, 0xF0, "19 " + props_hex("15 0001 6d 16 0002 0001 1f 0000"));
    CHECK(a.props.authentication_method == "m");
    CHECK(rejection(v5, 0xF0, "80") == malformed_packet);
    CHECK(rejection(v5, 0xF0, "04") == malformed_packet);
    CHECK(rejection(v5, 0xF0, "18 " + props_hex("11 00000001")) == malformed_packet);
    CHECK(rejection(v5, 0xF0, "18 " + props_hex("15 0001 6d 15 0001 6d")) == protocol_error);
    CHECK(rejection(v5, 0xF0, "18 " + props_hex("15 0001 fe")) == malformed_packet);
}
