// qos_peers: MQTT clients for crash tests that keep their session state across
// connections, as a real QoS 1/2 client must, so that a test can kill the broker at any
// moment, restart it, reconnect with clean start 0 and check exactly what the
// application saw.
//
// - qos_publisher publishes numbered messages ("<client id>:<seq>[:padding]") on one
//   topic with at most `window` unacknowledged, and after a reconnect resends its
//   unfinished flows in their original order [MQTT-4.4.0-1]: PUBLISH with DUP for those
//   without PUBACK/PUBREC, PUBREL for those with PUBREC.
// - qos_subscriber is the receiver side of QoS 1 and QoS 2 done right: a QoS 2 message
//   is delivered to the application on the first receipt of its packet id, the id is
//   remembered until PUBREL, and a PUBLISH with a remembered id is a resend, acknowledged
//   (PUBREC) but not delivered again [MQTT-4.3.3-9]. Session state (the remembered ids)
//   survives reconnects. It counts what the application got, per publisher and sequence.
// - pump() drives several of them from one thread with poll(2) until a condition, a
//   deadline or a lost connection, so the test itself decides when to kill the broker.
//
// Not thread-safe: one thread drives all peers (and owns the broker_process). Sends are
// gathered: the acknowledgements of everything read in one go leave in one write. A
// peer whose connection was lost keeps its session state; connect() again.
#pragma once

#include "support/mqtt_wire.hpp"
#include "support/raw_client.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace edgemq::test {

class qos_peer {
public:
    qos_peer(std::string client_id, std::uint8_t version);
    virtual ~qos_peer();
    qos_peer(const qos_peer&) = delete;
    qos_peer& operator=(const qos_peer&) = delete;

    // Opens a new connection (dropping any old one), CONNECT with `clean` and, for v5,
    // the Session Expiry Interval; throws std::runtime_error if refused. Then the peer
    // resumes (publisher: resends its unfinished flows). Returns the CONNACK.
    wire::connack_view connect(const std::string& host, std::uint16_t port, bool clean,
                               std::uint32_t session_expiry = 3600);
    bool connected() const { return conn_ && conn_->is_open(); }
    // Forgets the connection (e.g. the broker was killed), keeping the session state.
    void drop();
    // DISCONNECT (reason 0) and close; waits briefly for the broker's close.
    void disconnect();

    // Handles every packet that has arrived, without waiting, then gives the subclass a
    // chance to send (on_idle) and flushes what it queued. `stop` is asked after each
    // packet; when it holds, returns at once and the acknowledgements not yet written
    // are dropped, as if the client had crashed right there (its state is consistent
    // either way: that is what resends are for). False if the connection is gone.
    bool poll_once(const std::function<bool()>& stop);

    int native_handle() const { return conn_ ? conn_->native_handle() : -1; }
    const std::string& id() const { return id_; }
    std::uint8_t version() const { return version_; }
    // The broker's Receive Maximum from the last CONNACK (65535 if absent / 3.1.1).
    std::uint16_t server_receive_maximum() const { return server_receive_maximum_; }
    // Connections so far, and how many of the reconnects found no session.
    int connects() const { return connects_; }
    int sessions_lost() const { return sessions_lost_; }
    // Reason code of the last DISCONNECT the broker sent (v5), -1 if none.
    int last_disconnect_reason() const { return last_disconnect_reason_; }

protected:
    virtual void on_connected(bool session_present) = 0;
    virtual void on_packet(const wire::packet& p) = 0;
    virtual void on_idle() {}
    void queue(const wire::bytes& b) { out_.insert(out_.end(), b.begin(), b.end()); }
    raw_client& conn() { return *conn_; }

private:
    std::string id_;
    std::uint8_t version_;
    std::unique_ptr<raw_client> conn_;
    wire::bytes out_;
    std::uint16_t server_receive_maximum_ = 65535;
    int connects_ = 0;
    int sessions_lost_ = 0;
    int last_disconnect_reason_ = -1;
};

class qos_publisher : public qos_peer {
public:
    // payload_size 0: just "<id>:<seq>"; otherwise padded to that many bytes.
    qos_publisher(std::string client_id, std::uint8_t version, std::string topic, std::uint8_t qos,
                  std::uint16_t window = 32, std::size_t payload_size = 0);

    // Starts at most this many messages in all (default: no limit).
    void set_limit(std::uint64_t total) { limit_ = total; }
    // While paused no new message is started; unfinished flows still complete.
    void pause(bool paused) { paused_ = paused; }

    std::uint64_t started() const { return next_seq_; }  // seqs [0, started) were sent
    std::uint64_t accepted() const { return accepted_; }  // PUBACK / PUBREC < 0x80
    std::uint64_t rejected() const { return rejected_; }  // PUBACK / PUBREC >= 0x80
    std::uint64_t completed() const { return completed_; }  // flows finished (PUBACK, PUBCOMP, or rejected)
    std::size_t inflight() const { return inflight_.size(); }
    // "id:seq[r]" per unfinished flow (r: PUBREC came), for test output.
    std::string describe_inflight() const;
    bool idle() const { return inflight_.empty(); }
    // Per sequence number: 0 sent, not yet acknowledged; 1 accepted; 2 rejected.
    const std::vector<std::uint8_t>& status() const { return status_; }
    std::uint8_t last_reject_code() const { return last_reject_code_; }
    std::uint64_t resent_publishes() const { return resent_publishes_; }
    std::uint64_t resent_pubrels() const { return resent_pubrels_; }
    std::uint64_t pubacks() const { return pubacks_; }
    std::uint64_t pubrecs() const { return pubrecs_; }
    std::uint64_t pubcomps() const { return pubcomps_; }
    const std::string& topic() const { return topic_; }
    std::string payload_of(std::uint64_t seq) const;

protected:
    void on_connected(bool session_present) override;
    void on_packet(const wire::packet& p) override;
    void on_idle() override;

private:
    struct flight {
        std::uint64_t seq = 0;
        bool pubrec = false;  // QoS 2: PUBREC came, PUBREL sent (or to be resent)
    };
    wire::bytes publish_bytes(std::uint64_t seq, std::uint16_t packet_id, bool dup) const;
    void settle(std::uint64_t seq, std::uint8_t reason);

    std::string topic_;
    std::uint8_t qos_;
    std::uint16_t window_;
    std::size_t payload_size_;
    std::uint64_t limit_ = UINT64_MAX;
    bool paused_ = false;
    std::uint64_t next_seq_ = 0;
    std::map<std::uint16_t, flight> inflight_;  // by packet id
    std::vector<std::uint16_t> free_ids_;
    std::vector<std::uint8_t> status_;
    std::uint64_t accepted_ = 0, rejected_ = 0, completed_ = 0;
    std::uint8_t last_reject_code_ = 0;
    std::uint64_t resent_publishes_ = 0, resent_pubrels_ = 0, pubacks_ = 0, pubrecs_ = 0, pubcomps_ = 0;
};

class qos_subscriber : public qos_peer {
public:
    qos_subscriber(std::string client_id, std::uint8_t version, std::string filter, std::uint8_t qos);

    // SUBSCRIBE on the current connection and wait for the SUBACK (call right after the
    // first connect, before anything can arrive). Throws unless granted `qos`.
    void subscribe();

    std::uint64_t publishes() const { return publishes_; }        // PUBLISH packets read
    std::uint64_t deliveries() const { return deliveries_; }      // to the application
    std::uint64_t duplicates() const { return duplicates_; }      // app saw a (publisher, seq) again
    std::uint64_t resends_recognised() const { return resends_; }  // QoS 2 PUBLISH with a remembered id
    std::uint64_t id_conflicts() const { return id_conflicts_; }  // remembered id, other payload
    std::uint64_t out_of_order() const { return out_of_order_; }  // new seq below a seen one
    std::uint64_t pubrels() const { return pubrels_; }
    std::uint64_t unknown_pubrels() const { return unknown_pubrels_; }
    std::size_t remembered() const { return remembered_.size(); }
    std::vector<std::uint16_t> remembered_ids() const;
    std::uint64_t foreign() const { return foreign_; }  // payloads not "<id>:<seq>"
    const std::string& first_foreign() const { return first_foreign_; }
    // How many times the application got (publisher, seq).
    std::uint32_t count(const std::string& publisher, std::uint64_t seq) const;
    // Distinct sequence numbers received from `publisher`.
    std::uint64_t distinct(const std::string& publisher) const;
    // Highest sequence number received from `publisher` + 1 (0 if none).
    std::uint64_t horizon(const std::string& publisher) const;
    // Sequence numbers in [0, n) that never arrived from `publisher`.
    std::vector<std::uint64_t> missing(const std::string& publisher, std::uint64_t n) const;

protected:
    void on_connected(bool session_present) override;
    void on_packet(const wire::packet& p) override;

private:
    void deliver(const std::string& payload);

    std::string filter_;
    std::uint8_t qos_;
    std::map<std::uint16_t, std::string> remembered_;  // QoS 2 ids awaiting PUBREL -> payload
    struct per_publisher {
        std::vector<std::uint32_t> counts;
        std::uint64_t distinct = 0;
        std::uint64_t highest_plus_one = 0;
    };
    std::map<std::string, per_publisher> got_;
    std::uint64_t publishes_ = 0, deliveries_ = 0, duplicates_ = 0, resends_ = 0, id_conflicts_ = 0;
    std::uint64_t out_of_order_ = 0, pubrels_ = 0, unknown_pubrels_ = 0, foreign_ = 0;
    std::string first_foreign_;
};

enum class pump_result { stopped, timed_out, connection_lost };

// Polls all peers until `stop()` holds (asked after every packet, and between polls),
// or `timeout` passes (not scaled), or a connection is lost (broker gone). Peers that
// are not connected are skipped.
pump_result pump(const std::vector<qos_peer*>& peers, std::chrono::milliseconds timeout,
                 const std::function<bool()>& stop);

}  // namespace edgemq::test
