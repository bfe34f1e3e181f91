#include "broker/core/client_connection.hpp"

#include <algorithm>
#include <chrono>

#include "broker/core/log.hpp"
#include "broker/protocol/validate.hpp"

namespace edgemq::core {

using protocol::packet_type;
using protocol::protocol_version;
using protocol::reason_code;

namespace {

template <class... Fs>
struct overloaded : Fs... {
    using Fs::operator()...;
};
template <class... Fs>
overloaded(Fs...) -> overloaded<Fs...>;

constexpr std::uint32_t protocol_max_packet_size = 268'435'455;

std::string_view version_name(protocol_version v) {
    switch (v) {
        case protocol_version::v31: return "3.1";
        case protocol_version::v311: return "3.1.1";
        case protocol_version::v5: return "5";
    }
    return "?";
}

}  // namespace

// Adapts the connection to outbound_flow::pump().
struct client_connection::flow_sink {
    client_connection& conn;
    bool can_send() const noexcept { return conn.can_send(); }
    bool publish(const session::delivery& d, std::uint16_t packet_id, bool dup, std::uint64_t send_seq) {
        return conn.send_publish(d, packet_id, dup, send_seq);
    }
    void pubrel(std::uint16_t packet_id) { conn.send_ack(packet_type::pubrel, packet_id, reason_code::success); }
    bool may_send(const session::delivery& d, std::uint64_t send_seq) { return conn.may_send(d, send_seq); }
};

namespace {
std::atomic<std::uint64_t> g_streams{0};
}

client_connection::client_connection(worker_core& core, connection_io& io, std::string peer,
                                     const listener_settings& listener)
    : core_(core), io_(io), peer_(std::move(peer)), listener_(listener), limits_(listener.limits),
      stream_id_(g_streams.fetch_add(1, std::memory_order_relaxed) + 1) {
    opened_at_ = last_packet_at_ = rate_refilled_ = core_.now();
    rate_messages_ = static_cast<double>(limits_.max_publish_rate);
    rate_bytes_ = static_cast<double>(limits_.max_publish_bytes_rate);
}

client_connection::~client_connection() {
    *alive_ = false;
    core_.forget_connection(*this);
    // Torn down without a close (the worker is going away): leave the session, but do
    // not call back into the transport, which is being destroyed.
    if (phase_ == phase::connected && session_) {
        core_.shared().counters().connections_current.fetch_sub(1, std::memory_order_relaxed);
        core_.detach(*session_, worker_core::detach_reason::shutdown);
    }
}

std::string_view client_connection::client_id() const noexcept {
    return session_ ? std::string_view(session_->client_id) : std::string_view();
}

void client_connection::on_input(std::string_view bytes) {
    if (closed()) return;
    std::string_view data = bytes;
    if (!input_.empty()) {
        input_.append(bytes);
        data = input_;
    }
    const auto& cfg = core_.settings();
    std::size_t offset = 0;
    while (!closed()) {
        const std::string_view rest = data.substr(offset);
        protocol::fixed_header header;
        const protocol::frame_status status = protocol::parse_fixed_header(rest, header);
        if (status == protocol::frame_status::need_more) break;
        if (status == protocol::frame_status::malformed) {
            fail(reason_code::malformed_packet, "[MQTT-1.5.5-1] remaining length longer than 4 bytes");
            break;
        }
        if (phase_ == phase::awaiting_connect || phase_ == phase::authenticating) {
            if (header.packet_size() > std::min(cfg.max_connect_packet_size, limits_.max_packet_size)) {
                log::debug("closing ", peer_, ": CONNECT of ", header.packet_size(), " bytes is too large");
                close_before_session();
                break;
            }
        } else if (header.packet_size() > limits_.max_packet_size) {
            fail(reason_code::packet_too_large, "[MQTT-3.2.2-15] packet exceeds the Maximum Packet Size");
            break;
        }
        if (rest.size() < header.packet_size()) break;
        last_packet_at_ = core_.now();
        handle_packet(header, rest.substr(header.header_size, header.remaining_length), rest);
        offset += header.packet_size();
    }
    // Everything this input asked of the store goes in one submission (group commit).
    if (phase_ != phase::migrated) core_.end_of_input(*this);
    if (closed()) {
        std::string().swap(input_);
        return;
    }
    if (!input_.empty() && data.data() == input_.data()) {
        input_.erase(0, offset);
    } else {
        input_.assign(data.substr(offset));
    }
    if (input_.empty()) std::string().swap(input_);  // idle connections keep no buffer
}

bool client_connection::handle_packet(const protocol::fixed_header& header, std::string_view body,
                                      std::string_view rest) {
    if (phase_ == phase::authenticating) {
        // Between a CONNECT with an Authentication Method and its CONNACK only AUTH (or
        // DISCONNECT) may come (v5 3.1.2.11.9, 4.12).
        if (header.type == packet_type::disconnect) {
            // The client gives up: nothing was accepted, so no CONNACK and no Will.
            log::debug("closing ", peer_, ": DISCONNECT during the authentication exchange");
            close_before_session();
            return false;
        }
        if (header.type != packet_type::auth) {
            refuse_connect(version_, reason_code::protocol_error, "only AUTH may follow a CONNECT being authenticated");
            return false;
        }
        auto decoded = protocol::decode(version_, header, body);
        if (!decoded) {
            refuse_connect(version_, decoded.err().code, decoded.err().what);
            return false;
        }
        return continue_exchange(std::get<protocol::auth>(decoded.value()), rest);
    }
    if (phase_ == phase::awaiting_connect) {
        if (header.type != packet_type::connect) {
            // [MQTT-3.1.0-1]: the first packet must be CONNECT; no CONNACK for anything else.
            log::debug("closing ", peer_, ": first packet is ", protocol::to_string(header.type), ", not CONNECT");
            close_before_session();
            return false;
        }
        return handle_connect(header, body, rest);
    }
    if (header.type == packet_type::connect) {
        // A Protocol Error, and the connection closes [MQTT-3.1.0-2]; without a
        // DISCONNECT, which is optional here [MQTT-4.13.1-1]: a client sending CONNECT is
        // waiting for a CONNACK (the Paho interoperability client hangs when a DISCONNECT
        // comes instead), and Mosquitto closes silently too.
        fail(reason_code::protocol_error, "[MQTT-3.1.0-2] second CONNECT", /*tell_client=*/false);
        return false;
    }
    if (!protocol::sent_by_client(header.type)) {
        fail(reason_code::protocol_error, "packet type only a server may send");
        return false;
    }
    auto decoded = protocol::decode(version_, header, body);
    if (!decoded) {
        fail(decoded.err());
        return false;
    }
    std::visit(overloaded{
                   [&](protocol::publish& p) { handle_publish(p); },
                   [&](protocol::puback& p) { handle_puback(p); },
                   [&](protocol::pubrec& p) { handle_pubrec(p); },
                   [&](protocol::pubrel& p) { handle_pubrel(p); },
                   [&](protocol::pubcomp& p) { handle_pubcomp(p); },
                   [&](protocol::subscribe& p) { handle_subscribe(p); },
                   [&](protocol::unsubscribe& p) { handle_unsubscribe(p); },
                   [&](protocol::pingreq&) { send(protocol::pingresp{}); },
                   [&](protocol::disconnect& p) { handle_disconnect(p); },
                   [&](protocol::auth& p) { handle_auth(p); },
                   [&](auto&) { fail(reason_code::protocol_error, "packet type only a server may send"); },
               },
               decoded.value());
    return !closed();
}

bool client_connection::handle_connect(const protocol::fixed_header& header, std::string_view body,
                                       std::string_view rest) {
    auto decoded = protocol::decode(protocol_version::v5, header, body);
    if (!decoded) {
        const protocol::error& err = decoded.err();
        const auto preamble = protocol::peek_connect_preamble(body);
        if (err.code == reason_code::unsupported_protocol_version) {
            // [MQTT-3.1.2-2]: answer 0x01 in the 3.1.1 format, which every version parses.
            refuse_connect(protocol_version::v311, err.code, err.what);
        } else if (preamble && preamble->level == 5 && preamble->protocol_name == "MQTT") {
            refuse_connect(protocol_version::v5, err.code, err.what);
        } else {
            // [MQTT-3.1.4-1]: a 3.1.1 CONNECT that does not conform closes without CONNACK.
            log::info("connection refused: ", peer_, ": malformed CONNECT: ", err.what);
            close_before_session();
        }
        return false;
    }
    auto& c = std::get<protocol::connect>(decoded.value());
    version_ = c.version == protocol_version::v31 ? protocol_version::v311 : c.version;
    const bool v5 = version_ == protocol_version::v5;
    const broker_settings& cfg = core_.settings();
    request_problem_information_ = !v5 || c.props.request_problem_information.value_or(1) != 0;

    std::string client_id = c.client_id;
    bool assigned_id = false;
    if (client_id.empty()) {
        if (!v5 && !c.clean_start) {
            refuse_connect(version_, reason_code::client_identifier_not_valid,
                           "[MQTT-3.1.3-8] a zero-byte client id needs clean session");
            return false;
        }
        client_id = core_.shared().assign_client_id();  // [MQTT-3.1.3-6]
        assigned_id = true;
    }
    if (c.will) {
        if (c.will->qos > cfg.maximum_qos) {
            refuse_connect(version_, reason_code::qos_not_supported, "[MQTT-3.2.2-12] Will QoS above Maximum QoS");
            return false;
        }
        if (c.will->retain && !cfg.retain_available) {
            refuse_connect(version_, reason_code::retain_not_supported, "[MQTT-3.2.2-13] retained Will not supported");
            return false;
        }
        if (v5 && c.will->props.payload_format_indicator.value_or(0) == 1 &&
            !protocol::is_valid_utf8(c.will->payload)) {
            refuse_connect(version_, reason_code::payload_format_invalid,
                           "Will payload is not UTF-8 as its format indicator says (3.1.3.2.3)");
            return false;
        }
    }

    // 3.1.1 Clean Session 0 keeps the session until it is cleaned; v5 says how long.
    std::uint32_t expiry = v5 ? c.props.session_expiry_interval.value_or(0) : (c.clean_start ? 0 : 0xFFFF'FFFF);
    bool expiry_changed = false;
    if (expiry > cfg.max_session_expiry) {
        expiry = cfg.max_session_expiry;
        expiry_changed = v5;
    }

    pending_connect pending{std::move(c), std::move(client_id), assigned_id, expiry, expiry_changed};
    identity_.client_id = pending.client_id;
    if (v5 && pending.c.props.authentication_method) return begin_exchange(std::move(pending), rest);
    if (!authenticate(pending.c)) return false;
    return accept_connect(pending, rest, {});
}

bool client_connection::authenticate(protocol::connect& c) {
    if (listener_.identity_as_username != certificate_identity::none) {
        // The certificate speaks for the client; a password file is not consulted
        // (as Mosquitto's use_identity_as_username).
        if (!certificate_identity_) {
            refuse_connect(version_, reason_code::not_authorized,
                           "this listener takes the user name from a client certificate, and none was verified");
            return false;
        }
        identity_.username = certificate_identity_;
        return true;
    }
    if (const authorizer* auth = core_.access()) {
        switch (auth->authenticate(c.username, c.password, identity_.client_id)) {
            case auth_decision::allow: break;
            case auth_decision::bad_credentials:
                refuse_connect(version_, reason_code::bad_user_name_or_password,
                               "bad user name or password");
                return false;
            case auth_decision::not_authorized:
                refuse_connect(version_, reason_code::not_authorized,
                               c.username ? "not authorized" : "anonymous access is not allowed");
                return false;
        }
    }
    identity_.username = c.username;
    return true;
}

bool client_connection::begin_exchange(pending_connect pending, std::string_view rest) {
    const std::string& method = *pending.c.props.authentication_method;
    const authorizer* auth = core_.access();
    std::unique_ptr<auth_exchange> exchange = auth ? auth->begin_exchange(method) : nullptr;
    if (!exchange) {
        refuse_connect(version_, reason_code::bad_authentication_method,
                       "[MQTT-4.12.0-1] this Authentication Method is not supported");
        return false;
    }
    // Once AUTH has gone out the connection can no longer move to the worker where the
    // session lives, so settle that first (moving replays the CONNECT there).
    const unsigned home = core_.shared().claim_home(pending.client_id, core_.index());
    if (home != core_.index()) {
        phase_ = phase::migrated;
        io_.migrate(home, std::string(rest));
        return false;
    }
    exchange_ = std::move(exchange);
    pending_ = std::make_unique<pending_connect>(std::move(pending));
    return exchange_step(exchange_->on_data(pending_->c.props.authentication_data.value_or(std::string())), rest);
}

bool client_connection::continue_exchange(const protocol::auth& a, std::string_view rest) {
    const std::string& method = phase_ == phase::authenticating ? *pending_->c.props.authentication_method : auth_method_;
    if (a.props.authentication_method != method) {
        // [MQTT-4.12.0-5] the method must stay the one of the CONNECT.
        if (phase_ == phase::authenticating) {
            refuse_connect(version_, reason_code::protocol_error, "[MQTT-4.12.0-5] AUTH with another Authentication Method");
        } else {
            fail(reason_code::protocol_error, "[MQTT-4.12.0-5] AUTH with another Authentication Method");
        }
        return false;
    }
    const bool expected = phase_ == phase::authenticating ? a.code == reason_code::continue_authentication
                                                          : (a.code == reason_code::re_authenticate && !exchange_) ||
                                                                (a.code == reason_code::continue_authentication && exchange_);
    if (!expected) {
        if (phase_ == phase::authenticating) {
            refuse_connect(version_, reason_code::protocol_error, "[MQTT-4.12.0-3] unexpected AUTH reason code");
        } else {
            fail(reason_code::protocol_error, "[MQTT-4.12.1-1] unexpected AUTH reason code");
        }
        return false;
    }
    if (!exchange_) {  // re-authentication [MQTT-4.12.1]
        const authorizer* auth = core_.access();
        exchange_ = auth ? auth->begin_exchange(method) : nullptr;
        if (!exchange_) {
            fail(reason_code::bad_authentication_method, "this Authentication Method is no longer supported");
            return false;
        }
    }
    return exchange_step(exchange_->on_data(a.props.authentication_data.value_or(std::string())), rest);
}

bool client_connection::exchange_step(auth_exchange::step step, std::string_view rest) {
    using outcome = auth_exchange::step::outcome;
    const bool connecting = phase_ != phase::connected;
    if (step.result == outcome::continue_auth) {
        phase_ = connecting ? phase::authenticating : phase_;
        protocol::auth challenge;
        challenge.code = reason_code::continue_authentication;
        challenge.props.authentication_method = connecting ? *pending_->c.props.authentication_method : auth_method_;
        if (!step.data.empty()) challenge.props.authentication_data = std::move(step.data);
        send(challenge);
        return !closed();
    }
    exchange_.reset();
    if (step.result == outcome::failure) {
        if (connecting) {
            refuse_connect(version_, reason_code::not_authorized, "authentication failed");
        } else {
            fail(reason_code::not_authorized, "re-authentication failed");
        }
        return false;
    }
    if (!connecting) {
        protocol::auth done;  // AUTH Success ends a re-authentication (4.12.1)
        done.props.authentication_method = auth_method_;
        if (!step.data.empty()) done.props.authentication_data = std::move(step.data);
        send(done);
        return !closed();
    }
    std::unique_ptr<pending_connect> pending = std::move(pending_);
    identity_.username = step.username ? std::move(step.username) : pending->c.username;
    auth_method_ = *pending->c.props.authentication_method;
    protocol::properties extra;
    extra.authentication_method = auth_method_;
    if (!step.data.empty()) extra.authentication_data = std::move(step.data);
    phase_ = phase::awaiting_connect;
    // Refused after the exchange (a Will the user may not publish, ...): the claim on the
    // client id goes back, as on every other way out (abandon_home keeps a session's).
    if (accept_connect(*pending, rest, std::move(extra))) return true;
    core_.abandon_home(pending->client_id);
    return false;
}

bool client_connection::accept_connect(pending_connect& pending, std::string_view rest, protocol::properties extra) {
    protocol::connect& c = pending.c;
    const std::string& client_id = pending.client_id;
    const std::uint32_t expiry = pending.expiry;
    const bool v5 = version_ == protocol_version::v5;
    const broker_settings& cfg = core_.settings();
    if (c.will) {
        if (const authorizer* auth = core_.access(); auth && !auth->may_publish(identity_, c.will->topic)) {
            // Checked here so that the client learns it now, not when the Will would be due.
            refuse_connect(version_, reason_code::not_authorized, "not authorized to publish the Will topic");
            return false;
        }
    }
    const auto opened = core_.open_session(*this, c, client_id, expiry);
    if (opened.migrate_to) {
        if (!auth_method_.empty()) {
            // Someone else claimed the id during our AUTH exchange (the home was claimed
            // before it): the conversation cannot be replayed elsewhere.
            refuse_connect(version_, reason_code::server_busy, "the session moved during authentication; retry");
            return false;
        }
        phase_ = phase::migrated;
        io_.migrate(*opened.migrate_to, std::string(rest));
        return false;
    }
    session_ = opened.session;
    phase_ = phase::connected;
    core_.shared().counters().connections_current.fetch_add(1, std::memory_order_relaxed);
    core_.shared().counters().connections_total.fetch_add(1, std::memory_order_relaxed);

    keep_alive_ = c.keep_alive;
    bool keep_alive_changed = false;
    if (v5 && cfg.max_keep_alive != 0 && (c.keep_alive == 0 || c.keep_alive > cfg.max_keep_alive)) {
        keep_alive_ = cfg.max_keep_alive;  // [MQTT-3.2.2-21]
        keep_alive_changed = true;
    }
    client_receive_maximum_ = std::min<std::uint16_t>(c.props.receive_maximum.value_or(65535), limits_.max_inflight);
    client_maximum_packet_size_ = c.props.maximum_packet_size.value_or(protocol_max_packet_size);
    inbound_aliases_.reset(v5 ? cfg.topic_alias_maximum : 0);
    outbound_aliases_.reset(v5 && cfg.send_topic_aliases ? c.props.topic_alias_maximum.value_or(0) : 0);

    protocol::connack ack;
    ack.session_present = opened.session_present;  // [MQTT-3.2.2-2..3]
    if (v5) {
        ack.props.authentication_method = std::move(extra.authentication_method);
        ack.props.authentication_data = std::move(extra.authentication_data);
        if (limits_.receive_maximum != 65535) ack.props.receive_maximum = limits_.receive_maximum;
        if (cfg.topic_alias_maximum != 0) ack.props.topic_alias_maximum = cfg.topic_alias_maximum;
        if (limits_.max_packet_size < protocol_max_packet_size) ack.props.maximum_packet_size = limits_.max_packet_size;
        if (pending.assigned_id) ack.props.assigned_client_identifier = client_id;
        if (keep_alive_changed) ack.props.server_keep_alive = keep_alive_;
        if (!cfg.retain_available) ack.props.retain_available = 0;
        if (cfg.maximum_qos < 2) ack.props.maximum_qos = cfg.maximum_qos;
        if (pending.expiry_changed) ack.props.session_expiry_interval = expiry;
        if (c.props.request_response_information.value_or(0) == 1 && !cfg.response_information.empty()) {
            std::string info = cfg.response_information;
            for (std::size_t at = info.find("%c"); at != std::string::npos; at = info.find("%c", at + client_id.size()))
                info.replace(at, 2, client_id);
            ack.props.response_information = std::move(info);
        }
    }
    send(ack);
    if (closed()) return false;
    log::info("client connected: ", client_id, " from ", peer_, " (MQTT ", version_name(c.version),
              ", clean start ", c.clean_start ? 1 : 0, ", keep alive ", keep_alive_, "s, session ",
              opened.session_present ? "resumed" : "new", ")");
    session_->last_progress = core_.now();
    if (opened.session_present) session_->outbound.resume();  // [MQTT-4.4.0-1]
    pump();
    return true;
}

void client_connection::refuse_connect(protocol_version version, reason_code code, const char* why) {
    protocol::connack ack;
    ack.code = code;
    if (version == protocol_version::v5) {
        if (!protocol::is_valid_for(protocol::reason_context::connack, code)) ack.code = reason_code::unspecified_error;
        add_reason(ack.props, why);
    }
    protocol::encode(version, ack, output_.bytes());
    io_.output_ready();
    log::info("connection refused: ", peer_, ": ", protocol::to_string(code), ": ", why);
    close_before_session();
}

void client_connection::close_before_session() {
    give_back_pending_claim();
    phase_ = phase::closed;
    io_.close();
}

void client_connection::give_back_pending_claim() {
    if (!pending_) return;
    core_.abandon_home(pending_->client_id);
    pending_.reset();
}

void client_connection::handle_publish(protocol::publish& p) {
    client_session& s = *session_;
    const broker_settings& cfg = core_.settings();
    const bool v5 = version_ == protocol_version::v5;

    if (p.qos > cfg.maximum_qos) return fail(reason_code::qos_not_supported, "[MQTT-3.2.2-11] QoS above Maximum QoS");
    if (p.retain && !cfg.retain_available)
        return fail(reason_code::retain_not_supported, "[MQTT-3.2.2-14] retain not supported");

    if (!p.props.subscription_identifiers.empty())
        return fail(reason_code::protocol_error, "[MQTT-3.3.4-6] PUBLISH from a client with a Subscription Identifier");

    if (v5 && p.props.topic_alias) {
        const std::uint16_t alias = *p.props.topic_alias;
        if (!inbound_aliases_.in_range(alias))
            return fail(reason_code::topic_alias_invalid, "[MQTT-3.3.2-9] Topic Alias above Topic Alias Maximum");
        if (p.topic.empty()) {
            const std::string* topic = inbound_aliases_.resolve(alias);
            if (!topic) return fail(reason_code::protocol_error, "Topic Alias not defined on this connection (3.3.2.3.4)");
            p.topic = *topic;
        } else {
            inbound_aliases_.define(alias, p.topic);
        }
    } else if (p.topic.empty()) {
        return fail(reason_code::protocol_error, "PUBLISH without topic name or Topic Alias");
    }

    const bool duplicate_qos2 = p.qos == 2 && s.inbound_qos2.count(p.packet_id) != 0;
    if (v5 && p.qos > 0 && !duplicate_qos2 && inbound_in_flight_ >= limits_.receive_maximum)
        return fail(reason_code::receive_maximum_exceeded, "[MQTT-3.3.4-9] Receive Maximum exceeded");
    if (p.qos > 0 && !duplicate_qos2) ++inbound_in_flight_;
    const packet_type ack = p.qos == 1 ? packet_type::puback : p.qos == 2 ? packet_type::pubrec : packet_type::reserved;

    // A receiver MAY check the Payload Format Indicator (3.3.2.3.2).
    if (v5 && p.props.payload_format_indicator.value_or(0) == 1 && !protocol::is_valid_utf8(p.payload)) {
        if (p.qos == 0) return fail(reason_code::payload_format_invalid, "payload is not the UTF-8 its format indicator says");
        return ack_in_order(ack, p.packet_id, reason_code::payload_format_invalid);
    }
    // $SYS topics are the broker's own; clients may read them but not publish to them.
    if (p.topic.starts_with("$SYS/") || p.topic == "$SYS") {
        log::debug("dropping PUBLISH of ", s.client_id, " to ", p.topic);
        if (p.qos > 0) ack_in_order(ack, p.packet_id, reason_code::not_authorized);
        return;
    }
    if (duplicate_qos2) {
        // Already routed; acknowledge again, deliver no second copy [MQTT-4.3.3-10].
        return ack_in_order(packet_type::pubrec, p.packet_id, reason_code::success);
    }
    if (!within_rate(p.payload.size())) return;
    if (const authorizer* auth = core_.access(); auth && !auth->may_publish(identity_, p.topic)) {
        // v5 says so in the acknowledgement; 3.1.1 has no way to, and acknowledges as
        // usual [MQTT-3.3.5-2]. Either way nothing is routed, retained or stored.
        log::debug("denied PUBLISH of ", s.client_id, " to ", p.topic);
        core_.counters().publish_denied.fetch_add(1, std::memory_order_relaxed);
        if (p.qos > 0) ack_in_order(ack, p.packet_id, reason_code::not_authorized);
        return;
    }

    auto msg = std::make_shared<session::message>();
    msg->topic = std::move(p.topic);
    msg->payload = std::move(p.payload);
    msg->qos = p.qos;
    msg->retain = p.retain;
    msg->origin = s.key;
    if (v5) {
        protocol::encode_forwarded_properties(p.props, msg->forwarded_properties);
        if (p.props.message_expiry_interval)
            msg->expires_at = core_.now() + std::chrono::seconds(*p.props.message_expiry_interval);
    }
    if (p.qos == 2) s.inbound_qos2.insert(p.packet_id);
    const auto routed = core_.publish_from(*this, s, std::move(msg), ack, p.packet_id);
    if (routed.slow_down || core_.store_backlogged(*this)) slow_down_ = true;
}

void client_connection::handle_puback(const protocol::puback& p) {
    std::uint64_t row = 0;
    if (session_->outbound.on_puback(p.packet_id, &row)) {
        session_->last_progress = core_.now();
        if (row != 0) core_.store_later(store_ops::remove_delivery{stored_session_id(), row});
    }
    pump();
}

void client_connection::handle_pubrec(const protocol::pubrec& p) {
    using outcome = session::outbound_flow::pubrec_outcome;
    std::uint64_t row = 0;
    const bool failed = protocol::is_failure(p.code);
    const outcome result = session_->outbound.on_pubrec(p.packet_id, failed, &row);
    if (row != 0 && failed) core_.store_later(store_ops::remove_delivery{stored_session_id(), row});
    if (row != 0 && !failed) {  // on_pubrec gives the row only as it moves to send_pubrel
        // The client forgets the packet id when PUBREL arrives and would take a PUBLISH
        // with it for a new message [MQTT-4.3.3-9]: after a crash the broker must resend
        // PUBREL, not PUBLISH, so PUBREL leaves only once "released" is stored.
        store_bound_work work;
        work.ops.push_back(store_ops::mark_released{stored_session_id(), row});
        work.ack = make_ack(packet_type::pubrel, p.packet_id, reason_code::success);
        core_.after_store(*this, std::move(work));
        pump();
        return;
    }
    switch (result) {
        case outcome::send_pubrel:
            send_ack(packet_type::pubrel, p.packet_id, reason_code::success);
            break;
        case outcome::unknown_id:
            // v5 says which id was unknown (PUBREL 0x92, 3.6.2.1); 3.1.1 has no way to, and a
            // PUBREL lets the client finish its side.
            send_ack(packet_type::pubrel, p.packet_id, reason_code::packet_identifier_not_found);
            break;
        case outcome::released:
            break;
    }
    pump();
}

void client_connection::handle_pubrel(const protocol::pubrel& p) {
    const bool known = session_->inbound_qos2.erase(p.packet_id) != 0;
    store_bound_work work;
    work.ack = make_ack(packet_type::pubcomp, p.packet_id,
                        known || version_ != protocol_version::v5 ? reason_code::success
                                                                  : reason_code::packet_identifier_not_found);
    // PUBCOMP releases the packet id; until the store has forgotten it too, a crash
    // would make the client's next message with that id look like a duplicate.
    if (known && stored_session_id() != 0)
        work.ops.push_back(store_ops::remove_inbound{stored_session_id(), p.packet_id});
    core_.after_store(*this, std::move(work));
}

void client_connection::handle_pubcomp(const protocol::pubcomp& p) {
    std::uint64_t row = 0;
    if (session_->outbound.on_pubcomp(p.packet_id, &row)) {
        session_->last_progress = core_.now();
        if (row != 0) core_.store_later(store_ops::remove_delivery{stored_session_id(), row});
    }
    pump();
}

void client_connection::handle_subscribe(const protocol::subscribe& p) {
    // The SUBACK goes out once a persistent session's subscriptions are stored, and
    // before the retained messages it brings.
    store_bound_work work;
    core_.subscribe(*session_, p, work);
    core_.after_store(*this, std::move(work));
}

void client_connection::handle_unsubscribe(const protocol::unsubscribe& p) {
    protocol::unsuback ack;
    ack.packet_id = p.packet_id;
    ack.codes = core_.unsubscribe(*session_, p);
    send(ack);
}

void client_connection::handle_disconnect(const protocol::disconnect& p) {
    if (version_ == protocol_version::v5 && p.props.session_expiry_interval) {
        const std::uint32_t requested = *p.props.session_expiry_interval;
        if (session_->expiry_interval == 0 && requested != 0)
            return fail(reason_code::protocol_error, "[MQTT-3.14.2-2] Session Expiry set on DISCONNECT after 0 on CONNECT");
        session_->expiry_interval = std::min(requested, core_.settings().max_session_expiry);
    }
    // Any reason but Normal disconnection publishes the Will [MQTT-3.14.4-3].
    finish(p.code == reason_code::success ? worker_core::detach_reason::normal
                                          : worker_core::detach_reason::with_will,
           p.code == reason_code::success ? std::string_view("client disconnected")
                                          : protocol::to_string(p.code));
}

void client_connection::handle_auth(const protocol::auth& a) {
    if (auth_method_.empty()) {
        // No Authentication Method was agreed in CONNECT [MQTT-4.12.0-7].
        return fail(reason_code::protocol_error, "AUTH without an Authentication Method in CONNECT");
    }
    continue_exchange(a, {});
}

void client_connection::fail(reason_code code, const char* why, bool tell_client) {
    if (closed()) return;
    if (tell_client && phase_ == phase::connected && version_ == protocol_version::v5) {
        protocol::disconnect d;
        d.code = protocol::is_valid_for(protocol::reason_context::disconnect, code) ? code
                                                                                   : reason_code::unspecified_error;
        add_reason(d.props, why);
        send(d);
    }
    log::info("closing connection of ", session_ ? std::string_view(session_->client_id) : std::string_view(peer_),
              ": ", protocol::to_string(code), ": ", why);
    if (phase_ == phase::connected) {
        finish(worker_core::detach_reason::with_will, why);
    } else {
        close_before_session();
    }
}

void client_connection::finish(worker_core::detach_reason why, std::string_view log_reason) {
    if (closed()) return;
    const bool was_connected = phase_ == phase::connected;
    phase_ = phase::closed;
    if (was_connected && session_) {
        log::info("client disconnected: ", session_->client_id, " (", log_reason, ")");
        core_.forget_connection(*this);
        client_session* s = session_;
        session_ = nullptr;
        core_.shared().counters().connections_current.fetch_sub(1, std::memory_order_relaxed);
        core_.detach(*s, why);
    }
    io_.close();
}

void client_connection::on_transport_closed(std::string_view why) {
    if (closed()) return;
    give_back_pending_claim();
    if (phase_ == phase::connected) {
        finish(worker_core::detach_reason::with_will, why);  // [MQTT-3.1.2-8]: the Will is due
    } else {
        phase_ = phase::closed;
    }
}

void client_connection::tick() {
    if (closed()) return;
    const session::time_point now = core_.now();
    if (phase_ == phase::awaiting_connect || phase_ == phase::authenticating) {
        if (now - opened_at_ >= limits_.connect_timeout) {
            log::debug("closing ", peer_, ": no CONNECT within the connect timeout");
            close_before_session();
        }
        return;
    }
    // [MQTT-3.1.2-24]: silence for one and a half Keep Alive periods ends the connection.
    if (keep_alive_ != 0 && now - last_packet_at_ >= std::chrono::milliseconds(keep_alive_) * 1500)
        fail(reason_code::keep_alive_timeout, "[MQTT-3.1.2-24] Keep Alive timeout");
}

void client_connection::shut_down() {
    if (closed()) return;
    if (phase_ == phase::connected && version_ == protocol_version::v5) {
        protocol::disconnect d;
        d.code = reason_code::server_shutting_down;
        send(d);
    }
    if (phase_ == phase::connected) {
        finish(worker_core::detach_reason::shutdown, "broker shutting down");
    } else {
        close_before_session();
    }
}

void client_connection::take_over() {
    if (closed()) return;
    if (version_ == protocol_version::v5) {
        protocol::disconnect d;
        d.code = reason_code::session_taken_over;  // [MQTT-3.1.4-3]
        send(d);
    }
    finish(worker_core::detach_reason::taken_over, "session taken over");
}

void client_connection::pump() {
    if (phase_ != phase::connected || !session_) return;
    const std::size_t before = output_.size();
    flow_sink sink{*this};
    session_->outbound.pump(core_.now(), client_receive_maximum_, sink);
    core_.update_backlog(*session_);
    if (output_.size() != before) io_.output_ready();
}

void client_connection::on_output_written() {
    if (session_) session_->last_progress = core_.now();
    pump();
}

void client_connection::send(const protocol::packet& p) {
    // The client's send quota comes back with each PUBACK, PUBCOMP or failed PUBREC
    // [MQTT-4.9.0]. An answer to a flow of an earlier connection finds nothing to
    // return: the count stays at 0, never below.
    if (inbound_in_flight_ != 0) {
        const auto* rec = std::get_if<protocol::pubrec>(&p);
        if (std::holds_alternative<protocol::puback>(p) || std::holds_alternative<protocol::pubcomp>(p) ||
            (rec && protocol::is_failure(rec->code)))
            --inbound_in_flight_;
    }
    if (version_ == protocol_version::v5 && protocol::encoded_size(version_, p) > client_maximum_packet_size_) {
        // [MQTT-3.1.2-24..25] Never send more than the client accepts. Only CONNACK,
        // SUBACK, UNSUBACK and DISCONNECT can get here large, by their reason strings;
        // a packet still too large without them is not sent.
        protocol::packet trimmed = p;
        std::visit([](auto& packet) {
            if constexpr (requires { packet.props; }) {
                packet.props.reason_string.reset();
                packet.props.user_properties.clear();
            }
        }, trimmed);
        if (auto* ack = std::get_if<protocol::connack>(&trimmed);
            ack && protocol::encoded_size(version_, trimmed) > client_maximum_packet_size_) {
            // CONNACK's properties tell the client our limits; one that cannot take them
            // gets the bare CONNACK (with its assigned client id, if that still fits).
            auto assigned = std::move(ack->props.assigned_client_identifier);
            ack->props = {};
            ack->props.assigned_client_identifier = std::move(assigned);
            if (protocol::encoded_size(version_, trimmed) > client_maximum_packet_size_)
                ack->props.assigned_client_identifier.reset();
        }
        if (protocol::encoded_size(version_, trimmed) > client_maximum_packet_size_) {
            // Nothing smaller says the same: a client that cannot receive this packet
            // cannot go on with the protocol. Close rather than leave it waiting.
            if (!std::holds_alternative<protocol::disconnect>(p)) {
                log::info("closing connection of ", client_id().empty() ? std::string_view(peer_) : client_id(),
                          ": its Maximum Packet Size (", client_maximum_packet_size_, ") is too small for ",
                          protocol::to_string(protocol::type_of(p)));
                if (phase_ == phase::connected) {
                    finish(worker_core::detach_reason::with_will, "Maximum Packet Size too small");
                } else {
                    close_before_session();
                }
            }
            return;
        }
        protocol::encode(version_, trimmed, output_.bytes());
    } else {
        protocol::encode(version_, p, output_.bytes());
    }
    io_.output_ready();
}

protocol::packet client_connection::make_ack(packet_type type, std::uint16_t packet_id, reason_code code) {
    auto make = [&](auto ack) -> protocol::packet {
        ack.packet_id = packet_id;
        ack.code = code;
        return ack;
    };
    switch (type) {
        case packet_type::pubrec: return make(protocol::pubrec{});
        case packet_type::pubrel: return make(protocol::pubrel{});
        case packet_type::pubcomp: return make(protocol::pubcomp{});
        default: return make(protocol::puback{});
    }
}

void client_connection::send_ack(packet_type type, std::uint16_t packet_id, reason_code code) {
    if (version_ != protocol_version::v5) code = reason_code::success;
    send(make_ack(type, packet_id, code));
}

void client_connection::ack_in_order(packet_type type, std::uint16_t packet_id, reason_code code) {
    // Behind the acknowledgements still waiting for the store, so that the client gets
    // them in the order of its PUBLISHes [MQTT-4.6.0-2..4]. 3.1.1 has only success.
    if (version_ != protocol_version::v5) code = reason_code::success;
    store_bound_work work;
    work.ack = make_ack(type, packet_id, code);
    core_.after_store(*this, std::move(work));
}

void client_connection::send_after_store(const protocol::packet& ack, bool stored) {
    if (closed()) return;
    if (stored) {
        send(ack);
        return;
    }
    const bool publish_ack = std::holds_alternative<protocol::puback>(ack) || std::holds_alternative<protocol::pubrec>(ack);
    if (!publish_ack) {
        send(ack);
        return;
    }
    if (version_ != protocol_version::v5) {
        // 3.1.1 has no negative acknowledgement: without one the client keeps the
        // message and sends it again after reconnecting.
        fail(reason_code::quota_exceeded, "the store could not keep the message (disk full?)");
        return;
    }
    protocol::packet refused = ack;
    std::visit([](auto& a) {
        if constexpr (requires { a.code; a.packet_id; }) a.code = reason_code::quota_exceeded;
    }, refused);
    send(refused);
}

std::uint64_t client_connection::stored_session_id() const noexcept {
    return session_ ? session_->status.store_id.load(std::memory_order_relaxed) : 0;
}

bool client_connection::may_send(const session::delivery& d, std::uint64_t send_seq) {
    if (d.store_row == 0 || d.qos != 2) return true;
    auto it = reserved_.find(d.store_row);
    if (it != reserved_.end() && it->second.seq == send_seq) {
        if (!it->second.durable) return false;
        reserved_.erase(it);
        return true;
    }
    if (stored_session_id() == 0) return true;
    reserve_send_sequence(send_seq);
    return false;
}

void client_connection::reserve_send_sequence(std::uint64_t first_seq) {
    // Reserve ids for everything that will be sent next in one store write, so that a
    // QoS 2 stream waits for the store once per window, not once per message.
    const std::uint64_t session_id = stored_session_id();
    std::vector<store_op> ops;
    std::vector<std::uint64_t> rows;
    std::uint64_t seq = first_seq;
    std::size_t budget = client_receive_maximum_;
    session_->outbound.for_each_pending([&](const session::delivery& d) {
        if (budget == 0 || d.qos == 0) return;
        --budget;
        if (d.store_row != 0 && !(reserved_.count(d.store_row) && reserved_[d.store_row].seq == seq)) {
            ops.push_back(store_ops::mark_sent{session_id, d.store_row, seq});
            if (d.qos == 2) {
                reserved_[d.store_row] = reservation{seq, false};
                rows.push_back(d.store_row);
            }
        }
        ++seq;
    });
    if (ops.empty()) return;
    std::weak_ptr<bool> alive = alive_;
    worker_executor& home = core_.shared().executor(core_.index());
    core_.shared().durable_store()->submit(
        std::move(ops), [this, alive, &home, rows = std::move(rows)](bool) {
            home.post([this, alive, rows] {
                auto still = alive.lock();
                if (!still || !*still) return;
                // Even when the write failed (disk full) the message goes out: holding it
                // forever would be worse than the small risk that a crash before the
                // store recovers repeats it.
                for (std::uint64_t row : rows)
                    if (auto r = reserved_.find(row); r != reserved_.end()) r->second.durable = true;
                pump();
            });
        });
}

// The send sequence number matters only for QoS 2 to persistent sessions, whose ids
// were reserved in the store by may_send(). QoS 1 deliveries are not marked as sent: after
// a crash they go out again as new (QoS 1 allows the duplicate), which spares the disk a
// write per message.
bool client_connection::send_publish(const session::delivery& d, std::uint16_t packet_id, bool dup,
                                     std::uint64_t /*send_seq*/) {
    const session::message& m = *d.msg;
    if (const authorizer* auth = core_.access(); auth && auth->restricts_reads() && !auth->may_receive(identity_, m.topic)) {
        // Checked on the way out too, so that a message queued before an ACL reload, or
        // for a session restored before its user was known, never reaches a client that
        // may not read it. Dropped as if sent.
        log::debug("not delivering ", m.topic, " to ", client_id(), ": the ACL does not let it read that topic");
        return false;
    }
    protocol::publish_header h;
    h.topic = m.topic;
    h.qos = d.qos;
    h.retain = d.retain;
    h.dup = dup;
    h.packet_id = packet_id;
    const bool v5 = version_ == protocol_version::v5;
    if (v5) {
        if (m.expires_at != session::never) h.message_expiry_interval = m.remaining_expiry(core_.now());
        h.subscription_identifiers = d.subscription_ids;
        h.forwarded_properties = m.forwarded_properties;
    }
    // Topic alias: an alias the client already knows replaces the topic; a new one is
    // assigned only if the packet with it still fits the client's Maximum Packet Size
    // [MQTT-3.1.2-24], and otherwise the topic goes without an alias.
    const auto fits = [&] {
        return protocol::publish_packet_size(version_, h, m.payload.size()) <= client_maximum_packet_size_;
    };
    bool assign_alias = false;
    if (v5 && outbound_aliases_.enabled()) {
        if (const std::uint16_t known = outbound_aliases_.find(m.topic)) {
            h.topic = {};
            h.topic_alias = known;
        } else {
            h.topic_alias = outbound_aliases_.next();
            assign_alias = fits();
            if (!assign_alias) h.topic_alias = 0;
        }
    }
    // [MQTT-3.1.2-25]: too large for the client means discarded, as if sent.
    if (!fits()) {
        log::debug("dropping message on ", m.topic, " for ", client_id(), ": larger than its Maximum Packet Size");
        return false;
    }
    if (assign_alias) outbound_aliases_.assign(m.topic);
    core_.encoder().append_header(d.msg, version_, h, m.payload.size(), output_.bytes());
    output_.append_payload(d.msg);
    core_.counters().messages_sent.fetch_add(1, std::memory_order_relaxed);
    return true;
}

bool client_connection::within_rate(std::size_t payload_bytes) {
    if (limits_.max_publish_rate == 0 && limits_.max_publish_bytes_rate == 0) return true;
    // Token buckets refilled continuously; each holds at most one second's worth, so a
    // client may burst that much and then keep to the rate.
    const session::time_point now = core_.now();
    const double elapsed = std::chrono::duration<double>(now - rate_refilled_).count();
    rate_refilled_ = now;
    if (limits_.max_publish_rate != 0) {
        const double cap = static_cast<double>(limits_.max_publish_rate);
        rate_messages_ = std::min(cap, rate_messages_ + elapsed * cap) - 1;
    }
    if (limits_.max_publish_bytes_rate != 0) {
        const double cap = static_cast<double>(limits_.max_publish_bytes_rate);
        rate_bytes_ = std::min(cap, rate_bytes_ + elapsed * cap) - static_cast<double>(payload_bytes);
    }
    if (rate_messages_ >= 0 && rate_bytes_ >= 0) return true;
    core_.counters().rate_limited.fetch_add(1, std::memory_order_relaxed);
    fail(reason_code::message_rate_too_high,
         rate_messages_ < 0 ? "publish rate above the listener's max_publish_rate"
                            : "publish bytes above the listener's max_publish_bytes_rate");
    return false;
}

void client_connection::add_reason(protocol::properties& props, const char* why) const {
    if (request_problem_information_ && why && *why) props.reason_string = why;
}

}  // namespace edgemq::core
