#include "support/qos_peers.hpp"

#include <algorithm>
#include <cerrno>
#include <poll.h>
#include <stdexcept>

namespace edgemq::test {

using namespace std::chrono_literals;

// ---- qos_peer ----

qos_peer::qos_peer(std::string client_id, std::uint8_t version) : id_(std::move(client_id)), version_(version) {}

qos_peer::~qos_peer() = default;

wire::connack_view qos_peer::connect(const std::string& host, std::uint16_t port, bool clean,
                                     std::uint32_t session_expiry) {
    drop();
    conn_ = std::make_unique<raw_client>(host, port);
    wire::connect_spec spec;
    spec.version = version_;
    spec.client_id = id_;
    spec.clean = clean;
    if (version_ == wire::v5 && session_expiry != 0) spec.properties.u32(wire::prop::session_expiry, session_expiry);
    auto ack = conn_->connect(spec);
    if (ack.reason != 0)
        throw std::runtime_error("qos_peer: CONNECT of '" + id_ + "' refused with code " + std::to_string(ack.reason));
    server_receive_maximum_ = 65535;
    if (const auto* rm = wire::find(ack.properties, wire::prop::receive_maximum))
        server_receive_maximum_ = static_cast<std::uint16_t>(rm->value);
    ++connects_;
    if (!clean && !ack.session_present && connects_ > 1) ++sessions_lost_;
    on_connected(ack.session_present);
    if (!out_.empty() && !conn_->try_send(out_)) conn_->close();
    out_.clear();
    return ack;
}

void qos_peer::drop() {
    conn_.reset();
    out_.clear();
}

void qos_peer::disconnect() {
    if (!connected()) return;
    conn_->try_send(wire::disconnect(version_));
    conn_->expect_closed(1000ms);
    drop();
}

bool qos_peer::poll_once(const std::function<bool()>& stop) {
    if (!connected()) return false;
    for (;;) {
        auto r = conn_->read_unscaled(0ms);
        if (r.what == raw_client::status::closed) {
            drop();
            return false;
        }
        if (r.what == raw_client::status::timeout) break;
        if (r.pkt.type() == wire::DISCONNECT) {  // v5: the broker ends the connection
            last_disconnect_reason_ = r.pkt.body.empty() ? 0 : r.pkt.body[0];
            drop();
            return false;
        }
        on_packet(r.pkt);
        if (stop && stop()) {
            out_.clear();  // the "crash" comes before these acknowledgements are written
            return true;
        }
    }
    on_idle();
    if (!out_.empty()) {
        bool ok = conn_->try_send(out_);
        out_.clear();
        if (!ok) {
            drop();
            return false;
        }
    }
    return true;
}

// ---- qos_publisher ----

qos_publisher::qos_publisher(std::string client_id, std::uint8_t version, std::string topic, std::uint8_t qos,
                             std::uint16_t window, std::size_t payload_size)
    : qos_peer(std::move(client_id), version),
      topic_(std::move(topic)),
      qos_(qos),
      window_(window),
      payload_size_(payload_size) {
    if (qos_ < 1 || qos_ > 2) throw std::invalid_argument("qos_publisher: QoS 1 or 2");
    for (std::uint16_t id = window_; id >= 1; --id) free_ids_.push_back(id);
}

std::string qos_publisher::describe_inflight() const {
    std::string out;
    for (const auto& [id, f] : inflight_)
        out += std::to_string(id) + ":" + std::to_string(f.seq) + (f.pubrec ? "r " : " ");
    return out;
}

std::string qos_publisher::payload_of(std::uint64_t seq) const {
    std::string p = id() + ":" + std::to_string(seq);
    if (payload_size_ > p.size()) {
        p += ':';
        p.resize(payload_size_, '.');
    }
    return p;
}

wire::bytes qos_publisher::publish_bytes(std::uint64_t seq, std::uint16_t packet_id, bool dup) const {
    wire::publish_spec p;
    p.version = version();
    p.topic = topic_;
    p.payload = payload_of(seq);
    p.qos = qos_;
    p.dup = dup;
    p.packet_id = packet_id;
    return wire::publish(p);
}

void qos_publisher::on_connected(bool) {
    // Resend in the order the messages were first sent [MQTT-4.4.0-1]. Also without a
    // session (sessions_lost() tells the test): the messages are then simply new.
    std::vector<std::pair<std::uint16_t, flight>> flows(inflight_.begin(), inflight_.end());
    std::sort(flows.begin(), flows.end(), [](const auto& a, const auto& b) { return a.second.seq < b.second.seq; });
    for (const auto& [packet_id, f] : flows) {
        if (f.pubrec) {
            queue(wire::ack(wire::PUBREL, packet_id, version()));
            ++resent_pubrels_;
        } else {
            queue(publish_bytes(f.seq, packet_id, true));
            ++resent_publishes_;
        }
    }
}

void qos_publisher::settle(std::uint64_t seq, std::uint8_t reason) {
    if (status_[seq] != 0) return;  // already settled (a late duplicate acknowledgement)
    if (reason < 0x80) {
        status_[seq] = 1;
        ++accepted_;
    } else {
        status_[seq] = 2;
        ++rejected_;
        last_reject_code_ = reason;
    }
}

void qos_publisher::on_packet(const wire::packet& p) {
    auto ack = wire::parse_ack(p, version());
    auto it = inflight_.find(ack.packet_id);
    switch (p.type()) {
    case wire::PUBACK:
        ++pubacks_;
        if (qos_ != 1 || it == inflight_.end())
            throw std::runtime_error("qos_publisher " + id() + ": unexpected " + p.describe());
        settle(it->second.seq, ack.reason);
        ++completed_;
        free_ids_.push_back(ack.packet_id);
        inflight_.erase(it);
        break;
    case wire::PUBREC:
        ++pubrecs_;
        if (qos_ != 2 || it == inflight_.end())
            throw std::runtime_error("qos_publisher " + id() + ": unexpected " + p.describe());
        settle(it->second.seq, ack.reason);
        if (ack.reason >= 0x80) {  // v5: the flow ends here, no PUBREL [MQTT-4.3.3-4]
            ++completed_;
            free_ids_.push_back(ack.packet_id);
            inflight_.erase(it);
        } else {
            it->second.pubrec = true;
            queue(wire::ack(wire::PUBREL, ack.packet_id, version()));
        }
        break;
    case wire::PUBCOMP:
        ++pubcomps_;
        // A PUBCOMP for an id we no longer track: the answer to a PUBREL we resent after
        // the broker had already completed the flow. Harmless.
        if (it == inflight_.end() || !it->second.pubrec) break;
        ++completed_;
        free_ids_.push_back(ack.packet_id);
        inflight_.erase(it);
        break;
    default:
        throw std::runtime_error("qos_publisher " + id() + ": unexpected " + p.describe());
    }
}

void qos_publisher::on_idle() {
    const std::size_t window = std::min<std::size_t>(window_, server_receive_maximum());
    while (!paused_ && next_seq_ < limit_ && inflight_.size() < window && !free_ids_.empty()) {
        const std::uint16_t packet_id = free_ids_.back();
        free_ids_.pop_back();
        const std::uint64_t seq = next_seq_++;
        inflight_[packet_id] = flight{seq, false};
        status_.push_back(0);
        queue(publish_bytes(seq, packet_id, false));
    }
}

// ---- qos_subscriber ----

qos_subscriber::qos_subscriber(std::string client_id, std::uint8_t version, std::string filter, std::uint8_t qos)
    : qos_peer(std::move(client_id), version), filter_(std::move(filter)), qos_(qos) {}

void qos_subscriber::subscribe() {
    auto granted = conn().subscribe(filter_, wire::sub_options(qos_), 1);
    if (granted != wire::bytes{qos_})
        throw std::runtime_error("qos_subscriber " + id() + ": SUBSCRIBE " + filter_ + " not granted at QoS " +
                                 std::to_string(qos_));
}

void qos_subscriber::on_connected(bool session_present) {
    // No session: the broker forgot the flows, so must we [MQTT-4.1.0-1] (the test sees
    // it in sessions_lost()).
    if (!session_present) remembered_.clear();
}

std::vector<std::uint16_t> qos_subscriber::remembered_ids() const {
    std::vector<std::uint16_t> ids;
    for (const auto& [id, payload] : remembered_) ids.push_back(id);
    return ids;
}

std::uint32_t qos_subscriber::count(const std::string& publisher, std::uint64_t seq) const {
    auto it = got_.find(publisher);
    if (it == got_.end() || seq >= it->second.counts.size()) return 0;
    return it->second.counts[seq];
}

std::uint64_t qos_subscriber::distinct(const std::string& publisher) const {
    auto it = got_.find(publisher);
    return it == got_.end() ? 0 : it->second.distinct;
}

std::uint64_t qos_subscriber::horizon(const std::string& publisher) const {
    auto it = got_.find(publisher);
    return it == got_.end() ? 0 : it->second.highest_plus_one;
}

std::vector<std::uint64_t> qos_subscriber::missing(const std::string& publisher, std::uint64_t n) const {
    std::vector<std::uint64_t> out;
    for (std::uint64_t seq = 0; seq < n; ++seq)
        if (count(publisher, seq) == 0) out.push_back(seq);
    return out;
}

void qos_subscriber::deliver(const std::string& payload) {
    ++deliveries_;
    // "<publisher>:<seq>[:padding]"
    const auto first = payload.find(':');
    if (first == std::string::npos) {
        if (foreign_++ == 0) first_foreign_ = payload;
        return;
    }
    const auto second = payload.find(':', first + 1);
    const std::string publisher = payload.substr(0, first);
    const std::string digits = payload.substr(first + 1, second == std::string::npos ? std::string::npos
                                                                                     : second - first - 1);
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) {
        if (foreign_++ == 0) first_foreign_ = payload;
        return;
    }
    const std::uint64_t seq = std::stoull(digits);
    auto& per = got_[publisher];
    if (per.counts.size() <= seq) per.counts.resize(seq + 1, 0);
    if (per.counts[seq]++ > 0) {
        ++duplicates_;
        return;
    }
    ++per.distinct;
    if (seq + 1 < per.highest_plus_one) ++out_of_order_;
    per.highest_plus_one = std::max(per.highest_plus_one, seq + 1);
}

void qos_subscriber::on_packet(const wire::packet& p) {
    if (p.type() == wire::PUBLISH) {
        ++publishes_;
        auto pub = wire::parse_publish(p, version());
        if (pub.qos > qos_)
            throw std::runtime_error("qos_subscriber " + id() + ": delivery above the granted QoS: " + p.describe());
        if (pub.qos == 0) {
            deliver(pub.payload);
        } else if (pub.qos == 1) {
            deliver(pub.payload);
            queue(wire::ack(wire::PUBACK, pub.packet_id, version()));
        } else {
            auto it = remembered_.find(pub.packet_id);
            if (it == remembered_.end()) {
                deliver(pub.payload);  // first receipt: to the application, then PUBREC
                remembered_.emplace(pub.packet_id, pub.payload);
            } else {
                ++resends_;  // same flow again (after a reconnect): acknowledge only
                if (it->second != pub.payload) ++id_conflicts_;
            }
            queue(wire::ack(wire::PUBREC, pub.packet_id, version()));
        }
        return;
    }
    if (p.type() == wire::PUBREL) {
        ++pubrels_;
        auto ack = wire::parse_ack(p, version());
        if (remembered_.erase(ack.packet_id) == 0) ++unknown_pubrels_;
        queue(wire::ack(wire::PUBCOMP, ack.packet_id, version()));
        return;
    }
    if (p.type() == wire::PINGRESP) return;
    throw std::runtime_error("qos_subscriber " + id() + ": unexpected " + p.describe());
}

// ---- pump ----

pump_result pump(const std::vector<qos_peer*>& peers, std::chrono::milliseconds timeout,
                 const std::function<bool()>& stop) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::vector<pollfd> fds;
    for (;;) {
        for (auto* p : peers) {
            if (p->native_handle() < 0) continue;
            if (!p->poll_once(stop)) return pump_result::connection_lost;
            if (stop && stop()) return pump_result::stopped;
        }
        if (stop && stop()) return pump_result::stopped;
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline) return pump_result::timed_out;
        fds.clear();
        for (auto* p : peers)
            if (p->native_handle() >= 0) fds.push_back(pollfd{p->native_handle(), POLLIN, 0});
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
        const int wait_ms = static_cast<int>(std::min<long long>(left, 5));
        if (fds.empty()) return pump_result::connection_lost;
        if (::poll(fds.data(), fds.size(), wait_ms) < 0 && errno != EINTR)
            throw std::runtime_error("pump: poll failed");
    }
}

}  // namespace edgemq::test
