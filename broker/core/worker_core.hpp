// One worker's share of the broker: the sessions it owns, routing of what its
// connections publish, delivery of what other workers route to its sessions, and the
// session timers (expiry, delayed wills). No sockets and no Asio: the network layer
// drives it from the worker's thread, and tests drive it directly with a fake clock.
//
// Threading: every member function runs on this worker's thread. Deliveries to
// sessions of other workers are batched per target worker and handed over with one
// post() per batch; see flush().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "broker/core/broker.hpp"
#include "broker/core/client_session.hpp"
#include "broker/core/publish_encoder.hpp"
#include "broker/protocol/packets.hpp"
#include "broker/session/message.hpp"

namespace edgemq::core {

class client_connection;

// A delivery on its way to a session, possibly on another worker.
struct routed_delivery {
    std::uint64_t key = 0;
    session::delivery d;
};

struct worker_counters {
    std::atomic<std::uint64_t> messages_received{0};
    std::atomic<std::uint64_t> messages_sent{0};
    std::atomic<std::uint64_t> messages_dropped{0};  // queue full, expired, too large
};

class worker_core {
public:
    worker_core(broker& b, unsigned index);
    ~worker_core();
    worker_core(const worker_core&) = delete;
    worker_core& operator=(const worker_core&) = delete;

    broker& shared() noexcept { return broker_; }
    const broker_settings& settings() const noexcept { return broker_.settings(); }
    unsigned index() const noexcept { return index_; }

    // The clock every timeout and expiry is measured with; tests substitute their own.
    session::time_point now() const { return clock_(); }
    void set_clock(std::function<session::time_point()> clock) { clock_ = std::move(clock); }

    // --- called by this worker's connections ----------------------------------------

    struct open_result {
        client_session* session = nullptr;
        bool session_present = false;
        std::optional<unsigned> migrate_to;  // the session lives on another worker
    };
    // Finds, takes over or creates the session for an accepted CONNECT [MQTT-3.1.4].
    // A connection already attached to the session is told to go (session taken over).
    open_result open_session(client_connection& conn, const protocol::connect& c,
                             const std::string& client_id, std::uint32_t expiry_interval);

    enum class detach_reason : std::uint8_t {
        normal,       // DISCONNECT 0x00: the Will is discarded [MQTT-3.14.4-3]
        with_will,    // DISCONNECT 0x04, or the connection failed: the Will is due
        taken_over,   // another connection took the session
        shutdown,     // the broker is stopping
    };
    // The session's connection has ended.
    void detach(client_session& s, detach_reason why);

    // Retains (if flagged) and routes a message to every matching subscription.
    struct publish_result {
        std::size_t targets = 0;  // sessions it goes to
        // Some of them are connected but cannot keep up: the publisher should wait a
        // little before sending more (publisher_backpressure).
        bool slow_down = false;
    };
    publish_result publish(session::message_ptr msg);

    // SUBSCRIBE: one reason code per entry; retained messages are queued to the session
    // after the caller has sent the SUBACK (see deliver_retained_after_subscribe).
    std::vector<protocol::reason_code> subscribe(client_session& s, const protocol::subscribe& packet);
    std::vector<protocol::reason_code> unsubscribe(client_session& s, const protocol::unsubscribe& packet);
    // Sends the retained messages the last subscribe() made due [MQTT-3.3.1-9..11].
    void deliver_retained_after_subscribe(client_session& s);

    // Queues a delivery to a session of this worker and sends what its connection can take.
    void deliver(client_session& s, session::delivery d);

    // A connected session with more than backlog_high messages waiting for its
    // connection is backlogged until fewer than backlog_low wait. Called after its
    // queue changed.
    void update_backlog(client_session& s) noexcept;
    static constexpr std::size_t backlog_high = 8192;
    static constexpr std::size_t backlog_low = 1024;
    static constexpr std::chrono::milliseconds stall_timeout{1000};

    // --- called by the network layer -------------------------------------------------

    // Runs deliveries that other workers routed to this worker's sessions.
    void deliver_batch(std::vector<routed_delivery>&& batch);
    // Hands out the deliveries routed so far: other workers' batches are posted, this
    // worker's are delivered. Runs by itself after any handler that routed something.
    void flush();
    // True while another worker has more than max_inbox_batches of this worker's
    // deliveries waiting: the network layer then stops reading from this worker's
    // sockets until it catches up. Without it, a worker could route publishes faster
    // than another can deliver them, and the queue between the two would grow without
    // bound while the receiving worker's own writes starve behind it.
    bool downstream_congested() const noexcept;
    static constexpr std::uint32_t max_inbox_batches = 8;

    // Session expiry, delayed Wills, retained expiry. Call about every 250 ms.
    void tick();
    // The broker is stopping: ends every connection's session attachment.
    void shutdown();

    // Shared by this worker's connections: one encoding per message and layout.
    publish_encoder& encoder() noexcept { return encoder_; }

    std::size_t session_count() const noexcept { return sessions_.size(); }
    client_session* find_session(std::string_view client_id);
    worker_counters& counters() noexcept { return counters_; }

private:
    std::uint64_t new_key() noexcept { return (std::uint64_t{index_} << 48) | ++last_serial_; }
    client_session& create_session(const std::string& client_id);
    // Removes the session's subscriptions and forgets it. The client id stays claimed
    // for this worker unless `release_home`.
    void end_session(client_session& s, bool release_home);
    void publish_will(client_session& s);
    publish_result route(const session::message_ptr& msg);
    void schedule_flush();
    void schedule_timer(session::time_point when, std::uint64_t key);

    broker& broker_;
    unsigned index_;
    std::function<session::time_point()> clock_;
    std::uint64_t last_serial_ = 0;

    std::unordered_map<std::uint64_t, std::unique_ptr<client_session>> sessions_;
    std::unordered_map<std::string_view, client_session*> by_client_id_;  // views into sessions_

    // Deliveries routed but not yet handed out, one batch per target worker.
    std::vector<std::vector<routed_delivery>> outbox_;
    bool flush_scheduled_ = false;
    // Batches other workers have posted to this one and it has not run yet.
    std::atomic<std::uint32_t> inbox_batches_{0};

    // Retained messages found by the last subscribe(), delivered after its SUBACK.
    std::vector<session::delivery> retained_due_;

    struct timer {
        session::time_point when;
        std::uint64_t key;
        bool operator>(const timer& other) const noexcept { return when > other.when; }
    };
    std::priority_queue<timer, std::vector<timer>, std::greater<>> timers_;
    session::time_point next_retained_sweep_{};
    session::time_point next_sys_update_{};
    session::time_point started_at_{};
    void publish_sys_statistics(session::time_point now);

    publish_encoder encoder_;
    worker_counters counters_;
};

}  // namespace edgemq::core
