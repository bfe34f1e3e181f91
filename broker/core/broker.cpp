#include "broker/core/broker.hpp"

#include "broker/core/worker_core.hpp"

#include <chrono>
#include <random>

namespace edgemq::core {

broker::broker(broker_settings settings) : settings_(std::move(settings)) {
    // Assigned client ids must not repeat across restarts, or a restarted broker could
    // hand a new client the persistent session of an old one.
    std::random_device rd;
    instance_nonce_ = (std::uint64_t{rd()} << 32) ^ rd() ^
                      static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
}

void broker::add_worker(worker_core& core, worker_executor& executor) {
    workers_.push_back(worker_slot{&core, &executor});
}

void broker::set_authorizer(std::shared_ptr<const authorizer> a) {
    for (auto& w : workers_) {
        worker_core* core = w.core;
        w.executor->post([core, a] { core->set_authorizer(a); });
    }
}

unsigned broker::claim_home(std::string_view client_id, unsigned candidate) {
    std::lock_guard lock(homes_mutex_);
    auto [it, inserted] = homes_.try_emplace(std::string(client_id), candidate);
    return it->second;
}

void broker::release_home(std::string_view client_id, unsigned owner) {
    std::lock_guard lock(homes_mutex_);
    if (auto it = homes_.find(client_id); it != homes_.end() && it->second == owner) homes_.erase(it);
}

bool broker::subscribe(std::string_view filter, const subscriber& who, const topics::subscription& sub) {
    std::unique_lock lock(subscriptions_mutex_);
    return subscriptions_.subscribe(filter, who, sub);
}

bool broker::unsubscribe(std::string_view filter, const subscriber& who) {
    std::unique_lock lock(subscriptions_mutex_);
    return subscriptions_.unsubscribe(filter, who);
}

void broker::retain(const session::message_ptr& msg) {
    std::unique_lock lock(retained_mutex_);
    if (msg->payload.empty()) {
        retained_.erase(msg->topic);  // [MQTT-3.3.1-6]
        return;
    }
    retained_.set(msg->topic, msg);  // replaces [MQTT-3.3.1-5]
    if (msg->expires_at != session::never) retained_with_expiry_.fetch_add(1, std::memory_order_relaxed);
}

std::size_t broker::expire_retained(session::time_point now,
                                    std::vector<std::pair<std::string, std::uint64_t>>* stored) {
    if (retained_with_expiry_.load(std::memory_order_relaxed) == 0) return 0;
    std::unique_lock lock(retained_mutex_);
    std::size_t with_expiry = 0;
    std::size_t removed = retained_.erase_if([&](const session::message_ptr& msg) {
        if (msg->expires_at == session::never) return false;
        if (msg->expired(now)) {
            if (stored && msg->store_id != 0) stored->emplace_back(msg->topic, msg->store_id);
            return true;
        }
        ++with_expiry;
        return false;
    });
    // Recount: replaced or deleted messages may have carried an expiry too.
    retained_with_expiry_.store(with_expiry, std::memory_order_relaxed);
    return removed;
}

std::size_t broker::retained_count() const {
    std::shared_lock lock(retained_mutex_);
    return retained_.size();
}

void broker::seed_ids(const stored_state& state) noexcept {
    message_ids_.store(state.max_message_id, std::memory_order_relaxed);
    session_ids_.store(state.max_session_id, std::memory_order_relaxed);
    delivery_rows_.store(state.max_delivery_row, std::memory_order_relaxed);
}

std::size_t broker::subscription_count() const {
    std::shared_lock lock(subscriptions_mutex_);
    return subscriptions_.size();
}

std::string broker::assign_client_id() {
    const std::uint64_t n = assigned_ids_.fetch_add(1, std::memory_order_relaxed);
    char buf[48];
    const int len = std::snprintf(buf, sizeof buf, "edgemq-%016llx-%llx",
                                  static_cast<unsigned long long>(instance_nonce_),
                                  static_cast<unsigned long long>(n));
    return std::string(buf, static_cast<std::size_t>(len));
}

}  // namespace edgemq::core
