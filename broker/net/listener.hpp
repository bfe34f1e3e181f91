// Accepts connections on one address and hands them to the workers in turn.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <string>
#include <vector>

#include "broker/core/settings.hpp"

namespace edgemq::net {

class worker;

class listener {
public:
    // Binds and listens at once; throws std::runtime_error naming the address on failure.
    listener(worker& home, std::vector<worker*> workers, const core::listener_settings& settings);

    void start();
    void stop();
    boost::asio::ip::tcp::endpoint local_endpoint() const;
    const std::string& type() const noexcept { return type_; }

private:
    void accept_next();

    worker& home_;
    std::vector<worker*> workers_;
    std::string type_;
    boost::asio::ip::tcp::acceptor acceptor_;
    boost::asio::steady_timer retry_timer_;
    std::size_t next_worker_ = 0;
};

}  // namespace edgemq::net
