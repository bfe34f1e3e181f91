#include "transport.hpp"

#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <fstream>
#include <stdexcept>
#include <type_traits>

#include "options.hpp"

namespace edgemq::bench {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

std::string_view to_string(transport_kind k) {
    switch (k) {
    case transport_kind::tcp: return "tcp";
    case transport_kind::tls: return "tls";
    case transport_kind::ws: return "ws";
    case transport_kind::wss: return "wss";
    }
    return "?";
}

transport_setup make_transport_setup(const options& o) {
    transport_setup s;
    s.kind = o.transport;
    s.host = o.host;
    s.port = o.port;
    s.ws_path = o.ws_path;
    s.sndbuf = o.sndbuf;
    if (s.kind == transport_kind::tls || s.kind == transport_kind::wss) {
        auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
        ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                         ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
        if (o.insecure) {
            ctx->set_verify_mode(ssl::verify_none);
        } else {
            ctx->set_verify_mode(ssl::verify_peer);
            error_code ec;
            if (!o.cafile.empty() && !std::ifstream(o.cafile))
                throw std::runtime_error("--cafile " + o.cafile + ": cannot be read");
            if (!o.cafile.empty()) ctx->load_verify_file(o.cafile, ec);
            else ctx->set_default_verify_paths(ec);
            if (ec)
                throw std::runtime_error((o.cafile.empty() ? std::string("the system CA store")
                                                           : "--cafile " + o.cafile) + ": " + ec.message());
        }
        s.tls = std::move(ctx);
    }
    return s;
}

namespace {

template <class T> struct is_websocket : std::false_type {};
template <class T> struct is_websocket<websocket::stream<T>> : std::true_type {};
template <class T> struct is_ssl : std::false_type {};
template <class T> struct is_ssl<ssl::stream<T>> : std::true_type {};
template <class T> struct has_tls : is_ssl<T> {};
template <class T> struct has_tls<websocket::stream<T>> : is_ssl<T> {};

// Stream is tcp::socket, ssl::stream<tcp::socket>, websocket::stream<tcp::socket> or
// websocket::stream<ssl::stream<tcp::socket>>.
template <class Stream>
class stream_transport final : public transport {
    static constexpr bool websocket_ = is_websocket<Stream>::value;
    static constexpr bool tls_ = has_tls<Stream>::value;

public:
    stream_transport(asio::io_context& io, const transport_setup& setup, transport_user& user)
        : setup_(setup), user_(user), stream_(make_stream(io, setup)) {
        if constexpr (websocket_) {
            // MQTT over WebSocket: binary messages, subprotocol "mqtt" [MQTT-6.0.0-1,
            // 6.0.0-3]. One write is one message in one frame; the masking buffer holds a
            // whole batch so a batch costs one socket write.
            stream_.binary(true);
            stream_.auto_fragment(false);
            stream_.write_buffer_bytes(64 * 1024);
            stream_.read_message_max(0);
            stream_.set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
                req.set(beast::http::field::sec_websocket_protocol, "mqtt");
                req.set(beast::http::field::user_agent, "edgemq-bench");
            }));
        }
    }

    void async_connect(const tcp::endpoint& ep, std::function<void(std::string)> done) override {
        done_ = std::move(done);
        lowest().async_connect(ep, [this](const error_code& ec) {
            if (ec) return finish("connect", ec);
            // Small acks and pings must not wait for Nagle; bulk data is batched by us.
            error_code ignored;
            lowest().set_option(tcp::no_delay(true), ignored);
            if (setup_.sndbuf > 0)
                lowest().set_option(asio::socket_base::send_buffer_size(static_cast<int>(setup_.sndbuf)), ignored);
            tls_handshake();
        });
    }

    void read_some(asio::mutable_buffer b) override {
        stream_.async_read_some(b, [this](const error_code& ec, std::size_t n) { user_.on_transport_read(ec, n); });
    }

    void write(asio::const_buffer b) override {
        if constexpr (websocket_)
            stream_.async_write(b, [this](const error_code& ec, std::size_t) { user_.on_transport_written(ec); });
        else
            asio::async_write(stream_, b, [this](const error_code& ec, std::size_t) { user_.on_transport_written(ec); });
    }

    void shutdown_send() override {
        if constexpr (websocket_) {
            // The read in flight sees the broker's close frame (or its TCP close).
            stream_.async_close(websocket::close_code::normal, [](const error_code&) {});
        } else {
            // TLS too: the DISCONNECT is what ends the session; the broker closes on it,
            // so a close_notify exchange would only add a round trip.
            error_code ignored;
            lowest().shutdown(tcp::socket::shutdown_send, ignored);
        }
    }

    void close() override {
        error_code ignored;
        lowest().close(ignored);
    }

private:
    static Stream make_stream(asio::io_context& io, const transport_setup& setup) {
        if constexpr (std::is_same_v<Stream, tcp::socket> || std::is_same_v<Stream, websocket::stream<tcp::socket>>)
            return Stream(io);
        else
            return Stream(io, *setup.tls);
    }

    tcp::socket& lowest() { return beast::get_lowest_layer(stream_); }

    auto& tls_layer() {
        if constexpr (websocket_) return stream_.next_layer();
        else return stream_;
    }

    void tls_handshake() {
        if constexpr (tls_) {
            auto& s = tls_layer();
            error_code ec;
            asio::ip::make_address(setup_.host, ec);
            const bool is_address = !ec;
            // SNI carries a name, never an address (RFC 6066 3).
            if (!is_address) SSL_set_tlsext_host_name(s.native_handle(), setup_.host.c_str());
            s.set_verify_callback(ssl::host_name_verification(setup_.host));
            s.async_handshake(ssl::stream_base::client, [this](const error_code& e) {
                if (e) return finish("TLS handshake", e);
                ws_handshake();
            });
        } else {
            ws_handshake();
        }
    }

    void ws_handshake() {
        if constexpr (websocket_) {
            const std::string host = setup_.host + ":" + std::to_string(setup_.port);
            stream_.async_handshake(response_, host, setup_.ws_path, [this](const error_code& ec) {
                if (ec) return finish("WebSocket handshake for " + setup_.ws_path, ec);
                const auto proto = response_[beast::http::field::sec_websocket_protocol];
                if (proto != "mqtt") {
                    done_("WebSocket handshake: the broker answered subprotocol '" + std::string(proto) +
                          "', not 'mqtt'");
                    return;
                }
                response_ = {};
                done_({});
            });
        } else {
            done_({});
        }
    }

    void finish(const std::string& step, const error_code& ec) { done_(step + ": " + ec.message()); }

    const transport_setup& setup_;
    transport_user& user_;
    Stream stream_;
    std::function<void(std::string)> done_;
    websocket::response_type response_;
};

}  // namespace

std::unique_ptr<transport> make_transport(asio::io_context& io, const transport_setup& setup, transport_user& user) {
    switch (setup.kind) {
    case transport_kind::tcp: return std::make_unique<stream_transport<tcp::socket>>(io, setup, user);
    case transport_kind::tls: return std::make_unique<stream_transport<ssl::stream<tcp::socket>>>(io, setup, user);
    case transport_kind::ws: return std::make_unique<stream_transport<websocket::stream<tcp::socket>>>(io, setup, user);
    case transport_kind::wss:
        return std::make_unique<stream_transport<websocket::stream<ssl::stream<tcp::socket>>>>(io, setup, user);
    }
    return nullptr;
}

}  // namespace edgemq::bench
