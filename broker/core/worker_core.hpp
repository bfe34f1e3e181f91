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
#include <list>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "broker/core/authorizer.hpp"
#include "broker/core/broker.hpp"
#include "broker/core/client_session.hpp"
#include "broker/core/publish_encoder.hpp"
#include "broker/core/store.hpp"
#include "broker/protocol/packets.hpp"
#include "broker/session/message.hpp"

namespace edgemq::core {

class client_connection;

// A delivery on its way to a session, possibly on another worker.
struct routed_delivery {
    std::uint64_t key = 0;
    session::delivery d;
};

// What a connection's request leads to once the store has what it must keep: the
// acknowledgement for the client and the deliveries to hand out. Work of one connection
// completes in the order it was submitted, so acknowledgements keep their order
// [MQTT-4.6.0-2..4] and a publisher's messages keep theirs [MQTT-4.6.0-5].
struct store_bound_work {
    std::vector<store_op> ops;                    // what must be durable first
    std::vector<routed_delivery> deliveries;      // handed out once it is
    std::optional<protocol::packet> ack;          // sent to the connection then
    std::uint16_t inbound_qos2_id = 0;            // forgotten if the store fails
    // QoS 0/1: the deliveries may go out as soon as the ops are handed to the store (see
    // worker_core::after_store).
    bool deliver_early = false;
};

struct worker_counters {
    std::atomic<std::uint64_t> messages_received{0};
    std::atomic<std::uint64_t> messages_sent{0};
    std::atomic<std::uint64_t> messages_dropped{0};  // queue full, expired, too large
    std::atomic<std::uint64_t> publish_denied{0};    // PUBLISHes the ACL refused
    std::atomic<std::uint64_t> delivery_denied{0};   // messages a subscriber may not read
    std::atomic<std::uint64_t> rate_limited{0};      // clients disconnected for their rate
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

    // Who may do what; nullptr: everyone everything (no password or ACL file).
    const authorizer* access() const noexcept { return authorizer_.get(); }
    // On this worker's thread: a new authorizer (start-up or SIGHUP). Subscriptions
    // the new rules no longer allow are removed (and from the store).
    void set_authorizer(std::shared_ptr<const authorizer> a);

    // --- called by this worker's connections ----------------------------------------

    // A claim on `client_id` taken for an AUTH exchange that then failed: released
    // unless a session of that id lives here.
    void abandon_home(const std::string& client_id);

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
    // A message from nowhere that waits for acknowledgement (a Will, $SYS): routed at
    // once; what the store must keep of it is submitted before it is handed out.
    publish_result publish(std::shared_ptr<session::message> msg);

    // A PUBLISH received on `source` (session `s`): routes it, and holds its deliveries,
    // retained update and acknowledgement (`ack`: PUBACK, PUBREC, or reserved for none)
    // until the store has committed what it must keep of it (the message and its
    // deliveries to persistent sessions, its retained entry, the QoS 2 packet id),
    // behind the connection's earlier work. With nothing to store and nothing pending,
    // all of it happens at once.
    publish_result publish_from(client_connection& source, client_session& s,
                                std::shared_ptr<session::message> msg, protocol::packet_type ack,
                                std::uint16_t packet_id);

    // Queues `work` behind the connection's earlier store-bound work (see store_bound_work).
    void after_store(client_connection& source, store_bound_work work);
    // The connection's input has been handled: submit what it produced for the store.
    void end_of_input(client_connection& source);
    // The connection is going away: its pending deliveries still go out when their store
    // work completes, its acknowledgements do not.
    void forget_connection(client_connection& source);
    // Store work nobody waits for (acknowledgements from subscribers, dropped messages).
    // Submitted, in order, with the next flush().
    void store_later(store_op op);
    // Connections with more than this much store-bound work pending stop being read.
    static constexpr std::size_t max_pending_store_work = 64;
    bool store_backlogged(const client_connection& source) const noexcept;

    // Restores one session read from the store, offline (before the workers run).
    struct restored_session {
        const stored_session* session = nullptr;
        std::vector<const stored_subscription*> subscriptions;
        std::vector<session::outbound_flow::restored_delivery> sent;
        std::vector<session::delivery> queued;
        std::vector<std::uint16_t> inbound;
    };
    void adopt_stored_session(restored_session r, wall_ms wall);

    // SUBSCRIBE: fills work.ack's SUBACK codes (one per entry), the store operations for
    // a persistent session, and the retained messages it makes due, which go out after
    // the SUBACK [MQTT-3.3.1-9..11].
    void subscribe(client_session& s, const protocol::subscribe& packet, store_bound_work& work);
    std::vector<protocol::reason_code> unsubscribe(client_session& s, const protocol::unsubscribe& packet);

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
    std::shared_ptr<const authorizer> authorizer_;
    // Removes the session's subscriptions its user may no longer have.
    void recheck_subscriptions(client_session& s);
    std::uint64_t new_key() noexcept { return (std::uint64_t{index_} << 48) | ++last_serial_; }
    client_session& create_session(const std::string& client_id);
    // Removes the session's subscriptions and forgets it. The client id stays claimed
    // for this worker unless `release_home`.
    void end_session(client_session& s, bool release_home);
    void publish_will(client_session& s);
    // Publishes an offline session's Will and ends the session when due; false if it ended.
    bool settle_offline(client_session& s, session::time_point now, bool release_home);
    // Matches a message and appends one delivery per target session to `out`; targets
    // that are persistent get a store row and their put_delivery in `ops` (when given).
    publish_result collect_targets(const session::message_ptr& msg, std::vector<routed_delivery>& out,
                                   std::vector<store_op>* ops);
    void dispatch(std::vector<routed_delivery>& deliveries);
    // The store ops that keep `msg` and its stored deliveries (put_message first).
    void add_message_ops(const std::shared_ptr<session::message>& msg, std::vector<store_op>& ops, bool has_rows);
    // Writes (or forgets) the session's row after its expiry, Will or connection changed.
    void persist_session(client_session& s);
    void submit_now(std::vector<store_op> ops);
    void drain_dropped_rows(client_session& s);
    // Store-bound work of one connection, completed in order.
    struct pending_work {
        std::uint64_t id = 0;
        bool submitted = false;
        bool committed = false;
        bool ok = true;
        std::vector<store_bound_work> items;
        std::vector<store_op> ops;
        std::vector<routed_delivery> early;  // dispatched once `ops` are submitted
        bool holds_deliveries = false;       // some item's deliveries wait for the commit
    };
    struct work_chain {
        client_connection* connection = nullptr;  // null once it is gone
        std::uint64_t session_key = 0;
        // A list, not a deque: an empty one allocates nothing.
        std::list<pending_work> pending;
    };
    void on_committed(std::uint64_t chain, std::uint64_t work_id, bool ok);
    void complete_ready(std::uint64_t chain_id);
    void complete(work_chain& chain, store_bound_work& item, bool ok);
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

    std::unordered_map<std::uint64_t, work_chain> chains_;  // by client_connection::stream_id()
    std::uint64_t last_work_id_ = 0;
    std::uint64_t completing_ = 0;  // the chain complete_ready() is working on
    std::vector<store_op> store_later_;
    bool store_failure_logged_ = false;

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
