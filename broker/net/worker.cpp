#include "broker/net/worker.hpp"

#include <boost/asio/post.hpp>

#include "broker/core/log.hpp"
#include "broker/net/connection.hpp"
#include "broker/net/handoff.hpp"
#include "broker/net/listener.hpp"

namespace edgemq::net {

namespace asio = boost::asio;

namespace {
constexpr auto tick_period = std::chrono::milliseconds(250);
}

worker::worker(server& owner, core::broker& b, unsigned index)
    : owner_(owner),
      index_(index),
      core_(b, index),
      context_(1),  // one thread runs it: Asio may skip some locking
      work_guard_(asio::make_work_guard(context_)),
      tick_timer_(context_),
      read_buffer_(std::make_unique<char[]>(read_buffer_size)),
      defer_timer_(context_) {}

worker::~worker() { join(); }

void worker::post(std::function<void()> work) { asio::post(context_, std::move(work)); }

void worker::start_thread() {
    schedule_tick();
    thread_ = std::thread([this] {
        for (;;) {
            try {
                context_.run();
                return;
            } catch (const std::exception& e) {
                // A bug, not input: log it and keep serving the other connections.
                log::error("worker ", index_, ": unexpected exception: ", e.what());
            }
        }
    });
}

void worker::join() {
    if (thread_.joinable()) thread_.join();
}

void worker::begin_shutdown(std::chrono::milliseconds grace) {
    asio::post(context_, [this, grace] {
        shutting_down_ = true;
        shutdown_deadline_ = std::chrono::steady_clock::now() + grace;
        core_.shutdown();
        // Connections still waiting for CONNECT have no session; close them too.
        std::vector<std::shared_ptr<connection>> open;
        for (auto& entry : connections_) open.push_back(entry.second);
        for (auto& c : open) c->shut_down();
        core_.flush();
        flush_dirty();
    });
}

void worker::adopt(asio::ip::tcp::socket socket, listener_slot& slot) {
    boost::system::error_code ec;
    const auto remote = socket.remote_endpoint(ec);
    if (ec) {  // already gone
        slot.open.fetch_sub(1, std::memory_order_relaxed);
        return;
    }
    socket.set_option(asio::ip::tcp::no_delay(true), ec);
    socket.non_blocking(true, ec);
    std::string peer = remote.address().to_string() + ":" + std::to_string(remote.port());
    auto tls = slot.settings.tls() ? slot.tls() : nullptr;
    start_connection(std::make_shared<connection>(*this, std::move(socket), std::move(peer), slot, std::move(tls)));
}

void worker::adopt(connection_handoff&& handoff) {
    start_connection(std::make_shared<connection>(*this, std::move(handoff)));
}

void worker::start_connection(std::shared_ptr<connection> c) {
    connections_.emplace(c.get(), c);
    connection_count_.store(connections_.size(), std::memory_order_relaxed);
    if (shutting_down_) {
        c->shut_down();
        return;
    }
    c->start();
}

void worker::forget(connection* c) {
    // Deferred: the caller may be iterating connections_ or running inside the connection.
    asio::post(context_, [this, c] {
        connections_.erase(c);
        connection_count_.store(connections_.size(), std::memory_order_relaxed);
    });
}

void worker::mark_dirty(const std::shared_ptr<connection>& c) {
    if (c->dirty) return;
    c->dirty = true;
    dirty_.push_back(c);
    if (!flush_posted_) {
        flush_posted_ = true;
        asio::post(context_, [this] { flush_dirty(); });
    }
}

void worker::flush_dirty() {
    flush_posted_ = false;
    std::vector<std::shared_ptr<connection>> batch;
    batch.swap(dirty_);
    for (auto& c : batch) {
        c->dirty = false;
        c->flush();
    }
    if (dirty_.capacity() < batch.capacity()) {
        batch.clear();
        dirty_.swap(batch);  // keep the larger allocation for the next round
    }
}

void worker::defer_read(std::shared_ptr<connection> c, std::chrono::microseconds delay) {
    const auto due = std::chrono::steady_clock::now() + delay;
    deferred_reads_.push_back(deferred_read{due, std::move(c)});
    if (deferred_reads_.size() == 1 || due < defer_timer_.expiry()) {
        defer_timer_.expires_at(due);
        defer_timer_.async_wait([this](const boost::system::error_code& ec) {
            if (!ec) retry_deferred_reads();
        });
    }
}

void worker::retry_deferred_reads() {
    const bool congested = core_.downstream_congested() && !shutting_down_;
    const auto now = std::chrono::steady_clock::now();
    std::vector<std::shared_ptr<connection>> ready;
    auto next_due = std::chrono::steady_clock::time_point::max();
    for (std::size_t i = 0; i < deferred_reads_.size();) {
        if (!congested && deferred_reads_[i].due <= now) {
            ready.push_back(std::move(deferred_reads_[i].conn));
            deferred_reads_[i] = std::move(deferred_reads_.back());
            deferred_reads_.pop_back();
        } else {
            next_due = std::min(next_due, deferred_reads_[i].due);
            ++i;
        }
    }
    if (!deferred_reads_.empty()) {
        // While congested, look again soon; otherwise at the next due time.
        defer_timer_.expires_at(congested ? now + std::chrono::microseconds(200) : next_due);
        defer_timer_.async_wait([this](const boost::system::error_code& ec) {
            if (!ec) retry_deferred_reads();
        });
    }
    for (auto& c : ready) c->resume_reading();
}

void worker::schedule_tick() {
    tick_timer_.expires_after(tick_period);
    tick_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) on_tick();
    });
}

void worker::on_tick() {
    const auto now = std::chrono::steady_clock::now();
    const bool shutdown_done = shutting_down_ && (connections_.empty() || now >= shutdown_deadline_);
    // Armed first: were a tick to throw (the thread logs it and runs on), the ticks, and
    // with them the end of a shutdown, must go on.
    if (!shutdown_done) schedule_tick();
    std::vector<std::shared_ptr<connection>> open;
    open.reserve(connections_.size());
    for (auto& entry : connections_) open.push_back(entry.second);
    if (shutdown_done) {
        // Close what is left (a client may never answer our FIN), so that no socket
        // operation keeps run() from returning.
        for (auto& c : open) c->abort("broker stopped");
        connections_.clear();
        connection_count_.store(0, std::memory_order_relaxed);
        work_guard_.reset();
        core_.tick();
        return;
    }
    for (auto& c : open) c->tick(now);
    core_.tick();
}

}  // namespace edgemq::net
