#include "broker/protocol/varint.hpp"

#include <cassert>

namespace edgemq::protocol {

void write_varint(std::uint32_t value, std::string& out) {
    assert(value <= max_varint);
    do {
        auto byte = static_cast<unsigned char>(value & 0x7Fu);
        value >>= 7;
        if (value != 0) byte |= 0x80u;
        out.push_back(static_cast<char>(byte));
    } while (value != 0);
}

varint_status read_varint(std::string_view in, std::uint32_t& value, std::size_t& consumed) noexcept {
    std::uint32_t result = 0;
    for (std::size_t i = 0; i < 4; ++i) {
        if (i == in.size()) return varint_status::need_more;
        const auto byte = static_cast<unsigned char>(in[i]);
        result |= std::uint32_t{byte & 0x7Fu} << (7 * i);
        if ((byte & 0x80u) == 0) {
            // A last byte of 0 after others adds nothing: not the shortest form, which
            // the encoding must be [MQTT-1.5.5-1].
            if (byte == 0 && i > 0) return varint_status::malformed;
            value = result;
            consumed = i + 1;
            return varint_status::ok;
        }
    }
    // The fourth byte still had its continuation bit set [MQTT-1.5.5-1].
    return varint_status::malformed;
}

}  // namespace edgemq::protocol
