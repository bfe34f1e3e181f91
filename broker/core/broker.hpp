// State shared by all workers: the subscription tree, retained messages, where each
// client's session lives, and broker-wide counters. Everything here is thread-safe;
// everything per connection or per session lives in a worker_core instead.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker/core/authorizer.hpp"
#include "broker/core/settings.hpp"
#include "broker/core/store.hpp"
#include "broker/session/message.hpp"
#include "broker/topics/retained_tree.hpp"
#include "broker/topics/subscription_tree.hpp"

namespace edgemq::core {

class worker_core;

// What other workers may read of a session while routing to it.
struct session_status {
    // Connected: shared subscriptions prefer online members.
    std::atomic<bool> online{false};
    // Connected, but more messages wait for it than its connection takes: publishers
    // routing to it are slowed down (see worker_core::backlog_high).
    std::atomic<bool> backlogged{false};
    // The session's id in the durable store while it is persistent (expiry > 0 and a
    // store is configured), else 0: publishers store QoS 1/2 deliveries to it.
    std::atomic<std::uint64_t> store_id{0};
};

// A session as the subscription tree knows it. The key names the session and its
// worker. The status pointer is valid while the subscription is in the tree: a session
// leaves the tree (under the exclusive lock) before it is destroyed.
struct subscriber {
    std::uint64_t key = 0;
    const session_status* status = nullptr;
    friend bool operator==(const subscriber& a, const subscriber& b) noexcept { return a.key == b.key; }
};

}  // namespace edgemq::core

template <>
struct std::hash<edgemq::core::subscriber> {
    std::size_t operator()(const edgemq::core::subscriber& s) const noexcept {
        return std::hash<std::uint64_t>{}(s.key);
    }
};

namespace edgemq::core {

// Session keys carry their worker in the top 16 bits, so routing needs no lookup.
inline unsigned worker_of(std::uint64_t key) noexcept { return static_cast<unsigned>(key >> 48); }

// Runs work on one worker's thread. Implemented by the network layer (one io_context
// per worker) and by tests (a queue drained by hand).
class worker_executor {
public:
    virtual ~worker_executor() = default;
    virtual void post(std::function<void()> work) = 0;
};

struct broker_counters {
    std::atomic<std::uint64_t> connections_total{0};
    std::atomic<std::int64_t> connections_current{0};
    std::atomic<std::int64_t> sessions_current{0};
};

class broker {
public:
    explicit broker(broker_settings settings);
    broker(const broker&) = delete;
    broker& operator=(const broker&) = delete;

    const broker_settings& settings() const noexcept { return settings_; }

    // Wiring, before any worker runs.
    void add_worker(worker_core& core, worker_executor& executor);
    unsigned worker_count() const noexcept { return static_cast<unsigned>(workers_.size()); }
    worker_core& worker(unsigned index) noexcept { return *workers_[index].core; }
    worker_executor& executor(unsigned index) noexcept { return *workers_[index].executor; }

    // Where the session of `client_id` lives. If no worker owns it yet, `candidate`
    // becomes its owner. A connection whose CONNECT arrives elsewhere moves there, so a
    // session and its connection are always on one thread.
    unsigned claim_home(std::string_view client_id, unsigned candidate);
    // The owner gives the client id up when the session ends.
    void release_home(std::string_view client_id, unsigned owner);

    // Subscriptions. subscribe() returns true when it replaced an existing one.
    bool subscribe(std::string_view filter, const subscriber& who, const topics::subscription& sub);
    bool unsubscribe(std::string_view filter, const subscriber& who);
    template <class Visitor>
    void match(std::string_view topic, Visitor&& visitor) const {
        std::shared_lock lock(subscriptions_mutex_);
        subscriptions_.match(topic, visitor);
    }

    // Retained messages [MQTT-3.3.1-5..7]: a message with a payload replaces the
    // retained one of its topic, an empty payload deletes it.
    void retain(const session::message_ptr& msg);
    // Calls visit(const message_ptr&) for each unexpired retained message matching a
    // (non-shared) filter.
    template <class Visit>
    void match_retained(std::string_view filter, session::time_point now, Visit&& visit) const {
        std::shared_lock lock(retained_mutex_);
        retained_.match(filter, [&](const session::message_ptr& msg) {
            if (!msg->expired(now)) visit(msg);
        });
    }
    // Drops expired retained messages; returns how many. Appends (topic, store id) of
    // those that were stored to `stored`, so the caller can remove them there too.
    std::size_t expire_retained(session::time_point now,
                                std::vector<std::pair<std::string, std::uint64_t>>* stored = nullptr);
    std::size_t retained_count() const;

    std::size_t subscription_count() const;

    // The broker's version, for $SYS/broker/version.
    const char* version() const noexcept { return version_; }
    void set_version(const char* version) noexcept { version_ = version; }

    // A client identifier for a client that sent none [MQTT-3.1.3-6].
    std::string assign_client_id();

    broker_counters& counters() noexcept { return counters_; }

    // --- durable state -------------------------------------------------------------
    // The store, or nullptr for durability "none". Set before the workers start.
    void set_store(store* s) noexcept { store_ = s; }
    // Hands `a` to every worker (each switches on its own thread, re-checking its
    // sessions' subscriptions). At start-up, before the workers run, and on SIGHUP.
    void set_authorizer(std::shared_ptr<const authorizer> a);
    store* durable_store() const noexcept { return store_; }
    // Ids for stored rows, above every id the store already holds (seed_ids()).
    void seed_ids(const stored_state& state) noexcept;
    std::uint64_t next_message_id() noexcept { return message_ids_.fetch_add(1, std::memory_order_relaxed) + 1; }
    std::uint64_t next_session_id() noexcept { return session_ids_.fetch_add(1, std::memory_order_relaxed) + 1; }
    std::uint64_t next_delivery_row() noexcept { return delivery_rows_.fetch_add(1, std::memory_order_relaxed) + 1; }

private:
    struct worker_slot {
        worker_core* core;
        worker_executor* executor;
    };
    struct string_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };

    broker_settings settings_;
    std::vector<worker_slot> workers_;

    std::mutex homes_mutex_;
    std::unordered_map<std::string, unsigned, string_hash, std::equal_to<>> homes_;

    mutable std::shared_mutex subscriptions_mutex_;
    topics::subscription_tree<subscriber> subscriptions_;

    mutable std::shared_mutex retained_mutex_;
    topics::retained_tree<session::message_ptr> retained_;
    std::atomic<std::size_t> retained_with_expiry_{0};

    std::atomic<std::uint64_t> assigned_ids_{0};
    store* store_ = nullptr;
    std::atomic<std::uint64_t> message_ids_{0};
    std::atomic<std::uint64_t> session_ids_{0};
    std::atomic<std::uint64_t> delivery_rows_{0};
    const char* version_ = "";
    std::uint64_t instance_nonce_;
    broker_counters counters_;
};

}  // namespace edgemq::core
