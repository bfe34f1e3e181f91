#include "broker/core/worker_core.hpp"

#include <algorithm>
#include <span>

#include "broker/core/client_connection.hpp"
#include "broker/core/log.hpp"
#include "broker/protocol/codec.hpp"
#include "broker/protocol/validate.hpp"

namespace edgemq::core {

using protocol::reason_code;
using session::delivery;
using session::message;
using session::message_ptr;
using session::time_point;

namespace {

// What a publish matched, before the subscriptions of one session are merged.
struct match_entry {
    subscriber who;
    topics::subscription sub;
};

// Collects the targets of one publish while the broker holds the subscription lock;
// nothing here may block or allocate more than the reused vectors need.
struct match_collector {
    const message& msg;
    std::vector<match_entry>& direct;
    std::vector<match_entry>& shared;
    bool backlogged = false;  // some target cannot keep up

    void on_subscriber(const subscriber& who, const topics::subscription& sub) {
        // No Local: not back to the publishing session [MQTT-3.8.3-3].
        if (sub.options.no_local && who.key == msg.origin) return;
        note(who);
        direct.push_back(match_entry{who, sub});
    }

    void note(const subscriber& who) {
        // A session never slows itself down (it could not drain its backlog while its
        // own reads wait).
        if (who.key != msg.origin && who.status->backlogged.load(std::memory_order_relaxed)) backlogged = true;
    }

    // One message per shared group [MQTT-4.8.2-?]: round robin over the members,
    // skipping those that are offline while any member is online.
    template <class Members>
    void on_shared_group(const Members& members, std::size_t start) {
        const std::size_t n = std::size(members);
        if (n == 0) return;
        for (std::size_t i = 0; i < n; ++i) {
            const auto& m = members[(start + i) % n];
            if (m.handle.status && m.handle.status->online.load(std::memory_order_relaxed)) {
                note(m.handle);
                shared.push_back(match_entry{m.handle, m.sub});
                return;
            }
        }
        const auto& m = members[start % n];
        shared.push_back(match_entry{m.handle, m.sub});
    }
};

}  // namespace

worker_core::worker_core(broker& b, unsigned index)
    : broker_(b), index_(index), clock_([] { return session::clock::now(); }) {}

worker_core::~worker_core() = default;

client_session* worker_core::find_session(std::string_view client_id) {
    auto it = by_client_id_.find(client_id);
    return it == by_client_id_.end() ? nullptr : it->second;
}

client_session& worker_core::create_session(const std::string& client_id) {
    auto owned = std::make_unique<client_session>();
    client_session& s = *owned;
    s.client_id = client_id;
    s.key = new_key();
    s.outbound.set_limits(settings().queue);
    sessions_.emplace(s.key, std::move(owned));
    by_client_id_[s.client_id] = &s;
    broker_.counters().sessions_current.fetch_add(1, std::memory_order_relaxed);
    return s;
}

void worker_core::end_session(client_session& s, bool release_home) {
    const subscriber who{s.key, &s.status};
    for (const auto& entry : s.subscriptions) broker_.unsubscribe(entry.first, who);
    by_client_id_.erase(s.client_id);
    if (release_home) broker_.release_home(s.client_id, index_);
    broker_.counters().sessions_current.fetch_sub(1, std::memory_order_relaxed);
    sessions_.erase(s.key);  // destroys s
}

worker_core::open_result worker_core::open_session(client_connection& conn, const protocol::connect& c,
                                                   const std::string& client_id,
                                                   std::uint32_t expiry_interval) {
    const unsigned home = broker_.claim_home(client_id, index_);
    if (home != index_) return open_result{nullptr, false, home};

    client_session* s = find_session(client_id);
    bool present = false;
    if (s) {
        if (s->connection) {
            log::info("session taken over: ", client_id, " (old ", s->connection->peer(), ", new ",
                      conn.peer(), ")");
            s->connection->take_over();  // detaches with detach_reason::taken_over
        }
        if (c.clean_start) {
            // The old session ends here, so its Will is due now [MQTT-3.1.3-9].
            if (s->will) publish_will(*s);
            end_session(*s, /*release_home=*/false);
            s = nullptr;
        } else {
            // Resumed in time: a delayed Will must not be sent [MQTT-3.1.3-9]; the new
            // connection's Will replaces it.
            present = true;
        }
    }
    if (!s) s = &create_session(client_id);
    s->connection = &conn;
    s->status.online.store(true, std::memory_order_relaxed);
    s->version = c.version;
    s->expiry_interval = expiry_interval;
    s->expires_at = session::never;
    s->will = c.will ? std::make_unique<protocol::will_message>(*c.will) : nullptr;
    s->will_delay = c.will ? c.will->props.will_delay_interval.value_or(0) : 0;
    s->will_at = session::never;
    return open_result{s, present, std::nullopt};
}

void worker_core::detach(client_session& s, detach_reason why) {
    s.connection = nullptr;
    s.status.online.store(false, std::memory_order_relaxed);
    s.status.backlogged.store(false, std::memory_order_relaxed);  // offline queues are what queues are for
    if (why == detach_reason::taken_over) return;  // open_session() decides what follows
    if (why == detach_reason::normal || why == detach_reason::shutdown) s.will.reset();  // [MQTT-3.14.4-3]

    const time_point now = this->now();
    if (s.expiry_interval == 0) {
        if (s.will) publish_will(s);
        end_session(s, /*release_home=*/true);
        return;
    }
    if (s.expiry_interval != 0xFFFF'FFFF) {
        s.expires_at = now + std::chrono::seconds(s.expiry_interval);
        schedule_timer(s.expires_at, s.key);
    }
    if (s.will) {
        if (s.will_delay == 0) {
            publish_will(s);
        } else {
            // Sent when the delay passes or the session ends, whichever is first.
            s.will_at = now + std::chrono::seconds(std::min(s.will_delay, s.expiry_interval));
            schedule_timer(s.will_at, s.key);
        }
    }
}

void worker_core::publish_will(client_session& s) {
    protocol::will_message will = std::move(*s.will);
    s.will.reset();
    s.will_at = session::never;
    auto msg = std::make_shared<message>();
    msg->topic = std::move(will.topic);
    msg->payload = std::move(will.payload);
    msg->qos = will.qos;
    msg->retain = will.retain;
    msg->origin = s.key;
    protocol::encode_forwarded_properties(will.props, msg->forwarded_properties);
    if (will.props.message_expiry_interval)
        msg->expires_at = now() + std::chrono::seconds(*will.props.message_expiry_interval);
    log::debug("publishing will of ", s.client_id, " to ", msg->topic);
    publish(std::move(msg));
}

worker_core::publish_result worker_core::publish(message_ptr msg) {
    counters_.messages_received.fetch_add(1, std::memory_order_relaxed);
    if (msg->retain) broker_.retain(msg);
    return route(msg);
}

worker_core::publish_result worker_core::route(const message_ptr& msg) {
    thread_local std::vector<match_entry> direct;
    thread_local std::vector<match_entry> shared;
    direct.clear();
    shared.clear();
    match_collector collector{*msg, direct, shared};
    broker_.match(msg->topic, collector);
    if (direct.empty() && shared.empty()) return {};
    if (outbox_.size() < broker_.worker_count()) outbox_.resize(broker_.worker_count());

    // A session with several matching subscriptions gets one PUBLISH, at the highest
    // granted QoS, with every subscription identifier [MQTT-3.3.4-3..5].
    if (direct.size() > 1) {
        std::sort(direct.begin(), direct.end(),
                  [](const match_entry& a, const match_entry& b) { return a.who.key < b.who.key; });
    }
    std::size_t targets = 0;
    for (std::size_t i = 0; i < direct.size();) {
        const std::uint64_t key = direct[i].who.key;
        delivery d;
        std::uint8_t granted = 0;
        bool retain_as_published = false;
        for (; i < direct.size() && direct[i].who.key == key; ++i) {
            const topics::subscription& sub = direct[i].sub;
            granted = std::max(granted, sub.options.qos);
            retain_as_published = retain_as_published || sub.options.retain_as_published;
            if (sub.identifier != 0) d.subscription_ids.push_back(sub.identifier);
        }
        d.msg = msg;
        d.qos = std::min(msg->qos, granted);  // [MQTT-3.8.4-8]
        // Forwarded messages carry RETAIN only with Retain As Published [MQTT-3.3.1-12..13].
        d.retain = retain_as_published && msg->retain;
        outbox_[worker_of(key)].push_back(routed_delivery{key, std::move(d)});
        ++targets;
    }
    for (const match_entry& m : shared) {
        delivery d;
        d.msg = msg;
        d.qos = std::min(msg->qos, m.sub.options.qos);
        d.retain = m.sub.options.retain_as_published && msg->retain;
        if (m.sub.identifier != 0) d.subscription_ids.push_back(m.sub.identifier);
        outbox_[worker_of(m.who.key)].push_back(routed_delivery{m.who.key, std::move(d)});
        ++targets;
    }
    schedule_flush();
    return {targets, collector.backlogged && settings().publisher_backpressure};
}

void worker_core::schedule_flush() {
    if (flush_scheduled_) return;
    flush_scheduled_ = true;
    broker_.executor(index_).post([this] { flush(); });
}

void worker_core::flush() {
    flush_scheduled_ = false;
    if (outbox_.size() < broker_.worker_count()) outbox_.resize(broker_.worker_count());
    for (unsigned w = 0; w < outbox_.size(); ++w) {
        if (w == index_ || outbox_[w].empty()) continue;
        std::vector<routed_delivery> batch;
        batch.swap(outbox_[w]);
        outbox_[w].reserve(batch.size());
        worker_core& target = broker_.worker(w);
        target.inbox_batches_.fetch_add(1, std::memory_order_relaxed);
        broker_.executor(w).post([&target, batch = std::move(batch)]() mutable {
            target.deliver_batch(std::move(batch));
            target.inbox_batches_.fetch_sub(1, std::memory_order_release);
        });
    }
    if (!outbox_[index_].empty()) {
        std::vector<routed_delivery> batch;
        batch.swap(outbox_[index_]);
        deliver_batch(std::move(batch));
    }
}

bool worker_core::downstream_congested() const noexcept {
    for (unsigned w = 0; w < broker_.worker_count(); ++w) {
        if (w != index_ && broker_.worker(w).inbox_batches_.load(std::memory_order_acquire) > max_inbox_batches)
            return true;
    }
    return false;
}

void worker_core::deliver_batch(std::vector<routed_delivery>&& batch) {
    for (routed_delivery& item : batch) {
        auto it = sessions_.find(item.key);
        if (it == sessions_.end()) continue;  // the session ended while the message travelled
        deliver(*it->second, std::move(item.d));
    }
}

void worker_core::deliver(client_session& s, delivery d) {
    if (!s.connection && d.qos == 0 && !settings().queue_qos0_offline) return;
    const std::uint64_t dropped_before = s.outbound.counters().dropped_queue_full;
    s.outbound.enqueue(std::move(d));
    const std::uint64_t dropped = s.outbound.counters().dropped_queue_full - dropped_before;
    if (dropped != 0) {
        counters_.messages_dropped.fetch_add(dropped, std::memory_order_relaxed);
        const auto total = s.outbound.counters().dropped_queue_full;
        // Say so, without flooding the log: at the first drop and at each power of ten.
        if ((total & (total - 1)) == 0 || total % 10000 == 0) {
            log::warn("queue of ", s.client_id, " is full (", s.outbound.pending(), " messages, ",
                      s.outbound.pending_bytes(), " bytes): ", total, " messages dropped (",
                      settings().queue.when_full == session::queue_full_policy::drop_oldest ? "oldest"
                                                                                           : "newest",
                      " first)");
        }
    }
    if (s.connection) s.connection->pump();  // updates the backlog flag
}

void worker_core::update_backlog(client_session& s) noexcept {
    const std::size_t waiting = s.outbound.pending();
    const bool was = s.status.backlogged.load(std::memory_order_relaxed);
    // Only a subscriber that is draining, just slower than messages arrive, slows its
    // publishers down. One that makes no progress at all (does not read, does not
    // acknowledge) must not hold everybody else back: its queue limit applies instead.
    const bool draining = now() - s.last_progress < stall_timeout;
    if (!was && waiting > backlog_high && draining) {
        s.status.backlogged.store(true, std::memory_order_relaxed);
    } else if (was && (waiting < backlog_low || !draining)) {
        s.status.backlogged.store(false, std::memory_order_relaxed);
    }
}

std::vector<reason_code> worker_core::subscribe(client_session& s, const protocol::subscribe& packet) {
    std::vector<reason_code> codes;
    codes.reserve(packet.entries.size());
    retained_due_.clear();
    const bool v5 = s.version == protocol::protocol_version::v5;
    const std::uint32_t identifier =
        packet.props.subscription_identifiers.empty() ? 0 : packet.props.subscription_identifiers.front();
    const subscriber who{s.key, &s.status};
    const time_point now = this->now();
    for (const protocol::subscription_request& entry : packet.entries) {
        if (!protocol::validate_topic_filter(entry.filter)) {
            codes.push_back(v5 ? reason_code::topic_filter_invalid : reason_code::unspecified_error);
            continue;
        }
        protocol::subscription_options options = entry.options;
        options.qos = std::min(options.qos, settings().maximum_qos);  // [MQTT-3.2.2-9]
        const bool existed = broker_.subscribe(entry.filter, who, topics::subscription{options, identifier});
        s.subscriptions[entry.filter] = subscription_record{options, identifier};
        codes.push_back(static_cast<reason_code>(options.qos));

        // Retained messages go to new non-shared subscriptions per Retain Handling
        // [MQTT-3.3.1-9..11]; never to shared ones [MQTT-4.8.2-?].
        if (protocol::split_shared(entry.filter)) continue;
        if (options.retain_handling == 2 || (options.retain_handling == 1 && existed)) continue;
        broker_.match_retained(entry.filter, now, [&](const message_ptr& msg) {
            delivery d;
            d.msg = msg;
            d.qos = std::min(msg->qos, options.qos);
            d.retain = true;  // [MQTT-3.3.1-8]
            if (identifier != 0) d.subscription_ids.push_back(identifier);
            retained_due_.push_back(std::move(d));
        });
    }
    return codes;
}

void worker_core::deliver_retained_after_subscribe(client_session& s) {
    std::vector<delivery> due;
    due.swap(retained_due_);
    for (delivery& d : due) deliver(s, std::move(d));
}

std::vector<reason_code> worker_core::unsubscribe(client_session& s, const protocol::unsubscribe& packet) {
    std::vector<reason_code> codes;
    codes.reserve(packet.filters.size());
    const subscriber who{s.key, &s.status};
    for (const std::string& filter : packet.filters) {
        if (!protocol::validate_topic_filter(filter)) {
            codes.push_back(reason_code::topic_filter_invalid);
            continue;
        }
        const bool existed = broker_.unsubscribe(filter, who);
        s.subscriptions.erase(filter);
        codes.push_back(existed ? reason_code::success : reason_code::no_subscription_existed);
    }
    return codes;
}

void worker_core::schedule_timer(time_point when, std::uint64_t key) { timers_.push(timer{when, key}); }

void worker_core::tick() {
    const time_point now = this->now();
    while (!timers_.empty() && timers_.top().when <= now) {
        const std::uint64_t key = timers_.top().key;
        timers_.pop();
        auto it = sessions_.find(key);
        if (it == sessions_.end()) continue;
        client_session& s = *it->second;
        if (s.connection) continue;  // reconnected since the timer was set
        if (s.will && s.will_at <= now) publish_will(s);
        if (s.expires_at <= now) {
            log::info("session expired: ", s.client_id);
            if (s.will) publish_will(s);  // the session ends before the Will Delay [MQTT-3.1.3-9]
            end_session(s, /*release_home=*/true);
        }
    }
    if (index_ == 0 && settings().sys_interval != 0 && now >= next_sys_update_) {
        if (started_at_ == session::time_point{}) started_at_ = now;
        publish_sys_statistics(now);
        next_sys_update_ = now + std::chrono::seconds(settings().sys_interval);
    }
    if (index_ == 0 && now >= next_retained_sweep_) {
        broker_.expire_retained(now);
        next_retained_sweep_ = now + std::chrono::seconds(5);
    }
}

void worker_core::publish_sys_statistics(time_point now) {
    // The topics Mosquitto users already watch, retained so a new subscriber sees the
    // latest values at once.
    std::uint64_t received = 0, sent = 0, dropped = 0;
    for (unsigned w = 0; w < broker_.worker_count(); ++w) {
        worker_counters& c = broker_.worker(w).counters();
        received += c.messages_received.load(std::memory_order_relaxed);
        sent += c.messages_sent.load(std::memory_order_relaxed);
        dropped += c.messages_dropped.load(std::memory_order_relaxed);
    }
    broker_counters& b = broker_.counters();
    const auto uptime = std::chrono::duration_cast<std::chrono::seconds>(now - started_at_).count();
    auto put = [&](std::string topic, std::string value) {
        auto msg = std::make_shared<message>();
        msg->topic = std::move(topic);
        msg->payload = std::move(value);
        msg->retain = true;
        broker_.retain(msg);  // not publish(): the broker's own messages are not counted as received
        route(msg);
    };
    put("$SYS/broker/version", std::string("edgemq ") + broker_.version());
    put("$SYS/broker/uptime", std::to_string(uptime) + " seconds");
    put("$SYS/broker/clients/connected", std::to_string(b.connections_current.load(std::memory_order_relaxed)));
    put("$SYS/broker/clients/total", std::to_string(b.sessions_current.load(std::memory_order_relaxed)));
    put("$SYS/broker/connections/total", std::to_string(b.connections_total.load(std::memory_order_relaxed)));
    put("$SYS/broker/messages/received", std::to_string(received));
    put("$SYS/broker/messages/sent", std::to_string(sent));
    put("$SYS/broker/messages/dropped", std::to_string(dropped));
    put("$SYS/broker/retained messages/count", std::to_string(broker_.retained_count()));
    put("$SYS/broker/subscriptions/count", std::to_string(broker_.subscription_count()));
}

void worker_core::shutdown() {
    std::vector<client_connection*> connected;
    for (auto& [key, s] : sessions_)
        if (s->connection) connected.push_back(s->connection);
    for (client_connection* c : connected) c->shut_down();
}

}  // namespace edgemq::core
