// Rules for UTF-8 strings, topic names and topic filters (sections 1.5.4, 4.7, 4.8.2).
// Pure functions, no allocation.
#pragma once

#include <optional>
#include <string_view>

#include "broker/protocol/result.hpp"

namespace edgemq::protocol {

// Well-formed UTF-8 as the spec requires of every UTF-8 Encoded String: no overlong
// forms, no surrogates U+D800..U+DFFF [MQTT-1.5.4-1], no code point above U+10FFFF,
// no U+0000 [MQTT-1.5.4-2]. U+FEFF is kept as is [MQTT-1.5.4-3]. Control characters
// and non-characters are allowed (the spec says SHOULD NOT, not MUST NOT).
bool is_valid_utf8(std::string_view s) noexcept;

// A topic name in PUBLISH or a will: at least one character [MQTT-4.7.3-1], no '+'
// or '#' [MQTT-3.3.2-2], valid UTF-8, at most 65535 bytes.
// Errors: topic_name_invalid (for wildcards, empty) or malformed_packet (bad UTF-8).
status validate_topic_name(std::string_view topic) noexcept;

// A topic filter in SUBSCRIBE/UNSUBSCRIBE, shared form included: at least one
// character [MQTT-4.7.3-1]; '#' only as the last level and alone in it
// [MQTT-4.7.1-1]; '+' alone in its level [MQTT-4.7.1-2]; valid UTF-8; for
// "$share/{ShareName}/{filter}" a non-empty share name without '/', '+' or '#'
// [MQTT-4.8.2-1, MQTT-4.8.2-2] and a non-empty filter.
// Errors: topic_filter_invalid, or malformed_packet for bad UTF-8.
status validate_topic_filter(std::string_view filter) noexcept;

struct shared_filter {
    std::string_view share_name;  // the group
    std::string_view filter;      // what the group subscribes to
};

// For a filter already accepted by validate_topic_filter: its share name and inner
// filter when it starts with "$share/", nullopt otherwise.
std::optional<shared_filter> split_shared(std::string_view filter) noexcept;

// True when the filter contains '+' or '#' (after any $share prefix is removed).
bool has_wildcard(std::string_view filter) noexcept;

}  // namespace edgemq::protocol
