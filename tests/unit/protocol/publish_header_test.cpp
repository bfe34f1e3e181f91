// The broker's delivery path: pass-through properties encoded once, a PUBLISH header
// per subscriber, the payload sent from the shared buffer.
#include <doctest/doctest.h>

#include <array>

#include "unit/protocol/codec_test_support.hpp"

using namespace edgemq::protocol;
using namespace edgemq::protocol::test;

namespace {

// What a subscriber receives: header + shared payload, decoded.
publish receive(protocol_version v, const publish_header& h, std::string_view payload) {
    std::string bytes;
    const std::size_t written = encode_publish_header(v, h, payload.size(), bytes);
    CHECK(written == bytes.size());
    bytes.append(payload);
    CHECK(bytes.size() == publish_packet_size(v, h, payload.size()));
    result<packet> r = decode_bytes(v, bytes);
    if (!r.ok()) FAIL("decode failed: ", r.err().what);
    return std::get<publish>(std::move(r).value());
}

}  // namespace

TEST_CASE("MQTT-3.3.2-18 forwarded properties keep pass-through fields and User Property order") {
    properties p = publish_properties();
    std::string forwarded;
    encode_forwarded_properties(p, forwarded);

    properties expected;
    expected.payload_format_indicator = p.payload_format_indicator;
    expected.content_type = p.content_type;
    expected.response_topic = p.response_topic;
    expected.correlation_data = p.correlation_data;
    expected.user_properties = p.user_properties;
    CHECK(forwarded.size() == encoded_size(expected));

    publish_header h;
    h.topic = "t";
    h.forwarded_properties = forwarded;
    const publish got = receive(v5, h, "payload");
    CHECK(got.props == expected);  // no expiry, alias or subscription identifiers
    CHECK(got.payload == "payload");
}

TEST_CASE("MQTT-3.3.2 per-delivery header carries id and expiry and alias and subscription identifiers") {
    properties p = publish_properties();
    std::string forwarded;
    encode_forwarded_properties(p, forwarded);
    const std::array<std::uint32_t, 3> sub_ids{3, 200, 268435455};

    publish_header h;
    h.topic = "sensors/1";
    h.qos = 2;
    h.retain = true;
    h.dup = true;
    h.packet_id = 77;
    h.message_expiry_interval = 42;
    h.topic_alias = 9;
    h.subscription_identifiers = sub_ids;
    h.forwarded_properties = forwarded;

    publish expected;
    expected.topic = "sensors/1";
    expected.qos = 2;
    expected.retain = true;
    expected.dup = true;
    expected.packet_id = 77;
    expected.props = p;
    expected.props.message_expiry_interval = 42;
    expected.props.topic_alias = 9;
    expected.props.subscription_identifiers = {3, 200, 268435455};
    expected.payload = std::string(1000, 'p');
    CHECK(receive(v5, h, expected.payload) == expected);
}

TEST_CASE("MQTT-3.3.2.3.4 header with only a Topic Alias sends an empty topic") {
    publish_header h;
    h.topic = "";
    h.topic_alias = 1;
    const publish got = receive(v5, h, "x");
    CHECK(got.topic.empty());
    CHECK(got.props.topic_alias == 1);
}

TEST_CASE("MQTT-3.3 3.1.1 delivery header drops every v5 field") {
    std::string forwarded;
    encode_forwarded_properties(publish_properties(), forwarded);
    const std::array<std::uint32_t, 1> sub_ids{5};
    publish_header h;
    h.topic = "a/b";
    h.qos = 1;
    h.packet_id = 1;
    h.message_expiry_interval = 1;
    h.topic_alias = 1;
    h.subscription_identifiers = sub_ids;
    h.forwarded_properties = forwarded;
    std::string bytes;
    CHECK(encode_publish_header(v311, h, 2, bytes) == 9);
    CHECK(bytes == unhex("32 09 00 03 61 2f 62 00 01"));
    const publish got = receive(v311, h, "hi");
    CHECK(got.props == properties{});
    CHECK(got.payload == "hi");
}

TEST_CASE("MQTT-3.3 delivery header matches encode() of the same PUBLISH in size") {
    publish p;
    p.topic = "x/y";
    p.qos = 1;
    p.packet_id = 5;
    p.payload.assign(20'000, 'z');
    p.props.user_properties = {{"a", "b"}};
    std::string forwarded;
    encode_forwarded_properties(p.props, forwarded);
    publish_header h;
    h.topic = p.topic;
    h.qos = 1;
    h.packet_id = 5;
    h.forwarded_properties = forwarded;
    for (protocol_version v : {v311, v5}) {
        CHECK(publish_packet_size(v, h, p.payload.size()) == encoded_size(v, p));
        std::string header;
        encode_publish_header(v, h, p.payload.size(), header);
        CHECK(header + p.payload == encoded(v, p));
    }
}
