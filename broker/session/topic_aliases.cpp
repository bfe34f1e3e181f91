#include "broker/session/topic_aliases.hpp"

namespace edgemq::session {

outbound_aliases::choice outbound_aliases::pick(std::string_view topic) {
    if (maximum_ == 0) return {};
    if (const std::uint16_t known = find(topic)) return {known, false};
    return {assign(topic), true};
}

std::uint16_t outbound_aliases::assign(std::string_view topic) {
    std::uint16_t alias;
    if (by_alias_.size() < maximum_) {
        by_alias_.emplace_back(topic);
        alias = static_cast<std::uint16_t>(by_alias_.size());
    } else {
        // Reassigning an alias is legal at any time: the PUBLISH that carries the new
        // topic together with the alias redefines it for the client.
        by_topic_.erase(by_alias_[next_victim_]);
        by_alias_[next_victim_].assign(topic);
        alias = static_cast<std::uint16_t>(next_victim_ + 1);
        next_victim_ = static_cast<std::uint16_t>((next_victim_ + 1) % maximum_);
    }
    by_topic_.emplace(std::string(topic), alias);
    return alias;
}

}  // namespace edgemq::session
