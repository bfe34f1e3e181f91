#include "broker/net/ws_codec.hpp"

#include <algorithm>
#include <cstring>

#include "broker/protocol/validate.hpp"

namespace edgemq::net::ws {

namespace {

bool is_control(opcode op) noexcept { return static_cast<std::uint8_t>(op) >= 8; }

// Close codes a peer may send (RFC 6455 section 7.4): 1004-1006 and 1015 are reserved
// for reporting, never sent; 3000-4999 belong to libraries and applications.
bool valid_close_code(std::uint16_t code) noexcept {
    if (code >= 3000 && code <= 4999) return true;
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014);
}

}  // namespace

std::size_t encode_header(opcode op, std::uint64_t length, std::span<char, max_server_header> out) noexcept {
    out[0] = static_cast<char>(0x80 | static_cast<std::uint8_t>(op));  // FIN, no RSV
    if (length < 126) {
        out[1] = static_cast<char>(length);
        return 2;
    }
    if (length <= 0xFFFF) {
        out[1] = 126;
        out[2] = static_cast<char>(length >> 8);
        out[3] = static_cast<char>(length);
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<char>(length >> (56 - 8 * i));
    return 10;
}

void append_control_frame(std::string& out, opcode op, std::string_view payload) {
    char header[max_server_header];
    const std::size_t n = encode_header(op, std::min<std::size_t>(payload.size(), 125), header);
    out.append(header, n);
    out.append(payload.substr(0, 125));
}

void append_close_frame(std::string& out, close_code code, std::string_view reason) {
    std::string payload;
    const auto c = static_cast<std::uint16_t>(code);
    payload.push_back(static_cast<char>(c >> 8));
    payload.push_back(static_cast<char>(c));
    payload.append(reason.substr(0, 123));
    append_control_frame(out, opcode::close, payload);
}

void frame_decoder::fail(std::string& control_out, close_code code, const char* why) {
    state_ = state::failed;
    error_ = why;
    append_close_frame(control_out, code);
}

bool frame_decoder::parse_header(std::string& control_out) {
    const unsigned char b0 = header_[0];
    const unsigned char b1 = header_[1];
    if (b0 & 0x70) {
        fail(control_out, close_code::protocol_error, "RSV bits set without a negotiated extension");
        return false;
    }
    const std::uint8_t op = b0 & 0x0F;
    if (op > 2 && op != 8 && op != 9 && op != 10) {
        fail(control_out, close_code::protocol_error, "unknown opcode");
        return false;
    }
    opcode_ = static_cast<opcode>(op);
    fin_ = (b0 & 0x80) != 0;
    if (!(b1 & 0x80)) {
        fail(control_out, close_code::protocol_error, "unmasked frame from a client (RFC 6455 5.1)");
        return false;
    }
    std::uint64_t length = b1 & 0x7F;
    std::size_t at = 2;
    if (length == 126) {
        length = (std::uint64_t{header_[2]} << 8) | header_[3];
        at = 4;
        if (length < 126) {
            fail(control_out, close_code::protocol_error, "frame length not in its shortest form (RFC 6455 5.2)");
            return false;
        }
    } else if (length == 127) {
        length = 0;
        for (int i = 0; i < 8; ++i) length = (length << 8) | header_[2 + i];
        at = 10;
        if (length >> 63) {
            fail(control_out, close_code::protocol_error, "frame length with the most significant bit set");
            return false;
        }
        if (length <= 0xFFFF) {
            fail(control_out, close_code::protocol_error, "frame length not in its shortest form (RFC 6455 5.2)");
            return false;
        }
    }
    std::memcpy(mask_, header_ + at, 4);
    mask_offset_ = 0;
    remaining_ = length;
    if (is_control(opcode_)) {
        if (!fin_ || length > 125) {
            fail(control_out, close_code::protocol_error, "fragmented or oversized control frame");
            return false;
        }
        control_payload_.clear();
        return true;
    }
    if (opcode_ == opcode::text) {
        // [MQTT-6.0.0-1] MQTT packets travel in binary frames; anything else closes.
        fail(control_out, close_code::unsupported_data, "[MQTT-6.0.0-1] text frame");
        return false;
    }
    if (opcode_ == opcode::continuation && !in_message_) {
        fail(control_out, close_code::protocol_error, "continuation frame outside a message");
        return false;
    }
    if (opcode_ == opcode::binary && in_message_) {
        fail(control_out, close_code::protocol_error, "new message before the previous one ended");
        return false;
    }
    in_message_ = !fin_;
    return true;
}

void frame_decoder::finish_control(std::string& control_out) {
    switch (opcode_) {
        case opcode::ping:
            append_control_frame(control_out, opcode::pong, control_payload_);
            break;
        case opcode::close: {
            if (control_payload_.size() == 1) {
                fail(control_out, close_code::protocol_error, "Close frame with a one-byte body");
                return;
            }
            close_code answer = close_code::normal;
            if (control_payload_.size() >= 2) {
                const auto code = static_cast<std::uint16_t>(
                    (static_cast<unsigned char>(control_payload_[0]) << 8) | static_cast<unsigned char>(control_payload_[1]));
                if (!valid_close_code(code)) {
                    fail(control_out, close_code::protocol_error, "invalid Close status code");
                    return;
                }
                if (!protocol::is_valid_utf8(std::string_view(control_payload_).substr(2))) {
                    fail(control_out, close_code::invalid_payload, "Close reason is not UTF-8");
                    return;
                }
                answer = static_cast<close_code>(code);
            }
            // Echo the status code (RFC 6455 5.5.1), then close.
            append_close_frame(control_out, answer);
            state_ = state::closing;
            break;
        }
        default:  // pong: nothing to do (we send no pings of our own)
            break;
    }
}

std::size_t frame_decoder::decode(std::span<char> bytes, std::string& control_out) {
    std::size_t read = 0;
    std::size_t written = 0;
    const std::size_t n = bytes.size();
    while (read < n && state_ == state::open) {
        if (!in_payload_) {
            // Header: 2 bytes tell how long the rest is.
            if (header_have_ < 2) {
                header_[header_have_++] = static_cast<unsigned char>(bytes[read++]);
                continue;
            }
            if (!(header_[1] & 0x80)) {
                // Known from the second byte: no point waiting for a mask that is not coming.
                fail(control_out, close_code::protocol_error, "unmasked frame from a client (RFC 6455 5.1)");
                break;
            }
            const std::uint8_t len7 = header_[1] & 0x7F;
            const std::size_t need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
            const std::size_t take = std::min(need - header_have_, n - read);
            std::memcpy(header_ + header_have_, bytes.data() + read, take);
            header_have_ = static_cast<std::uint8_t>(header_have_ + take);
            read += take;
            if (header_have_ < need) break;
            header_have_ = 0;
            if (!parse_header(control_out)) break;
            in_payload_ = true;
            if (remaining_ == 0) {  // an empty frame ends with its header
                in_payload_ = false;
                if (is_control(opcode_)) finish_control(control_out);
                continue;
            }
        }
        const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, n - read));
        char* src = bytes.data() + read;
        if (is_control(opcode_)) {
            for (std::size_t i = 0; i < take; ++i)
                control_payload_.push_back(static_cast<char>(src[i] ^ mask_[(mask_offset_ + i) & 3]));
        } else {
            // Unmask into place; the destination never overtakes the source.
            char* dst = bytes.data() + written;
            for (std::size_t i = 0; i < take; ++i) dst[i] = static_cast<char>(src[i] ^ mask_[(mask_offset_ + i) & 3]);
            written += take;
        }
        mask_offset_ = static_cast<std::uint8_t>((mask_offset_ + take) & 3);
        read += take;
        remaining_ -= take;
        if (remaining_ == 0) {
            in_payload_ = false;
            if (is_control(opcode_)) finish_control(control_out);
        }
    }
    return written;
}

}  // namespace edgemq::net::ws
