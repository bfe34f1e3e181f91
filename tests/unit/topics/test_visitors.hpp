// Visitors that record what the trees report, for the topics unit tests.
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/topics/retained_tree.hpp"
#include "broker/topics/subscription_tree.hpp"

namespace edgemq::topics::test {

using tree = subscription_tree<int>;

struct collector {
    struct group_call {
        std::vector<int> members;  // handles, in the tree's order
        std::size_t start;
    };
    std::vector<std::pair<int, subscription>> subscribers;
    std::vector<group_call> groups;

    void on_subscriber(const int& h, const subscription& s) { subscribers.emplace_back(h, s); }
    void on_shared_group(std::span<const tree::member> members, std::size_t start) {
        group_call call{{}, start};
        for (const auto& m : members) call.members.push_back(m.handle);
        groups.push_back(std::move(call));
    }

    // The non-shared handles, sorted (a handle appears once per matching filter).
    std::vector<int> handles() const {
        std::vector<int> out;
        for (const auto& [h, s] : subscribers) out.push_back(h);
        std::sort(out.begin(), out.end());
        return out;
    }
};

inline collector match(const tree& t, std::string_view topic) {
    collector c;
    t.match(topic, c);
    return c;
}

inline std::vector<int> handles(const tree& t, std::string_view topic) {
    return match(t, topic).handles();
}

template <class Value>
std::vector<Value> retained(const retained_tree<Value>& t, std::string_view filter) {
    std::vector<Value> out;
    t.match(filter, [&](const Value& v) { out.push_back(v); });
    std::sort(out.begin(), out.end());
    return out;
}

inline subscription sub(std::uint8_t qos, std::uint32_t identifier = 0) {
    subscription s;
    s.options.qos = qos;
    s.identifier = identifier;
    return s;
}

}  // namespace edgemq::topics::test
