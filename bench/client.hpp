// The load generator's MQTT clients and the worker threads that run them.
//
// Threading: a worker is one io_context run by one thread; every client belongs to one
// worker for its whole life and is only touched on that thread (main reaches it with
// asio::post), so clients need no locks. What main must see while the workers run
// (readiness, progress, errors) goes through run_control's atomics; everything else
// (histograms, trackers, counters) is read by main only after the workers joined.
#pragma once

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "mqtt_wire.hpp"
#include "options.hpp"
#include "stats.hpp"
#include "transport.hpp"

namespace edgemq::bench {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

inline std::uint64_t now_ns() noexcept {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

// One cache line per counter: each is written by one worker and polled by main, and
// must not share a line with a neighbour written by another worker.
struct alignas(64) padded_counter {
    std::atomic<std::uint64_t> value{0};
};

// Shared between main and the workers for the duration of a run.
struct run_control {
    run_control(const options& o, std::uint32_t id);

    const options& opt;
    const std::uint32_t run_id;

    std::atomic<unsigned> subscribers_ready{0};
    std::atomic<unsigned> publishers_ready{0};
    std::atomic<unsigned> publishers_done{0};  // stopped and every QoS flow completed
    std::atomic<unsigned> closed{0};           // connections closed after disconnect()
    std::atomic<unsigned> errors{0};

    // The measured window, set by main before it starts the publishers. Atomics because
    // subscribers on other threads read them; they never change afterwards.
    std::atomic<std::uint64_t> measure_begin_ns{UINT64_MAX};
    std::atomic<std::uint64_t> measure_end_ns{UINT64_MAX};

    // Final number of messages each publisher sent, valid once it counted itself done.
    std::unique_ptr<padded_counter[]> published;
    // Distinct messages each subscriber received, for main's drain wait.
    std::unique_ptr<padded_counter[]> received;
    // --qos0-window only: per (subscriber, publisher), the highest sequence number seen
    // + 1. Written by the subscriber's worker, read by the publisher's.
    std::unique_ptr<std::atomic<std::uint64_t>[]> progress;
    bool shared_subscription = false;

    void report_error(std::string what);
    std::string first_error() const;

private:
    mutable std::mutex error_mutex_;
    std::string first_error_;
};

// Per-worker results, merged by main after join.
struct worker_stats {
    latency_histogram latency;           // end-to-end, messages received in the window
    std::uint64_t published_window = 0;  // PUBLISHes encoded inside the window
    std::uint64_t delivered_window = 0;  // PUBLISHes received by subscribers inside it
    std::uint64_t acked_window = 0;      // QoS 1/2 flows completed (PUBACK/PUBCOMP) inside it
    std::uint64_t published_total = 0;
    std::uint64_t delivered_total = 0;
    std::uint64_t acked_total = 0;
    std::uint64_t rejected = 0;          // v5 PUBACK/PUBREC with a failure reason code
    std::uint64_t foreign = 0;           // PUBLISHes without our stamp (other run, other tool)
    std::uint64_t window_stalls = 0;     // --qos0-window waits given up after 1 s
};

class worker;

// One MQTT connection over a transport (TCP, TLS, WebSocket): connect, CONNECT/CONNACK,
// a read loop that decodes every whole packet in the buffer, and a write path with one
// write in flight while everything queued meanwhile accumulates in `pending_` for the
// next write (one WebSocket message per write).
class connection : private transport_user {
public:
    connection(worker& w, std::string client_id, std::size_t read_buffer_size);
    virtual ~connection() = default;
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    // Worker thread only.
    void start();
    // Worker thread only: DISCONNECT, half-close, wait for the broker's close; counts
    // itself in run_control::closed exactly once whatever state it is in.
    void disconnect();
    void maybe_ping(std::uint64_t now);

protected:
    enum class state : std::uint8_t { idle, connecting, connected, closing, closed };

    virtual void on_connack(const wire::connack_info& info) = 0;
    virtual void on_packet(const wire::frame& f) = 0;
    virtual void on_read_batch_begin() {}
    virtual void on_read_batch_end() {}
    virtual void on_write_done() {}
    virtual void on_closing() {}

    void flush();
    void fail(std::string_view what);
    void fail(std::string_view what, const boost::system::error_code& ec);

    worker& worker_;
    run_control& ctl_;
    const options& opt_;
    std::string client_id_;
    state state_ = state::idle;
    std::uint64_t read_time_ns_ = 0;  // when the current read completed
    wire::bytes pending_;
    bool write_in_flight_ = false;
    std::uint8_t version_;
    // What this connection is waiting for (e.g. "SUBACK"), so an unexpected close can
    // say when it happened. Empty when nothing in particular.
    std::string_view waiting_for_;

private:
    void do_read();
    void on_transport_read(const boost::system::error_code& ec, std::size_t n) override;
    void on_transport_written(const boost::system::error_code& ec) override;
    void finish_close();

    std::unique_ptr<transport> transport_;
    wire::bytes read_buffer_;
    std::size_t read_end_ = 0;
    wire::bytes writing_;
    std::uint64_t last_sent_ns_ = 0;
    std::uint16_t keep_alive_s_;
    bool counted_closed_ = false;
};

class publisher final : public connection {
public:
    publisher(worker& w, std::uint32_t index, std::string topic);

    // Worker thread only (main posts them).
    void start_publishing();
    void stop_publishing();
    // Messages handed to the socket so far; read by main after the workers joined.
    std::uint64_t sent() const noexcept { return seq_; }
    // Sent minus those the broker refused with a v5 failure reason code: what the
    // subscribers are owed.
    std::uint64_t accepted() const noexcept { return seq_ - rejected_; }
    std::uint32_t index() const noexcept { return index_; }

private:
    void on_connack(const wire::connack_info& info) override;
    void on_packet(const wire::frame& f) override;
    void on_read_batch_end() override;
    void on_write_done() override;
    void on_closing() override { timer_.cancel(); }

    void pump();
    std::uint64_t allowed_by_window(std::uint64_t now);
    void encode(std::uint64_t n, std::uint64_t now);
    void arm_timer(std::uint64_t at_ns);
    void check_done();
    void on_ack(wire::packet_type type, const wire::frame& f);

    std::uint32_t index_;
    std::string topic_;
    wire::publish_template template_;
    std::size_t batch_messages_;

    // QoS 1/2: packet ids 1..inflight_limit_ reused from a free stack, so the hot path
    // never searches. id_state_[id]: 0 free, 1 awaiting PUBACK/PUBREC, 2 awaiting PUBCOMP.
    unsigned inflight_limit_ = 0;
    unsigned inflight_ = 0;
    std::vector<std::uint16_t> free_ids_;
    std::vector<std::uint8_t> id_state_;

    std::uint64_t seq_ = 0;
    std::uint64_t rejected_ = 0;
    bool publishing_ = false;
    bool stopping_ = false;
    bool done_ = false;

    asio::steady_timer timer_;
    bool timer_armed_ = false;
    std::uint64_t rate_start_ns_ = 0;

    // --qos0-window bookkeeping.
    std::uint64_t window_base_ = 0;       // seq the subscribers are known to have reached
    std::uint64_t window_changed_ns_ = 0;
};

class subscriber final : public connection {
public:
    subscriber(worker& w, std::uint32_t index, std::size_t publisher_count);

    const std::vector<sequence_tracker>& trackers() const noexcept { return trackers_; }

private:
    void on_connack(const wire::connack_info& info) override;
    void on_packet(const wire::frame& f) override;
    void on_read_batch_begin() override;
    void on_read_batch_end() override;

    void on_publish(const wire::frame& f);

    std::uint32_t index_;
    std::vector<sequence_tracker> trackers_;  // by publisher index
    std::uint64_t distinct_ = 0;
    bool subscribed_ = false;
    std::vector<std::uint8_t> awaiting_pubrel_;  // QoS 2 only, by packet id
    std::uint64_t measure_begin_ = UINT64_MAX, measure_end_ = UINT64_MAX;
};

class worker {
public:
    worker(const options& o, run_control& ctl, tcp::endpoint endpoint, const transport_setup& setup);
    ~worker();

    void run();   // starts the thread
    void stop();  // from main: drop the work guard and stop the loop
    void join();

    asio::io_context& io() noexcept { return io_; }

    const options& opt;
    run_control& ctl;
    const tcp::endpoint endpoint;
    const transport_setup& setup;
    worker_stats stats;
    std::vector<std::unique_ptr<publisher>> publishers;
    std::vector<std::unique_ptr<subscriber>> subscribers;

private:
    void tick();

    asio::io_context io_{1};
    asio::executor_work_guard<asio::io_context::executor_type> guard_;
    asio::steady_timer tick_timer_;
    std::thread thread_;
};

}  // namespace edgemq::bench
