// Every packet type encodes and decodes back to the same value, in 3.1.1 and 5.0,
// with every property the packet may carry.
#include <doctest/doctest.h>

#include "unit/protocol/codec_test_support.hpp"

using namespace edgemq::protocol;
using namespace edgemq::protocol::test;

namespace {

connect full_connect(protocol_version v) {
    connect c;
    c.version = v;
    c.clean_start = false;
    c.keep_alive = 60;
    c.client_id = "client-\xc3\xa9";
    will_message will;
    will.topic = "last/will";
    will.payload = std::string("bye\x00\xff", 5);
    will.qos = 2;
    will.retain = true;
    if (v == v5) will.props = will_properties();
    c.will = will;
    c.username = "user";
    c.password = std::string("p\x00ss", 4);
    if (v == v5) c.props = connect_properties();
    return c;
}

publish full_publish(protocol_version v, std::uint8_t qos) {
    publish p;
    p.topic = "sensors/kitchen/temp";
    p.qos = qos;
    p.packet_id = qos > 0 ? 0xBEEF : 0;
    p.retain = true;
    p.dup = qos > 0;
    p.payload = std::string("21.5\x00\x01", 6);
    if (v == v5) p.props = publish_properties();
    return p;
}

template <class Ack>
Ack make_ack(std::uint16_t id, reason_code code, properties props) {
    Ack a;
    a.packet_id = id;
    a.code = code;
    a.props = std::move(props);
    return a;
}

}  // namespace

TEST_CASE("MQTT-3.1 CONNECT round trip in 3.1 and 3.1.1 and 5.0 with every property") {
    for (protocol_version v : {v31, v311, v5}) {
        INFO("version " << int(v));
        const connect c = full_connect(v);
        CHECK(round_trip(v, c) == packet{c});
        connect minimal;
        minimal.version = v;
        CHECK(round_trip(v, minimal) == packet{minimal});
        connect will_only = minimal;
        will_only.will = will_message{"t", "", 0, false, {}};
        CHECK(round_trip(v, will_only) == packet{will_only});
    }
}

TEST_CASE("MQTT-3.1.2-2 CONNECT encodes the protocol name and level of its version") {
    connect c;
    c.version = v31;
    CHECK(encoded(v31, c).substr(2, 9) == unhex("00 06 4d 51 49 73 64 70 03"));
    c.version = v311;
    CHECK(encoded(v311, c).substr(2, 7) == unhex("00 04 4d 51 54 54 04"));
    c.version = v5;
    CHECK(encoded(v5, c).substr(2, 7) == unhex("00 04 4d 51 54 54 05"));
    // The packet's own version wins over the argument, like decode().
    CHECK(encoded(v311, c) == encoded(v5, c));
}

TEST_CASE("MQTT-3.1.2-22 v5 CONNECT may carry a password without a user name") {
    connect c;
    c.version = v5;
    c.password = "secret";
    CHECK(round_trip(v5, c) == packet{c});
}

TEST_CASE("MQTT-3.1.3 v3.1.1 CONNECT from a real client decodes") {
    // mosquitto_pub -V mqttv311 -i pub1 -u u -P p -k 60 --will-topic w --will-payload x
    const std::string bytes =
        frame(0x10, "0004 4d515454 04 ee 003c 0004 70756231 0001 77 0001 78 0001 75 0001 70");
    auto r = decode_bytes(v311, bytes);
    REQUIRE(r.ok());
    const auto& c = std::get<connect>(*r);
    CHECK(c.version == v311);
    CHECK(c.client_id == "pub1");
    REQUIRE(c.will.has_value());
    CHECK(c.will->qos == 1);
    CHECK(c.will->retain);
    CHECK(c.will->topic == "w");
    CHECK(c.username == "u");
    CHECK(c.password == "p");
    CHECK(c.clean_start);
    CHECK(c.keep_alive == 60);
}

TEST_CASE("MQTT-3.2 CONNACK round trip with every property and 3.1.1 return codes") {
    connack c;
    c.session_present = true;
    c.props = connack_properties();
    CHECK(round_trip(v5, c) == packet{c});
    for (reason_code code : {reason_code::success, reason_code::unsupported_protocol_version,
                             reason_code::client_identifier_not_valid, reason_code::server_unavailable,
                             reason_code::bad_user_name_or_password, reason_code::not_authorized}) {
        connack a;
        a.code = code;
        CHECK(round_trip(v311, a) == packet{a});
        CHECK(round_trip(v5, a) == packet{a});
    }
    connack plain;
    plain.session_present = true;
    CHECK(round_trip(v311, plain) == packet{plain});
}

TEST_CASE("MQTT-3.2.2.3 3.1.1 CONNACK maps v5-only reason codes") {
    connack c;
    c.code = reason_code::banned;
    c.props = connack_properties();
    CHECK(encoded(v311, c) == unhex("20 02 00 03"));
    c.code = reason_code::bad_authentication_method;
    CHECK(encoded(v311, c) == unhex("20 02 00 03"));
    c.code = reason_code::not_authorized;
    CHECK(encoded(v311, c) == unhex("20 02 00 05"));
}

TEST_CASE("MQTT-3.3 PUBLISH round trip at each QoS with every property") {
    for (protocol_version v : {v311, v5}) {
        for (std::uint8_t qos : {0, 1, 2}) {
            INFO("version " << int(v) << " qos " << int(qos));
            const publish p = full_publish(v, qos);
            CHECK(round_trip(v, p) == packet{p});
        }
    }
    publish empty_payload;
    empty_payload.topic = "t";
    CHECK(round_trip(v5, empty_payload) == packet{empty_payload});
    CHECK(encoded(v311, empty_payload) == unhex("30 03 00 01 74"));
    CHECK(encoded(v5, empty_payload) == unhex("30 04 00 01 74 00"));
}

TEST_CASE("MQTT-3.3.2.3.4 v5 PUBLISH with an empty topic and a Topic Alias round trips") {
    publish p;
    p.topic = "";
    p.props.topic_alias = 3;
    p.payload = "x";
    CHECK(round_trip(v5, p) == packet{p});
}

TEST_CASE("MQTT-3.3 PUBLISH with a large payload needs a multi-byte Remaining Length") {
    publish p;
    p.topic = "big";
    p.qos = 1;
    p.packet_id = 1;
    p.payload.assign(300'000, 'x');
    const std::string bytes = encoded(v5, p);
    fixed_header h;
    REQUIRE(parse_fixed_header(bytes, h) == frame_status::ready);
    CHECK(h.header_size == 4);
    CHECK(round_trip(v5, p) == packet{p});
}

TEST_CASE("MQTT-3.4 MQTT-3.5 MQTT-3.6 MQTT-3.7 acknowledgements round trip in every form") {
    for (protocol_version v : {v311, v5}) {
        CHECK(round_trip(v, make_ack<puback>(1, reason_code::success, {})) ==
              packet{make_ack<puback>(1, reason_code::success, {})});
        CHECK(round_trip(v, make_ack<pubrec>(2, reason_code::success, {})) ==
              packet{make_ack<pubrec>(2, reason_code::success, {})});
        CHECK(round_trip(v, make_ack<pubrel>(3, reason_code::success, {})) ==
              packet{make_ack<pubrel>(3, reason_code::success, {})});
        CHECK(round_trip(v, make_ack<pubcomp>(65535, reason_code::success, {})) ==
              packet{make_ack<pubcomp>(65535, reason_code::success, {})});
    }
    const auto puback_full = make_ack<puback>(9, reason_code::no_matching_subscribers, reason_properties());
    CHECK(round_trip(v5, puback_full) == packet{puback_full});
    const auto pubrec_code = make_ack<pubrec>(9, reason_code::quota_exceeded, {});
    CHECK(round_trip(v5, pubrec_code) == packet{pubrec_code});
    const auto pubrel_props = make_ack<pubrel>(9, reason_code::success, reason_properties());
    CHECK(round_trip(v5, pubrel_props) == packet{pubrel_props});
    const auto pubcomp_code = make_ack<pubcomp>(9, reason_code::packet_identifier_not_found, reason_properties());
    CHECK(round_trip(v5, pubcomp_code) == packet{pubcomp_code});
}

TEST_CASE("MQTT-3.4.2-1 v5 acknowledgements use the shortest encoding") {
    CHECK(encoded(v5, make_ack<puback>(1, reason_code::success, {})) == unhex("40 02 00 01"));
    CHECK(encoded(v5, make_ack<pubrec>(1, reason_code::quota_exceeded, {})) == unhex("50 03 00 01 97"));
    CHECK(encoded(v5, make_ack<pubrel>(1, reason_code::success, {})) == unhex("62 02 00 01"));
    properties p;
    p.reason_string = "r";
    CHECK(encoded(v5, make_ack<pubcomp>(1, reason_code::success, p)) ==
          unhex("70 08 00 01 00 04 1f 00 01 72"));
    // 3.1.1 drops the reason code and properties.
    CHECK(encoded(v311, make_ack<puback>(1, reason_code::quota_exceeded, p)) == unhex("40 02 00 01"));
}

TEST_CASE("MQTT-3.8 SUBSCRIBE round trip with every option and property") {
    subscribe s;
    s.packet_id = 10;
    s.entries = {{"a/+/c", {0, false, false, 0}},
                 {"a/#", {1, true, true, 2}},
                 {"$share/g/x", {2, false, true, 1}}};
    s.props.subscription_identifiers = {268435455};
    s.props.user_properties = {{"u", "p"}};
    CHECK(round_trip(v5, s) == packet{s});

    subscribe v311_sub;
    v311_sub.packet_id = 11;
    v311_sub.entries = {{"a/+/c", {0}}, {"#", {1}}, {"x", {2}}};
    CHECK(round_trip(v311, v311_sub) == packet{v311_sub});
}

TEST_CASE("MQTT-3.8.3 3.1.1 SUBSCRIBE encoding drops v5-only options and properties") {
    subscribe s;
    s.packet_id = 1;
    s.entries = {{"t", {1, true, true, 2}}};
    s.props.subscription_identifiers = {5};
    CHECK(encoded(v311, s) == unhex("82 06 00 01 00 01 74 01"));
    CHECK(encoded(v5, s) == unhex("82 09 00 01 02 0b 05 00 01 74 2d"));
}

TEST_CASE("MQTT-3.9 SUBACK round trip and 3.1.1 failures encode as 0x80") {
    suback s;
    s.packet_id = 7;
    s.props = reason_properties();
    s.codes = {reason_code::granted_qos_2, reason_code::success, reason_code::granted_qos_1,
               reason_code::topic_filter_invalid, reason_code::wildcard_subscriptions_not_supported};
    CHECK(round_trip(v5, s) == packet{s});
    CHECK(encoded(v311, s) == unhex("90 07 00 07 02 00 01 80 80"));
    auto back = std::get<suback>(round_trip(v311, s));
    CHECK(back.codes == std::vector<reason_code>{reason_code::granted_qos_2, reason_code::success,
                                                 reason_code::granted_qos_1, reason_code::unspecified_error,
                                                 reason_code::unspecified_error});
}

TEST_CASE("MQTT-3.10 UNSUBSCRIBE round trip") {
    unsubscribe u;
    u.packet_id = 3;
    u.filters = {"a/#", "$share/g/b", "c"};
    CHECK(round_trip(v311, u) == packet{u});
    u.props.user_properties = {{"k", "v"}};
    CHECK(round_trip(v5, u) == packet{u});
}

TEST_CASE("MQTT-3.11 UNSUBACK round trip and 3.1.1 has no payload") {
    unsuback u;
    u.packet_id = 4;
    u.props = reason_properties();
    u.codes = {reason_code::success, reason_code::no_subscription_existed, reason_code::topic_filter_invalid};
    CHECK(round_trip(v5, u) == packet{u});
    CHECK(encoded(v311, u) == unhex("b0 02 00 04"));
    unsuback plain;
    plain.packet_id = 4;
    CHECK(round_trip(v311, u) == packet{plain});
}

TEST_CASE("MQTT-3.12 MQTT-3.13 PINGREQ and PINGRESP round trip") {
    for (protocol_version v : {v311, v5}) {
        CHECK(encoded(v, pingreq{}) == unhex("c0 00"));
        CHECK(encoded(v, pingresp{}) == unhex("d0 00"));
        CHECK(round_trip(v, pingreq{}) == packet{pingreq{}});
        CHECK(round_trip(v, pingresp{}) == packet{pingresp{}});
    }
}

TEST_CASE("MQTT-3.14 DISCONNECT round trip in every form") {
    disconnect plain;
    CHECK(encoded(v311, plain) == unhex("e0 00"));
    CHECK(encoded(v5, plain) == unhex("e0 00"));
    CHECK(round_trip(v311, plain) == packet{plain});
    CHECK(round_trip(v5, plain) == packet{plain});

    disconnect with_will;
    with_will.code = reason_code::disconnect_with_will_message;
    CHECK(encoded(v5, with_will) == unhex("e0 01 04"));
    CHECK(round_trip(v5, with_will) == packet{with_will});

    disconnect full;
    full.code = reason_code::server_moved;
    full.props.session_expiry_interval = 0;
    full.props.server_reference = "elsewhere";
    full.props.reason_string = "maintenance";
    full.props.user_properties = {{"a", "b"}};
    CHECK(round_trip(v5, full) == packet{full});
    CHECK(encoded(v311, full) == unhex("e0 00"));
}

TEST_CASE("MQTT-3.15 AUTH round trip in every form") {
    auth plain;
    CHECK(encoded(v5, plain) == unhex("f0 00"));
    CHECK(round_trip(v5, plain) == packet{plain});
    auth full;
    full.code = reason_code::continue_authentication;
    full.props.authentication_method = "SCRAM-SHA-1";
    full.props.authentication_data = std::string("\x00\x01", 2);
    full.props.reason_string = "more";
    full.props.user_properties = {{"a", "b"}};
    CHECK(round_trip(v5, full) == packet{full});
    auth reauth;
    reauth.code = reason_code::re_authenticate;
    CHECK(round_trip(v5, reauth) == packet{reauth});
}

TEST_CASE("MQTT-2.2.2 properties are written in identifier order and sized exactly") {
    properties p;
    p.user_properties = {{"k", "v"}};
    p.payload_format_indicator = 1;
    p.topic_alias = 2;
    std::string out;
    publish pub;
    pub.topic = "t";
    pub.props = p;
    out = encoded(v5, pub);
    CHECK(out == unhex("30 10 00 01 74 0c 01 01 23 00 02 26 00 01 6b 00 01 76"));
    CHECK(encoded_size(p) == 12);
    CHECK(encoded_size(properties{}) == 0);
    CHECK(encoded_size(publish_properties()) > 0);
}
