// The broker-to-client half of a session's QoS machinery [MQTT-4.3], independent of
// sockets and encoding:
//   - a bounded pending queue of deliveries waiting to be sent (the offline queue while
//     the client is away, and the overflow while its Receive Maximum is used up);
//   - the in-flight window of QoS 1/2 PUBLISHes awaiting PUBACK, PUBREC or PUBCOMP,
//     with packet identifiers allocated here;
//   - resending of unacknowledged PUBLISHes (DUP=1, original packet ids) and of PUBRELs
//     when a session resumes [MQTT-4.4.0-1].
//
// Packet identifiers are derived from a send sequence number (never 0): the delivery
// with sequence number n gets id n % 65535 + 1, and the window never spans more than 65535 sequence numbers,
// so an acknowledgement finds its entry by arithmetic, with no map and no allocation
// per message [MQTT-2.2.1-3: ids in use are unique].
//
// Not thread-safe: owned by one session on one worker.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "broker/session/message.hpp"
#include "broker/session/ring.hpp"

namespace edgemq::session {

// What a full queue does with one more delivery. Either way the drop is counted.
enum class queue_full_policy : std::uint8_t {
    drop_oldest,  // make room by dropping the oldest pending delivery (telemetry keeps the newest)
    drop_newest,  // refuse the new delivery
};

struct queue_limits {
    std::size_t max_messages = 1'000'000;
    std::size_t max_bytes = std::size_t{1} << 30;
    queue_full_policy when_full = queue_full_policy::drop_oldest;
};

struct flow_counters {
    std::uint64_t dropped_queue_full = 0;
    std::uint64_t dropped_expired = 0;
    std::uint64_t dropped_too_large = 0;  // bigger than the client's Maximum Packet Size
};

class outbound_flow {
public:
    static constexpr std::size_t max_window = 65535;

    enum class stage : std::uint8_t { released, awaiting_puback, awaiting_pubrec, awaiting_pubcomp };

    struct inflight_entry {
        delivery d;
        std::uint16_t packet_id = 0;
        stage state = stage::released;
        bool needs_resend = false;  // set by resume(), cleared when resent or completed
    };

    explicit outbound_flow(queue_limits limits = {}) : limits_(limits) {}

    void set_limits(const queue_limits& limits) noexcept { limits_ = limits; }
    const queue_limits& limits() const noexcept { return limits_; }

    // Appends to the pending queue under the limits. Returns false when `d` itself was
    // dropped (drop_newest, or larger than the byte limit on its own).
    bool enqueue(delivery d);

    // Sends what may be sent now, in order: first in-flight entries marked for resending
    // by resume(), then pending deliveries. Stops when `sink.can_send()` is false (the
    // connection's output is backed up) or, for QoS 1/2, when `receive_maximum` PUBLISHes
    // are unacknowledged [MQTT-3.3.4-9]. Expired deliveries are dropped [MQTT-3.3.2-5].
    //
    // Sink: bool can_send(); bool publish(const delivery&, std::uint16_t packet_id, bool dup,
    // std::uint64_t send_seq) (returns false when the packet was discarded as too large
    // for the client, which then counts as delivered [MQTT-3.1.2-25]; send_seq is the
    // sequence number the packet id derives from, 0 for QoS 0);
    // void pubrel(std::uint16_t packet_id); optionally bool may_send(const delivery&,
    // std::uint64_t send_seq), false to hold a first QoS 1/2 send back for now.
    template <class Sink>
    void pump(time_point now, std::uint16_t receive_maximum, Sink& sink);

    // Client acknowledgements. Unknown ids return false / unknown_id and change nothing.
    // `store_row` reports the acknowledged delivery's row in the durable store (0: none).
    bool on_puback(std::uint16_t packet_id, std::uint64_t* store_row = nullptr);
    enum class pubrec_outcome : std::uint8_t { unknown_id, released, send_pubrel };
    // A PUBREC with a failure reason code ends the flow without PUBREL [MQTT-4.3.3-4 v5].
    pubrec_outcome on_pubrec(std::uint16_t packet_id, bool failed, std::uint64_t* store_row = nullptr);
    bool on_pubcomp(std::uint16_t packet_id, std::uint64_t* store_row = nullptr);

    // Store rows of deliveries dropped since the last call (queue full, expired, too
    // large), so the owner can remove them from the durable store.
    std::vector<std::uint64_t> take_dropped_rows() noexcept { return std::exchange(dropped_rows_, {}); }
    bool has_dropped_rows() const noexcept { return !dropped_rows_.empty(); }

    // Rebuilds the state of a session read from the durable store: `sent` deliveries
    // (ordered by send sequence number) go back in flight with their packet ids, to be
    // resent with DUP=1 (or as PUBREL when released) by the next pump(); `queued`
    // deliveries (in queue order) wait behind them. Only on an empty flow.
    struct restored_delivery {
        delivery d;
        std::uint64_t send_seq = 0;
        bool released = false;
    };
    void restore(std::vector<restored_delivery> sent, std::vector<delivery> queued);

    // A new connection took over the session: everything in flight is to be sent again,
    // PUBLISH with DUP=1 or PUBREL, with original packet ids, by the next pump().
    void resume() noexcept;

    // Discards everything (Clean Start, session end).
    void clear() noexcept;

    // Live in-flight entries in send order (for persistence and tests).
    template <class F>
    void for_each_inflight(F&& f) const {
        for (std::size_t i = 0; i < window_.size(); ++i)
            if (window_[i].state != stage::released) f(window_[i]);
    }
    template <class F>
    void for_each_pending(F&& f) const {
        for (std::size_t i = 0; i < pending_.size(); ++i) f(pending_[i]);
    }

    std::size_t inflight() const noexcept { return live_; }
    std::size_t pending() const noexcept { return pending_.size(); }
    std::size_t pending_bytes() const noexcept { return pending_bytes_; }
    bool idle() const noexcept { return live_ == 0 && pending_.empty(); }
    const flow_counters& counters() const noexcept { return counters_; }

private:
    static std::uint16_t id_for(std::uint64_t seq) noexcept {
        return static_cast<std::uint16_t>(seq % max_window + 1);
    }
    inflight_entry* find(std::uint16_t packet_id) noexcept;
    void release(inflight_entry& entry) noexcept;
    delivery pop_pending() noexcept;
    void note_dropped(const delivery& d) {
        if (d.store_row != 0) dropped_rows_.push_back(d.store_row);
    }
    // In flight as the client counts it: sent on this connection and not completed.
    std::size_t outstanding() const noexcept { return live_ - unsent_; }

    ring<delivery> pending_;
    ring<inflight_entry> window_;       // sequence numbers [head_seq_, head_seq_ + size)
    // Never 0: the durable store records "not sent yet" as send sequence 0, and a first
    // delivery stored as unsent would go out again after a crash under a new packet id,
    // a duplicate at QoS 2 [MQTT-4.3.3]. max_window gives packet id 1 all the same.
    std::uint64_t head_seq_ = max_window;
    std::uint64_t resend_from_ = max_window;  // no entry before this sequence number needs resending
    std::size_t live_ = 0;              // entries not released
    std::size_t unsent_ = 0;            // live entries awaiting resend
    std::size_t pending_bytes_ = 0;
    queue_limits limits_;
    flow_counters counters_;
    std::vector<std::uint64_t> dropped_rows_;
};

template <class Sink>
void outbound_flow::pump(time_point now, std::uint16_t receive_maximum, Sink& sink) {
    // Resend what the previous connection left unacknowledged, in the original order.
    if (resend_from_ < head_seq_) resend_from_ = head_seq_;
    while (unsent_ > 0 && resend_from_ < head_seq_ + window_.size()) {
        inflight_entry& entry = window_[resend_from_ - head_seq_];
        if (!entry.needs_resend) {
            ++resend_from_;
            continue;
        }
        if (!sink.can_send() || outstanding() >= receive_maximum) return;
        ++resend_from_;
        entry.needs_resend = false;
        --unsent_;
        if (entry.state == stage::awaiting_pubcomp) {
            sink.pubrel(entry.packet_id);
        } else if (!sink.publish(entry.d, entry.packet_id, true, resend_from_ - 1)) {
            ++counters_.dropped_too_large;
            note_dropped(entry.d);
            release(entry);
        }
    }
    while (!pending_.empty() && sink.can_send()) {
        delivery& next = pending_.front();
        if (next.msg->expired(now)) {
            ++counters_.dropped_expired;
            note_dropped(next);
            pop_pending();
            continue;
        }
        if (next.qos == 0) {
            delivery d = pop_pending();
            if (!sink.publish(d, 0, false, 0)) ++counters_.dropped_too_large;
            continue;
        }
        if (outstanding() >= receive_maximum || window_.size() >= max_window) return;
        const std::uint64_t seq = head_seq_ + window_.size();
        // An optional gate: the sink may hold a first send back (e.g. until its packet id
        // is durable); pumping resumes with the next pump().
        if constexpr (requires { sink.may_send(next, seq); }) {
            if (!sink.may_send(next, seq)) return;
        }
        delivery d = pop_pending();
        const std::uint16_t id = id_for(seq);
        if (!sink.publish(d, id, false, seq)) {
            ++counters_.dropped_too_large;
            note_dropped(d);
            continue;
        }
        stage state = d.qos == 1 ? stage::awaiting_puback : stage::awaiting_pubrec;
        window_.push_back(inflight_entry{std::move(d), id, state});
        ++live_;
    }
}

}  // namespace edgemq::session
