#include "broker/core/restore.hpp"

#include <algorithm>
#include <unordered_map>

#include "broker/core/wall_clock.hpp"
#include "broker/core/worker_core.hpp"

namespace edgemq::core {

restore_summary restore_state(broker& b, stored_state state) {
    restore_summary summary;
    b.seed_ids(state);
    const wall_ms wall = wall_now();
    const session::time_point steady = session::clock::now();

    // One shared message per stored message, however many sessions it is queued for.
    std::unordered_map<std::uint64_t, session::message_ptr> messages;
    messages.reserve(state.messages.size());
    for (stored_message& m : state.messages) {
        auto msg = std::make_shared<session::message>();
        msg->topic = std::move(m.topic);
        msg->payload = std::move(m.payload);
        msg->forwarded_properties = std::move(m.forwarded_properties);
        msg->qos = m.qos;
        msg->retain = m.retain;
        msg->store_id = m.id;
        msg->expires_at = to_steady(m.expires_at, steady, wall);
        if (msg->expired(steady)) ++summary.expired;
        messages.emplace(m.id, std::move(msg));
    }

    for (auto& [topic, id] : state.retained) {
        auto it = messages.find(id);
        if (it == messages.end()) continue;
        // Expired ones too: the retained sweep removes them from the tree and the store
        // alike, and a delivery never sends an expired message [MQTT-3.3.2-5].
        b.retain(it->second);
        if (!it->second->expired(steady)) ++summary.retained;
    }

    std::unordered_map<std::uint64_t, worker_core::restored_session> by_id;
    for (const stored_session& s : state.sessions) by_id[s.id].session = &s;
    for (const stored_subscription& sub : state.subscriptions) {
        auto it = by_id.find(sub.session_id);
        if (it == by_id.end()) continue;
        it->second.subscriptions.push_back(&sub);
        ++summary.subscriptions;
    }
    for (auto& [session_id, packet_id] : state.inbound) {
        auto it = by_id.find(session_id);
        if (it != by_id.end()) it->second.inbound.push_back(packet_id);
    }
    // Deliveries come ordered by (session, row): the order they were queued in.
    for (stored_delivery& d : state.deliveries) {
        auto it = by_id.find(d.session_id);
        if (it == by_id.end()) continue;
        session::delivery out;
        auto m = messages.find(d.message_id);
        if (m != messages.end()) out.msg = m->second;
        if (!out.msg && !d.released) continue;  // nothing to deliver (a damaged store)
        // Released means the client sent PUBREC: it has the message, and only PUBREL /
        // PUBCOMP under its packet id remain. A released row without a send sequence (it
        // went to another row) has no packet id to complete, and sending it again would
        // be a duplicate, or an empty PUBLISH when its message is gone [MQTT-4.3.3].
        if (d.released && d.send_seq == 0) continue;
        if (!out.msg) {
            // Released: only the packet id matters; keep a placeholder message.
            out.msg = std::make_shared<session::message>();
        }
        out.qos = d.qos;
        out.retain = d.retain;
        out.subscription_ids = std::move(d.subscription_identifiers);
        out.store_row = d.row;
        if (d.send_seq != 0) {
            it->second.sent.push_back({std::move(out), d.send_seq, d.released});
        } else {
            it->second.queued.push_back(std::move(out));
        }
        ++summary.deliveries;
    }

    // Sessions are spread over the workers; each stays on its worker from now on.
    const unsigned workers = b.worker_count();
    unsigned next = 0;
    for (auto& [id, r] : by_id) {
        std::sort(r.sent.begin(), r.sent.end(),
                  [](const auto& x, const auto& y) { return x.send_seq < y.send_seq; });
        const unsigned home = b.claim_home(r.session->client_id, next);
        next = (next + 1) % workers;
        b.worker(home).adopt_stored_session(std::move(r), wall);
        ++summary.sessions;
    }
    return summary;
}

}  // namespace edgemq::core
