#include "broker/protocol/validate.hpp"

#include <cstdint>
#include <cstring>

#include "broker/protocol/wire.hpp"

namespace edgemq::protocol {

namespace {

constexpr std::string_view share_prefix = "$share/";

// True when none of the 8 bytes has its high bit set and none is zero: such a word
// is plain ASCII without U+0000 and needs no further look.
inline bool ascii_word_without_nul(std::uint64_t w) noexcept {
    constexpr std::uint64_t lows = 0x0101010101010101ull;
    constexpr std::uint64_t highs = 0x8080808080808080ull;
    const bool has_high = (w & highs) != 0;
    const bool has_zero = ((w - lows) & ~w & highs) != 0;
    return !has_high && !has_zero;
}

}  // namespace

namespace wire {

// One pass over `s`: well-formedness per [MQTT-1.5.4-1], [MQTT-1.5.4-2] and RFC 3629
// (table 3-7 of the Unicode standard: exact second-byte ranges exclude overlong forms,
// surrogates and code points above U+10FFFF), plus whether '+' or '#' occurs, so a
// PUBLISH topic is checked in a single scan on the hot path.
bool scan_utf8(std::string_view s, bool& has_wildcard) noexcept {
    has_wildcard = false;
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const auto* const end = p + s.size();
    while (p != end) {
        // Long ASCII runs (payload-like strings, user properties) go 8 bytes at a time;
        // wildcards are looked for only when a word is inspected byte by byte, so
        // words with '+' or '#' must not be skipped: check them below.
        if (end - p >= 8) {
            std::uint64_t w;
            std::memcpy(&w, p, 8);
            if (ascii_word_without_nul(w)) {
                // '+' is 0x2B, '#' is 0x23: test each byte cheaply via the zero-byte trick.
                constexpr std::uint64_t lows = 0x0101010101010101ull;
                constexpr std::uint64_t highs = 0x8080808080808080ull;
                const std::uint64_t plus = w ^ (lows * '+');
                const std::uint64_t hash = w ^ (lows * '#');
                if (((plus - lows) & ~plus & highs) != 0 || ((hash - lows) & ~hash & highs) != 0)
                    has_wildcard = true;
                p += 8;
                continue;
            }
        }
        const unsigned char c = *p;
        if (c < 0x80) {
            if (c == 0) return false;  // U+0000 [MQTT-1.5.4-2]
            if (c == '+' || c == '#') has_wildcard = true;
            ++p;
            continue;
        }
        std::size_t extra;
        unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
        if (c >= 0xC2 && c <= 0xDF) {
            extra = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            extra = 2;
            if (c == 0xE0) lo = 0xA0;       // overlong below U+0800
            else if (c == 0xED) hi = 0x9F;  // U+D800..U+DFFF surrogates [MQTT-1.5.4-1]
        } else if (c >= 0xF0 && c <= 0xF4) {
            extra = 3;
            if (c == 0xF0) lo = 0x90;       // overlong below U+10000
            else if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
        } else {
            return false;  // continuation byte, overlong C0/C1, or F5..FF
        }
        if (static_cast<std::size_t>(end - p) <= extra) return false;
        if (p[1] < lo || p[1] > hi) return false;
        for (std::size_t i = 2; i <= extra; ++i)
            if ((p[i] & 0xC0) != 0x80) return false;
        p += extra + 1;
    }
    return true;
}

}  // namespace wire

bool is_valid_utf8(std::string_view s) noexcept {
    bool wildcard;
    return wire::scan_utf8(s, wildcard);
}

status validate_topic_name(std::string_view topic) noexcept {
    bool wildcard;
    if (!wire::scan_utf8(topic, wildcard))
        return malformed("[MQTT-1.5.4-1] topic name is not well-formed UTF-8");
    if (topic.empty())
        return error{reason_code::topic_name_invalid, "[MQTT-4.7.3-1] topic name is empty"};
    if (wildcard)
        return error{reason_code::topic_name_invalid, "[MQTT-3.3.2-2] topic name contains a wildcard"};
    if (topic.size() > 65535)
        return error{reason_code::topic_name_invalid, "[MQTT-4.7.3-3] topic name longer than 65535 bytes"};
    return ok_status();
}

namespace {

// Level rules of a (non-shared) filter: '#' alone in the last level [MQTT-4.7.1-1],
// '+' alone in its level [MQTT-4.7.1-2].
bool filter_levels_valid(std::string_view filter) noexcept {
    std::size_t level_start = 0;
    for (std::size_t i = 0; i < filter.size(); ++i) {
        const char c = filter[i];
        if (c == '/') {
            level_start = i + 1;
        } else if (c == '#') {
            if (i != level_start || i + 1 != filter.size()) return false;
        } else if (c == '+') {
            if (i != level_start) return false;
            if (i + 1 != filter.size() && filter[i + 1] != '/') return false;
        }
    }
    return true;
}

}  // namespace

status validate_topic_filter(std::string_view filter) noexcept {
    if (!is_valid_utf8(filter))
        return malformed("[MQTT-1.5.4-1] topic filter is not well-formed UTF-8");
    if (filter.empty())
        return error{reason_code::topic_filter_invalid, "[MQTT-4.7.3-1] topic filter is empty"};
    if (filter.size() > 65535)
        return error{reason_code::topic_filter_invalid, "[MQTT-4.7.3-3] topic filter longer than 65535 bytes"};
    std::string_view inner = filter;
    if (filter.starts_with(share_prefix)) {
        const std::string_view rest = filter.substr(share_prefix.size());
        const std::size_t slash = rest.find('/');
        if (slash == std::string_view::npos)
            return error{reason_code::topic_filter_invalid,
                         "[MQTT-4.8.2-2] shared subscription without a topic filter"};
        const std::string_view share_name = rest.substr(0, slash);
        if (share_name.empty())
            return error{reason_code::topic_filter_invalid, "[MQTT-4.8.2-1] empty ShareName"};
        if (share_name.find_first_of("+#") != std::string_view::npos)
            return error{reason_code::topic_filter_invalid,
                         "[MQTT-4.8.2-2] ShareName contains a wildcard"};
        inner = rest.substr(slash + 1);
        if (inner.empty())
            return error{reason_code::topic_filter_invalid,
                         "[MQTT-4.8.2-2] shared subscription with an empty topic filter"};
    }
    if (!filter_levels_valid(inner))
        return error{reason_code::topic_filter_invalid,
                     "[MQTT-4.7.1-1] [MQTT-4.7.1-2] wildcard not alone in its level"};
    return ok_status();
}

std::optional<shared_filter> split_shared(std::string_view filter) noexcept {
    if (!filter.starts_with(share_prefix)) return std::nullopt;
    const std::string_view rest = filter.substr(share_prefix.size());
    const std::size_t slash = rest.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    return shared_filter{rest.substr(0, slash), rest.substr(slash + 1)};
}

bool has_wildcard(std::string_view filter) noexcept {
    if (auto shared = split_shared(filter)) filter = shared->filter;
    return filter.find_first_of("+#") != std::string_view::npos;
}

}  // namespace edgemq::protocol
