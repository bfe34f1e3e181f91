#include "broker/session/outbound_flow.hpp"

#include <utility>

namespace edgemq::session {

bool outbound_flow::enqueue(delivery d) {
    const std::size_t bytes = d.msg->footprint();
    if (limits_.max_messages == 0 || bytes > limits_.max_bytes) {
        ++counters_.dropped_queue_full;
        note_dropped(d);
        return false;
    }
    while (pending_.size() >= limits_.max_messages || pending_bytes_ + bytes > limits_.max_bytes) {
        if (limits_.when_full == queue_full_policy::drop_newest || pending_.empty()) {
            ++counters_.dropped_queue_full;
            note_dropped(d);
            return false;
        }
        ++counters_.dropped_queue_full;
        note_dropped(pending_.front());
        pop_pending();
    }
    pending_bytes_ += bytes;
    pending_.push_back(std::move(d));
    return true;
}

delivery outbound_flow::pop_pending() noexcept {
    delivery d = pending_.pop_front();
    pending_bytes_ -= d.msg->footprint();
    return d;
}

outbound_flow::inflight_entry* outbound_flow::find(std::uint16_t packet_id) noexcept {
    if (packet_id == 0 || window_.empty()) return nullptr;
    // The window holds consecutive sequence numbers, at most 65535 of them, so exactly one
    // offset in it can carry this id.
    const std::uint64_t head_index = head_seq_ % max_window;
    const std::uint64_t offset = (packet_id - 1 + max_window - head_index) % max_window;
    if (offset >= window_.size()) return nullptr;
    inflight_entry& entry = window_[offset];
    if (entry.state == stage::released || entry.packet_id != packet_id) return nullptr;
    return &entry;
}

void outbound_flow::release(inflight_entry& entry) noexcept {
    if (entry.needs_resend) {
        entry.needs_resend = false;
        --unsent_;
    }
    entry.state = stage::released;
    entry.d = delivery{};
    --live_;
    while (!window_.empty() && window_.front().state == stage::released) {
        window_.pop_front();
        ++head_seq_;
    }
    if (resend_from_ < head_seq_) resend_from_ = head_seq_;
}

bool outbound_flow::on_puback(std::uint16_t packet_id, std::uint64_t* store_row) {
    inflight_entry* entry = find(packet_id);
    if (!entry || entry->state != stage::awaiting_puback) return false;
    if (store_row) *store_row = entry->d.store_row;
    release(*entry);
    return true;
}

outbound_flow::pubrec_outcome outbound_flow::on_pubrec(std::uint16_t packet_id, bool failed,
                                                       std::uint64_t* store_row) {
    inflight_entry* entry = find(packet_id);
    if (!entry) return pubrec_outcome::unknown_id;
    if (entry->state == stage::awaiting_pubcomp) return pubrec_outcome::send_pubrel;  // a repeated PUBREC
    if (entry->state != stage::awaiting_pubrec) return pubrec_outcome::unknown_id;
    if (store_row) *store_row = entry->d.store_row;
    if (failed) {
        release(*entry);
        return pubrec_outcome::released;
    }
    entry->state = stage::awaiting_pubcomp;
    // The message is delivered; only the packet id stays in use until PUBCOMP
    // [MQTT-4.3.3-?: after PUBREC the sender must not resend the PUBLISH]. The store
    // row stays (as released) until then.
    entry->d.msg.reset();
    entry->d.subscription_ids.clear();
    // A client answering an old PUBLISH before we resent it gets its PUBREL now (the
    // caller sends it), not the PUBLISH again.
    if (entry->needs_resend) {
        entry->needs_resend = false;
        --unsent_;
    }
    return pubrec_outcome::send_pubrel;
}

bool outbound_flow::on_pubcomp(std::uint16_t packet_id, std::uint64_t* store_row) {
    inflight_entry* entry = find(packet_id);
    if (!entry || entry->state != stage::awaiting_pubcomp) return false;
    if (store_row) *store_row = entry->d.store_row;
    release(*entry);
    return true;
}

void outbound_flow::resume() noexcept {
    resend_from_ = head_seq_;
    unsent_ = 0;
    for (std::size_t i = 0; i < window_.size(); ++i) {
        inflight_entry& entry = window_[i];
        entry.needs_resend = entry.state != stage::released;
        if (entry.needs_resend) ++unsent_;
    }
}

void outbound_flow::clear() noexcept {
    pending_.clear();
    window_.clear();
    head_seq_ += max_window;  // fresh ids never collide with ones the client may still hold
    resend_from_ = head_seq_;
    live_ = 0;
    unsent_ = 0;
    pending_bytes_ = 0;
}

void outbound_flow::restore(std::vector<restored_delivery> sent, std::vector<delivery> queued) {
    clear();
    if (!sent.empty()) {
        head_seq_ = sent.front().send_seq;
        resend_from_ = head_seq_;
    }
    for (restored_delivery& r : sent) {
        // Rows written by this flow are in send order and span less than 65535 sequence
        // numbers; anything else (a damaged store) is sent again as new.
        if (r.send_seq < head_seq_ + window_.size() || r.send_seq - head_seq_ >= max_window) {
            if (!r.released) queued.insert(queued.begin(), std::move(r.d));
            continue;
        }
        while (head_seq_ + window_.size() < r.send_seq) window_.push_back(inflight_entry{});
        inflight_entry entry;
        entry.packet_id = id_for(r.send_seq);
        entry.state = r.released ? stage::awaiting_pubcomp
                                 : (r.d.qos == 1 ? stage::awaiting_puback : stage::awaiting_pubrec);
        const bool released = r.released;
        entry.d = std::move(r.d);
        if (released) {
            entry.d.msg.reset();
            entry.d.subscription_ids.clear();
        }
        entry.needs_resend = true;
        window_.push_back(std::move(entry));
        ++live_;
        ++unsent_;
    }
    // Placeholders at the front would make the window look longer than it is.
    while (!window_.empty() && window_.front().state == stage::released) {
        window_.pop_front();
        ++head_seq_;
    }
    resend_from_ = head_seq_;
    for (delivery& d : queued) {
        pending_bytes_ += d.msg->footprint();
        pending_.push_back(std::move(d));
    }
}

}  // namespace edgemq::session
