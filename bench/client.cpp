#include "client.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cstdio>
#include <cstring>

namespace edgemq::bench {

namespace {

std::string hex_code(std::uint8_t code) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "0x%02x", code);
    return buf;
}

bool in_window(std::uint64_t t, std::uint64_t begin, std::uint64_t end) noexcept {
    return t >= begin && t < end;
}

}  // namespace

// ---- run_control --------------------------------------------------------------------

run_control::run_control(const options& o, std::uint32_t id)
    : opt(o),
      run_id(id),
      published(std::make_unique<padded_counter[]>(o.publishers)),
      received(std::make_unique<padded_counter[]>(o.subscribers)) {
    if (o.qos0_window > 0 && o.qos == 0) {
        const std::size_t n = std::size_t{o.publishers} * o.subscribers;
        progress = std::make_unique<std::atomic<std::uint64_t>[]>(n);
        for (std::size_t i = 0; i < n; ++i) progress[i].store(0, std::memory_order_relaxed);
    }
    shared_subscription = o.sub_filter.starts_with("$share/");
}

void run_control::report_error(std::string what) {
    {
        std::lock_guard lock(error_mutex_);
        if (first_error_.empty()) first_error_ = std::move(what);
    }
    errors.fetch_add(1, std::memory_order_release);
}

std::string run_control::first_error() const {
    std::lock_guard lock(error_mutex_);
    return first_error_;
}

// ---- connection ---------------------------------------------------------------------

connection::connection(worker& w, std::string client_id, std::size_t read_buffer_size)
    : worker_(w),
      ctl_(w.ctl),
      opt_(w.opt),
      client_id_(std::move(client_id)),
      version_(w.opt.mqtt_version),
      transport_(make_transport(w.io(), w.setup, *this)),
      read_buffer_(read_buffer_size),
      keep_alive_s_(w.opt.keep_alive_s) {}

void connection::start() {
    state_ = state::connecting;
    transport_->async_connect(worker_.endpoint, [this](std::string error) {
        if (state_ == state::closed) return;
        if (!error.empty()) {
            fail("cannot connect to " + worker_.endpoint.address().to_string() + ":" +
                 std::to_string(worker_.endpoint.port()) + " (" + std::string(to_string(worker_.setup.kind)) + "): " + error);
            return;
        }
        wire::connect_options co;
        co.version = version_;
        co.client_id = client_id_;
        co.clean_start = opt_.clean;
        co.keep_alive_s = opt_.keep_alive_s;
        co.session_expiry_s = opt_.clean ? 0 : opt_.session_expiry_s;
        wire::encode_connect(pending_, co);
        waiting_for_ = "CONNACK";
        flush();
        do_read();
    });
}

void connection::do_read() {
    transport_->read_some(asio::buffer(read_buffer_.data() + read_end_, read_buffer_.size() - read_end_));
}

void connection::on_transport_read(const boost::system::error_code& ec, std::size_t n) {
    if (state_ == state::closed) return;
    if (ec) {
        if (state_ == state::closing) finish_close();  // the broker's close after our DISCONNECT
        else if (ec == asio::error::eof)
            fail(waiting_for_.empty() ? std::string("the broker closed the connection")
                                      : "the broker closed the connection while we waited for " + std::string(waiting_for_));
        else fail("read", ec);
        return;
    }
    if (state_ == state::closing) {
        // After our DISCONNECT nothing the broker sends matters; drain until its close.
        read_end_ = 0;
        do_read();
        return;
    }
    read_end_ += n;
    read_time_ns_ = now_ns();
    on_read_batch_begin();

    // Decode every whole packet in the buffer before going back to the loop, so a burst
    // costs one read and its answers one write.
    std::size_t pos = 0;
    std::size_t needed = 0;
    for (;;) {
        wire::frame f;
        const auto st = wire::next_frame({read_buffer_.data() + pos, read_end_ - pos}, f, needed);
        if (st == wire::frame_status::need_more) break;
        if (st == wire::frame_status::malformed) {
            fail("malformed remaining length from the broker");
            return;
        }
        pos += f.size;
        const auto type = f.type();
        if (state_ == state::connecting) {
            wire::connack_info info;
            if (type != wire::packet_type::connack) {
                fail("expected CONNACK, got packet type " + std::to_string(static_cast<int>(type)));
                return;
            }
            if (!wire::decode_connack(f.body, version_, info)) {
                fail("malformed CONNACK");
                return;
            }
            if (!wire::connack_accepted(info)) {
                fail("the broker refused CONNECT with code " + hex_code(info.code));
                return;
            }
            // [MQTT-3.2.2-21]: the Server Keep Alive replaces ours.
            if (info.has_server_keep_alive) keep_alive_s_ = info.server_keep_alive;
            state_ = state::connected;
            waiting_for_ = {};
            on_connack(info);
        } else if (type == wire::packet_type::pingresp) {
            // Nothing to do: the ping only keeps the broker from timing us out.
        } else if (type == wire::packet_type::disconnect) {
            fail("the broker sent DISCONNECT with reason " + hex_code(wire::decode_disconnect_reason(f.body)));
            return;
        } else {
            on_packet(f);
        }
        if (state_ != state::connected) return;  // a handler failed the connection
    }
    if (pos > 0) {
        std::memmove(read_buffer_.data(), read_buffer_.data() + pos, read_end_ - pos);
        read_end_ -= pos;
    }
    if (needed > read_buffer_.size()) read_buffer_.resize(needed);  // one packet larger than the buffer
    on_read_batch_end();
    flush();
    do_read();
}

void connection::flush() {
    if (write_in_flight_ || pending_.empty() || state_ == state::closed) return;
    // Swap instead of copy: the vector being written stays untouched until completion
    // while new packets accumulate in the other; both keep their capacity.
    std::swap(writing_, pending_);
    write_in_flight_ = true;
    last_sent_ns_ = now_ns();
    transport_->write(asio::buffer(writing_));
}

void connection::on_transport_written(const boost::system::error_code& ec) {
    write_in_flight_ = false;
    writing_.clear();
    if (state_ == state::closed) return;
    if (ec) {
        if (state_ == state::closing) finish_close();
        else fail("write", ec);
        return;
    }
    if (state_ == state::closing) {
        if (!pending_.empty()) {
            flush();
        } else {
            // DISCONNECT is out: half-close (or WebSocket close) and let the read loop
            // see the broker's close, so no data is reset away.
            transport_->shutdown_send();
        }
        return;
    }
    on_write_done();
    flush();
}

void connection::disconnect() {
    switch (state_) {
    case state::idle:
    case state::connecting:
        on_closing();
        finish_close();
        break;
    case state::connected:
        state_ = state::closing;
        on_closing();
        wire::encode_disconnect(pending_, version_ == wire::v5 && !opt_.clean);
        flush();
        break;
    case state::closing:
    case state::closed:
        break;
    }
}

void connection::maybe_ping(std::uint64_t now) {
    if (state_ != state::connected || keep_alive_s_ == 0) return;
    // Any packet we send resets the broker's keep-alive timer [MQTT-3.1.2-23], so a
    // busy connection never pings; an idle one pings at half the interval.
    if (now - last_sent_ns_ < std::uint64_t{keep_alive_s_} * 500'000'000ull) return;
    wire::encode_pingreq(pending_);
    flush();
}

void connection::fail(std::string_view what) {
    if (state_ == state::closed) return;
    if (state_ != state::closing) ctl_.report_error(client_id_ + ": " + std::string(what));
    on_closing();
    finish_close();
}

void connection::fail(std::string_view what, const boost::system::error_code& ec) {
    fail(std::string(what) + ": " + ec.message());
}

void connection::finish_close() {
    transport_->close();
    state_ = state::closed;
    if (!counted_closed_) {
        counted_closed_ = true;
        ctl_.closed.fetch_add(1, std::memory_order_release);
    }
}

// ---- publisher ----------------------------------------------------------------------

publisher::publisher(worker& w, std::uint32_t index, std::string topic)
    : connection(w, "bench-" + std::to_string(w.ctl.run_id) + "-p" + std::to_string(index), 16 * 1024),
      index_(index),
      topic_(std::move(topic)),
      template_(wire::make_publish_template(w.opt.mqtt_version, topic_, w.opt.qos, w.opt.payload)),
      batch_messages_(std::max<std::size_t>(1, w.opt.batch_bytes / template_.bytes_.size())),
      timer_(w.io()) {}

void publisher::on_connack(const wire::connack_info& info) {
    if (info.maximum_packet_size != 0 && template_.bytes_.size() > info.maximum_packet_size) {
        fail("a PUBLISH of " + std::to_string(template_.bytes_.size()) +
             " bytes exceeds the broker's Maximum Packet Size " + std::to_string(info.maximum_packet_size));
        return;
    }
    if (opt_.qos > 0) {
        // [MQTT-4.9.0-2]: never more unacked QoS>0 PUBLISHes than the Receive Maximum.
        inflight_limit_ = std::min<unsigned>(opt_.inflight, std::max<unsigned>(1, info.receive_maximum));
        id_state_.assign(inflight_limit_ + 1, 0);
        free_ids_.clear();
        for (unsigned id = inflight_limit_; id >= 1; --id) free_ids_.push_back(static_cast<std::uint16_t>(id));
    }
    ctl_.publishers_ready.fetch_add(1, std::memory_order_release);
}

void publisher::start_publishing() {
    if (state_ != state::connected) return;
    publishing_ = true;
    rate_start_ns_ = now_ns();
    window_changed_ns_ = rate_start_ns_;
    pump();
}

void publisher::stop_publishing() {
    publishing_ = false;
    stopping_ = true;
    timer_.cancel();
    if (state_ != state::connected) {
        // A failed connection has nothing more to finish; still count it so main's
        // wait ends and the loss figures use what it did send.
        if (!done_) {
            done_ = true;
            ctl_.published[index_].value.store(accepted(), std::memory_order_release);
            ctl_.publishers_done.fetch_add(1, std::memory_order_release);
        }
        return;
    }
    check_done();
}

void publisher::check_done() {
    if (!stopping_ || done_) return;
    if (inflight_ != 0 || write_in_flight_ || !pending_.empty()) return;
    done_ = true;
    ctl_.published[index_].value.store(accepted(), std::memory_order_release);
    ctl_.publishers_done.fetch_add(1, std::memory_order_release);
}

void publisher::pump() {
    if (!publishing_ || state_ != state::connected) return;
    std::uint64_t n = batch_messages_;
    if (opt_.qos == 0) {
        // Default QoS 0 mode: exactly one write in flight; the next batch is encoded
        // when it completes, i.e. as fast as the socket (TCP back-pressure) accepts.
        if (write_in_flight_) return;
    } else {
        n = std::min<std::uint64_t>(n, free_ids_.size());
        if (n == 0) return;  // the next ack pumps again
    }
    const std::uint64_t now = now_ns();
    if (opt_.rate > 0) {
        // Publisher i is offset by i/N of a period so that N publishers started together
        // do not send in lockstep bursts.
        const double phase = static_cast<double>(index_) / opt_.publishers;
        const double elapsed_s = static_cast<double>(now - rate_start_ns_) * 1e-9;
        const auto target = static_cast<std::uint64_t>(elapsed_s * opt_.rate + phase);
        const std::uint64_t due = target > seq_ ? target - seq_ : 0;
        if (due < n) {
            n = due;
            // Wake when the next message is due, but no more often than every 1 ms so
            // a high rate sends small bursts instead of costing a timer per message.
            const auto next_due = rate_start_ns_ + static_cast<std::uint64_t>(
                (static_cast<double>(seq_ + n + 1) - phase) * 1e9 / opt_.rate);
            arm_timer(std::max(next_due, now + 1'000'000));
        }
    }
    if (opt_.qos0_window > 0 && opt_.qos == 0 && n > 0) {
        const std::uint64_t allowed = allowed_by_window(now);
        if (allowed < n) {
            n = allowed;
            if (n == 0) arm_timer(now + 100'000);  // poll the subscribers' progress
        }
    }
    if (n == 0) return;
    encode(n, now);
    flush();
}

std::uint64_t publisher::allowed_by_window(std::uint64_t now) {
    const unsigned subs = opt_.subscribers;
    if (subs == 0) return UINT64_MAX;
    // Normal subscriptions: every subscriber gets every message, so the slowest one
    // bounds the window. A shared group splits them, so the furthest one does.
    std::uint64_t reached = ctl_.shared_subscription ? 0 : UINT64_MAX;
    for (unsigned s = 0; s < subs; ++s) {
        const std::uint64_t p = ctl_.progress[std::size_t{s} * opt_.publishers + index_].load(std::memory_order_relaxed);
        reached = ctl_.shared_subscription ? std::max(reached, p) : std::min(reached, p);
    }
    if (reached > window_base_) {
        window_base_ = reached;
        window_changed_ns_ = now;
    }
    const std::uint64_t outstanding = seq_ - std::min(seq_, window_base_);
    if (outstanding < opt_.qos0_window) return opt_.qos0_window - outstanding;
    // A QoS 0 message lost at the tail would block the window for ever: after 1 s with
    // no progress, count a stall and carry on as if the subscribers had caught up.
    if (now - window_changed_ns_ > 1'000'000'000ull) {
        ++worker_.stats.window_stalls;
        window_base_ = seq_;
        window_changed_ns_ = now;
        return opt_.qos0_window;
    }
    return 0;
}

void publisher::encode(std::uint64_t n, std::uint64_t now) {
    const auto& tpl = template_.bytes_;
    const std::size_t size = tpl.size();
    const std::size_t base = pending_.size();
    pending_.resize(base + n * size);
    std::uint8_t* p = pending_.data() + base;
    payload_stamp stamp{ctl_.run_id, index_, 0, now};
    for (std::uint64_t i = 0; i < n; ++i, p += size) {
        std::memcpy(p, tpl.data(), size);
        if (opt_.qos > 0) {
            const std::uint16_t id = free_ids_.back();
            free_ids_.pop_back();
            id_state_[id] = 1;
            ++inflight_;
            p[template_.packet_id_offset] = static_cast<std::uint8_t>(id >> 8);
            p[template_.packet_id_offset + 1] = static_cast<std::uint8_t>(id);
        }
        stamp.seq = seq_++;
        std::memcpy(p + template_.payload_offset, &stamp, sizeof stamp);
    }
    auto& st = worker_.stats;
    st.published_total += n;
    if (in_window(now, ctl_.measure_begin_ns.load(std::memory_order_relaxed),
                  ctl_.measure_end_ns.load(std::memory_order_relaxed)))
        st.published_window += n;
}

void publisher::arm_timer(std::uint64_t at_ns) {
    if (timer_armed_) return;
    timer_armed_ = true;
    const auto now = now_ns();
    timer_.expires_after(std::chrono::nanoseconds(at_ns > now ? at_ns - now : 0));
    timer_.async_wait([this](const boost::system::error_code& ec) {
        timer_armed_ = false;
        if (ec || state_ != state::connected) return;
        pump();
    });
}

void publisher::on_write_done() {
    // QoS 0: the socket took the last batch, send the next. QoS 1/2: a batch may have
    // stopped at --batch-bytes with packet ids still free.
    pump();
    check_done();
}

void publisher::on_packet(const wire::frame& f) {
    switch (f.type()) {
    case wire::packet_type::puback:
    case wire::packet_type::pubrec:
    case wire::packet_type::pubcomp:
        on_ack(f.type(), f);
        break;
    case wire::packet_type::publish:
        // Publishers subscribe to nothing; a stray message (e.g. a resumed session) is
        // not ours to count. Its QoS would need an ack, which the fresh client ids we
        // use make moot.
        ++worker_.stats.foreign;
        break;
    default:
        fail("unexpected packet type " + std::to_string(static_cast<int>(f.type())) + " for a publisher");
    }
}

void publisher::on_ack(wire::packet_type type, const wire::frame& f) {
    wire::ack_info ack;
    if (!wire::decode_ack(f.body, version_, ack)) {
        fail("malformed acknowledgement");
        return;
    }
    const std::uint16_t id = ack.packet_id;
    const bool known = id >= 1 && id <= inflight_limit_;
    const std::uint8_t expected_state = type == wire::packet_type::pubcomp ? 2 : 1;
    const bool right_qos = type == wire::packet_type::puback ? opt_.qos == 1 : opt_.qos == 2;
    if (!known || !right_qos || id_state_[id] != expected_state) {
        fail("unexpected acknowledgement (type " + std::to_string(static_cast<int>(type)) +
             ") for packet id " + std::to_string(id));
        return;
    }
    auto& st = worker_.stats;
    bool flow_done = false;
    if (type == wire::packet_type::pubrec && ack.reason < 0x80) {
        id_state_[id] = 2;
        wire::encode_ack(pending_, wire::packet_type::pubrel, id);
    } else {
        // PUBACK, PUBCOMP, or a PUBREC refusing the message: the flow ends here.
        flow_done = true;
    }
    if (!flow_done) return;
    id_state_[id] = 0;
    free_ids_.push_back(id);
    --inflight_;
    if (ack.reason >= 0x80) {
        // Refused (v5: quota exceeded, not authorized, ...): not owed to anyone.
        ++rejected_;
        ++st.rejected;
        return;
    }
    ++st.acked_total;
    if (in_window(read_time_ns_, ctl_.measure_begin_ns.load(std::memory_order_relaxed),
                  ctl_.measure_end_ns.load(std::memory_order_relaxed)))
        ++st.acked_window;
}

void publisher::on_read_batch_end() {
    pump();
    check_done();
}

// ---- subscriber ---------------------------------------------------------------------

subscriber::subscriber(worker& w, std::uint32_t index, std::size_t publisher_count)
    : connection(w, "bench-" + std::to_string(w.ctl.run_id) + "-s" + std::to_string(index), 256 * 1024),
      index_(index),
      trackers_(publisher_count) {}

void subscriber::on_connack(const wire::connack_info&) {
    wire::encode_subscribe(pending_, version_, 1, opt_.sub_filter, opt_.qos);
    waiting_for_ = "SUBACK";
}

void subscriber::on_read_batch_begin() {
    measure_begin_ = ctl_.measure_begin_ns.load(std::memory_order_relaxed);
    measure_end_ = ctl_.measure_end_ns.load(std::memory_order_relaxed);
}

void subscriber::on_packet(const wire::frame& f) {
    switch (f.type()) {
    case wire::packet_type::publish:
        on_publish(f);
        break;
    case wire::packet_type::pubrel: {
        wire::ack_info ack;
        if (!wire::decode_ack(f.body, version_, ack) || ack.packet_id == 0) {
            fail("malformed PUBREL");
            return;
        }
        // Answer even an unknown id: the flow must end on both sides [MQTT-4.3.3-11].
        if (!awaiting_pubrel_.empty()) awaiting_pubrel_[ack.packet_id] = 0;
        wire::encode_ack(pending_, wire::packet_type::pubcomp, ack.packet_id);
        break;
    }
    case wire::packet_type::suback: {
        std::uint16_t id = 0;
        std::uint8_t code = 0;
        if (!wire::decode_suback(f.body, version_, id, code) || id != 1) {
            fail("malformed SUBACK");
            return;
        }
        if (!wire::suback_granted(code)) {
            fail("the broker refused the subscription to '" + opt_.sub_filter + "' with code " + hex_code(code));
            return;
        }
        if (!subscribed_) {
            subscribed_ = true;
            waiting_for_ = {};
            ctl_.subscribers_ready.fetch_add(1, std::memory_order_release);
        }
        break;
    }
    default:
        fail("unexpected packet type " + std::to_string(static_cast<int>(f.type())) + " for a subscriber");
    }
}

void subscriber::on_publish(const wire::frame& f) {
    wire::publish_info pub;
    if (!wire::decode_publish(f.first, f.body, version_, pub)) {
        fail("malformed PUBLISH");
        return;
    }
    // Acknowledge first: every QoS 1/2 delivery is answered whether or not it is ours.
    if (pub.qos == 1) {
        wire::encode_ack(pending_, wire::packet_type::puback, pub.packet_id);
    } else if (pub.qos == 2) {
        if (awaiting_pubrel_.empty()) awaiting_pubrel_.assign(65536, 0);
        awaiting_pubrel_[pub.packet_id] = 1;
        wire::encode_ack(pending_, wire::packet_type::pubrec, pub.packet_id);
    }
    auto& st = worker_.stats;
    payload_stamp stamp;
    if (pub.payload.size() < sizeof stamp) {
        ++st.foreign;
        return;
    }
    std::memcpy(&stamp, pub.payload.data(), sizeof stamp);
    if (stamp.run_id != ctl_.run_id || stamp.publisher >= trackers_.size()) {
        ++st.foreign;
        return;
    }
    ++st.delivered_total;
    auto& tracker = trackers_[stamp.publisher];
    if (!tracker.on_seq(stamp.seq)) return;  // a duplicate: counted by the tracker only
    ++distinct_;
    if (in_window(read_time_ns_, measure_begin_, measure_end_)) {
        ++st.delivered_window;
        st.latency.record(read_time_ns_ > stamp.sent_ns ? read_time_ns_ - stamp.sent_ns : 0);
    }
    if (ctl_.progress)
        ctl_.progress[std::size_t{index_} * opt_.publishers + stamp.publisher].store(tracker.next(), std::memory_order_relaxed);
}

void subscriber::on_read_batch_end() {
    ctl_.received[index_].value.store(distinct_, std::memory_order_relaxed);
}

// ---- worker -------------------------------------------------------------------------

worker::worker(const options& o, run_control& c, tcp::endpoint ep, const transport_setup& s)
    : opt(o), ctl(c), endpoint(std::move(ep)), setup(s), guard_(asio::make_work_guard(io_)), tick_timer_(io_) {}

worker::~worker() {
    join();
    // Clients hold sockets of io_: they must go before it does.
    publishers.clear();
    subscribers.clear();
}

void worker::run() {
    thread_ = std::thread([this] {
        tick();
        io_.run();
    });
}

void worker::tick() {
    tick_timer_.expires_after(std::chrono::seconds(1));
    tick_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec) return;
        const auto now = now_ns();
        for (auto& p : publishers) p->maybe_ping(now);
        for (auto& s : subscribers) s->maybe_ping(now);
        tick();
    });
}

void worker::stop() {
    guard_.reset();
    io_.stop();
}

void worker::join() {
    if (thread_.joinable()) thread_.join();
}

}  // namespace edgemq::bench
