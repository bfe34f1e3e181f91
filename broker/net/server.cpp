#include "broker/net/server.hpp"

#include <thread>

#include "broker/core/log.hpp"
#include "broker/net/listener.hpp"
#include "broker/net/tls_context.hpp"
#include "broker/net/worker.hpp"

namespace edgemq::net {

namespace {

std::shared_ptr<const tls_context> make_tls(const core::listener_settings& ls) {
    tls_settings t;
    t.role = tls_role::server;
    t.cert_file = ls.cert_file;
    t.key_file = ls.key_file;
    t.ca_file = ls.ca_file;
    t.client_certificates = ls.require_certificate ? client_certificates::required
                            : ls.ca_file.empty()   ? client_certificates::none
                                                   : client_certificates::optional;
    return tls_context::create(t);
}

}  // namespace

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
    std::vector<worker*> all;
    for (auto& w : workers_) all.push_back(w.get());
    for (const core::listener_settings& ls : broker_.settings().listeners) {
        auto slot = std::make_unique<listener_slot>(ls);
        if (ls.tls()) {
            try {
                slot->set_tls(make_tls(ls));
            } catch (const std::exception& e) {
                throw std::runtime_error(ls.type + " listener on port " + std::to_string(ls.port) + ": " + e.what());
            }
        }
        auto l = std::make_unique<listener>(*workers_.front(), all, *slot);
        const auto endpoint = l->local_endpoint();
        const std::string address = endpoint.address().is_v6() ? "[" + endpoint.address().to_string() + "]"
                                                                : endpoint.address().to_string();
        if (ls.websocket()) {
            log::info("listening ", ls.type, " ", address, ":", endpoint.port(), " path ", ls.path);
        } else {
            log::info("listening ", ls.type, " ", address, ":", endpoint.port());
        }
        slots_.push_back(std::move(slot));
        listeners_.push_back(std::move(l));
    }
    for (auto& l : listeners_) l->start();
    for (auto& w : workers_) w->start_thread();
    started_ = true;
    log::info("edgemq started with ", workers_.size(), " worker", workers_.size() == 1 ? "" : "s");
}

void server::reload_tls() {
    for (auto& slot : slots_) {
        if (!slot->settings.tls()) continue;
        try {
            slot->set_tls(make_tls(slot->settings));
        } catch (const std::exception& e) {
            log::error(slot->settings.type, " listener on port ", slot->settings.port,
                       ": keeping the previous certificates: ", e.what());
        }
    }
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
