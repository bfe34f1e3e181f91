#include "paho_client.hpp"

#include "support/wait.hpp"

#include <mutex>
#include <set>
#include <stdexcept>

namespace edgemq::test {

namespace {

// Paho C (1.3.12) polls its sockets with a 1 s timeout and adds a new socket to the
// poll set only when that poll returns, so a connect made while another client of
// this process is connected and idle takes ~2 s (measured). Traffic on any connected
// client wakes the poll: while a connect is pending we make one ask the broker for an
// UNSUBACK of a filter it never subscribed, which changes no broker state.
std::mutex registry_mutex;
std::set<paho_client*> registry;

constexpr std::chrono::milliseconds op_timeout{5000};

void wait_token(const mqtt::token_ptr& tok, const char* what) {
    if (!tok->wait_for(scaled(op_timeout)))
        throw std::runtime_error(std::string("paho: ") + what + " did not complete within 5 s");
}

}  // namespace

paho_client::paho_client(const broker_process& broker, std::string client_id, int version)
    : paho_client(broker.uri(), std::move(client_id), version) {}

paho_client::paho_client(const std::string& server_uri, std::string client_id, int version)
    : id_(std::move(client_id)),
      version_(version),
      client_(server_uri, id_, mqtt::create_options(version), static_cast<mqtt::iclient_persistence*>(nullptr)) {
    client_.set_connection_lost_handler([this](const std::string&) { ++lost_; });
    client_.set_disconnected_handler(
        [this](const mqtt::properties&, mqtt::ReasonCode reason) { server_disconnect_ = static_cast<int>(reason); });
    client_.start_consuming();
    std::lock_guard lock(registry_mutex);
    registry.insert(this);
}

paho_client::~paho_client() {
    {
        std::lock_guard lock(registry_mutex);
        registry.erase(this);
    }
    try {
        if (client_.is_connected()) client_.disconnect()->wait_for(std::chrono::seconds(2));
    } catch (...) {
        // Destructors must not throw; the broker going away first is normal here.
    }
}

mqtt::connect_response paho_client::connect(bool clean, const mqtt::properties& props,
                                            std::optional<mqtt::will_options> will, int keep_alive_s) {
    mqtt::connect_options_builder b;
    b.mqtt_version(version_).keep_alive_interval(std::chrono::seconds(keep_alive_s)).connect_timeout(scaled(op_timeout));
    if (version_ == v5) b.clean_start(clean).properties(props);
    else b.clean_session(clean);
    if (will) b.will(std::move(*will));
    return connect(b.finalize());
}

mqtt::token_ptr paho_client::start_connect(bool clean, const mqtt::properties& props) {
    mqtt::connect_options_builder b;
    b.mqtt_version(version_).keep_alive_interval(std::chrono::seconds(60)).connect_timeout(scaled(op_timeout));
    if (version_ == v5) b.clean_start(clean).properties(props);
    else b.clean_session(clean);
    return client_.connect(b.finalize());
}

void connect_all(std::initializer_list<paho_client*> clients) {
    std::vector<mqtt::token_ptr> tokens;
    for (auto* c : clients) tokens.push_back(c->start_connect());
    for (auto& t : tokens) wait_token(t, "connect");
}

mqtt::connect_response paho_client::connect(mqtt::connect_options opts) {
    auto tok = client_.connect(std::move(opts));
    auto deadline = std::chrono::steady_clock::now() + scaled(op_timeout);
    while (!tok->wait_for(std::chrono::milliseconds(10)) && std::chrono::steady_clock::now() < deadline) {
        std::lock_guard lock(registry_mutex);
        for (paho_client* other : registry) {
            if (other == this || !other->client_.is_connected()) continue;
            try {
                other->client_.unsubscribe("edgemq-test/poll-wakeup");
            } catch (const mqtt::exception&) {
                // It may have just lost its connection; another one will do.
            }
            break;
        }
    }
    wait_token(tok, "connect");
    return tok->get_connect_response();
}

std::vector<mqtt::ReasonCode> paho_client::subscribe(const std::string& filter, int qos,
                                                     const mqtt::subscribe_options& opts,
                                                     const mqtt::properties& props) {
    auto tok = client_.subscribe(filter, qos, opts, props);
    wait_token(tok, "subscribe");
    return tok->get_subscribe_response().get_reason_codes();
}

void paho_client::unsubscribe(const std::string& filter) { wait_token(client_.unsubscribe(filter), "unsubscribe"); }

void paho_client::publish(const std::string& topic, const std::string& payload, int qos, bool retain,
                          const mqtt::properties& props) {
    auto msg = mqtt::message_ptr_builder().topic(topic).payload(payload).qos(qos).retained(retain).properties(props).finalize();
    wait_token(client_.publish(msg), "publish");
}

void paho_client::disconnect(mqtt::ReasonCode reason) {
    auto opts = mqtt::disconnect_options_builder().reason_code(reason).finalize();
    wait_token(client_.disconnect(opts), "disconnect");
}

mqtt::const_message_ptr paho_client::next(ms timeout) {
    auto deadline = std::chrono::steady_clock::now() + scaled(timeout);
    mqtt::const_message_ptr msg;
    // A nullptr in Paho's queue marks a lost connection, not a message: skip it.
    while (client_.try_consume_message_until(&msg, deadline))
        if (msg) return msg;
    return nullptr;
}

std::vector<mqtt::const_message_ptr> paho_client::take(std::size_t n, ms timeout) {
    std::vector<mqtt::const_message_ptr> out;
    auto deadline = std::chrono::steady_clock::now() + scaled(timeout);
    mqtt::const_message_ptr msg;
    while (out.size() < n && client_.try_consume_message_until(&msg, deadline))
        if (msg) out.push_back(msg);
    return out;
}

bool paho_client::silent(ms quiet) {
    // Not scaled, unlike next(): a quiet period is a lower bound (and may be time under test).
    mqtt::const_message_ptr msg;
    auto deadline = std::chrono::steady_clock::now() + quiet;
    while (client_.try_consume_message_until(&msg, deadline))
        if (msg) return false;
    return true;
}

std::vector<int> subscription_ids(const mqtt::const_message_ptr& m) {
    std::vector<int> ids;
    if (!m) return ids;
    const auto& props = m->get_properties();
    for (std::size_t i = 0; i < props.count(mqtt::property::SUBSCRIPTION_IDENTIFIER); ++i)
        ids.push_back(mqtt::get<int>(props, mqtt::property::SUBSCRIPTION_IDENTIFIER, i));
    return ids;
}

}  // namespace edgemq::test
