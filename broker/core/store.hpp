// The narrow interface through which the core keeps durable state. The core owns it;
// storage/ implements it with SQLite; app/ wires one in (or none: durability "none").
//
// What is stored:
//   - messages, once each, referenced by deliveries and retained entries; the store
//     deletes a message when nothing references it any more;
//   - sessions of clients with a Session Expiry Interval > 0 (v5) or Clean Session 0
//     (3.1.1), with their Will, subscriptions, the QoS 1/2 deliveries queued or in
//     flight to them, and the QoS 2 packet ids they sent that await PUBREL;
//   - retained messages.
// QoS 0 deliveries and non-persistent sessions never touch the store.
//
// Threading: submit() may be called from any worker. Operations are applied in the
// order submitted, in batches (one transaction per batch: group commit) on the store's
// own thread; `done` runs on that thread once the batch holding the operations is
// durable as the mode promises (or failed), and must only hand over to a worker (post).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "broker/protocol/packets.hpp"
#include "broker/session/message.hpp"

namespace edgemq::core {

// What an acknowledgement (PUBACK, PUBREC, PUBCOMP, SUBACK) promises.
enum class durability : std::uint8_t {
    none,     // memory only: nothing survives a restart
    process,  // committed to the operating system: survives kill -9 and crashes of edgemq
    power,    // committed and fsync'ed: survives power loss and kernel crashes
};

// Wall-clock time, milliseconds since the Unix epoch; 0 means "none". Stored deadlines
// use wall time so that they mean the same after a restart.
using wall_ms = std::int64_t;

struct stored_session {
    std::uint64_t id = 0;
    std::string client_id;
    std::uint32_t expiry_interval = 0;  // seconds; 0xFFFFFFFF never
    // When its last connection ended; 0 while connected (a session connected when the
    // broker stopped is treated as disconnected at the next start).
    wall_ms disconnected_at = 0;
    std::optional<protocol::will_message> will;  // will delay: will->props.will_delay_interval
};

struct stored_subscription {
    std::uint64_t session_id = 0;
    std::string filter;
    protocol::subscription_options options;
    std::uint32_t identifier = 0;
};

// A QoS 1/2 message queued or in flight to a persistent session.
struct stored_delivery {
    std::uint64_t session_id = 0;
    std::uint64_t row = 0;         // unique, increasing: the order deliveries were queued in
    std::uint64_t message_id = 0;
    std::uint8_t qos = 1;
    bool retain = false;
    std::vector<std::uint32_t> subscription_identifiers;
    // Send sequence number once sent (packet id = send_seq % 65535 + 1); 0 = not sent.
    std::uint64_t send_seq = 0;
    bool released = false;  // PUBREC received: the message is delivered, PUBREL pending
};

struct stored_message {
    std::uint64_t id = 0;
    std::string topic;
    std::string payload;
    std::string forwarded_properties;  // encoded v5 properties (see session::message)
    std::uint8_t qos = 0;
    bool retain = false;
    wall_ms expires_at = 0;
};

namespace store_ops {
// The message row; must be submitted before (or with) anything that references it.
// Holds the shared message: the store reads it on its own thread (it is immutable).
struct put_message { std::uint64_t id; session::message_ptr msg; wall_ms expires_at; };
// Insert or replace. Held by pointer: a session row (client id, Will) is big and rare,
// and would make every store_op, a hundred per message batch, as big as it is.
struct put_session {
    put_session(stored_session s) : session(std::make_shared<const stored_session>(std::move(s))) {}  // NOLINT(google-explicit-constructor)
    std::shared_ptr<const stored_session> session;
};
struct remove_session { std::uint64_t session_id; };     // and its subscriptions, deliveries, inbound ids
struct put_subscription { stored_subscription subscription; };  // insert or replace (session, filter)
struct remove_subscription { std::uint64_t session_id; std::string filter; };
struct put_delivery { stored_delivery delivery; };
struct mark_sent { std::uint64_t session_id; std::uint64_t row; std::uint64_t send_seq; };
struct mark_released { std::uint64_t session_id; std::uint64_t row; };
struct remove_delivery { std::uint64_t session_id; std::uint64_t row; };
struct put_inbound { std::uint64_t session_id; std::uint16_t packet_id; };
struct remove_inbound { std::uint64_t session_id; std::uint16_t packet_id; };
struct put_retained { std::string topic; std::uint64_t message_id; };  // replaces
// only_message_id != 0: only if that message is the one stored for the topic (an
// expiry must not remove a newer message that was retained meanwhile).
struct remove_retained { std::string topic; std::uint64_t only_message_id = 0; };
}  // namespace store_ops

using store_op = std::variant<store_ops::put_message, store_ops::put_session, store_ops::remove_session,
                              store_ops::put_subscription, store_ops::remove_subscription,
                              store_ops::put_delivery, store_ops::mark_sent, store_ops::mark_released,
                              store_ops::remove_delivery, store_ops::put_inbound, store_ops::remove_inbound,
                              store_ops::put_retained, store_ops::remove_retained>;

// Everything the store holds, read once at start-up.
struct stored_state {
    std::vector<stored_message> messages;
    std::vector<stored_session> sessions;
    std::vector<stored_subscription> subscriptions;
    std::vector<stored_delivery> deliveries;  // ordered by (session_id, row)
    std::vector<std::pair<std::uint64_t, std::uint16_t>> inbound;  // (session_id, packet_id)
    std::vector<std::pair<std::string, std::uint64_t>> retained;   // (topic, message_id)
    // Largest ids in use, so new ones never collide with stored ones.
    std::uint64_t max_message_id = 0;
    std::uint64_t max_session_id = 0;
    std::uint64_t max_delivery_row = 0;
};

// Opening or reading the store failed in a way an operator must resolve (corrupt or
// unreadable file, newer schema, ...). The message names the file and what to do.
class store_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class store {
public:
    virtual ~store() = default;

    virtual durability mode() const noexcept = 0;

    // Everything stored, for the core to rebuild its state before serving.
    virtual stored_state load() = 0;

    // Queues `ops` for the store's thread; `done(true)` once they are durable, or
    // `done(false)` when they could not be stored (disk full, I/O error): then nothing
    // of `ops` that adds data was kept. Operations that only remove or mark data are
    // retried by the store until they succeed, so they never fail (their `done` may
    // still report the failed attempt; callers need not act on it).
    virtual void submit(std::vector<store_op> ops, std::function<void(bool committed)> done) = 0;

    // Waits until everything submitted so far is committed (or failed), then stops the
    // store's thread. Called once at shutdown, after the workers have stopped.
    virtual void close() = 0;
};

}  // namespace edgemq::core
