#include <doctest/doctest.h>

#include "broker/protocol/validate.hpp"
#include "unit/protocol/codec_test_support.hpp"

using namespace edgemq::protocol;
using edgemq::protocol::test::unhex;

namespace {

reason_code name_error(std::string_view topic) {
    const status s = validate_topic_name(topic);
    REQUIRE_FALSE(s.ok());
    return s.err().code;
}

reason_code filter_error(std::string_view filter) {
    const status s = validate_topic_filter(filter);
    REQUIRE_FALSE(s.ok());
    return s.err().code;
}

}  // namespace

TEST_CASE("MQTT-1.5.4 well-formed UTF-8 is accepted for every sequence length") {
    CHECK(is_valid_utf8(""));
    CHECK(is_valid_utf8("plain ascii/topic with spaces"));
    CHECK(is_valid_utf8(unhex("c2 80")));           // U+0080
    CHECK(is_valid_utf8(unhex("df bf")));           // U+07FF
    CHECK(is_valid_utf8(unhex("e0 a0 80")));        // U+0800
    CHECK(is_valid_utf8(unhex("ed 9f bf")));        // U+D7FF, just below the surrogates
    CHECK(is_valid_utf8(unhex("ee 80 80")));        // U+E000, just above them
    CHECK(is_valid_utf8(unhex("ef bf bf")));        // U+FFFF (non-character: allowed)
    CHECK(is_valid_utf8(unhex("f0 90 80 80")));     // U+10000
    CHECK(is_valid_utf8(unhex("f4 8f bf bf")));     // U+10FFFF
    CHECK(is_valid_utf8(unhex("01 1f 7f")));        // control characters: SHOULD NOT, allowed
    CHECK(is_valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 long enough for the word path"));
}

TEST_CASE("MQTT-1.5.4-3 U+FEFF is kept and valid") {
    CHECK(is_valid_utf8(unhex("ef bb bf 61")));
}

TEST_CASE("MQTT-1.5.4-1 surrogates U+D800..U+DFFF are ill-formed") {
    CHECK_FALSE(is_valid_utf8(unhex("ed a0 80")));  // U+D800
    CHECK_FALSE(is_valid_utf8(unhex("ed bf bf")));  // U+DFFF
    CHECK_FALSE(is_valid_utf8(unhex("ed a0 bd ed b8 80")));  // CESU-8 pair
}

TEST_CASE("MQTT-1.5.4-2 U+0000 is not allowed even inside long ASCII runs") {
    CHECK_FALSE(is_valid_utf8(std::string_view("\0", 1)));
    CHECK_FALSE(is_valid_utf8(std::string_view("abcdefgh\0ijklmnop", 17)));
    CHECK_FALSE(is_valid_utf8(std::string_view("abc\0defgh", 9)));
    CHECK_FALSE(is_valid_utf8(unhex("c0 80")));  // "modified UTF-8" NUL, overlong
}

TEST_CASE("MQTT-1.5.4-1 overlong encodings are ill-formed") {
    CHECK_FALSE(is_valid_utf8(unhex("c0 af")));
    CHECK_FALSE(is_valid_utf8(unhex("c1 bf")));
    CHECK_FALSE(is_valid_utf8(unhex("e0 80 af")));
    CHECK_FALSE(is_valid_utf8(unhex("e0 9f bf")));
    CHECK_FALSE(is_valid_utf8(unhex("f0 80 80 af")));
    CHECK_FALSE(is_valid_utf8(unhex("f0 8f bf bf")));
}

TEST_CASE("MQTT-1.5.4-1 code points above U+10FFFF are ill-formed") {
    CHECK_FALSE(is_valid_utf8(unhex("f4 90 80 80")));
    CHECK_FALSE(is_valid_utf8(unhex("f5 80 80 80")));
    CHECK_FALSE(is_valid_utf8(unhex("f8 88 80 80 80")));
    CHECK_FALSE(is_valid_utf8(unhex("ff")));
}

TEST_CASE("MQTT-1.5.4-1 truncated and stray continuation bytes are ill-formed") {
    CHECK_FALSE(is_valid_utf8(unhex("80")));
    CHECK_FALSE(is_valid_utf8(unhex("61 bf")));
    CHECK_FALSE(is_valid_utf8(unhex("c3")));
    CHECK_FALSE(is_valid_utf8(unhex("e2 82")));
    CHECK_FALSE(is_valid_utf8(unhex("f0 9f 98")));
    CHECK_FALSE(is_valid_utf8(unhex("e2 28 a1")));
    CHECK_FALSE(is_valid_utf8(unhex("f0 9f 28 80")));
    CHECK_FALSE(is_valid_utf8(std::string("0123456789abcdef\xc3", 17)));
}

TEST_CASE("MQTT-4.7.3-1 topic names are non-empty and wildcard-free and valid UTF-8") {
    CHECK(validate_topic_name("a").ok());
    CHECK(validate_topic_name("/").ok());
    CHECK(validate_topic_name("a//b/").ok());
    CHECK(validate_topic_name("$SYS/broker").ok());
    CHECK(validate_topic_name("$share/g/t").ok());  // only a filter has a shared meaning
    CHECK(validate_topic_name(" spaces are fine ").ok());
    CHECK(name_error("") == reason_code::topic_name_invalid);
}

TEST_CASE("MQTT-3.3.2-2 topic names with wildcards are invalid") {
    CHECK(name_error("a/+") == reason_code::topic_name_invalid);
    CHECK(name_error("#") == reason_code::topic_name_invalid);
    CHECK(name_error("a+b") == reason_code::topic_name_invalid);
    CHECK(name_error("a/very/long/topic/name/with#/inside") == reason_code::topic_name_invalid);
    CHECK(name_error("0123456789abcdef+") == reason_code::topic_name_invalid);
}

TEST_CASE("MQTT-1.5.4-1 topic names with ill-formed UTF-8 are malformed") {
    CHECK(name_error(unhex("61 ed a0 80")) == reason_code::malformed_packet);
    CHECK(name_error(std::string_view("a\0b", 3)) == reason_code::malformed_packet);
}

TEST_CASE("MQTT-4.7.1-1 MQTT-4.7.1-2 topic filter wildcard placement") {
    for (std::string_view good : {"#", "+", "a/#", "a/+", "+/+", "+/a/#", "/#", "a//+", "sport/+/player1",
                                  "$SYS/#", "+/", "/+", "a/b/c", "$share"}) {
        INFO(good);
        CHECK(validate_topic_filter(good).ok());
    }
    for (std::string_view bad : {"a#", "a/#/b", "#/", "##", "a/b#", "+a", "a+", "a/+b", "a/b+/c", "++"}) {
        INFO(bad);
        CHECK(filter_error(bad) == reason_code::topic_filter_invalid);
    }
}

TEST_CASE("MQTT-4.7.3-1 empty topic filter is invalid") {
    CHECK(filter_error("") == reason_code::topic_filter_invalid);
}

TEST_CASE("MQTT-1.5.4-1 topic filter with ill-formed UTF-8 is malformed") {
    CHECK(filter_error(unhex("2b 2f c0 af")) == reason_code::malformed_packet);
}

TEST_CASE("MQTT-4.8.2-1 MQTT-4.8.2-2 shared subscription filters") {
    CHECK(validate_topic_filter("$share/group/a/b").ok());
    CHECK(validate_topic_filter("$share/group/#").ok());
    CHECK(validate_topic_filter("$share/g/+/x").ok());
    CHECK(validate_topic_filter("$share/g//").ok());
    CHECK(filter_error("$share/") == reason_code::topic_filter_invalid);
    CHECK(filter_error("$share/group") == reason_code::topic_filter_invalid);
    CHECK(filter_error("$share/group/") == reason_code::topic_filter_invalid);
    CHECK(filter_error("$share//a") == reason_code::topic_filter_invalid);
    CHECK(filter_error("$share/gr+oup/a") == reason_code::topic_filter_invalid);
    CHECK(filter_error("$share/#/a") == reason_code::topic_filter_invalid);
    CHECK(filter_error("$share/g/a/#/b") == reason_code::topic_filter_invalid);
}

TEST_CASE("MQTT-4.8.2 split_shared separates share name and filter") {
    auto shared = split_shared("$share/consumers/sensors/+/temp");
    REQUIRE(shared.has_value());
    CHECK(shared->share_name == "consumers");
    CHECK(shared->filter == "sensors/+/temp");
    CHECK_FALSE(split_shared("sensors/#").has_value());
    CHECK_FALSE(split_shared("$share").has_value());
    CHECK_FALSE(split_shared("$SHARE/g/t").has_value());
}

TEST_CASE("MQTT-4.7.1 has_wildcard looks past the $share prefix") {
    CHECK(has_wildcard("a/+"));
    CHECK(has_wildcard("#"));
    CHECK_FALSE(has_wildcard("a/b"));
    CHECK_FALSE(has_wildcard("$share/g/a/b"));
    CHECK(has_wildcard("$share/g/a/#"));
}
