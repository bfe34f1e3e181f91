// What moves with a connection to the worker that owns its session: the socket, the
// TLS session, the WebSocket framing state and the input not yet handled. Made by
// connection::migrate, consumed by the connection constructed on the target worker.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "broker/net/tls_stream.hpp"
#include "broker/net/ws_codec.hpp"

namespace edgemq::net {

struct listener_slot;

struct connection_handoff {
    int fd = -1;                                   // plain TCP
    std::unique_ptr<tls_stream::detached> tls;     // or TLS (the descriptor inside)
    std::unique_ptr<ws::frame_decoder> ws;         // ws and wss
    std::string ws_control_out;                    // Pong frames not written yet
    listener_slot* slot = nullptr;
    std::string peer;
    std::optional<std::string> certificate_identity;
    std::string replay;                            // MQTT bytes from the CONNECT on
};

}  // namespace edgemq::net
