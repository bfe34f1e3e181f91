// Rebuilds the broker's state from what the store holds, before the workers start:
// retained messages, and every persistent session (offline) on a worker of its own,
// with its subscriptions, queued and in-flight deliveries and QoS 2 packet ids.
#pragma once

#include "broker/core/broker.hpp"
#include "broker/core/store.hpp"

namespace edgemq::core {

struct restore_summary {
    std::size_t sessions = 0;
    std::size_t subscriptions = 0;
    std::size_t deliveries = 0;
    std::size_t retained = 0;
    std::size_t expired = 0;  // messages past their expiry, dropped on the way
};

// Takes `state` apart; call once, before any worker thread runs.
restore_summary restore_state(broker& b, stored_state state);

}  // namespace edgemq::core
