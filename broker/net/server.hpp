// The running broker: the shared core state, the workers and the listeners.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "broker/core/broker.hpp"
#include "broker/core/settings.hpp"

namespace edgemq::net {

class worker;
class listener;

class server {
public:
    server(core::broker_settings settings, const char* version);
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    // Binds every listener (throws std::runtime_error naming the address on failure),
    // logs "listening <type> <address>:<port>" for each, and starts the worker threads.
    // SIGINT and SIGTERM are caught from here on.
    void start();
    // Blocks until SIGINT or SIGTERM, then shuts down gracefully.
    void run_until_signal();
    // Stops accepting, disconnects every client and joins the workers.
    void stop();

    worker& worker_at(unsigned index) { return *workers_[index]; }
    unsigned worker_count() const noexcept { return static_cast<unsigned>(workers_.size()); }
    core::broker& shared() noexcept { return broker_; }

private:
    struct signal_waiter;
    std::unique_ptr<signal_waiter> signals_;
    core::broker broker_;
    std::vector<std::unique_ptr<worker>> workers_;
    std::vector<std::unique_ptr<listener>> listeners_;
    bool started_ = false;
    bool stopped_ = false;
};

}  // namespace edgemq::net
