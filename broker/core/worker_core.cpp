#include "broker/core/worker_core.hpp"

#include <algorithm>
#include <span>

#include "broker/core/client_connection.hpp"
#include "broker/core/log.hpp"
#include "broker/core/wall_clock.hpp"
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

    // One message per shared group (4.8.2): round robin over the members,
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

namespace {
// A subscription the ACL allows; a shared one ("$share/GROUP/FILTER") is judged by its filter.
bool may_hold(const authorizer& a, const client_identity& who, std::string_view filter) {
    const auto shared = protocol::split_shared(filter);
    return a.may_subscribe(who, shared ? shared->filter : filter);
}
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
    sessions_.emplace(s.key, std::move(owned));
    by_client_id_[s.client_id] = &s;
    broker_.counters().sessions_current.fetch_add(1, std::memory_order_relaxed);
    return s;
}

void worker_core::end_session(client_session& s, bool release_home) {
    if (const std::uint64_t id = s.status.store_id.exchange(0, std::memory_order_relaxed))
        submit_now({store_ops::remove_session{id}});
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
    // A restored session may have expired, or its Will fallen due, before its timer ran.
    if (s && !s->connection && !settle_offline(*s, now(), /*release_home=*/false)) s = nullptr;
    bool present = false;
    if (s) {
        if (s->connection) {
            log::info("session taken over: ", client_id, " (old ", s->connection->peer(), ", new ",
                      conn.peer(), ")");
            s->connection->take_over();  // detaches with detach_reason::taken_over
        }
        // The old session ends here if the new connection starts clean, or if it was
        // one that lasts only as long as its connection (3.1.1 Clean Session 1, v5
        // Session Expiry 0): nothing of it is reused [MQTT-3.1.2-6], Session Present is
        // 0 [MQTT-3.2.2-2], and its Will is due now [MQTT-3.1.3-9] [MQTT-3.1.2-8].
        if (c.clean_start || s->expiry_interval == 0) {
            if (s->will) publish_will(*s);
            end_session(*s, /*release_home=*/false);
            s = nullptr;
        } else {
            // Resumed. 3.1.1 has no Will Delay: the old connection closed without a
            // DISCONNECT, so its Will is due [MQTT-3.1.2-8] (Mosquitto drops it). In v5 the
            // new connection came before the delay ran out, even a delay of 0, so it must
            // not be sent [MQTT-3.1.3-9] [MQTT-3.1.2-8]. The new connection's Will replaces it.
            if (s->will && s->version != protocol::protocol_version::v5) publish_will(*s);
            present = true;
        }
    }
    if (!s) s = &create_session(client_id);
    s->connection = &conn;
    s->outbound.set_limits(conn.listener().limits.queue);
    s->identity = conn.identity();
    // The user may have changed (or the rules, while the session was offline).
    if (present) recheck_subscriptions(*s);
    s->status.online.store(true, std::memory_order_relaxed);
    s->version = c.version;
    s->expiry_interval = expiry_interval;
    s->expires_at = session::never;
    s->will = c.will ? std::make_unique<protocol::will_message>(*c.will) : nullptr;
    s->will_delay = c.will ? c.will->props.will_delay_interval.value_or(0) : 0;
    s->will_at = session::never;
    persist_session(*s);
    return open_result{s, present, std::nullopt};
}

void worker_core::detach(client_session& s, detach_reason why) {
    s.connection = nullptr;
    s.status.online.store(false, std::memory_order_relaxed);
    s.status.backlogged.store(false, std::memory_order_relaxed);  // offline queues are what queues are for
    if (why == detach_reason::taken_over) return;  // open_session() decides what follows
    if (why == detach_reason::normal) s.will.reset();  // [MQTT-3.14.4-3]
    if (why == detach_reason::shutdown && s.expiry_interval != 0 && broker_.durable_store()) {
        // The session outlives the broker: its Will stays with it and falls due after the
        // restart, counted from now, unless the client is back in time [MQTT-3.1.3-9].
        persist_session(s);
        return;
    }

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
    persist_session(s);  // disconnected now (expiry counts from here), with any delayed Will
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
    // Checked again when due: the rules may have changed since CONNECT (SIGHUP).
    if (authorizer_ && s.identity && !authorizer_->may_publish(*s.identity, msg->topic)) {
        log::info("Will of ", s.client_id, " to ", msg->topic, " dropped: the ACL no longer allows it");
        counters_.publish_denied.fetch_add(1, std::memory_order_relaxed);
        persist_session(s);
        return;
    }
    log::debug("publishing will of ", s.client_id, " to ", msg->topic);
    publish(std::move(msg));
    persist_session(s);  // the stored Will is gone
}

worker_core::publish_result worker_core::publish(std::shared_ptr<message> msg) {
    counters_.messages_received.fetch_add(1, std::memory_order_relaxed);
    thread_local std::vector<routed_delivery> targets;
    targets.clear();
    std::vector<store_op> ops;
    store* st = broker_.durable_store();
    const publish_result result = collect_targets(msg, targets, st ? &ops : nullptr);
    if (st) {
        add_message_ops(msg, ops, !ops.empty());
        // Nobody waits for an acknowledgement: submit now, ahead of any removal a
        // subscriber's acknowledgement could cause.
        if (!ops.empty()) submit_now(std::move(ops));
    }
    if (msg->retain) broker_.retain(msg);
    dispatch(targets);
    return result;
}

worker_core::publish_result worker_core::publish_from(client_connection& source, client_session& s,
                                                      std::shared_ptr<message> msg, protocol::packet_type ack,
                                                      std::uint16_t packet_id) {
    counters_.messages_received.fetch_add(1, std::memory_order_relaxed);
    // v5 tells a publisher when nobody subscribed [MQTT-3.4.2.1]; 3.1.1 has only success.
    auto make_ack = [&](std::size_t targets) -> std::optional<protocol::packet> {
        if (ack == protocol::packet_type::reserved) return std::nullopt;
        const reason_code code = targets == 0 && s.version == protocol::protocol_version::v5
                                     ? reason_code::no_matching_subscribers
                                     : reason_code::success;
        if (ack == protocol::packet_type::pubrec) return protocol::pubrec{{packet_id, code, {}}};
        return protocol::puback{packet_id, code, {}};
    };
    store* st = broker_.durable_store();
    if (!st) {
        // Memory only: everything happens now.
        thread_local std::vector<routed_delivery> targets;
        targets.clear();
        const publish_result result = collect_targets(msg, targets, nullptr);
        if (msg->retain) broker_.retain(msg);
        dispatch(targets);
        if (auto a = make_ack(result.targets)) source.send(*a);
        return result;
    }
    store_bound_work work;
    const publish_result result = collect_targets(msg, work.deliveries, &work.ops);
    add_message_ops(msg, work.ops, !work.ops.empty());
    const std::uint64_t session_id = s.status.store_id.load(std::memory_order_relaxed);
    if (ack == protocol::packet_type::pubrec && session_id != 0) {
        work.ops.push_back(store_ops::put_inbound{session_id, packet_id});
        work.inbound_qos2_id = packet_id;
    }
    // The retained tree changes at once, not at the commit: a SUBSCRIBE right behind this
    // PUBLISH (on this or any connection) must see it, as it would without a store.
    if (msg->retain) broker_.retain(msg);
    work.ack = make_ack(result.targets);
    work.deliver_early = msg->qos < 2 && !store_failure_logged_;
    after_store(source, std::move(work));
    return result;
}

void worker_core::add_message_ops(const std::shared_ptr<message>& shared_msg, std::vector<store_op>& ops,
                                  bool has_rows) {
    message& msg = *shared_msg;
    // $SYS statistics are made anew at every start.
    if (msg.topic.starts_with("$SYS/")) {
        ops.clear();
        return;
    }
    bool keep = has_rows;
    if (msg.retain) {
        if (msg.payload.empty()) {
            ops.push_back(store_ops::remove_retained{msg.topic});
        } else {
            keep = true;
        }
    }
    if (!keep) return;
    msg.store_id = broker_.next_message_id();
    const time_point steady = now();
    ops.insert(ops.begin(), store_ops::put_message{msg.store_id, shared_msg, to_wall(msg.expires_at, steady, wall_now())});
    // The deliveries were made before the id existed.
    for (store_op& op : ops)
        if (auto* d = std::get_if<store_ops::put_delivery>(&op)) d->delivery.message_id = msg.store_id;
    if (msg.retain && !msg.payload.empty()) ops.push_back(store_ops::put_retained{msg.topic, msg.store_id});
}

worker_core::publish_result worker_core::collect_targets(const message_ptr& msg, std::vector<routed_delivery>& out,
                                                         std::vector<store_op>* ops) {
    thread_local std::vector<match_entry> direct;
    thread_local std::vector<match_entry> shared;
    direct.clear();
    shared.clear();
    match_collector collector{*msg, direct, shared};
    broker_.match(msg->topic, collector);
    if (direct.empty() && shared.empty()) return {};

    // Persistent sessions get a store row for QoS 1/2 deliveries; QoS 0 never touches
    // the store.
    auto keep = [&](const subscriber& who, delivery& d) {
        if (!ops || d.qos == 0) return;
        const std::uint64_t session_id = who.status->store_id.load(std::memory_order_relaxed);
        if (session_id == 0) return;
        d.store_row = broker_.next_delivery_row();
        stored_delivery row;
        row.session_id = session_id;
        row.row = d.store_row;
        row.qos = d.qos;
        row.retain = d.retain;
        row.subscription_identifiers = d.subscription_ids;
        ops->push_back(store_ops::put_delivery{std::move(row)});
    };

    // A session with several matching subscriptions gets one PUBLISH, at the highest
    // granted QoS, with every subscription identifier [MQTT-3.3.4-3..5].
    if (direct.size() > 1) {
        std::sort(direct.begin(), direct.end(),
                  [](const match_entry& a, const match_entry& b) { return a.who.key < b.who.key; });
    }
    std::size_t targets = 0;
    for (std::size_t i = 0; i < direct.size();) {
        const subscriber who = direct[i].who;
        delivery d;
        std::uint8_t granted = 0;
        bool retain_as_published = false;
        for (; i < direct.size() && direct[i].who.key == who.key; ++i) {
            const topics::subscription& sub = direct[i].sub;
            granted = std::max(granted, sub.options.qos);
            retain_as_published = retain_as_published || sub.options.retain_as_published;
            if (sub.identifier != 0) d.subscription_ids.push_back(sub.identifier);
        }
        d.msg = msg;
        d.qos = std::min(msg->qos, granted);  // [MQTT-3.8.4-8]
        // Forwarded messages carry RETAIN only with Retain As Published [MQTT-3.3.1-12..13].
        d.retain = retain_as_published && msg->retain;
        keep(who, d);
        out.push_back(routed_delivery{who.key, std::move(d)});
        ++targets;
    }
    for (const match_entry& m : shared) {
        delivery d;
        d.msg = msg;
        d.qos = std::min(msg->qos, m.sub.options.qos);
        d.retain = m.sub.options.retain_as_published && msg->retain;
        if (m.sub.identifier != 0) d.subscription_ids.push_back(m.sub.identifier);
        keep(m.who, d);
        out.push_back(routed_delivery{m.who.key, std::move(d)});
        ++targets;
    }
    return {targets, collector.backlogged && settings().publisher_backpressure};
}

void worker_core::dispatch(std::vector<routed_delivery>& deliveries) {
    if (deliveries.empty()) return;
    if (outbox_.size() < broker_.worker_count()) outbox_.resize(broker_.worker_count());
    for (routed_delivery& rd : deliveries) outbox_[worker_of(rd.key)].push_back(std::move(rd));
    deliveries.clear();
    schedule_flush();
}

void worker_core::after_store(client_connection& source, store_bound_work work) {
    auto found = chains_.find(source.stream_id());
    if (work.ops.empty() && (found == chains_.end() || found->second.pending.empty())) {
        // Nothing to wait for. No chain is kept for an idle connection: thousands of
        // them would each hold one for nothing.
        work_chain now{&source, source.session_key(), {}};
        complete(now, work, true);
        return;
    }
    work_chain& chain = found != chains_.end() ? found->second : chains_[source.stream_id()];
    if (!chain.connection) {
        chain.connection = &source;
        chain.session_key = source.session_key();
    }
    if (chain.pending.empty() || chain.pending.back().submitted) {
        chain.pending.push_back(pending_work{});
        chain.pending.back().id = ++last_work_id_;
    }
    pending_work& p = chain.pending.back();
    for (store_op& op : work.ops) p.ops.push_back(std::move(op));
    work.ops.clear();
    // A QoS 0/1 message may reach its subscribers before it is committed: the promise of
    // the PUBACK (delivered even after a crash) holds either way, and a crash before
    // the commit only means the publisher sends it again, a duplicate QoS 1 allows. In
    // exchange, a subscriber that acknowledges before the store writes lets the writer
    // drop the message's rows unwritten (storage/: cancelled in the queue). Only when
    // no earlier message of this connection is still held back: per-topic order
    // [MQTT-4.6.0-5]. Handed out only after the ops reach the store (end_of_input), so
    // that a subscriber's remove_delivery can never overtake its put_delivery.
    const bool held_back = std::any_of(chain.pending.begin(), chain.pending.end(),
                                       [](const pending_work& w) { return w.holds_deliveries; });
    if (work.deliver_early && !held_back) {
        for (routed_delivery& d : work.deliveries) p.early.push_back(std::move(d));
        work.deliveries.clear();
    } else if (!work.deliveries.empty()) {
        p.holds_deliveries = true;
    }
    p.items.push_back(std::move(work));
}

void worker_core::end_of_input(client_connection& source) {
    auto it = chains_.find(source.stream_id());
    if (it == chains_.end() || it->second.pending.empty()) return;
    pending_work& p = it->second.pending.back();
    if (p.submitted) return;
    p.submitted = true;
    std::vector<routed_delivery> early = std::exchange(p.early, {});
    if (p.ops.empty()) {
        // Only waits for the work before it.
        p.committed = true;
        dispatch(early);
        complete_ready(it->first);
        return;
    }
    const std::uint64_t chain_id = it->first;
    const std::uint64_t work_id = p.id;
    broker_.durable_store()->submit(std::exchange(p.ops, {}), [this, chain_id, work_id](bool ok) {
        // On the store's thread: hand over to this worker.
        broker_.executor(index_).post([this, chain_id, work_id, ok] { on_committed(chain_id, work_id, ok); });
    });
    dispatch(early);
}

void worker_core::on_committed(std::uint64_t chain_id, std::uint64_t work_id, bool ok) {
    auto it = chains_.find(chain_id);
    if (it == chains_.end()) return;
    for (pending_work& p : it->second.pending) {
        if (p.id == work_id) {
            p.committed = true;
            p.ok = ok;
            break;
        }
    }
    complete_ready(chain_id);
}

void worker_core::complete_ready(std::uint64_t chain_id) {
    auto it = chains_.find(chain_id);
    if (it == chains_.end()) return;
    work_chain& chain = it->second;
    // complete() may close the connection, which calls forget_connection(): the chain
    // must stay where it is until this loop is done with it.
    completing_ = chain_id;
    while (!chain.pending.empty() && chain.pending.front().committed) {
        pending_work p = std::move(chain.pending.front());
        chain.pending.pop_front();
        for (store_bound_work& item : p.items) complete(chain, item, p.ok);
    }
    completing_ = 0;
    // Made again by the next after_store() that has to wait.
    if (chain.pending.empty()) chains_.erase(it);
}

void worker_core::complete(work_chain& chain, store_bound_work& item, bool ok) {
    if (ok) {
        dispatch(item.deliveries);
    } else {
        if (!store_failure_logged_) {
            log::warn("the store could not keep a message: publishers get no acknowledgement until it can");
            store_failure_logged_ = true;
        }
        // Not kept, so not routed either: the publisher is told (v5) or disconnected
        // (3.1.1, which has no negative acknowledgement) and sends it again.
        if (item.inbound_qos2_id != 0) {
            auto s = sessions_.find(chain.session_key);
            if (s != sessions_.end()) s->second->inbound_qos2.erase(item.inbound_qos2_id);
        }
    }
    if (ok && store_failure_logged_ && !item.ops.empty()) store_failure_logged_ = false;
    if (item.ack && chain.connection) chain.connection->send_after_store(*item.ack, ok);
}

bool worker_core::store_backlogged(const client_connection& source) const noexcept {
    auto it = chains_.find(source.stream_id());
    return it != chains_.end() && it->second.pending.size() > max_pending_store_work;
}

void worker_core::forget_connection(client_connection& source) {
    auto it = chains_.find(source.stream_id());
    if (it == chains_.end()) return;
    it->second.connection = nullptr;
    if (it->second.pending.empty()) {
        if (completing_ != it->first) chains_.erase(it);
        return;
    }
    // Work it added but did not submit yet must still reach the store.
    if (!it->second.pending.back().submitted) end_of_input(source);
}

void worker_core::store_later(store_op op) {
    store_later_.push_back(std::move(op));
    schedule_flush();
}

void worker_core::submit_now(std::vector<store_op> ops) {
    store* st = broker_.durable_store();
    if (!st || ops.empty()) return;
    // Keep the order: anything queued for later goes first.
    if (!store_later_.empty()) {
        std::vector<store_op> all = std::exchange(store_later_, {});
        for (store_op& op : ops) all.push_back(std::move(op));
        ops = std::move(all);
    }
    st->submit(std::move(ops), [](bool) {});
}

void worker_core::drain_dropped_rows(client_session& s) {
    if (!s.outbound.has_dropped_rows()) return;
    const std::uint64_t session_id = s.status.store_id.load(std::memory_order_relaxed);
    for (std::uint64_t row : s.outbound.take_dropped_rows())
        if (session_id != 0) store_later(store_ops::remove_delivery{session_id, row});
}

void worker_core::persist_session(client_session& s) {
    store* st = broker_.durable_store();
    if (!st) return;
    const std::uint64_t id = s.status.store_id.load(std::memory_order_relaxed);
    if (s.expiry_interval == 0) {
        // Not (or no longer) persistent: whatever was stored goes.
        if (id != 0) {
            s.status.store_id.store(0, std::memory_order_relaxed);
            submit_now({store_ops::remove_session{id}});
        }
        return;
    }
    stored_session row;
    row.id = id != 0 ? id : broker_.next_session_id();
    row.client_id = s.client_id;
    row.expiry_interval = s.expiry_interval;
    row.disconnected_at = s.connection ? 0 : wall_now();
    if (s.will) {
        row.will = *s.will;
        row.will->props.will_delay_interval = s.will_delay;
    }
    const std::uint64_t stored_id = row.id;
    // Submitted before the id is visible to other workers, so that no delivery row of
    // this session can reach the store before the session row does.
    submit_now({store_ops::put_session{std::move(row)}});
    if (id == 0) s.status.store_id.store(stored_id, std::memory_order_relaxed);
}

void worker_core::schedule_flush() {
    if (flush_scheduled_) return;
    flush_scheduled_ = true;
    broker_.executor(index_).post([this] { flush(); });
}

void worker_core::flush() {
    flush_scheduled_ = false;
    if (!store_later_.empty()) {
        const std::size_t last = store_later_.size();
        if (store* st = broker_.durable_store()) st->submit(std::exchange(store_later_, {}), [](bool) {});
        store_later_.clear();
        store_later_.reserve(last);  // the next flush is likely as big: grow once, not step by step
    }
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
    if (authorizer_ && authorizer_->restricts_reads() && s.identity && !authorizer_->may_receive(*s.identity, d.msg->topic)) {
        // Never queued: the subscription's filter was allowed, this topic inside it is
        // not (a deny rule, or a filter wider than what the user may read).
        counters_.delivery_denied.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    const std::uint64_t dropped_before = s.outbound.counters().dropped_queue_full;
    s.outbound.enqueue(std::move(d));
    drain_dropped_rows(s);
    const std::uint64_t dropped = s.outbound.counters().dropped_queue_full - dropped_before;
    if (dropped != 0) {
        counters_.messages_dropped.fetch_add(dropped, std::memory_order_relaxed);
        const auto total = s.outbound.counters().dropped_queue_full;
        // Say so, without flooding the log: at the first drop and at each power of ten.
        if ((total & (total - 1)) == 0 || total % 10000 == 0) {
            log::warn("queue of ", s.client_id, " is full (", s.outbound.pending(), " messages, ",
                      s.outbound.pending_bytes(), " bytes): ", total, " messages dropped (",
                      s.outbound.limits().when_full == session::queue_full_policy::drop_oldest ? "oldest"
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

void worker_core::subscribe(client_session& s, const protocol::subscribe& packet, store_bound_work& work) {
    protocol::suback ack;
    ack.packet_id = packet.packet_id;
    std::vector<reason_code>& codes = ack.codes;
    codes.reserve(packet.entries.size());
    const std::uint64_t session_id = s.status.store_id.load(std::memory_order_relaxed);
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
        if (authorizer_ && s.connection) {
            if (!may_hold(*authorizer_, s.connection->identity(), entry.filter)) {
                log::info("subscription of ", s.client_id, " to ", entry.filter, " denied by the ACL");
                codes.push_back(v5 ? reason_code::not_authorized : reason_code::unspecified_error);
                continue;
            }
        }
        if (const std::uint32_t max = s.connection ? s.connection->listener().limits.max_subscriptions : 0;
            max != 0 && s.subscriptions.size() >= max && !s.subscriptions.contains(entry.filter)) {
            codes.push_back(v5 ? reason_code::quota_exceeded : reason_code::unspecified_error);
            continue;
        }
        protocol::subscription_options options = entry.options;
        options.qos = std::min(options.qos, settings().maximum_qos);  // [MQTT-3.2.2-9]
        const bool existed = broker_.subscribe(entry.filter, who, topics::subscription{options, identifier});
        s.subscriptions[entry.filter] = subscription_record{options, identifier};
        codes.push_back(static_cast<reason_code>(options.qos));
        if (session_id != 0)
            work.ops.push_back(store_ops::put_subscription{{session_id, entry.filter, options, identifier}});

        // Retained messages go to new non-shared subscriptions per Retain Handling
        // [MQTT-3.3.1-9..11]; never to shared ones (4.8.2).
        if (protocol::split_shared(entry.filter)) continue;
        if (options.retain_handling == 2 || (options.retain_handling == 1 && existed)) continue;
        broker_.match_retained(entry.filter, now, [&](const message_ptr& msg) {
            delivery d;
            d.msg = msg;
            d.qos = std::min(msg->qos, options.qos);
            d.retain = true;  // [MQTT-3.3.1-8]
            if (identifier != 0) d.subscription_ids.push_back(identifier);
            if (session_id != 0 && d.qos > 0 && msg->store_id != 0) {
                d.store_row = broker_.next_delivery_row();
                work.ops.push_back(store_ops::put_delivery{
                    {session_id, d.store_row, msg->store_id, d.qos, d.retain, d.subscription_ids, 0, false}});
            }
            work.deliveries.push_back(routed_delivery{s.key, std::move(d)});
        });
    }
    work.ack = std::move(ack);
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
        if (s.subscriptions.erase(filter) != 0) {
            if (const std::uint64_t id = s.status.store_id.load(std::memory_order_relaxed))
                store_later(store_ops::remove_subscription{id, filter});
        }
        codes.push_back(existed ? reason_code::success : reason_code::no_subscription_existed);
    }
    return codes;
}

void worker_core::set_authorizer(std::shared_ptr<const authorizer> a) {
    authorizer_ = std::move(a);
    for (auto& entry : sessions_)
        if (entry.second->identity) recheck_subscriptions(*entry.second);
}

void worker_core::recheck_subscriptions(client_session& s) {
    if (!authorizer_ || !s.identity) return;
    const subscriber handle{s.key, &s.status};
    for (auto it = s.subscriptions.begin(); it != s.subscriptions.end();) {
        if (may_hold(*authorizer_, *s.identity, it->first)) {
            ++it;
            continue;
        }
        log::info("subscription of ", s.client_id, " to ", it->first, " removed: the ACL no longer allows it");
        broker_.unsubscribe(it->first, handle);
        if (const std::uint64_t id = s.status.store_id.load(std::memory_order_relaxed))
            store_later(store_ops::remove_subscription{id, it->first});
        it = s.subscriptions.erase(it);
    }
}

void worker_core::abandon_home(const std::string& client_id) {
    if (!find_session(client_id)) broker_.release_home(client_id, index_);
}

void worker_core::schedule_timer(time_point when, std::uint64_t key) { timers_.push(timer{when, key}); }

bool worker_core::settle_offline(client_session& s, time_point now, bool release_home) {
    if (s.will && s.will_at <= now) publish_will(s);
    if (s.expires_at > now) return true;
    log::info("session expired: ", s.client_id);
    if (s.will) publish_will(s);  // the session ends before the Will Delay [MQTT-3.1.3-9]
    end_session(s, release_home);
    return false;
}

void worker_core::tick() {
    const time_point now = this->now();
    while (!timers_.empty() && timers_.top().when <= now) {
        const std::uint64_t key = timers_.top().key;
        timers_.pop();
        auto it = sessions_.find(key);
        if (it == sessions_.end()) continue;
        client_session& s = *it->second;
        if (s.connection) continue;  // reconnected since the timer was set
        settle_offline(s, now, /*release_home=*/true);
    }
    if (index_ == 0 && settings().sys_interval != 0 && now >= next_sys_update_) {
        if (started_at_ == session::time_point{}) started_at_ = now;
        publish_sys_statistics(now);
        next_sys_update_ = now + std::chrono::seconds(settings().sys_interval);
    }
    if (index_ == 0 && now >= next_retained_sweep_) {
        std::vector<std::pair<std::string, std::uint64_t>> stored;
        broker_.expire_retained(now, &stored);
        for (auto& [topic, id] : stored) store_later(store_ops::remove_retained{std::move(topic), id});
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
        // Not publish(): the broker's own messages are neither counted as received nor stored.
        broker_.retain(msg);
        thread_local std::vector<routed_delivery> targets;
        targets.clear();
        collect_targets(msg, targets, nullptr);
        dispatch(targets);
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

void worker_core::adopt_stored_session(restored_session r, wall_ms wall) {
    const stored_session& row = *r.session;
    client_session& s = create_session(row.client_id);
    s.status.store_id.store(row.id, std::memory_order_relaxed);
    s.expiry_interval = row.expiry_interval;
    const time_point steady = now();
    // A session still connected when the broker stopped (or died) lost its connection then.
    const wall_ms ended = row.disconnected_at != 0 ? row.disconnected_at : wall;
    if (row.expiry_interval != 0xFFFF'FFFF) {
        s.expires_at = to_steady(ended + std::int64_t{row.expiry_interval} * 1000, steady, wall);
        schedule_timer(s.expires_at, s.key);
    }
    if (row.will) {
        s.will = std::make_unique<protocol::will_message>(*row.will);
        s.will_delay = row.will->props.will_delay_interval.value_or(0);
        s.will_at = to_steady(ended + std::int64_t{std::min(s.will_delay, row.expiry_interval)} * 1000, steady, wall);
        schedule_timer(s.will_at, s.key);
    }
    const subscriber who{s.key, &s.status};
    for (const stored_subscription* sub : r.subscriptions) {
        broker_.subscribe(sub->filter, who, topics::subscription{sub->options, sub->identifier});
        s.subscriptions[sub->filter] = subscription_record{sub->options, sub->identifier};
    }
    for (std::uint16_t id : r.inbound) s.inbound_qos2.insert(id);
    s.outbound.restore(std::move(r.sent), std::move(r.queued));
}

}  // namespace edgemq::core
