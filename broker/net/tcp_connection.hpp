// One client socket: reads into the worker's shared buffer, feeds the protocol
// (core::client_connection), and writes what the protocol produced with at most one
// write in flight, gathering everything queued meanwhile into the next write.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>
#include <boost/asio/buffer.hpp>

#include "broker/core/client_connection.hpp"

namespace edgemq::net {

class worker;

class tcp_connection final : public core::connection_io, public std::enable_shared_from_this<tcp_connection> {
public:
    tcp_connection(worker& owner, boost::asio::ip::tcp::socket socket, std::string peer);
    ~tcp_connection() override;

    // Starts reading; `replay` is input already read by the worker this socket came from.
    void start(std::string replay);
    // Writes what the protocol has queued, unless a write is in flight.
    void flush();
    // Periodic checks: protocol timeouts, and a bound on how long a close may linger.
    void tick(std::chrono::steady_clock::time_point now);
    void shut_down() { protocol_.shut_down(); }
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
    void wait_readable();
    void on_readable(const boost::system::error_code& ec);
    void on_written(const boost::system::error_code& ec);
    void begin_linger();
    void drain_after_close(const boost::system::error_code& ec);
    void close_socket(std::string_view why);

    worker& worker_;
    boost::asio::ip::tcp::socket socket_;
    core::client_connection protocol_;
    core::output_queue writing_;           // the write in flight
    std::vector<boost::asio::const_buffer> gather_;
    bool write_in_flight_ = false;
    bool closing_ = false;   // protocol asked to close: finish writing, then close
    bool lingering_ = false; // FIN sent, discarding input until the peer closes
    bool reads_paused_ = false;  // output full: reading resumes when a write completes
    bool closed_ = false;
    std::chrono::steady_clock::time_point close_deadline_{};
    std::chrono::microseconds slow_down_delay_{};
};

}  // namespace edgemq::net
