// Topic Alias tables of one network connection [MQTT-3.3.2.3.4]. Aliases live and die
// with the connection, not the session [MQTT-3.3.2-7].
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace edgemq::session {

// Aliases the client defines in its PUBLISHes, up to the Topic Alias Maximum we sent.
class inbound_aliases {
public:
    void reset(std::uint16_t maximum) {
        maximum_ = maximum;
        topics_.clear();
        topics_.shrink_to_fit();
    }
    std::uint16_t maximum() const noexcept { return maximum_; }
    bool in_range(std::uint16_t alias) const noexcept { return alias != 0 && alias <= maximum_; }

    // Caller checks in_range first [MQTT-3.3.2-9].
    void define(std::uint16_t alias, std::string_view topic) {
        if (topics_.size() < alias) topics_.resize(alias);
        topics_[alias - 1].assign(topic);
    }
    // nullptr when the alias was never defined on this connection.
    const std::string* resolve(std::uint16_t alias) const noexcept {
        if (alias == 0 || alias > topics_.size() || topics_[alias - 1].empty()) return nullptr;
        return &topics_[alias - 1];
    }

private:
    std::uint16_t maximum_ = 0;
    std::vector<std::string> topics_;  // index alias - 1; empty = undefined
};

// Aliases we assign to topics we send, within the client's Topic Alias Maximum
// [MQTT-3.3.2-10]. When all are taken, the oldest assignment is replaced, so a
// working set of topics that fits keeps its aliases.
class outbound_aliases {
public:
    struct choice {
        std::uint16_t alias = 0;   // 0: send the topic without an alias
        bool send_topic = true;    // false: empty topic name, alias only
    };

    void reset(std::uint16_t maximum) {
        maximum_ = maximum;
        by_topic_.clear();
        by_alias_.clear();
        next_victim_ = 0;
    }

    // Picks for one PUBLISH: the topic's alias, or a new one (recorded).
    choice pick(std::string_view topic);

    bool enabled() const noexcept { return maximum_ != 0; }
    // The alias the client already knows for `topic`, or 0.
    std::uint16_t find(std::string_view topic) const noexcept {
        auto it = by_topic_.find(topic);
        return it == by_topic_.end() ? 0 : it->second;
    }
    // The alias assign() would give a topic without one (enabled() only).
    std::uint16_t next() const noexcept {
        return by_alias_.size() < maximum_ ? static_cast<std::uint16_t>(by_alias_.size() + 1)
                                           : static_cast<std::uint16_t>(next_victim_ + 1);
    }
    // Records `topic` under next(), replacing the oldest assignment when all are taken.
    std::uint16_t assign(std::string_view topic);

private:
    struct string_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    std::uint16_t maximum_ = 0;
    std::unordered_map<std::string, std::uint16_t, string_hash, std::equal_to<>> by_topic_;
    std::vector<std::string> by_alias_;  // index alias - 1
    std::uint16_t next_victim_ = 0;      // index into by_alias_ to replace next
};

}  // namespace edgemq::session
