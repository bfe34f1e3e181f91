// paho_client: a Paho MQTT C++ (1.2) async_client set up for tests.
//
// No client persistence (Paho's default would write files into the working
// directory), messages consumed through Paho's queue, and every blocking call bounded
// by a timeout (scaled by EDGEMQ_TEST_TIME_SCALE). Failures throw (mqtt::exception or
// std::runtime_error), which doctest reports with the message.
#pragma once

#include "support/broker_process.hpp"

#include <mqtt/async_client.h>

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

namespace edgemq::test {

inline constexpr int v311 = MQTTVERSION_3_1_1;
inline constexpr int v5 = MQTTVERSION_5;
inline constexpr int versions[] = {v311, v5};
inline std::string version_name(int v) { return v == v5 ? "5.0" : "3.1.1"; }

class paho_client {
public:
    using ms = std::chrono::milliseconds;

    paho_client(const broker_process& broker, std::string client_id, int version);
    // Any server URI Paho takes: "ssl://HOST:PORT", "ws://HOST:PORT/mqtt", "wss://...".
    paho_client(const std::string& server_uri, std::string client_id, int version);
    ~paho_client();

    mqtt::async_client& client() { return client_; }
    int version() const { return version_; }
    const std::string& id() const { return id_; }

    // Connects with clean session/start = `clean`; v5 `props` go into CONNECT.
    mqtt::connect_response connect(bool clean = true, const mqtt::properties& props = {},
                                   std::optional<mqtt::will_options> will = std::nullopt, int keep_alive_s = 60);
    mqtt::connect_response connect(mqtt::connect_options opts);
    // Starts a clean connect without waiting; see connect_all().
    mqtt::token_ptr start_connect(bool clean = true, const mqtt::properties& props = {});
    // Waits for the SUBACK and returns its reason codes (granted QoS or v5 error).
    std::vector<mqtt::ReasonCode> subscribe(const std::string& filter, int qos,
                                            const mqtt::subscribe_options& opts = {},
                                            const mqtt::properties& props = {});
    void unsubscribe(const std::string& filter);
    // Waits until the publish flow completes (PUBACK / PUBCOMP for QoS 1/2).
    void publish(const std::string& topic, const std::string& payload, int qos = 0, bool retain = false,
                 const mqtt::properties& props = {});
    void disconnect(mqtt::ReasonCode reason = mqtt::ReasonCode::SUCCESS);

    // Next received message, or nullptr after `timeout`.
    mqtt::const_message_ptr next(ms timeout = ms(3000));
    // Exactly what arrives until `n` messages are in, or the timeout passes.
    std::vector<mqtt::const_message_ptr> take(std::size_t n, ms timeout = ms(3000));
    // True if no message arrives within `quiet` (not scaled by EDGEMQ_TEST_TIME_SCALE).
    bool silent(ms quiet);
    // Times the connection was lost (no DISCONNECT from our side).
    int lost() const { return lost_; }
    // v5: reason code of the last DISCONNECT the server sent, -1 if none.
    int server_disconnect_reason() const { return server_disconnect_; }

private:
    std::string id_;
    int version_;
    mqtt::async_client client_;
    std::atomic<int> lost_{0};
    std::atomic<int> server_disconnect_{-1};
};

// Connects several clients at once (clean, default options). Paho connects quickly
// only while none of its clients is idle-connected, so tests connect all up front.
void connect_all(std::initializer_list<paho_client*> clients);

// Payload as std::string.
inline std::string payload(const mqtt::const_message_ptr& m) { return m ? m->get_payload_str() : "<none>"; }
// All Subscription Identifiers of a v5 message, in order.
std::vector<int> subscription_ids(const mqtt::const_message_ptr& m);

}  // namespace edgemq::test
