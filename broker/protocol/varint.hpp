// Variable Byte Integer (section 1.5.5): 1 to 4 bytes, 7 bits each, values 0..268435455.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace edgemq::protocol {

inline constexpr std::uint32_t max_varint = 268'435'455;

// Bytes needed to encode `value` (1..4); value must be <= max_varint.
constexpr std::size_t varint_size(std::uint32_t value) noexcept {
    return value < 128u ? 1 : value < 16'384u ? 2 : value < 2'097'152u ? 3 : 4;
}

// Appends the encoding of `value` (<= max_varint) to `out`.
void write_varint(std::uint32_t value, std::string& out);

enum class varint_status : std::uint8_t {
    ok,
    need_more,  // input ends inside the integer
    malformed,  // a fifth byte would be needed [MQTT-1.5.5-1]
};

// Reads a Variable Byte Integer from the front of `in`. On ok, `value` and `consumed`
// are set. Non-minimal encodings (e.g. 0x80 0x00) are accepted, as the spec does not
// forbid them.
varint_status read_varint(std::string_view in, std::uint32_t& value, std::size_t& consumed) noexcept;

}  // namespace edgemq::protocol
