// libFuzzer target for the UTF-8, topic name and topic filter rules. The input is one
// string. Oracles: is_valid_utf8 agrees with a slow reference decoder written straight
// from RFC 3629 and [MQTT-1.5.4-1..2]; the topic checks agree with their definitions.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "broker/protocol/validate.hpp"

using namespace edgemq::protocol;

namespace {

[[noreturn]] void oracle_failed(const char* what) {
    std::fprintf(stderr, "validate oracle failed: %s\n", what);
    std::abort();
}

// Decode each code point fully, then judge it: shortest form, not a surrogate, not
// above U+10FFFF, not U+0000.
bool reference_utf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        std::uint32_t cp;
        std::size_t len;
        if (c < 0x80) { cp = c; len = 1; }
        else if ((c & 0xE0) == 0xC0) { cp = c & 0x1F; len = 2; }
        else if ((c & 0xF0) == 0xE0) { cp = c & 0x0F; len = 3; }
        else if ((c & 0xF8) == 0xF0) { cp = c & 0x07; len = 4; }
        else return false;
        if (i + len > s.size()) return false;
        for (std::size_t k = 1; k < len; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        const std::uint32_t min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_for_len[len]) return false;
        if (cp >= 0xD800 && cp <= 0xDFFF) return false;
        if (cp > 0x10FFFF) return false;
        if (cp == 0) return false;
        i += len;
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view s(reinterpret_cast<const char*>(data), size);
    const bool utf8 = is_valid_utf8(s);
    if (utf8 != reference_utf8(s)) oracle_failed("is_valid_utf8 disagrees with the reference decoder");

    const status name = validate_topic_name(s);
    if (name.ok()) {
        if (!utf8 || s.empty() || s.find_first_of("+#") != std::string_view::npos)
            oracle_failed("validate_topic_name accepted a bad name");
    } else {
        const bool expected_malformed = !utf8;
        if ((name.err().code == reason_code::malformed_packet) != expected_malformed)
            oracle_failed("validate_topic_name reason code");
        if (utf8 && name.err().code != reason_code::topic_name_invalid)
            oracle_failed("validate_topic_name: expected topic_name_invalid");
    }

    const status filter = validate_topic_filter(s);
    if (!filter.ok()) {
        if ((filter.err().code == reason_code::malformed_packet) == utf8)
            oracle_failed("validate_topic_filter reason code");
    } else {
        if (!utf8 || s.empty()) oracle_failed("validate_topic_filter accepted a bad filter");
        // A name without wildcards is a filter, unless it looks like a shared one.
        const auto shared = split_shared(s);
        if (s.starts_with("$share/") != shared.has_value())
            oracle_failed("split_shared disagrees with the $share/ prefix of a valid filter");
        std::string_view inner = shared ? shared->filter : s;
        if (shared && (shared->share_name.empty() || inner.empty()))
            oracle_failed("valid shared filter with an empty part");
        if (has_wildcard(s) != (inner.find_first_of("+#") != std::string_view::npos))
            oracle_failed("has_wildcard");
        // Wildcard placement: every '#' is a whole last level, every '+' a whole level.
        for (std::size_t i = 0; i < inner.size(); ++i) {
            if (inner[i] != '+' && inner[i] != '#') continue;
            const bool starts_level = i == 0 || inner[i - 1] == '/';
            const bool ends_level = i + 1 == inner.size() || inner[i + 1] == '/';
            if (!starts_level || !ends_level) oracle_failed("wildcard not alone in its level");
            if (inner[i] == '#' && i + 1 != inner.size()) oracle_failed("'#' not last");
        }
    }
    if (name.ok() && !s.starts_with("$share/") && !filter.ok())
        oracle_failed("a valid topic name is not a valid filter");
    return 0;
}
