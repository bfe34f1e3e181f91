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
struct listener_slot;

class server {
public:
    server(core::broker_settings settings, const char* version);
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    // Binds every listener (throws std::runtime_error naming the address on failure),
    // logs "listening <type> <address>:<port>" for each, and starts the worker threads.
    // Signals are not handled here (see app/process_signals.hpp).
    void start();
    // Reads every TLS listener's certificate, key and CA files again; a listener whose
    // files are broken keeps its previous ones (and the error is logged).
    void reload_tls();
    // Stops accepting, disconnects every client (DISCONNECT 0x8B to v5 ones) and joins
    // the workers.
    void stop();

    worker& worker_at(unsigned index) { return *workers_[index]; }
    unsigned worker_count() const noexcept { return static_cast<unsigned>(workers_.size()); }
    core::broker& shared() noexcept { return broker_; }

private:
    core::broker broker_;
    // Before the workers: connections (destroyed with their worker) point at their slot.
    std::vector<std::unique_ptr<listener_slot>> slots_;
    std::vector<std::unique_ptr<worker>> workers_;
    std::vector<std::unique_ptr<listener>> listeners_;
    bool started_ = false;
    bool stopped_ = false;
};

}  // namespace edgemq::net
