// The MQTT protocol of one network connection, without the network: bytes in, packets
// decoded and handled against the worker's sessions, bytes out. The network layer owns
// one per socket, feeds it what it reads and writes what it produces; tests feed bytes
// and read bytes with a fake clock.
//
// Threading: everything runs on the owning worker's thread.
#pragma once

#include <cstdint>
#include <string>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "broker/core/authorizer.hpp"
#include "broker/core/output_queue.hpp"
#include "broker/core/settings.hpp"
#include "broker/core/worker_core.hpp"
#include "broker/protocol/codec.hpp"
#include "broker/protocol/packets.hpp"
#include "broker/session/topic_aliases.hpp"

namespace edgemq::core {

// What the connection needs from its transport. Implemented by net/ (a TCP socket)
// and by tests. Called only on the worker's thread.
class connection_io {
public:
    virtual ~connection_io() = default;
    // output() holds new bytes: write them once the current batch of work is done.
    virtual void output_ready() = 0;
    // Write what output() holds, then close the socket. No more input is processed.
    virtual void close() = 0;
    // Hand the socket to `worker`, which starts a new connection whose first input is
    // `replay` (the CONNECT and anything after it). This connection is done.
    virtual void migrate(unsigned worker, std::string replay) = 0;
};

class client_connection {
public:
    // `listener` (the one the socket came in on) must outlive the connection: its
    // limits apply, and it says whether a certificate identity is the user name.
    client_connection(worker_core& core, connection_io& io, std::string peer, const listener_settings& listener);
    ~client_connection();
    client_connection(const client_connection&) = delete;
    client_connection& operator=(const client_connection&) = delete;

    // The verified client certificate's identity (TLS listeners), before any input.
    void set_certificate_identity(std::optional<std::string> identity) { certificate_identity_ = std::move(identity); }
    const std::optional<std::string>& certificate_identity() const noexcept { return certificate_identity_; }

    // Bytes read from the socket. Every complete packet is handled; a partial one is
    // kept until the rest arrives.
    void on_input(std::string_view bytes);
    // Encoded packets waiting to be written. The transport takes them (swap) when it
    // starts a write.
    output_queue& output() noexcept { return output_; }
    // A write finished: room for more, so send what the session has waiting.
    void on_output_written();
    // The socket is gone (EOF, error, or closed after close()).
    void on_transport_closed(std::string_view why);
    // Keep Alive [MQTT-3.1.2-24] and CONNECT timeout. Call periodically.
    void tick();
    // The broker is stopping: DISCONNECT 0x8B (v5) and close.
    void shut_down();
    // The session moved to a newer connection: DISCONNECT 0x8E (v5) and close
    // [MQTT-3.1.4-3]. Called by worker_core::open_session.
    void take_over();

    // True once after input routed messages to a session that cannot keep up: the
    // transport should pause reading from this client for a moment, so that TCP flow
    // control slows it down instead of the broker dropping what it sent.
    bool take_slow_down() noexcept { return std::exchange(slow_down_, false); }

    bool closed() const noexcept { return phase_ == phase::closed || phase_ == phase::migrated; }
    const std::string& peer() const noexcept { return peer_; }
    std::string_view client_id() const noexcept;
    const client_identity& identity() const noexcept { return identity_; }
    const listener_settings& listener() const noexcept { return listener_; }

    // Used by worker_core when delivering: sends what the session has queued.
    void pump();

    // Identifies this connection's store-bound work in its worker_core.
    std::uint64_t stream_id() const noexcept { return stream_id_; }
    std::uint64_t session_key() const noexcept { return session_ ? session_->key : 0; }
    // An acknowledgement held until the store committed what it acknowledges; `stored`
    // is false when the store failed: then PUBACK/PUBREC say Quota exceeded (v5), and a
    // 3.1.1 client, which cannot be told, is disconnected so that it sends again.
    void send_after_store(const protocol::packet& ack, bool stored);
    // Queues a packet for the client (encoded now, written by the transport later).
    void send(const protocol::packet& p);

private:
    // authenticating: a v5 CONNECT waits for the AUTH exchange to finish [MQTT-4.12].
    enum class phase : std::uint8_t { awaiting_connect, authenticating, connected, closed, migrated };

    // A CONNECT accepted so far, waiting for authentication to finish.
    struct pending_connect {
        protocol::connect c;
        std::string client_id;
        bool assigned_id = false;
        std::uint32_t expiry = 0;
        bool expiry_changed = false;
    };

    bool handle_packet(const protocol::fixed_header& header, std::string_view body, std::string_view rest);
    bool handle_connect(const protocol::fixed_header& header, std::string_view body, std::string_view rest);
    void handle_publish(protocol::publish& p);
    void handle_puback(const protocol::puback& p);
    void handle_pubrec(const protocol::pubrec& p);
    void handle_pubrel(const protocol::pubrel& p);
    void handle_pubcomp(const protocol::pubcomp& p);
    void handle_subscribe(const protocol::subscribe& p);
    void handle_unsubscribe(const protocol::unsubscribe& p);
    void handle_disconnect(const protocol::disconnect& p);
    void handle_auth(const protocol::auth& p);

    void refuse_connect(protocol::protocol_version version, protocol::reason_code code, const char* why);
    // Closes a connection that never got a session (nothing more is written), giving
    // back the claim on the client id an unfinished AUTH exchange holds.
    void close_before_session();
    void give_back_pending_claim();
    // Who the client is, from its certificate, password or AUTH exchange; false when
    // the CONNECT was refused.
    bool authenticate(protocol::connect& c);
    bool begin_exchange(pending_connect pending, std::string_view rest);
    bool continue_exchange(const protocol::auth& a, std::string_view rest);
    bool exchange_step(auth_exchange::step step, std::string_view rest);
    // Opens the session and sends CONNACK (with `extra` Authentication properties).
    bool accept_connect(pending_connect& pending, std::string_view rest, protocol::properties extra);
    // The publish rate limit: false (and the client disconnected) when exceeded.
    bool within_rate(std::size_t payload_bytes);
    // Protocol violation or resource limit: DISCONNECT with `code` (v5, unless
    // !tell_client), close, Will due.
    void fail(protocol::reason_code code, const char* why, bool tell_client = true);
    void fail(const protocol::error& err) { fail(err.code, err.what); }
    // Ends the connection; `why` decides what happens to the Will.
    void finish(worker_core::detach_reason why, std::string_view log_reason);

    void send_ack(protocol::packet_type type, std::uint16_t packet_id, protocol::reason_code code);
    // An acknowledgement of a PUBLISH answered without routing it (refused, dropped or a
    // duplicate), queued behind those still waiting for the store.
    void ack_in_order(protocol::packet_type type, std::uint16_t packet_id, protocol::reason_code code);
    static protocol::packet make_ack(protocol::packet_type type, std::uint16_t packet_id, protocol::reason_code code);
    bool can_send() const noexcept { return output_.size() < core_.settings().max_output_buffer; }
    bool send_publish(const session::delivery& d, std::uint16_t packet_id, bool dup, std::uint64_t send_seq);
    // First sends of QoS 2 deliveries to a persistent session wait until their send
    // sequence numbers (hence packet ids) are durable: a message received and
    // acknowledged with PUBREC before a crash must come again with the same packet id,
    // or the client would take it for a new one [MQTT-4.3.3, exactly once].
    bool may_send(const session::delivery& d, std::uint64_t send_seq);
    void reserve_send_sequence(std::uint64_t first_seq);
    std::uint64_t stored_session_id() const noexcept;
    // Reason String for the client, unless it asked us not to [MQTT-3.1.2-29].
    void add_reason(protocol::properties& props, const char* why) const;

    struct flow_sink;

    worker_core& core_;
    connection_io& io_;
    std::string peer_;
    const listener_settings& listener_;
    const connection_limits& limits_;
    std::optional<std::string> certificate_identity_;
    client_identity identity_;
    std::unique_ptr<auth_exchange> exchange_;  // during an AUTH exchange
    std::unique_ptr<pending_connect> pending_;  // while authenticating
    std::string auth_method_;                  // of the CONNECT, for re-authentication
    // Token buckets of the publish rate limit: what may still be sent this second.
    double rate_messages_ = 0;
    double rate_bytes_ = 0;
    session::time_point rate_refilled_{};
    phase phase_ = phase::awaiting_connect;
    bool slow_down_ = false;
    std::uint64_t stream_id_;
    // QoS 2 send sequence numbers reserved in the store: row -> (seq, durable yet).
    struct reservation {
        std::uint64_t seq;
        bool durable;
    };
    std::unordered_map<std::uint64_t, reservation> reserved_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
    protocol::protocol_version version_ = protocol::protocol_version::v311;
    session::time_point opened_at_;
    session::time_point last_packet_at_;
    std::uint16_t keep_alive_ = 0;                 // seconds, as in force
    std::uint16_t client_receive_maximum_ = 65535;
    // QoS 1/2 PUBLISHes received on this connection and not answered yet with PUBACK,
    // PUBCOMP or a failed PUBREC: the client's send quota in use, which Receive
    // Maximum bounds, counted per connection as the client counts it [MQTT-3.3.4-9].
    std::uint32_t inbound_in_flight_ = 0;
    std::uint32_t client_maximum_packet_size_ = 268'435'455;
    bool request_problem_information_ = true;
    session::inbound_aliases inbound_aliases_;
    session::outbound_aliases outbound_aliases_;
    client_session* session_ = nullptr;
    std::string input_;   // an incomplete packet carried over between reads
    output_queue output_;
};

}  // namespace edgemq::core
