// libFuzzer target for a whole client session against the real broker core
// (edgemq_core: broker, worker_core, client_connection), in-process: no sockets, no
// threads, queued posts and a fake clock.
//
// Input layout
//   byte 0    bits 0-2: starting state (value % 5)
//               0  raw bytes from the start (the input must CONNECT itself)
//               1  after a valid 3.1.1 CONNECT (with a Will)
//               2  after a valid v5 CONNECT (Will with delay, topic aliases, limits)
//               3  as 2, plus SUBSCRIBE '#', plus a second, scripted v5 subscriber
//                  client on the other worker, so publishes are routed and delivered
//               4  as 3 with a 3.1.1 CONNECT
//             bit 3: tight limits (max packet 256, receive maximum 2, 2 topic aliases,
//                    max keep alive 5 s, max session expiry 30 s, 4 KiB output buffer;
//                    the subscriber accepts 64-byte packets and 2 aliases)
//             bit 4: small queues (3 messages / 200 bytes)
//             bit 5: with bit 4, drop_newest; and QoS 0 not queued for offline sessions
//             bit 6: retain not available, maximum QoS 1
//             bit 7: one worker instead of two (no migration, no cross-worker batches)
//   then commands, each one byte:
//     0x00..0xEF  the next (byte + 1) input bytes arrive on the socket (on_input)
//     0xF0..0xF7  the clock advances (byte - 0xEF) x 250 ms; every timer ticks
//     0xF8        the clock advances 61 s (keep alive), 0xF9: 3601 s (expiry)
//     0xFA        the fuzzed client's socket stops / starts taking output
//     0xFB        the subscriber acknowledges everything it holds
//     0xFC        the subscriber's socket dies; it reconnects resuming its session
//     0xFD        the fuzzed socket dies; a new raw connection (other worker) takes
//                 the rest of the input, e.g. to resume or take over the session
//     0xFE, 0xFF  ignored
//   At the end every socket is dropped and the clock runs an hour on (wills, expiry).
//
// Invariants (any violation aborts, which libFuzzer reports with the input):
//   - no crash and no sanitizer report (ASan, UBSan, leaks);
//   - every byte the broker writes to a connection parses as a sequence of whole
//     packets with our codec (protocol::parse_fixed_header + decode, in the
//     connection's protocol version), of types a server may send, CONNACK first
//     and only once [MQTT-3.2.0-1];
//   - after a failure CONNACK or a DISCONNECT nothing more is written, and the broker
//     has closed the connection [MQTT-3.2.2-5] [MQTT-4.13.1-1];
//   - after close() the broker writes nothing more; migrate() happens before anything
//     is written;
//   - v5: no packet larger than the client's Maximum Packet Size [MQTT-3.1.2-24], no
//     Topic Alias above the client's Topic Alias Maximum or used before it is defined
//     [MQTT-3.3.2-9..12];
//   - the scripted subscriber: at most Receive Maximum unacknowledged QoS 1/2
//     PUBLISHes [MQTT-3.3.4-9], a new PUBLISH never reuses a packet id in use
//     [MQTT-2.2.1-3], DUP only on a resend of an id in flight [MQTT-3.3.1-1], PUBREL
//     only for an id it sent PUBREC for.
//
// The core logs at trace level so that log formatting runs too; the CTest entry
// passes -close_fd_mask=2 (libFuzzer still prints its own and the sanitizers'
// reports). EDGEMQ_FUZZ_LOG=error (or warn, info, debug) quiets it when run by hand.
// EDGEMQ_FUZZ_STATS=1 prints the packets each connection received, to check that a
// seed reaches the state it was written for.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/core/broker.hpp"
#include "broker/core/client_connection.hpp"
#include "broker/core/log.hpp"
#include "broker/core/worker_core.hpp"
#include "broker/protocol/codec.hpp"

using namespace edgemq;
using protocol::packet_type;
using protocol::protocol_version;
using protocol::reason_code;

namespace {

std::string hex(std::string_view bytes, std::size_t limit = 64) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < bytes.size() && i < limit; ++i) {
        const auto c = static_cast<unsigned char>(bytes[i]);
        if (i) out += ' ';
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    if (bytes.size() > limit) out += " ...";
    return out;
}

[[noreturn]] void violation(const std::string& who, const std::string& what) {
    std::fprintf(stderr, "fuzz_session invariant violated on %s: %s\n", who.c_str(), what.c_str());
    std::fflush(stderr);
    std::abort();
}

class manual_executor final : public core::worker_executor {
public:
    void post(std::function<void()> work) override { queue_.push_back(std::move(work)); }
    bool run_one() {
        if (queue_.empty()) return false;
        auto work = std::move(queue_.front());
        queue_.pop_front();
        work();
        return true;
    }

private:
    std::deque<std::function<void()>> queue_;
};

// What a client knows of its own connection, to judge what the broker sends it.
struct client_limits {
    std::uint32_t maximum_packet_size = 268'435'455;
    std::uint16_t topic_alias_maximum = 0;
    std::uint16_t receive_maximum = 65535;
};

class world;

// One client socket as the core sees it, and the checks on what the broker writes.
class peer final : public core::connection_io {
public:
    peer(world& w, unsigned worker, std::string name);

    // Bytes arrive on the socket (ignored once the broker closed or the socket died).
    void input(std::string_view bytes);
    // The socket dies (EOF / reset).
    void drop();
    // Like the transport after each handler: take what the broker wrote, let it write
    // more, check it all.
    void drain();
    void set_blocked(bool blocked) { blocked_ = blocked; }
    bool blocked() const { return blocked_; }
    bool ended() const { return closed_ || dropped_; }
    core::client_connection& conn() { return *conn_; }

    // The version the broker writes in, when the test knows it (scripted clients).
    void set_version(protocol_version v) { version_ = v; }
    void set_limits(const client_limits& l) { limits_ = l; limits_known_ = true; }

    // Scripted-subscriber model: acknowledges the way a client would.
    bool model_acks = false;
    std::vector<protocol::packet> received;  // decoded, when `keep_received`
    bool keep_received = false;

    // connection_io
    void output_ready() override;
    void close() override;
    void migrate(unsigned worker, std::string replay) override;

private:
    void note_input(std::string_view bytes);
    void check_written();
    void check_packet(const protocol::packet& p, std::size_t size, std::string_view raw);
    void check_publish_to_model(const protocol::publish& p);

    world& world_;
    unsigned worker_;
    std::string name_;
    std::unique_ptr<core::client_connection> conn_;
    std::vector<std::unique_ptr<core::client_connection>> parked_;  // migrated away
    bool closed_ = false;   // the broker called close()
    bool dropped_ = false;  // the socket died
    bool blocked_ = false;  // the socket takes no output for now
    bool migrating_ = false;
    std::string held_input_;  // arrived while the socket moves between workers

    // Output checks.
    std::string written_;
    std::optional<protocol_version> version_;
    std::string first_input_;  // until the first packet is whole, to learn the version
    bool first_packet_seen_ = false;
    bool connack_seen_ = false;
    bool final_packet_seen_ = false;  // failure CONNACK or DISCONNECT
    std::size_t packets_ = 0;
    std::map<std::string, int> packet_counts_;
    client_limits limits_;
    bool limits_known_ = false;
    std::map<std::uint16_t, std::string> aliases_;

public:
    std::string stats() const {
        std::string out = name_ + (dropped_ ? " (dropped)" : closed_ ? " (closed by the broker)" : "") + ":";
        for (const auto& [type, n] : packet_counts_) out += " " + type + " x" + std::to_string(n);
        return out;
    }
    // Model state of the scripted subscriber (survives its reconnects).
    struct inflight {
        std::uint8_t qos = 0;
        bool pubrec_sent = false;
    };
    std::map<std::uint16_t, inflight>* model_inflight = nullptr;
    std::optional<reason_code> disconnect_reason;  // from the broker's DISCONNECT
    bool session_present = false;                  // from a successful CONNACK
    std::string name() const { return name_; }
};

class world {
public:
    world(core::broker_settings settings, unsigned workers) : broker_(std::move(settings)) {
        for (unsigned i = 0; i < workers; ++i) {
            executors_.push_back(std::make_unique<manual_executor>());
            cores_.push_back(std::make_unique<core::worker_core>(broker_, i));
            cores_.back()->set_clock([this] { return now_; });
            broker_.add_worker(*cores_.back(), *executors_.back());
        }
    }
    ~world() {
        static const bool print_stats = std::getenv("EDGEMQ_FUZZ_STATS") != nullptr;
        if (print_stats)
            for (auto& p : peers_) std::fprintf(stderr, "fuzz_session: %s\n", p->stats().c_str());
        // Connections first (they detach from their sessions), then the workers.
        peers_.clear();
        cores_.clear();
    }

    unsigned worker_count() const { return static_cast<unsigned>(cores_.size()); }
    core::worker_core& worker(unsigned i) { return *cores_[i]; }
    manual_executor& executor(unsigned i) { return *executors_[i]; }
    const core::broker_settings& settings() const { return broker_.settings(); }

    peer& open(unsigned worker, std::string name) {
        peers_.push_back(std::make_unique<peer>(*this, worker % worker_count(), std::move(name)));
        return *peers_.back();
    }

    // Runs posted work until none is left, then lets every socket write.
    void settle() {
        for (int round = 0;; ++round) {
            if (round > 10'000) violation("world", "posted work never drains");
            bool any = false;
            for (std::size_t step = 0; step < 1'000'000; ++step) {
                bool ran = false;
                for (auto& e : executors_) ran = e->run_one() || ran;
                if (!ran) break;
                any = true;
            }
            bool wrote = false;
            for (auto& p : peers_) {
                if (p->ended() || p->blocked()) continue;
                if (!p->conn().output().empty()) wrote = true;
            }
            for (auto& p : peers_) p->drain();
            if (!any && !wrote) return;
        }
    }

    void advance(std::chrono::milliseconds d) {
        now_ += d;
        for (auto& p : peers_)
            if (!p->ended()) p->conn().tick();
        for (auto& w : cores_) w->tick();
        settle();
    }

private:
    core::broker broker_;
    std::vector<std::unique_ptr<manual_executor>> executors_;
    std::vector<std::unique_ptr<core::worker_core>> cores_;
    std::vector<std::unique_ptr<peer>> peers_;
    session::time_point now_ = session::clock::now();
};

peer::peer(world& w, unsigned worker, std::string name)
    : world_(w), worker_(worker), name_(std::move(name)),
      conn_(std::make_unique<core::client_connection>(w.worker(worker), *this, name_,
                                                      w.settings().listeners.front())) {}

void peer::input(std::string_view bytes) {
    if (dropped_) return;
    if (migrating_) {
        held_input_.append(bytes);
        return;
    }
    note_input(bytes);
    conn_->on_input(bytes);
    world_.settle();
}

void peer::note_input(std::string_view bytes) {
    if (first_packet_seen_) return;
    first_input_.append(bytes);
    protocol::fixed_header h;
    const auto status = protocol::parse_fixed_header(first_input_, h);
    if (status == protocol::frame_status::malformed) {
        first_packet_seen_ = true;
        return;
    }
    if (status == protocol::frame_status::need_more || first_input_.size() < h.packet_size()) {
        if (first_input_.size() > (std::size_t{2} << 20)) first_packet_seen_ = true;  // never whole
        return;
    }
    first_packet_seen_ = true;
    if (h.type != packet_type::connect || version_) return;
    const std::string_view body = std::string_view(first_input_).substr(h.header_size, h.remaining_length);
    // The broker answers in v5 exactly when it can read "MQTT" level 5 (see
    // client_connection::handle_connect); everything else in the 3.1.1 format.
    const auto pre = protocol::peek_connect_preamble(body);
    version_ = pre && pre->level == 5 && pre->protocol_name == "MQTT" ? protocol_version::v5 : protocol_version::v311;
    if (auto c = protocol::decode(protocol_version::v5, h, body); c.ok()) {
        const auto& connect = std::get<protocol::connect>(c.value());
        if (connect.version == protocol_version::v5) {
            client_limits l;
            l.maximum_packet_size = connect.props.maximum_packet_size.value_or(268'435'455);
            l.topic_alias_maximum = connect.props.topic_alias_maximum.value_or(0);
            l.receive_maximum = connect.props.receive_maximum.value_or(65535);
            set_limits(l);
        } else {
            set_limits(client_limits{});
        }
    }
    std::string().swap(first_input_);
}

void peer::drop() {
    if (dropped_) return;
    dropped_ = true;
    // Whatever was not written yet dies with the socket.
    if (!migrating_) conn_->output().clear();
    if (!migrating_) conn_->on_transport_closed("fuzz: socket dropped");
    world_.settle();
}

void peer::output_ready() {
    if (closed_) violation(name_, "output_ready() after close()");
    if (migrating_) violation(name_, "output_ready() after migrate()");
}

void peer::close() {
    if (migrating_) violation(name_, "close() after migrate()");
    // "Write what output() holds, then close": take it now, nothing may follow. (A
    // dead socket writes nothing.)
    if (!dropped_) written_.append(conn_->output().flatten());
    conn_->output().clear();
    closed_ = true;
}

void peer::migrate(unsigned worker, std::string replay) {
    if (closed_) violation(name_, "migrate() after close()");
    if (!conn_->output().empty() || packets_ != 0 || !written_.empty())
        violation(name_, "migrate() after the broker wrote to the connection");
    migrating_ = true;
    world_.executor(worker).post([this, worker, replay = std::move(replay)] {
        // As the network layer: the socket continues on the owning worker, whose new
        // connection starts with the replayed input. The old object is parked: we are
        // inside its on_input().
        migrating_ = false;
        worker_ = worker;
        parked_.push_back(std::move(conn_));
        conn_ = std::make_unique<core::client_connection>(world_.worker(worker), *this, name_ + "/migrated",
                                                          world_.settings().listeners.front());
        if (dropped_) {
            conn_->on_transport_closed("fuzz: socket dropped while moving");
            return;
        }
        std::string more;
        more.swap(held_input_);
        conn_->on_input(replay);
        if (!more.empty()) conn_->on_input(more);
    });
}

void peer::drain() {
    for (auto& old : parked_)
        if (!old->output().empty()) violation(name_, "a migrated-away connection wrote output");
    if (migrating_) return;
    core::output_queue& out = conn_->output();
    if (closed_ || dropped_) {
        if (!out.empty()) violation(name_, "the broker wrote after close(): " + hex(out.flatten()));
        check_written();  // what close() took
        return;
    }
    for (int i = 0; i < 100'000 && !blocked_ && !out.empty(); ++i) {
        written_.append(out.flatten());
        out.clear();
        // The write completed: the session may send what waited.
        conn_->on_output_written();
    }
    check_written();
}

void peer::check_written() {
    std::string_view rest = written_;
    std::size_t used = 0;
    while (!rest.empty()) {
        protocol::fixed_header h;
        const auto status = protocol::parse_fixed_header(rest, h);
        if (status == protocol::frame_status::malformed)
            violation(name_, "broker wrote a malformed fixed header: " + hex(rest));
        if (status == protocol::frame_status::need_more || rest.size() < h.packet_size()) break;
        if (!version_) {
            violation(name_, "broker wrote before it was sent a whole CONNECT: " + hex(rest));
        }
        const std::string_view body = rest.substr(h.header_size, h.remaining_length);
        auto decoded = protocol::decode(*version_, h, body);
        if (!decoded.ok())
            violation(name_, std::string("broker wrote a packet our codec rejects (") + decoded.err().what +
                                 "): " + hex(rest.substr(0, h.packet_size()), 256));
        check_packet(decoded.value(), h.packet_size(), rest.substr(0, h.packet_size()));
        if (keep_received) received.push_back(std::move(decoded.value()));
        rest.remove_prefix(h.packet_size());
        used += h.packet_size();
    }
    written_.erase(0, used);
    // Output is written in whole packets: a partial one left once the connection is
    // over would never be completed.
    if (!written_.empty() && (closed_ || dropped_) && conn_->output().empty())
        violation(name_, "broker left a partial packet: " + hex(written_));
}

void peer::check_packet(const protocol::packet& p, std::size_t size, std::string_view raw) {
    const packet_type type = protocol::type_of(p);
    const std::string what = std::string(protocol::to_string(type)) + " " + hex(raw);
    if (final_packet_seen_) violation(name_, "packet after a failure CONNACK or DISCONNECT: " + what);
    ++packets_;
    ++packet_counts_[std::string(protocol::to_string(type))];
    switch (type) {
        case packet_type::connect:
        case packet_type::subscribe:
        case packet_type::unsubscribe:
        case packet_type::pingreq:
        case packet_type::reserved:
            violation(name_, "broker sent a client-only packet: " + what);
        case packet_type::disconnect:
        case packet_type::auth:
            if (*version_ != protocol_version::v5) violation(name_, "3.1.1 server sent " + what);
            break;
        default:
            break;
    }
    if (type == packet_type::connack) {
        if (connack_seen_) violation(name_, "second CONNACK: " + what);
        connack_seen_ = true;
        if (protocol::is_failure(std::get<protocol::connack>(p).code)) final_packet_seen_ = true;
        else session_present = std::get<protocol::connack>(p).session_present;
    } else if (!connack_seen_) {
        violation(name_, "first packet is not CONNACK [MQTT-3.2.0-1]: " + what);
    }
    if (type == packet_type::disconnect) {
        final_packet_seen_ = true;
        disconnect_reason = std::get<protocol::disconnect>(p).code;
    }
    if (final_packet_seen_ && !closed_ && !dropped_)
        violation(name_, "failure CONNACK or DISCONNECT without closing the connection: " + what);

    if (*version_ == protocol_version::v5 && limits_known_ && size > limits_.maximum_packet_size)
        violation(name_, "packet of " + std::to_string(size) + " bytes above the client's Maximum Packet Size " +
                             std::to_string(limits_.maximum_packet_size) + ": " + what);

    if (const auto* pub = std::get_if<protocol::publish>(&p)) {
        if (*version_ == protocol_version::v5 && limits_known_) {
            if (auto alias = pub->props.topic_alias) {
                if (*alias == 0 || *alias > limits_.topic_alias_maximum)
                    violation(name_, "Topic Alias above the client's maximum: " + what);
                if (pub->topic.empty() && !aliases_.count(*alias))
                    violation(name_, "Topic Alias used before it was defined: " + what);
                if (!pub->topic.empty()) aliases_[*alias] = pub->topic;
            }
        }
        if (model_inflight) check_publish_to_model(*pub);
    } else if (const auto* rel = std::get_if<protocol::pubrel>(&p); rel && model_inflight) {
        auto it = model_inflight->find(rel->packet_id);
        if (it == model_inflight->end() || it->second.qos != 2 || !it->second.pubrec_sent)
            violation(name_, "PUBREL for an id the client sent no PUBREC for: " + what);
    }
}

void peer::check_publish_to_model(const protocol::publish& p) {
    if (p.qos == 0) return;
    auto& inflight = *model_inflight;
    auto it = inflight.find(p.packet_id);
    if (!p.dup) {
        if (it != inflight.end())
            violation(name_, "new PUBLISH reuses packet id " + std::to_string(p.packet_id) + " still in flight");
        if (inflight.size() >= limits_.receive_maximum)
            violation(name_, "more than Receive Maximum (" + std::to_string(limits_.receive_maximum) +
                                 ") unacknowledged QoS 1/2 PUBLISHes");
        inflight[p.packet_id] = {p.qos, false};
    } else {
        if (it == inflight.end() || it->second.qos != p.qos || it->second.pubrec_sent)
            violation(name_, "DUP PUBLISH with packet id " + std::to_string(p.packet_id) + " not in flight");
    }
}

// --- the scripted clients -------------------------------------------------------

std::string encode(protocol_version v, const protocol::packet& p) {
    std::string out;
    protocol::encode(v, p, out);
    return out;
}

template <class T>
const T& expect(peer& c, std::size_t index, const char* what) {
    if (c.received.size() <= index || !std::holds_alternative<T>(c.received[index]))
        violation(c.name(), std::string("set-up: expected ") + what);
    return std::get<T>(c.received[index]);
}

struct setup_options {
    protocol_version version = protocol_version::v5;
    std::string client_id;
    bool clean_start = true;
    bool with_will = false;
    std::uint16_t keep_alive = 30;
    client_limits limits;
    std::uint32_t session_expiry = 0;
};

// CONNECT (checked: CONNACK success), leaves `received` empty.
void scripted_connect(peer& c, const setup_options& o) {
    protocol::connect cp;
    cp.version = o.version;
    cp.client_id = o.client_id;
    cp.clean_start = o.clean_start;
    cp.keep_alive = o.keep_alive;
    if (o.version == protocol_version::v5) {
        cp.props.receive_maximum = o.limits.receive_maximum;
        cp.props.topic_alias_maximum = o.limits.topic_alias_maximum;
        cp.props.maximum_packet_size = o.limits.maximum_packet_size;
        if (o.session_expiry) cp.props.session_expiry_interval = o.session_expiry;
    }
    if (o.with_will) {
        protocol::will_message w;
        w.topic = "will/" + o.client_id;
        w.payload = "gone";
        w.qos = 1;
        if (o.version == protocol_version::v5) w.props.will_delay_interval = 2;
        cp.will = std::move(w);
    }
    c.set_version(o.version);
    c.set_limits(o.version == protocol_version::v5 ? o.limits : client_limits{});
    c.keep_received = true;
    c.input(encode(o.version, cp));
    expect<protocol::connack>(c, 0, "CONNACK");
    if (std::get<protocol::connack>(c.received[0]).code != reason_code::success)
        violation(c.name(), "set-up: CONNECT refused");
    c.received.clear();
}

void scripted_subscribe(peer& c, protocol_version v, std::string filter, std::uint8_t qos, std::uint32_t id) {
    protocol::subscribe s;
    s.packet_id = static_cast<std::uint16_t>(id + 1);
    s.entries.push_back({std::move(filter), protocol::subscription_options{qos}});
    if (v == protocol_version::v5 && id) s.props.subscription_identifiers.push_back(id);
    c.input(encode(v, s));
    bool acked = false;
    for (auto& p : c.received) acked = acked || std::holds_alternative<protocol::suback>(p);
    if (!acked) violation(c.name(), "set-up: no SUBACK");
    c.received.clear();
}

// The second client of states 3 and 4: a v5 subscriber to '#' and '+/+' (overlap:
// one copy with both subscription ids), small Receive Maximum and packet size (64
// bytes with tight limits, so that copies near the limit are easy to hit).
class subscriber {
public:
    subscriber(world& w, unsigned worker, bool tight) : world_(w), worker_(worker) {
        opts_.version = protocol_version::v5;
        opts_.client_id = "fz-sub";
        opts_.keep_alive = 0;
        opts_.session_expiry = 600;
        opts_.limits.receive_maximum = 3;
        opts_.limits.topic_alias_maximum = tight ? 2 : 4;
        opts_.limits.maximum_packet_size = tight ? 64 : 512;
        connect(true);
    }

    // Acknowledges every PUBLISH and PUBREL it holds, as a client would.
    void ack_all() {
        if (!peer_ || peer_->ended()) return;
        std::string acks;
        for (auto& [id, f] : inflight_) {
            if (f.qos == 1) {
                protocol::puback a;
                a.packet_id = id;
                acks += encode(protocol_version::v5, a);
            } else if (!f.pubrec_sent) {
                protocol::pubrec a;
                a.packet_id = id;
                acks += encode(protocol_version::v5, a);
                f.pubrec_sent = true;
            }
        }
        for (auto& p : peer_->received) {
            if (const auto* rel = std::get_if<protocol::pubrel>(&p)) {
                protocol::pubcomp a;
                a.packet_id = rel->packet_id;
                acks += encode(protocol_version::v5, a);
                inflight_.erase(rel->packet_id);
            }
        }
        for (auto it = inflight_.begin(); it != inflight_.end();) it = it->second.qos == 1 ? inflight_.erase(it) : std::next(it);
        peer_->received.clear();
        if (!acks.empty()) peer_->input(acks);
    }

    // The socket dies; a new one resumes the session (DUP resends expected). If the
    // fuzzed client took the session over meanwhile, what is in flight is unknown:
    // start a clean session instead.
    void reconnect() {
        const bool taken_over = peer_->disconnect_reason == reason_code::session_taken_over;
        if (!peer_->ended()) peer_->drop();
        connect(taken_over);
    }

private:
    void connect(bool clean) {
        opts_.clean_start = clean;
        peer_ = &world_.open(worker_, "subscriber#" + std::to_string(++connections_));
        peer_->model_inflight = &inflight_;
        protocol::connect cp;
        // As scripted_connect, but a resumed session may be resent PUBLISHes at once.
        cp.version = protocol_version::v5;
        cp.client_id = opts_.client_id;
        cp.clean_start = clean;
        cp.keep_alive = opts_.keep_alive;
        cp.props.receive_maximum = opts_.limits.receive_maximum;
        cp.props.topic_alias_maximum = opts_.limits.topic_alias_maximum;
        cp.props.maximum_packet_size = opts_.limits.maximum_packet_size;
        cp.props.session_expiry_interval = opts_.session_expiry;
        peer_->set_version(protocol_version::v5);
        peer_->set_limits(opts_.limits);
        peer_->keep_received = true;
        // A clean session has nothing in flight. (A resumed one gets its in-flight
        // PUBLISHes again with DUP, checked against the model as they arrive.)
        if (clean) inflight_.clear();
        peer_->input(encode(protocol_version::v5, cp));
        if (peer_->received.empty() || !std::holds_alternative<protocol::connack>(peer_->received[0]))
            return;
        peer_->received.erase(peer_->received.begin());
        if (!peer_->session_present) {
            // Expired meanwhile: a new session, subscribed again.
            inflight_.clear();
            scripted_subscribe(*peer_, protocol_version::v5, "#", 2, 1);
            scripted_subscribe(*peer_, protocol_version::v5, "+/+", 1, 2);
        }
    }

    world& world_;
    unsigned worker_;
    setup_options opts_;
    peer* peer_ = nullptr;
    int connections_ = 0;
    std::map<std::uint16_t, peer::inflight> inflight_;
};

core::broker_settings settings_for(std::uint8_t flags) {
    core::broker_settings s;
    // One listener: its limits apply to every connection of the fuzzed world.
    core::connection_limits& limits = s.listeners.front().limits;
    if (flags & 0x08) {
        limits.max_packet_size = 256;
        limits.receive_maximum = 2;
        s.topic_alias_maximum = 2;
        s.max_keep_alive = 5;
        s.max_session_expiry = 30;
        s.max_output_buffer = 4096;
    }
    if (flags & 0x10) {
        limits.queue.max_messages = 3;
        limits.queue.max_bytes = 200;
        if (flags & 0x20) {
            limits.queue.when_full = session::queue_full_policy::drop_newest;
            s.queue_qos0_offline = false;
        }
    }
    if (flags & 0x40) {
        s.retain_available = false;
        s.maximum_qos = 1;
    }
    return s;
}

const bool log_configured = [] {
    log::level level = log::level::trace;
    if (const char* v = std::getenv("EDGEMQ_FUZZ_LOG")) log::parse_level(v, level);
    log::set_level(level);
    return true;
}();

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    (void)log_configured;
    const std::uint8_t flags = data[0];
    const unsigned state = (flags & 7u) % 5u;
    world w(settings_for(flags), (flags & 0x80) ? 1 : 2);

    std::optional<subscriber> sub;
    peer* fuzzed = &w.open(0, "fuzzed#1");
    int fuzzed_count = 1;
    if (state != 0) {
        setup_options o;
        o.version = state == 1 || state == 4 ? protocol_version::v311 : protocol_version::v5;
        o.client_id = "fz";
        o.with_will = true;
        o.keep_alive = 30;
        o.session_expiry = 60;
        o.limits.receive_maximum = 4;
        o.limits.topic_alias_maximum = 3;
        o.limits.maximum_packet_size = 1024;
        scripted_connect(*fuzzed, o);
        fuzzed->keep_received = false;
        if (state >= 3) {
            sub.emplace(w, 1, (flags & 0x08) != 0);
            fuzzed->keep_received = true;
            scripted_subscribe(*fuzzed, o.version, "#", 2, 0);
            fuzzed->keep_received = false;
        }
    }

    std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
    while (!rest.empty()) {
        const std::uint8_t command = static_cast<std::uint8_t>(rest.front());
        rest.remove_prefix(1);
        if (command <= 0xEF) {
            const std::size_t n = std::min<std::size_t>(std::size_t{command} + 1, rest.size());
            fuzzed->input(rest.substr(0, n));
            rest.remove_prefix(n);
        } else if (command <= 0xF7) {
            w.advance(std::chrono::milliseconds(250) * (command - 0xEF));
        } else if (command == 0xF8) {
            w.advance(std::chrono::seconds(61));
        } else if (command == 0xF9) {
            w.advance(std::chrono::seconds(3601));
        } else if (command == 0xFA) {
            fuzzed->set_blocked(!fuzzed->blocked());
            w.settle();
        } else if (command == 0xFB) {
            if (sub) sub->ack_all();
        } else if (command == 0xFC) {
            if (sub) sub->reconnect();
        } else if (command == 0xFD) {
            fuzzed->drop();
            fuzzed = &w.open(static_cast<unsigned>(fuzzed_count), "fuzzed#" + std::to_string(fuzzed_count + 1));
            ++fuzzed_count;
        }
    }

    // The end: the socket takes output again, then dies; time runs on for delayed
    // Wills and session expiry, whose messages reach the subscriber.
    fuzzed->set_blocked(false);
    w.settle();
    fuzzed->drop();
    w.advance(std::chrono::seconds(3601));
    if (sub) sub->ack_all();
    w.advance(std::chrono::seconds(1));
    return 0;
}
