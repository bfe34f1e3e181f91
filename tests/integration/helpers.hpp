// Helpers shared by the integration tests: unique names and "collect until sentinel".
#pragma once

#include "paho_client.hpp"
#include "support/broker_process.hpp"
#include "support/raw_client.hpp"
#include "support/wait.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace edgemq::test {

using namespace std::chrono_literals;

// Receives until the message `sentinel_payload` on topic `sentinel` arrives (the sender
// publishes it last) and returns the topics received before it, sorted. Relies on one
// publisher's messages reaching one subscriber in order, which every broker we test
// does [MQTT-4.6.0-6]. Other messages on `sentinel` (extra copies of an earlier
// sentinel, allowed for overlapping subscriptions [MQTT-3.3.4-2]) are skipped.
inline std::vector<std::string> topics_until_sentinel(paho_client& c, const std::string& sentinel,
                                                      const std::string& sentinel_payload = "",
                                                      std::chrono::milliseconds timeout = 3000ms) {
    std::vector<std::string> topics;
    auto deadline = std::chrono::steady_clock::now() + scaled(timeout);
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        auto m = c.next(std::max(left, 1ms));
        REQUIRE_MESSAGE(m, "sentinel '" << sentinel << "' not received; got so far: " << topics.size());
        if (m->get_topic() == sentinel) {
            if (payload(m) == sentinel_payload) break;
            continue;
        }
        topics.push_back(m->get_topic());
    }
    std::sort(topics.begin(), topics.end());
    return topics;
}

inline std::string pair_name(int pub, int sub) {
    return std::string("pub ") + version_name(pub) + " -> sub " + version_name(sub);
}

}  // namespace edgemq::test
