// One client socket, whatever the listener: plain TCP, TLS (mbedTLS, tls_stream),
// WebSocket (HTTP upgrade through Beast, then ws::frame_decoder) or both. It runs the
// handshakes, then reads into the worker's shared buffer (through TLS and WebSocket
// framing when present), feeds the protocol (core::client_connection), and writes what
// the protocol produced with at most one write in flight, gathering everything queued
// meanwhile into the next write (one WebSocket frame, few TLS records).
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "broker/core/client_connection.hpp"
#include "broker/net/ws_codec.hpp"

namespace edgemq::net {

class worker;
class tls_stream;
class tls_context;
struct listener_slot;
struct http_exchange;

// What moves with a connection to the worker that owns its session (see migrate()).
struct connection_handoff;

class connection final : public core::connection_io, public std::enable_shared_from_this<connection> {
public:
    // A freshly accepted socket on `slot`'s listener (TLS and WebSocket handshakes to come).
    connection(worker& owner, boost::asio::ip::tcp::socket socket, std::string peer, listener_slot& slot,
               std::shared_ptr<const tls_context> tls);
    // A connection moved here from another worker (its handshakes are done).
    connection(worker& owner, connection_handoff&& handoff);
    ~connection() override;

    // Starts the handshakes (new) or reading (moved); `replay` is MQTT input already
    // read by the worker this connection came from.
    void start();
    // Writes what the protocol has queued, unless a write is in flight.
    void flush();
    // Periodic checks: handshake and protocol timeouts, and a bound on how long a
    // close may linger.
    void tick(std::chrono::steady_clock::time_point now);
    void shut_down();
    // Closes the socket now, whatever state the connection is in.
    void abort(std::string_view why) { close_socket(why); }
    // Reads again after worker::defer_read.
    void resume_reading();

    // core::connection_io
    void output_ready() override;
    void close() override;
    void migrate(unsigned worker_index, std::string replay) override;

    bool dirty = false;  // queued in worker::dirty_

private:
    enum class phase : std::uint8_t { tls_handshake, http, open };

    boost::asio::ip::tcp::socket& socket() noexcept;
    void start_tls();
    void start_http();
    void on_http_request(const boost::system::error_code& ec);
    void answer_http(unsigned status, std::string body);
    void on_upgraded(const boost::system::error_code& ec);
    void start_reading();
    std::size_t read_transport(std::span<char> buffer, boost::system::error_code& ec);
    // Input through the WebSocket decoder (if any) to the protocol; false once closing.
    bool deliver_input(std::span<char> bytes);
    void wait_readable();
    void on_readable(const boost::system::error_code& ec);
    void on_written(const boost::system::error_code& ec);
    void begin_linger();
    void drain_after_close(const boost::system::error_code& ec);
    void close_socket(std::string_view why);

    worker& worker_;
    listener_slot* slot_;
    boost::asio::ip::tcp::socket socket_;  // unless tls_ owns it
    std::unique_ptr<tls_stream> tls_;
    std::unique_ptr<ws::frame_decoder> ws_;
    std::unique_ptr<http_exchange> http_;  // during the WebSocket upgrade
    std::string ws_control_out_;           // WebSocket Pong/Close frames to write next
    std::string ws_prefix_;                // control frames and frame header of the write in flight
    core::client_connection protocol_;
    std::string replay_;                   // MQTT input to feed first (moved connections)
    phase phase_ = phase::open;
    core::output_queue writing_;           // the write in flight
    std::vector<boost::asio::const_buffer> gather_;
    bool write_in_flight_ = false;
    bool closing_ = false;   // protocol asked to close: finish writing, then close
    bool ws_close_sent_ = false;
    bool lingering_ = false; // FIN sent, discarding input until the peer closes
    bool closed_by_client_ = false;  // EOF from the client: closing after our answers
    bool reads_paused_ = false;  // output full: reading resumes when a write completes
    bool closed_ = false;
    std::chrono::steady_clock::time_point handshake_deadline_{};
    std::chrono::steady_clock::time_point close_deadline_{};
    std::chrono::microseconds slow_down_delay_{};
};

}  // namespace edgemq::net
