// The byte stream under a bench connection: plain TCP, TLS (Boost.Asio's ssl::stream on
// OpenSSL: a TLS stack independent of the broker's mbedTLS, so the two never share a
// bug), MQTT over WebSocket (Boost.Beast, client side, subprotocol "mqtt", binary
// messages) or both.
//
// Threading: a transport belongs to its connection and is only touched on that
// connection's worker thread. Completions go to the transport_user given at creation,
// which must outlive every pending operation (the connection owns the transport).
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace edgemq::bench {

struct options;

enum class transport_kind { tcp, tls, ws, wss };

// What every connection of a run shares; read-only while the workers run.
struct transport_setup {
    transport_kind kind = transport_kind::tcp;
    std::string host;          // TLS: SNI (a name, not an address) and the name or address checked
                               // against the certificate; WebSocket: the Host header
    std::uint16_t port = 0;
    std::string ws_path = "/mqtt";
    unsigned sndbuf = 0;       // SO_SNDBUF, 0 = the OS default
    std::shared_ptr<boost::asio::ssl::context> tls;  // tls and wss only
};

// Builds the setup for `o` (the TLS context with --cafile or the system CAs, or no
// verification with --insecure). Throws std::runtime_error naming the file and why.
transport_setup make_transport_setup(const options& o);

class transport_user {
public:
    virtual void on_transport_read(const boost::system::error_code& ec, std::size_t n) = 0;
    virtual void on_transport_written(const boost::system::error_code& ec) = 0;

protected:
    ~transport_user() = default;
};

class transport {
public:
    virtual ~transport() = default;

    // Connects TCP (no_delay on, SO_SNDBUF from the setup), then does the TLS and/or
    // WebSocket handshake. `done` gets an empty string on success, else what failed
    // ("TLS handshake: certificate verify failed").
    virtual void async_connect(const boost::asio::ip::tcp::endpoint& ep, std::function<void(std::string)> done) = 0;
    // At most one of each in flight; completion goes to the user. A WebSocket write is
    // one binary message.
    virtual void read_some(boost::asio::mutable_buffer b) = 0;
    virtual void write(boost::asio::const_buffer b) = 0;
    // After our DISCONNECT, with no write in flight: TCP half-close, or the WebSocket
    // close handshake. The pending read then ends with the broker's close.
    virtual void shutdown_send() = 0;
    // Closes the socket now; pending operations complete with operation_aborted.
    virtual void close() = 0;
};

std::unique_ptr<transport> make_transport(boost::asio::io_context& io, const transport_setup& setup, transport_user& user);

std::string_view to_string(transport_kind k);

}  // namespace edgemq::bench
