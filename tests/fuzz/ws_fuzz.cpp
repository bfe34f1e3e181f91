// WebSocket frame decoder: arbitrary client bytes, decoded at once and in chunks whose
// sizes come from the input, must give the same data, the same replies and the same
// state, never more data than input, and never crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "broker/net/ws_codec.hpp"

using edgemq::net::ws::frame_decoder;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const std::size_t chunk = 1 + data[0] % 17;
    const std::string input(reinterpret_cast<const char*>(data + 1), size - 1);

    frame_decoder whole;
    std::string whole_buffer = input;
    std::string whole_control;
    const std::size_t whole_n = whole.decode(std::span<char>(whole_buffer.data(), whole_buffer.size()), whole_control);
    if (whole_n > input.size()) std::abort();

    frame_decoder pieces;
    std::string pieces_buffer = input;
    std::string pieces_control;
    std::string pieces_data;
    for (std::size_t at = 0; at < pieces_buffer.size(); at += chunk) {
        std::span<char> piece(pieces_buffer.data() + at, std::min(chunk, pieces_buffer.size() - at));
        pieces_data.append(piece.data(), pieces.decode(piece, pieces_control));
    }
    if (pieces_data != std::string_view(whole_buffer.data(), whole_n)) std::abort();
    if (pieces_control != whole_control) std::abort();
    if (pieces.current() != whole.current()) std::abort();
    return 0;
}
