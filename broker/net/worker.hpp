// A worker: one thread running one io_context, owning its connections and its share of
// the sessions (core::worker_core). Connections never leave their worker except when a
// CONNECT names a session that lives elsewhere; then the socket moves, once, before any
// byte is written (see connection::migrate).
#pragma once

#include <atomic>
#include <functional>
#include <span>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "broker/core/broker.hpp"
#include "broker/core/worker_core.hpp"

namespace edgemq::net {

class connection;
class server;
struct listener_slot;
struct connection_handoff;

class worker final : public core::worker_executor {
public:
    worker(server& owner, core::broker& b, unsigned index);
    ~worker() override;

    // core::worker_executor: runs `work` on this worker's thread.
    void post(std::function<void()> work) override;

    boost::asio::io_context& context() noexcept { return context_; }
    core::worker_core& core() noexcept { return core_; }
    unsigned index() const noexcept { return index_; }
    server& owner() noexcept { return owner_; }

    void start_thread();
    void join();
    // Ends every connection (DISCONNECT 0x8B to v5 clients) and lets the thread finish
    // once they are closed or `grace` has passed.
    void begin_shutdown(std::chrono::milliseconds grace);
    std::size_t connection_count() const noexcept { return connection_count_.load(std::memory_order_relaxed); }

    // On this worker's thread:
    // A socket accepted on `slot`'s listener (counted in slot.open already).
    void adopt(boost::asio::ip::tcp::socket socket, listener_slot& slot);
    // A connection moved here from another worker.
    void adopt(connection_handoff&& handoff);
    void forget(connection* connection);
    // Parks a connection whose input must wait: for `delay`, and in any case until the
    // workers it routes to have caught up (core::worker_core::downstream_congested).
    void defer_read(std::shared_ptr<connection> connection, std::chrono::microseconds delay);
    // Asks for connection::flush() after the current handler, once per connection.
    void mark_dirty(const std::shared_ptr<connection>& connection);
    // Scratch space for reads: shared by all of this worker's connections, so an idle
    // connection owns no read buffer.
    std::span<char> read_buffer() noexcept { return {read_buffer_.get(), read_buffer_size}; }

    static constexpr std::size_t read_buffer_size = 64 * 1024;

private:
    void start_connection(std::shared_ptr<connection> c);
    void schedule_tick();
    void retry_deferred_reads();
    void on_tick();
    void flush_dirty();

    server& owner_;
    unsigned index_;
    // Declared before the context so that it outlives the handlers the context destroys
    // (they hold connections, which detach from their sessions when destroyed).
    core::worker_core core_;
    boost::asio::io_context context_;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_guard_;
    boost::asio::steady_timer tick_timer_;
    std::thread thread_;
    std::unique_ptr<char[]> read_buffer_;
    std::unordered_map<connection*, std::shared_ptr<connection>> connections_;
    std::atomic<std::size_t> connection_count_{0};
    std::vector<std::shared_ptr<connection>> dirty_;
    struct deferred_read {
        std::chrono::steady_clock::time_point due;
        std::shared_ptr<net::connection> conn;
    };
    std::vector<deferred_read> deferred_reads_;
    boost::asio::steady_timer defer_timer_;
    bool flush_posted_ = false;
    bool shutting_down_ = false;
    std::chrono::steady_clock::time_point shutdown_deadline_{};
};

}  // namespace edgemq::net
