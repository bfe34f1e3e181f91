// Accepts connections on one address and hands them to the workers in turn.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "broker/core/settings.hpp"

namespace edgemq::net {

class worker;
class tls_context;

// A listener's settings and what its connections share; owned by the server and
// outliving every connection (they count themselves in `open`).
struct listener_slot {
    explicit listener_slot(const core::listener_settings& s) : settings(s) {}
    const core::listener_settings& settings;
    std::atomic<std::uint32_t> open{0};  // connections accepted and not yet destroyed

    // The TLS context new connections get; replaced on SIGHUP (connections keep theirs).
    std::shared_ptr<const tls_context> tls() const {
        std::lock_guard lock(mutex_);
        return tls_;
    }
    void set_tls(std::shared_ptr<const tls_context> t) {
        std::lock_guard lock(mutex_);
        tls_ = std::move(t);
    }

private:
    mutable std::mutex mutex_;
    std::shared_ptr<const tls_context> tls_;
};

class listener {
public:
    // Binds and listens at once; throws std::runtime_error naming the address on failure.
    listener(worker& home, std::vector<worker*> workers, listener_slot& slot);

    void start();
    void stop();
    boost::asio::ip::tcp::endpoint local_endpoint() const;
    const std::string& type() const noexcept { return type_; }

private:
    void accept_next();

    worker& home_;
    std::vector<worker*> workers_;
    listener_slot& slot_;
    std::string type_;
    std::uint64_t refused_ = 0;  // over max_connections, for the log
    boost::asio::ip::tcp::acceptor acceptor_;
    boost::asio::steady_timer retry_timer_;
    std::size_t next_worker_ = 0;
};

}  // namespace edgemq::net
