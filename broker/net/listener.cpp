#include "broker/net/listener.hpp"

#include <boost/asio/post.hpp>
#include <stdexcept>

#include "broker/core/log.hpp"
#include "broker/net/worker.hpp"

namespace edgemq::net {

namespace asio = boost::asio;
using boost::system::error_code;

listener::listener(worker& home, std::vector<worker*> workers, listener_slot& slot)
    : home_(home), workers_(std::move(workers)), slot_(slot), type_(slot.settings.type), acceptor_(home.context()),
      retry_timer_(home.context()) {
    const core::listener_settings& settings = slot.settings;
    const std::string where = settings.bind + ":" + std::to_string(settings.port);
    error_code ec;
    const auto address = asio::ip::make_address(settings.bind, ec);
    if (ec) throw std::runtime_error("listener " + where + ": not an IP address: " + settings.bind);
    const asio::ip::tcp::endpoint endpoint(address, settings.port);
    acceptor_.open(endpoint.protocol(), ec);
    // SO_REUSEADDR: a restarted broker rebinds at once even while sockets of its previous
    // run sit in TIME_WAIT (it does not allow two live listeners on one port on Linux).
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw std::runtime_error("cannot listen on " + where + ": " + ec.message());
}

asio::ip::tcp::endpoint listener::local_endpoint() const {
    error_code ec;
    return acceptor_.local_endpoint(ec);
}

void listener::start() {
    asio::post(home_.context(), [this] { accept_next(); });
}

void listener::stop() {
    asio::post(home_.context(), [this] {
        error_code ec;
        retry_timer_.cancel();
        acceptor_.close(ec);
    });
}

void listener::accept_next() {
    worker& target = *workers_[next_worker_];
    next_worker_ = (next_worker_ + 1) % workers_.size();
    // The socket is created on the target worker's io_context directly.
    acceptor_.async_accept(target.context(), [this, &target](const error_code& ec, asio::ip::tcp::socket socket) {
        if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
        if (ec) {
            // Out of descriptors or memory: back off instead of spinning on the error.
            log::warn("accept failed on ", type_, " listener: ", ec.message());
            retry_timer_.expires_after(std::chrono::milliseconds(100));
            retry_timer_.async_wait([this](const error_code& timer_ec) {
                if (!timer_ec) accept_next();
            });
            return;
        }
        const std::uint32_t max = slot_.settings.max_connections;
        if (max != 0 && slot_.open.load(std::memory_order_relaxed) >= max) {
            // Closed at once: better than a client hanging in a backlog it cannot leave.
            if ((refused_++ & 1023) == 0)
                log::warn(type_, " listener on port ", slot_.settings.port, ": max_connections (", max,
                          ") reached, refusing connections (", refused_, " so far)");
            error_code close_ec;
            socket.close(close_ec);
        } else {
            slot_.open.fetch_add(1, std::memory_order_relaxed);
            asio::post(target.context(), [&target, &slot = slot_, s = std::move(socket)]() mutable {
                target.adopt(std::move(s), slot);
            });
        }
        accept_next();
    });
}

}  // namespace edgemq::net
