// WebSocket framing (RFC 6455 section 5) as MQTT over WebSocket uses it: client frames
// decoded in place whatever way they are split, control frames answered, every
// violation closed with the right status [MQTT-6.0.0-1].
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "broker/net/ws_codec.hpp"

using namespace edgemq::net::ws;

namespace {

// A client frame: masked with `mask`, FIN as given.
std::string client_frame(std::uint8_t op, std::string_view payload, bool fin = true,
                         std::array<unsigned char, 4> mask = {0x12, 0x34, 0x56, 0x78}, bool masked = true) {
    std::string f;
    f.push_back(static_cast<char>((fin ? 0x80 : 0) | op));
    const unsigned char m = masked ? 0x80 : 0;
    if (payload.size() < 126) {
        f.push_back(static_cast<char>(m | payload.size()));
    } else if (payload.size() <= 0xFFFF) {
        f.push_back(static_cast<char>(m | 126));
        f.push_back(static_cast<char>(payload.size() >> 8));
        f.push_back(static_cast<char>(payload.size()));
    } else {
        f.push_back(static_cast<char>(m | 127));
        for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>(static_cast<std::uint64_t>(payload.size()) >> (8 * i)));
    }
    if (masked) f.append(reinterpret_cast<const char*>(mask.data()), 4);
    for (std::size_t i = 0; i < payload.size(); ++i)
        f.push_back(masked ? static_cast<char>(payload[i] ^ mask[i & 3]) : payload[i]);
    return f;
}

struct decoded {
    std::string data;
    std::string control;
    frame_decoder::state state;
};

// Feeds `wire` in chunks of `chunk` bytes (0: all at once).
decoded feed(const std::string& wire, std::size_t chunk = 0) {
    frame_decoder d;
    decoded out;
    std::string copy = wire;
    const std::size_t step = chunk == 0 ? copy.size() : chunk;
    for (std::size_t at = 0; at < copy.size(); at += step) {
        const std::size_t n = std::min(step, copy.size() - at);
        std::span<char> piece(copy.data() + at, n);
        const std::size_t got = d.decode(piece, out.control);
        out.data.append(piece.data(), got);
    }
    out.state = d.current();
    return out;
}

// The first frame of server output: opcode and payload.
std::pair<std::uint8_t, std::string> server_frame(const std::string& out) {
    REQUIRE(out.size() >= 2);
    const auto op = static_cast<std::uint8_t>(out[0] & 0x0F);
    const std::size_t len = static_cast<unsigned char>(out[1]) & 0x7F;
    REQUIRE(len < 126);
    return {op, out.substr(2, len)};
}

std::uint16_t close_status(const std::string& out) {
    auto [op, payload] = server_frame(out);
    REQUIRE(op == 8);
    REQUIRE(payload.size() >= 2);
    return static_cast<std::uint16_t>((static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1]));
}

}  // namespace

TEST_CASE("Binary frames of every length class are unmasked in place") {
    for (std::size_t size : {0u, 1u, 125u, 126u, 127u, 65535u, 65536u, 200000u}) {
        CAPTURE(size);
        std::string payload(size, '\0');
        for (std::size_t i = 0; i < size; ++i) payload[i] = static_cast<char>(i * 7 + 3);
        const auto r = feed(client_frame(2, payload));
        CHECK(r.data == payload);
        CHECK(r.control.empty());
        CHECK(r.state == frame_decoder::state::open);
    }
}

TEST_CASE("Several MQTT packets in one frame and one packet over many frames give the same bytes") {
    const std::string packets = std::string("\x30\x05\x00\x01t", 5) + "ab" + std::string("\xC0\x00", 2);
    CHECK(feed(client_frame(2, packets)).data == packets);
    // A fragmented message: binary, continuation, continuation (FIN).
    const std::string wire = client_frame(2, packets.substr(0, 2), false) + client_frame(0, packets.substr(2, 3), false) +
                             client_frame(0, packets.substr(5), true);
    CHECK(feed(wire).data == packets);
    // Two messages back to back.
    CHECK(feed(client_frame(2, "abc") + client_frame(2, "def")).data == "abcdef");
}

TEST_CASE("Frames split at every byte boundary decode the same") {
    std::string wire;
    std::string expected;
    std::mt19937 rng(7);
    for (int i = 0; i < 20; ++i) {
        std::string payload(rng() % 300, '\0');
        for (auto& c : payload) c = static_cast<char>(rng());
        expected += payload;
        const std::array<unsigned char, 4> mask{static_cast<unsigned char>(rng()), static_cast<unsigned char>(rng()),
                                                static_cast<unsigned char>(rng()), static_cast<unsigned char>(rng())};
        wire += client_frame(2, payload, true, mask);
        if (i % 5 == 0) wire += client_frame(9, "hb");  // pings between messages
    }
    for (std::size_t chunk : {1u, 2u, 3u, 7u, 13u, 64u, 1000u}) {
        CAPTURE(chunk);
        const auto r = feed(wire, chunk);
        CHECK(r.data == expected);
        CHECK(r.state == frame_decoder::state::open);
        CHECK(r.control.size() == 4 * 4);  // four Pongs of "hb"
    }
}

TEST_CASE("Ping is answered with a Pong carrying its payload even between fragments") {
    const std::string wire = client_frame(2, "ab", false) + client_frame(9, "hello") + client_frame(0, "cd", true);
    const auto r = feed(wire);
    CHECK(r.data == "abcd");
    auto [op, payload] = server_frame(r.control);
    CHECK(op == 10);
    CHECK(payload == "hello");
    // An empty Ping as the last bytes of the input is answered at once.
    const auto empty = feed(client_frame(9, ""));
    CHECK(server_frame(empty.control).first == 10);
    // Pongs from the client need no answer.
    CHECK(feed(client_frame(10, "x")).control.empty());
}

TEST_CASE("Close is echoed with the client's status and nothing after it is decoded") {
    std::string close_payload = std::string("\x03\xE8", 2) + "bye";
    const auto r = feed(client_frame(8, close_payload) + client_frame(2, "late"));
    CHECK(r.state == frame_decoder::state::closing);
    CHECK(close_status(r.control) == 1000);
    CHECK(r.data.empty());
    const auto bare = feed(client_frame(8, ""));
    CHECK(bare.state == frame_decoder::state::closing);
    CHECK(close_status(bare.control) == 1000);
}

TEST_CASE("MQTT-6.0.0-1 a text frame closes with 1003") {
    const auto r = feed(client_frame(1, "{\"mqtt\":1}"));
    CHECK(r.state == frame_decoder::state::failed);
    CHECK(close_status(r.control) == 1003);
    CHECK(r.data.empty());
}

TEST_CASE("Protocol violations close with 1002") {
    struct violation {
        std::string what;
        std::string wire;
    };
    std::string rsv = client_frame(2, "x");
    rsv[0] = static_cast<char>(rsv[0] | 0x40);
    std::string huge = client_frame(2, "");
    huge[1] = static_cast<char>(0x80 | 127);
    huge.insert(2, std::string("\x80\0\0\0\0\0\0\0", 8));
    // "x" with its length 1 in the 16-bit and in the 64-bit form: not the shortest.
    std::string long16 = client_frame(2, "x");
    long16[1] = static_cast<char>(0x80 | 126);
    long16.insert(2, std::string("\0\x01", 2));
    std::string long64 = client_frame(2, "x");
    long64[1] = static_cast<char>(0x80 | 127);
    long64.insert(2, std::string("\0\0\0\0\0\0\0\x01", 8));
    const std::vector<violation> cases = {
        {"unmasked client frame", client_frame(2, "x", true, {}, false)},
        {"RSV bit without extension", rsv},
        {"reserved opcode 3", client_frame(3, "x")},
        {"reserved control opcode 11", client_frame(11, "")},
        {"fragmented ping", client_frame(9, "x", false)},
        {"control frame over 125 bytes", client_frame(9, std::string(126, 'p'))},
        {"continuation without a message", client_frame(0, "x")},
        {"new binary frame inside a fragmented message", client_frame(2, "a", false) + client_frame(2, "b")},
        {"close with a one byte body", client_frame(8, "\x03")},
        {"close status 1005 may not be sent", client_frame(8, std::string("\x03\xED", 2))},
        {"close status 999", client_frame(8, std::string("\x03\xE7", 2))},
        {"64-bit length with the top bit set", huge},
        {"length 1 in the 16-bit form", long16},
        {"length 1 in the 64-bit form", long64},
    };
    for (const auto& c : cases) {
        CAPTURE(c.what);
        const auto r = feed(c.wire);
        CHECK(r.state == frame_decoder::state::failed);
        CHECK(close_status(r.control) == 1002);
    }
    const auto bad_reason = feed(client_frame(8, std::string("\x03\xE8\xC3\x28", 4)));
    CHECK(close_status(bad_reason.control) == 1007);
}

TEST_CASE("Server frame headers use the shortest length form") {
    char h[max_server_header];
    CHECK(encode_header(opcode::binary, 0, h) == 2);
    CHECK(static_cast<unsigned char>(h[0]) == 0x82);
    CHECK(encode_header(opcode::binary, 125, h) == 2);
    CHECK(encode_header(opcode::binary, 126, h) == 4);
    CHECK(static_cast<unsigned char>(h[1]) == 126);
    CHECK(encode_header(opcode::binary, 65535, h) == 4);
    CHECK(encode_header(opcode::binary, 65536, h) == 10);
    CHECK(static_cast<unsigned char>(h[1]) == 127);
    CHECK(static_cast<unsigned char>(h[7]) == 1);  // 65536 = 0x00..010000
    std::string out;
    append_close_frame(out, close_code::going_away, "bye");
    CHECK(close_status(out) == 1001);
}
