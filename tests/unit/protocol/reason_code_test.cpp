#include <doctest/doctest.h>

#include <set>

#include "broker/protocol/packets.hpp"
#include "broker/protocol/reason_code.hpp"

using namespace edgemq::protocol;

namespace {

std::set<int> allowed_codes(reason_context context) {
    std::set<int> out;
    for (int c = 0; c < 256; ++c)
        if (is_valid_for(context, static_cast<reason_code>(c))) out.insert(c);
    return out;
}

}  // namespace

TEST_CASE("MQTT-2.4 reason codes per packet match table 2-6") {
    CHECK(allowed_codes(reason_context::connack) ==
          std::set<int>{0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C,
                        0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F});
    CHECK(allowed_codes(reason_context::puback) ==
          std::set<int>{0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99});
    CHECK(allowed_codes(reason_context::pubrel) == std::set<int>{0x00, 0x92});
    CHECK(allowed_codes(reason_context::suback) ==
          std::set<int>{0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2});
    CHECK(allowed_codes(reason_context::unsuback) ==
          std::set<int>{0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91});
    CHECK(allowed_codes(reason_context::disconnect) ==
          std::set<int>{0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F,
                        0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D,
                        0x9E, 0x9F, 0xA0, 0xA1, 0xA2});
    CHECK(allowed_codes(reason_context::auth) == std::set<int>{0x00, 0x18, 0x19});
}

TEST_CASE("MQTT-2.4 reason code names and failure bit") {
    CHECK(to_string(reason_code::malformed_packet) == "Malformed Packet");
    CHECK(to_string(reason_code::protocol_error) == "Protocol Error");
    CHECK(to_string(reason_code::wildcard_subscriptions_not_supported) == "Wildcard Subscriptions not supported");
    CHECK(to_string(static_cast<reason_code>(0x03)) == "unknown");
    for (int c = 0; c < 256; ++c) {
        const auto code = static_cast<reason_code>(c);
        if (to_string(code) != "unknown") CHECK(is_failure(code) == (c >= 0x80));
    }
}

TEST_CASE("MQTT-3.2.2.3 3.1.1 CONNACK return codes map to and from v5 reason codes") {
    CHECK(to_v311_connack_code(reason_code::success) == 0);
    CHECK(to_v311_connack_code(reason_code::unsupported_protocol_version) == 1);
    CHECK(to_v311_connack_code(reason_code::client_identifier_not_valid) == 2);
    CHECK(to_v311_connack_code(reason_code::server_unavailable) == 3);
    CHECK(to_v311_connack_code(reason_code::server_busy) == 3);
    CHECK(to_v311_connack_code(reason_code::banned) == 3);
    CHECK(to_v311_connack_code(reason_code::bad_user_name_or_password) == 4);
    CHECK(to_v311_connack_code(reason_code::not_authorized) == 5);
    for (std::uint8_t c = 0; c <= 5; ++c) CHECK(to_v311_connack_code(from_v311_connack_code(c)) == c);
    CHECK(from_v311_connack_code(6) == reason_code::unspecified_error);
}

TEST_CASE("MQTT-2.1.2 packet type names and variant order") {
    CHECK(type_of(packet{connect{}}) == packet_type::connect);
    CHECK(type_of(packet{pubrec{}}) == packet_type::pubrec);
    CHECK(type_of(packet{pubrel{}}) == packet_type::pubrel);
    CHECK(type_of(packet{pubcomp{}}) == packet_type::pubcomp);
    CHECK(type_of(packet{auth{}}) == packet_type::auth);
    CHECK(to_string(packet_type::unsubscribe) == "UNSUBSCRIBE");
    CHECK(to_string(packet_type::auth) == "AUTH");
    CHECK(sent_by_client(packet_type::publish));
    CHECK_FALSE(sent_by_client(packet_type::suback));
    CHECK_FALSE(sent_by_server(packet_type::subscribe));
}
