// WebSocket framing (RFC 6455 section 5) for MQTT over WebSocket, after the handshake:
// a sans-I/O decoder of a client's frames and the encoding of the server's. No socket,
// no allocation per frame; fuzzed (tests/fuzz/ws_fuzz.cpp).
//
// Why not Beast's websocket::stream for the data phase (Beast does the HTTP upgrade):
// a connection must be able to move to the worker that owns its session, which an
// Asio/Beast stream bound to one io_context cannot; and the broker reads every socket
// into one worker-wide buffer and writes gathered buffers, which this decoder keeps
// (it unmasks in place, and a server frame is a 2..10 byte header before the packets).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace edgemq::net::ws {

enum class opcode : std::uint8_t { continuation = 0, text = 1, binary = 2, close = 8, ping = 9, pong = 10 };

// Close status codes (RFC 6455 section 7.4.1).
enum class close_code : std::uint16_t {
    normal = 1000,
    going_away = 1001,
    protocol_error = 1002,
    unsupported_data = 1003,
    invalid_payload = 1007,
    policy_violation = 1008,
    too_big = 1009,
    internal_error = 1011,
};

// The largest server frame header: 2 bytes, plus an 8-byte extended length.
constexpr std::size_t max_server_header = 10;

// Writes the header of one unfragmented, unmasked server frame carrying `length`
// payload bytes into `out`; returns its size (2, 4 or 10).
std::size_t encode_header(opcode op, std::uint64_t length, std::span<char, max_server_header> out) noexcept;

// Appends a whole server frame (a control frame: at most 125 payload bytes).
void append_control_frame(std::string& out, opcode op, std::string_view payload);
// Appends a Close frame with `code` and a short reason.
void append_close_frame(std::string& out, close_code code, std::string_view reason = {});

class frame_decoder {
public:
    enum class state : std::uint8_t {
        open,
        // The client sent Close: the answering Close is in `control_out`; write it and
        // close the connection. Nothing after the Close is decoded.
        closing,
        // The client broke the protocol: a Close with the code is in `control_out`;
        // write it and close. `error()` says what was wrong.
        failed,
    };

    // Decodes `bytes` in place: the unmasked payload of data frames (binary frames and
    // their continuations, across frame and message boundaries) is moved to the front
    // of `bytes`, and its length returned. Replies (Pong for Ping, Close for Close, a
    // Close with a status for a violation) are appended to `control_out`. Frames may be
    // split anywhere between calls. Rules enforced: client frames must be masked
    // (section 5.1), no RSV bits (no extension is negotiated), known opcodes, control
    // frames unfragmented and at most 125 bytes, continuations only inside a message,
    // valid Close codes and UTF-8 reasons, and no text frames: MQTT travels in binary
    // frames only [MQTT-6.0.0-1].
    std::size_t decode(std::span<char> bytes, std::string& control_out);

    state current() const noexcept { return state_; }
    const char* error() const noexcept { return error_; }

private:
    void fail(std::string& control_out, close_code code, const char* why);
    bool parse_header(std::string& control_out);
    void finish_control(std::string& control_out);

    state state_ = state::open;
    const char* error_ = "";
    // The header being read (at most 14 bytes: 2 + 8 length + 4 mask).
    unsigned char header_[14]{};
    std::uint8_t header_have_ = 0;
    bool in_payload_ = false;
    // The current frame.
    opcode opcode_ = opcode::binary;
    bool fin_ = true;
    unsigned char mask_[4]{};
    std::uint64_t remaining_ = 0;
    std::uint8_t mask_offset_ = 0;
    // A data message whose final frame has not come yet.
    bool in_message_ = false;
    std::string control_payload_;  // of the current control frame (<= 125 bytes)
};

}  // namespace edgemq::net::ws
