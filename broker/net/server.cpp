#include "broker/net/server.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <thread>

#include "broker/core/log.hpp"
#include "broker/net/listener.hpp"
#include "broker/net/worker.hpp"

namespace edgemq::net {

namespace asio = boost::asio;

struct server::signal_waiter {
    asio::io_context context{1};
    asio::signal_set signals{context, SIGINT, SIGTERM};
};

server::server(core::broker_settings settings, const char* version) : broker_(std::move(settings)) {
    broker_.set_version(version);
    unsigned count = broker_.settings().workers;
    if (count == 0) count = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < count; ++i) {
        workers_.push_back(std::make_unique<worker>(*this, broker_, i));
        broker_.add_worker(workers_.back()->core(), *workers_.back());
    }
}

server::~server() { stop(); }

void server::start() {
    signals_ = std::make_unique<signal_waiter>();
    std::vector<worker*> all;
    for (auto& w : workers_) all.push_back(w.get());
    for (const core::listener_settings& ls : broker_.settings().listeners) {
        auto l = std::make_unique<listener>(*workers_.front(), all, ls);
        const auto endpoint = l->local_endpoint();
        const std::string address = endpoint.address().is_v6() ? "[" + endpoint.address().to_string() + "]"
                                                                : endpoint.address().to_string();
        log::info("listening ", ls.type, " ", address, ":", endpoint.port());
        listeners_.push_back(std::move(l));
    }
    for (auto& l : listeners_) l->start();
    for (auto& w : workers_) w->start_thread();
    started_ = true;
    log::info("edgemq started with ", workers_.size(), " worker", workers_.size() == 1 ? "" : "s");
}

void server::run_until_signal() {
    if (!signals_) return;
    signals_->signals.async_wait([](const boost::system::error_code& ec, int signo) {
        if (!ec) log::info("received ", signo == SIGINT ? "SIGINT" : "SIGTERM", ", shutting down");
    });
    signals_->context.run();
    stop();
}

void server::stop() {
    if (!started_ || stopped_) return;
    stopped_ = true;
    for (auto& l : listeners_) l->stop();
    for (auto& w : workers_) w->begin_shutdown(std::chrono::seconds(2));
    for (auto& w : workers_) w->join();
    listeners_.clear();
    log::info("edgemq stopped");
}

}  // namespace edgemq::net
