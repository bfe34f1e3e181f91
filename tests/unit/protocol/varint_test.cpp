#include <doctest/doctest.h>

#include "broker/protocol/varint.hpp"
#include "unit/protocol/codec_test_support.hpp"

using namespace edgemq::protocol;
using edgemq::protocol::test::to_hex;
using edgemq::protocol::test::unhex;

namespace {

std::string varint_bytes(std::uint32_t v) {
    std::string out;
    write_varint(v, out);
    return out;
}

}  // namespace

TEST_CASE("MQTT-1.5.5 Variable Byte Integer boundaries encode as in table 1-1") {
    CHECK(to_hex(varint_bytes(0)) == "00");
    CHECK(to_hex(varint_bytes(127)) == "7f");
    CHECK(to_hex(varint_bytes(128)) == "80 01");
    CHECK(to_hex(varint_bytes(16'383)) == "ff 7f");
    CHECK(to_hex(varint_bytes(16'384)) == "80 80 01");
    CHECK(to_hex(varint_bytes(2'097'151)) == "ff ff 7f");
    CHECK(to_hex(varint_bytes(2'097'152)) == "80 80 80 01");
    CHECK(to_hex(varint_bytes(268'435'455)) == "ff ff ff 7f");
    for (std::uint32_t v : {0u, 127u, 128u, 16'383u, 16'384u, 2'097'151u, 2'097'152u, 268'435'455u})
        CHECK(varint_size(v) == varint_bytes(v).size());
}

TEST_CASE("MQTT-1.5.5 Variable Byte Integer reads back every boundary value") {
    for (std::uint32_t v : {0u, 1u, 127u, 128u, 300u, 16'383u, 16'384u, 2'097'151u, 2'097'152u,
                            268'435'455u}) {
        const std::string bytes = varint_bytes(v) + "tail";
        std::uint32_t value = 0;
        std::size_t used = 0;
        REQUIRE(read_varint(bytes, value, used) == varint_status::ok);
        CHECK(value == v);
        CHECK(used == varint_size(v));
    }
}

TEST_CASE("MQTT-1.5.5-1 Variable Byte Integer needing a fifth byte is malformed") {
    std::uint32_t value = 0;
    std::size_t used = 0;
    CHECK(read_varint(unhex("ff ff ff ff 7f"), value, used) == varint_status::malformed);
    CHECK(read_varint(unhex("80 80 80 80"), value, used) == varint_status::malformed);
}

TEST_CASE("MQTT-1.5.5 Variable Byte Integer cut short needs more input") {
    std::uint32_t value = 0;
    std::size_t used = 0;
    CHECK(read_varint("", value, used) == varint_status::need_more);
    CHECK(read_varint(unhex("80"), value, used) == varint_status::need_more);
    CHECK(read_varint(unhex("ff ff ff"), value, used) == varint_status::need_more);
}

TEST_CASE("MQTT-1.5.5-1 a Variable Byte Integer not in its shortest form is malformed") {
    std::uint32_t value = 99;
    std::size_t used = 0;
    CHECK(read_varint(unhex("80 00"), value, used) == varint_status::malformed);
    CHECK(read_varint(unhex("8d 00"), value, used) == varint_status::malformed);
    CHECK(read_varint(unhex("ff ff 80 00"), value, used) == varint_status::malformed);
    REQUIRE(read_varint(unhex("00"), value, used) == varint_status::ok);  // zero itself is one byte
    CHECK(value == 0);
    REQUIRE(read_varint(unhex("80 01"), value, used) == varint_status::ok);
    CHECK(value == 128);
    CHECK(used == 2);
}
