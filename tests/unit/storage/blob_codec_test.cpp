// The BLOB encodings must give back exactly what they were given: every property
// field (a will may carry any), binary values with NUL bytes, values past MQTT's
// 65,535-byte string limit; and refuse what they did not write.
#include <doctest/doctest.h>

#include <string>

#include "storage/blob_codec.hpp"

using namespace edgemq;
using namespace edgemq::storage;

namespace {

protocol::properties every_property() {
    using namespace std::string_literals;
    protocol::properties p;
    p.payload_format_indicator = 1;
    p.message_expiry_interval = 0xFFFFFFFF;
    p.content_type = "text/plain";
    p.response_topic = "reply/here";
    p.correlation_data = "\0\x01\xff corr"s;
    p.subscription_identifiers = {1, 268435455, 7};
    p.session_expiry_interval = 3600;
    p.assigned_client_identifier = "assigned";
    p.server_keep_alive = 65535;
    p.authentication_method = "SCRAM";
    p.authentication_data = "\0auth\0"s;
    p.request_problem_information = 0;
    p.will_delay_interval = 30;
    p.request_response_information = 1;
    p.response_information = "info";
    p.server_reference = "other:1883";
    p.reason_string = "because";
    p.receive_maximum = 10;
    p.topic_alias_maximum = 5;
    p.topic_alias = 3;
    p.maximum_qos = 1;
    p.retain_available = 0;
    p.user_properties = {{"k", "v"}, {"k", "v2"}, {"", ""}, {"bin\0"s, std::string(70000, 'x')}};
    p.maximum_packet_size = 1 << 20;
    p.wildcard_subscription_available = 1;
    p.subscription_identifier_available = 0;
    p.shared_subscription_available = 1;
    return p;
}

}  // namespace

TEST_CASE("properties blob round-trips every field") {
    const protocol::properties p = every_property();
    const std::string blob = encode_properties(p);
    protocol::properties back;
    REQUIRE(decode_properties(blob, back));
    CHECK(back == p);
}

TEST_CASE("properties blob of no properties is empty and decodes to none") {
    CHECK(encode_properties({}).empty());
    protocol::properties back = every_property();
    REQUIRE(decode_properties("", back));
    CHECK(back == protocol::properties{});
}

TEST_CASE("properties blob round-trips each field alone") {
    // A field whose tag the decoder maps to another field would pass the all-fields
    // test only if both were set: try them one at a time.
    const protocol::properties all = every_property();
    int fields = 0;
    auto check_one = [&](auto setter) {
        protocol::properties one;
        setter(one);
        protocol::properties back;
        REQUIRE(decode_properties(encode_properties(one), back));
        CHECK(back == one);
        ++fields;
    };
    check_one([&](auto& p) { p.payload_format_indicator = all.payload_format_indicator; });
    check_one([&](auto& p) { p.message_expiry_interval = all.message_expiry_interval; });
    check_one([&](auto& p) { p.content_type = all.content_type; });
    check_one([&](auto& p) { p.response_topic = all.response_topic; });
    check_one([&](auto& p) { p.correlation_data = all.correlation_data; });
    check_one([&](auto& p) { p.subscription_identifiers = all.subscription_identifiers; });
    check_one([&](auto& p) { p.session_expiry_interval = all.session_expiry_interval; });
    check_one([&](auto& p) { p.assigned_client_identifier = all.assigned_client_identifier; });
    check_one([&](auto& p) { p.server_keep_alive = all.server_keep_alive; });
    check_one([&](auto& p) { p.authentication_method = all.authentication_method; });
    check_one([&](auto& p) { p.authentication_data = all.authentication_data; });
    check_one([&](auto& p) { p.request_problem_information = all.request_problem_information; });
    check_one([&](auto& p) { p.will_delay_interval = all.will_delay_interval; });
    check_one([&](auto& p) { p.request_response_information = all.request_response_information; });
    check_one([&](auto& p) { p.response_information = all.response_information; });
    check_one([&](auto& p) { p.server_reference = all.server_reference; });
    check_one([&](auto& p) { p.reason_string = all.reason_string; });
    check_one([&](auto& p) { p.receive_maximum = all.receive_maximum; });
    check_one([&](auto& p) { p.topic_alias_maximum = all.topic_alias_maximum; });
    check_one([&](auto& p) { p.topic_alias = all.topic_alias; });
    check_one([&](auto& p) { p.maximum_qos = all.maximum_qos; });
    check_one([&](auto& p) { p.retain_available = all.retain_available; });
    check_one([&](auto& p) { p.user_properties = all.user_properties; });
    check_one([&](auto& p) { p.maximum_packet_size = all.maximum_packet_size; });
    check_one([&](auto& p) { p.wildcard_subscription_available = all.wildcard_subscription_available; });
    check_one([&](auto& p) { p.subscription_identifier_available = all.subscription_identifier_available; });
    check_one([&](auto& p) { p.shared_subscription_available = all.shared_subscription_available; });
    CHECK(fields == 27);
}

TEST_CASE("properties blob refuses damaged input") {
    const std::string blob = encode_properties(every_property());
    protocol::properties out;
    CHECK_FALSE(decode_properties(std::string("\x02") + blob.substr(1), out));     // unknown format
    CHECK_FALSE(decode_properties(blob.substr(0, blob.size() - 1), out));           // truncated
    CHECK_FALSE(decode_properties(std::string("\x01\x7f", 2), out));               // unknown property id
    CHECK_FALSE(decode_properties(std::string("\x01\x01\x01\x01\x00", 5), out));   // same optional twice
}

TEST_CASE("subscription identifier list round-trips") {
    std::string blob;
    encode_u32_list({}, blob);
    CHECK(blob.empty());
    std::vector<std::uint32_t> back{9};
    REQUIRE(decode_u32_list(blob, back));
    CHECK(back.empty());
    const std::vector<std::uint32_t> ids{1, 0x7f, 0x80, 268435455, 0xFFFFFFFF};
    encode_u32_list(ids, blob);
    CHECK(blob.size() == 20);
    REQUIRE(decode_u32_list(blob, back));
    CHECK(back == ids);
    CHECK_FALSE(decode_u32_list(blob.substr(1), back));
}
