#include "broker/topics/topic_match.hpp"

#include "broker/topics/topic_levels.hpp"

namespace edgemq::topics {

bool topic_matches(std::string_view filter, std::string_view topic) noexcept {
    // [MQTT-4.7.2-1]: '+' and '#' are single-character levels in a valid filter, so
    // looking at the first byte is enough.
    if (is_dollar(topic) && !filter.empty() && (filter.front() == '+' || filter.front() == '#')) {
        return false;
    }
    level_cursor f(filter);
    level_cursor t(topic);
    while (!f.at_end()) {
        const auto fl = f.next();
        if (fl == "#") return true;  // the rest of the topic, possibly nothing
        if (t.at_end()) return false;
        const auto tl = t.next();
        if (fl != "+" && fl != tl) return false;
    }
    return t.at_end();
}

}  // namespace edgemq::topics
