#include "broker/net/tcp_connection.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "broker/core/log.hpp"
#include "broker/net/server.hpp"
#include "broker/net/worker.hpp"

namespace edgemq::net {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {
// How long a closing connection may take to flush its last packets and see the
// client's FIN before the socket is closed regardless.
constexpr auto close_linger = std::chrono::seconds(2);
}  // namespace

tcp_connection::tcp_connection(worker& owner, asio::ip::tcp::socket socket, std::string peer)
    : worker_(owner), socket_(std::move(socket)), protocol_(owner.core(), *this, std::move(peer)) {}

tcp_connection::~tcp_connection() = default;

void tcp_connection::start(std::string replay) {
    if (!replay.empty()) {
        protocol_.on_input(replay);
        if (closed_ || closing_) return;
    }
    wait_readable();
}

void tcp_connection::wait_readable() {
    socket_.async_wait(asio::ip::tcp::socket::wait_read,
                       [self = shared_from_this()](const error_code& ec) { self->on_readable(ec); });
}

void tcp_connection::on_readable(const error_code& wait_ec) {
    if (closed_ || closing_) return;
    if (wait_ec) {
        if (wait_ec != asio::error::operation_aborted) close_socket(wait_ec.message());
        return;
    }
    if (write_in_flight_ && protocol_.output().size() >= worker_.core().settings().max_output_buffer) {
        // The client is not taking what we write. Reading on would queue our answers to
        // what it sends (PUBACK, PINGRESP, ...) without bound; leave its bytes in the
        // kernel until the write completes, so TCP flow control holds it back.
        reads_paused_ = true;
        return;
    }
    if (worker_.core().downstream_congested()) {
        // Leave the bytes in the kernel: TCP flow control slows the client down until
        // the workers we route to have caught up.
        worker_.defer_read(shared_from_this(), std::chrono::microseconds(200));
        return;
    }
    const std::span<char> buffer = worker_.read_buffer();
    error_code ec;
    const std::size_t n = socket_.read_some(asio::buffer(buffer.data(), buffer.size()), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
        wait_readable();
        return;
    }
    if (ec) {
        close_socket(ec == asio::error::eof ? "connection closed by client" : ec.message());
        return;
    }
    protocol_.on_input(std::string_view(buffer.data(), n));
    if (closed_ || closing_) return;
    if (protocol_.take_slow_down()) {
        // What this client sent goes to a subscriber with a backlog. Leave its next
        // bytes in the kernel for a while, longer each time in a row (up to 64 ms), so
        // TCP flow control slows it down. The delay is bounded, so a stuck subscriber
        // slows publishers but cannot stop them (its queue limit then applies).
        slow_down_delay_ = std::min(std::max(slow_down_delay_ * 2, std::chrono::microseconds(500)),
                                    std::chrono::microseconds(64'000));
        worker_.defer_read(shared_from_this(), slow_down_delay_);
        return;
    }
    slow_down_delay_ = {};
    if (n == buffer.size()) {
        // More is probably waiting; let the worker's other connections go first.
        asio::post(worker_.context(), [self = shared_from_this()] { self->on_readable({}); });
    } else {
        wait_readable();
    }
}

void tcp_connection::resume_reading() {
    if (!closed_ && !closing_) on_readable({});
}

void tcp_connection::output_ready() {
    if (!closed_) worker_.mark_dirty(shared_from_this());
}

void tcp_connection::flush() {
    if (closed_ || write_in_flight_ || lingering_) return;
    core::output_queue& out = protocol_.output();
    if (out.empty()) {
        if (closing_) begin_linger();
        return;
    }
    writing_.swap(out);
    gather_.clear();
    writing_.for_each_segment([this](std::string_view s) { gather_.emplace_back(s.data(), s.size()); });
    write_in_flight_ = true;
    asio::async_write(socket_, gather_,
                      [self = shared_from_this()](const error_code& ec, std::size_t) { self->on_written(ec); });
}

void tcp_connection::on_written(const error_code& ec) {
    write_in_flight_ = false;
    if (closed_) return;
    if (ec) {
        close_socket(ec == asio::error::operation_aborted ? "write cancelled" : "write failed: " + ec.message());
        return;
    }
    writing_.clear();
    // Room again: let the session send what waited, then write it all at once.
    if (!closing_) protocol_.on_output_written();
    if (protocol_.output().empty()) {
        writing_.release_if_larger_than(4096);
        if (gather_.capacity() > 64) std::vector<asio::const_buffer>().swap(gather_);
    }
    flush();
    if (reads_paused_ && !closing_ && !closed_) {
        reads_paused_ = false;
        wait_readable();
    }
}

void tcp_connection::close() {
    if (closed_ || closing_) return;
    closing_ = true;
    close_deadline_ = std::chrono::steady_clock::now() + close_linger;
    flush();
}

void tcp_connection::begin_linger() {
    // Send FIN after the last packet, then read and discard until the client closes too.
    // Closing with unread input would make the kernel send RST, and the client could
    // lose the DISCONNECT we just wrote.
    lingering_ = true;
    error_code ec;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    if (ec) {
        close_socket("closed");
        return;
    }
    socket_.async_wait(asio::ip::tcp::socket::wait_read,
                       [self = shared_from_this()](const error_code& wait_ec) { self->drain_after_close(wait_ec); });
}

void tcp_connection::drain_after_close(const error_code& wait_ec) {
    if (closed_) return;
    if (wait_ec) {
        close_socket("closed");
        return;
    }
    const std::span<char> buffer = worker_.read_buffer();
    error_code ec;
    socket_.read_some(asio::buffer(buffer.data(), buffer.size()), ec);
    if (ec && ec != asio::error::would_block && ec != asio::error::try_again) {
        close_socket("closed");
        return;
    }
    socket_.async_wait(asio::ip::tcp::socket::wait_read,
                       [self = shared_from_this()](const error_code& e) { self->drain_after_close(e); });
}

void tcp_connection::tick(std::chrono::steady_clock::time_point now) {
    if (closed_) return;
    if (closing_) {
        if (now >= close_deadline_) close_socket("close timed out");
        return;
    }
    protocol_.tick();
}

void tcp_connection::migrate(unsigned worker_index, std::string replay) {
    // Nothing has been written yet (the CONNECT is not answered), so only the
    // descriptor and the unprocessed input move.
    closed_ = true;
    error_code ec;
    const int fd = socket_.release(ec);
    worker_.forget(this);
    if (ec) {
        log::warn("cannot move connection to worker ", worker_index, ": ", ec.message());
        return;
    }
    worker& target = worker_.owner().worker_at(worker_index);
    asio::post(target.context(), [&target, fd, replay = std::move(replay)]() mutable {
        asio::ip::tcp::socket socket(target.context());
        error_code assign_ec;
        // The protocol family must match the descriptor's; ask the kernel.
        sockaddr_storage addr{};
        socklen_t len = sizeof addr;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
        socket.assign(addr.ss_family == AF_INET6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4(), fd, assign_ec);
        if (assign_ec) {
            ::close(fd);
            return;
        }
        target.adopt(std::move(socket), std::move(replay));
    });
}

void tcp_connection::close_socket(std::string_view why) {
    if (closed_) return;
    closed_ = true;
    error_code ec;
    socket_.close(ec);
    protocol_.on_transport_closed(why);
    worker_.forget(this);
}

}  // namespace edgemq::net
