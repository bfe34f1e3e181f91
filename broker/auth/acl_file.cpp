#include "broker/auth/acl_file.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "broker/auth/text_file.hpp"
#include "broker/protocol/validate.hpp"
#include "broker/topics/topic_levels.hpp"

namespace edgemq::auth {
namespace {

using topics::is_dollar;
using topics::level_cursor;

enum access_bits : std::uint8_t {
    access_deny = 0,  // Mosquitto's MOSQ_ACL_NONE
    access_read = 1,
    access_write = 2,
};

// One level of a rule's filter. In a pattern, a level holding "%c" or "%u" is a
// template: literal text and substitutions, compared piece by piece against a topic
// level so that checks do not build the substituted string.
struct piece {
    enum class kind : std::uint8_t { text, client_id, username };
    kind what = kind::text;
    std::string text;
};

struct level {
    enum class kind : std::uint8_t { literal, plus, hash, templated };
    kind what = kind::literal;
    std::string text;            // literal
    std::vector<piece> pieces;   // templated
};

struct rule {
    std::string filter;  // as written, for diagnostics
    std::uint8_t access = access_deny;
    std::vector<level> levels;
    bool dollar = false;  // the filter as written starts with '$'
    bool uses_client_id = false;
    bool uses_username = false;
};

struct rule_set {
    std::vector<rule> denies;  // consulted before the others, wherever they stand
    std::vector<rule> allows;

    void add(rule r) { (r.access == access_deny ? denies : allows).push_back(std::move(r)); }
};

// What the substitutions see.
struct subject {
    std::string_view client_id;
    const std::optional<std::string>& username;
};

bool level_equals(const level& l, std::string_view topic_level, const subject& who) noexcept {
    if (l.what == level::kind::literal) return l.text == topic_level;
    for (const piece& p : l.pieces) {
        const std::string_view part = p.what == piece::kind::text        ? std::string_view(p.text)
                                      : p.what == piece::kind::client_id ? who.client_id
                                                                         : std::string_view(*who.username);
        if (!topic_level.starts_with(part)) return false;
        topic_level.remove_prefix(part.size());
    }
    return topic_level.empty();
}

// A pattern whose substitution has nothing to put in: Mosquitto skips %u patterns for
// clients without a user name; we skip empty values too (see the header).
bool applies_to(const rule& r, const subject& who) noexcept {
    if (r.uses_client_id && who.client_id.empty()) return false;
    if (r.uses_username && (!who.username || who.username->empty())) return false;
    return true;
}

// Does the rule match this topic name?
bool matches_topic(const rule& r, std::string_view topic, const subject& who) noexcept {
    if (is_dollar(topic) && !r.dollar) return false;
    level_cursor t(topic);
    for (const level& l : r.levels) {
        if (l.what == level::kind::hash) return true;  // also matches the parent level
        if (t.at_end()) return false;
        const auto tl = t.next();
        if (l.what != level::kind::plus && !level_equals(l, tl, who)) return false;
    }
    return t.at_end();
}

// Does the rule match every topic the (valid) filter can match?
bool covers_filter(const rule& r, std::string_view filter, const subject& who) noexcept {
    if (is_dollar(filter) && !r.dollar) return false;
    level_cursor f(filter);
    std::size_t i = 0;
    while (!f.at_end()) {
        const auto fl = f.next();
        if (i == r.levels.size()) return false;  // the filter goes deeper than the rule
        const level& l = r.levels[i++];
        if (l.what == level::kind::hash) return true;
        if (fl == "#") return false;  // only '#' covers '#'
        if (l.what == level::kind::plus) continue;
        if (fl == "+") return false;  // a fixed level covers one name, '+' all
        if (!level_equals(l, fl, who)) return false;
    }
    // "a/#" also matches "a": a rule one '#' longer still covers.
    return i == r.levels.size() || (i + 1 == r.levels.size() && r.levels[i].what == level::kind::hash);
}

bool has_topic_wildcard_or_separator(std::string_view s) noexcept {
    return s.find_first_of("+#/") != std::string_view::npos;
}

std::vector<level> levels_of(std::string_view filter, bool pattern, bool& uses_client_id, bool& uses_username) {
    std::vector<level> levels;
    level_cursor c(filter);
    while (!c.at_end()) {
        const auto text = c.next();
        level l;
        if (text == "+") {
            l.what = level::kind::plus;
        } else if (text == "#") {
            l.what = level::kind::hash;
        } else if (pattern && (text.find("%c") != std::string_view::npos || text.find("%u") != std::string_view::npos)) {
            // Left to right like Mosquitto 2.0's substitution loop, so "%%c" is '%' and
            // the client id.
            l.what = level::kind::templated;
            std::string pending;
            for (std::size_t i = 0; i < text.size(); ++i) {
                if (text[i] == '%' && i + 1 < text.size() && (text[i + 1] == 'c' || text[i + 1] == 'u')) {
                    if (!pending.empty()) l.pieces.push_back({piece::kind::text, std::exchange(pending, {})});
                    const bool client = text[i + 1] == 'c';
                    l.pieces.push_back({client ? piece::kind::client_id : piece::kind::username, {}});
                    (client ? uses_client_id : uses_username) = true;
                    ++i;
                } else {
                    pending += text[i];
                }
            }
            if (!pending.empty()) l.pieces.push_back({piece::kind::text, std::move(pending)});
        } else {
            l.text = std::string(text);
        }
        levels.push_back(std::move(l));
    }
    return levels;
}

// Mosquitto's mosquitto_sub_topic_check for rules: the wildcard rules of a filter
// (section 4.7.1) on the whole text, with no special meaning for "$share/", since a rule
// is not a subscription. Returns why not, or nullptr.
const char* rule_filter_problem(std::string_view filter) noexcept {
    if (filter.size() > 65535) return "longer than 65535 bytes";
    if (!protocol::is_valid_utf8(filter)) return "not valid UTF-8";
    level_cursor c(filter);
    while (!c.at_end()) {
        const auto l = c.next();
        if (l == "#") {
            if (!c.at_end()) return "'#' must be the last level [MQTT-4.7.1-1]";
        } else if (l != "+" && l.find_first_of("+#") != std::string_view::npos) {
            return "'+' and '#' must stand alone in their level [MQTT-4.7.1-1] [MQTT-4.7.1-2]";
        }
    }
    return nullptr;
}

// The first blank-separated word of `s`, and what follows it with leading blanks removed.
std::pair<std::string_view, std::string_view> split_word(std::string_view s) noexcept {
    std::size_t end = 0;
    while (end < s.size() && s[end] != ' ' && s[end] != '\t') ++end;
    auto rest = s.substr(end);
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
    return {s.substr(0, end), rest};
}

}  // namespace

struct acl_file::rules {
    rule_set anonymous;  // "topic" lines before the first "user" line
    std::unordered_map<std::string, rule_set, topics::detail::string_hash, std::equal_to<>> users;
    rule_set patterns;
    std::size_t count = 0;

    const rule_set* own_rules(const core::client_identity& who) const {
        if (!who.username) return &anonymous;
        const auto it = users.find(std::string_view(*who.username));
        return it == users.end() ? nullptr : &it->second;
    }

    // Step 2 of the header's decision is refused for ids that would change a pattern's shape.
    bool patterns_refused(const core::client_identity& who) const noexcept {
        return has_topic_wildcard_or_separator(who.client_id) ||
               (who.username && has_topic_wildcard_or_separator(*who.username));
    }

    bool check_topic(const core::client_identity& who, std::string_view topic, std::uint8_t wanted) const {
        const subject s{who.client_id, who.username};
        if (const rule_set* own = own_rules(who)) {
            for (const rule& r : own->denies) {
                if (matches_topic(r, topic, s)) return false;
            }
            for (const rule& r : own->allows) {
                if ((r.access & wanted) && matches_topic(r, topic, s)) return true;
            }
        }
        if (patterns.allows.empty() && patterns.denies.empty()) return false;
        if (patterns_refused(who)) return false;
        for (const rule& r : patterns.denies) {
            if (applies_to(r, s) && matches_topic(r, topic, s)) return false;
        }
        for (const rule& r : patterns.allows) {
            if ((r.access & wanted) && applies_to(r, s) && matches_topic(r, topic, s)) return true;
        }
        return false;
    }

    // Sound with respect to check_topic: every topic the filter matches passes
    // check_topic(read) when this returns true (see the header for why it may refuse more).
    bool check_subscribe(const core::client_identity& who, std::string_view filter) const {
        const subject s{who.client_id, who.username};
        if (const rule_set* own = own_rules(who)) {
            for (const rule& r : own->denies) {
                if (covers_filter(r, filter, s)) return false;
            }
            for (const rule& r : own->allows) {
                if ((r.access & access_read) && covers_filter(r, filter, s)) return true;
            }
        }
        if (patterns.allows.empty() && patterns.denies.empty()) return false;
        if (patterns_refused(who)) return false;
        for (const rule& r : patterns.denies) {
            if (applies_to(r, s) && covers_filter(r, filter, s)) return false;
        }
        for (const rule& r : patterns.allows) {
            if ((r.access & access_read) && applies_to(r, s) && covers_filter(r, filter, s)) return true;
        }
        return false;
    }
};

acl_file acl_file::load(const std::string& path) {
    return parse(detail::read_text_file(path), path);
}

acl_file acl_file::parse(std::string_view text, const std::string& file_name) {
    auto parsed = std::make_shared<rules>();
    rule_set* current = &parsed->anonymous;

    detail::line_reader lines(text);
    std::string_view line;
    std::size_t number = 0;
    while (lines.next(line, number)) {
        const auto content = detail::trim(line);
        if (content.empty() || content.front() == '#') continue;
        const auto [keyword, rest] = split_word(content);
        if (keyword == "user") {
            if (rest.empty()) throw file_error(file_name, number, "'user' without a user name");
            current = &parsed->users[std::string(rest)];
            continue;
        }
        if (keyword != "topic" && keyword != "pattern") {
            throw file_error(file_name, number,
                             "unknown keyword '" + std::string(keyword) + "' (expected topic, pattern or user)");
        }
        const bool pattern = keyword == "pattern";
        if (rest.empty()) throw file_error(file_name, number, "'" + std::string(keyword) + "' without a topic");
        auto [first, filter] = split_word(rest);
        rule r;
        r.access = access_read | access_write;
        if (filter.empty()) {
            filter = first;  // Mosquitto: a single word is the topic, read and write
        } else if (first == "read") {
            r.access = access_read;
        } else if (first == "write") {
            r.access = access_write;
        } else if (first == "readwrite") {
            r.access = access_read | access_write;
        } else if (first == "deny") {
            r.access = access_deny;
        } else {
            throw file_error(file_name, number,
                             "unknown access '" + std::string(first) + "' (expected read, write, readwrite or deny)");
        }
        if (const char* problem = rule_filter_problem(filter)) {
            throw file_error(file_name, number, "invalid topic filter '" + std::string(filter) + "': " + problem);
        }
        r.filter = std::string(filter);
        r.dollar = is_dollar(filter);
        r.levels = levels_of(filter, pattern, r.uses_client_id, r.uses_username);
        (pattern ? parsed->patterns : *current).add(std::move(r));
        ++parsed->count;
    }
    return acl_file(std::move(parsed));
}

bool acl_file::may_write(const core::client_identity& who, std::string_view topic) const {
    // Mosquitto's acl__check_dollar: clients never publish into $SYS or to "$share/...".
    if (topic.starts_with("$SYS") || topic.starts_with("$share")) return false;
    return rules_->check_topic(who, topic, access_write);
}

bool acl_file::may_read(const core::client_identity& who, std::string_view topic) const {
    if (topic.starts_with("$share")) return false;
    return rules_->check_topic(who, topic, access_read);
}

bool acl_file::may_subscribe(const core::client_identity& who, std::string_view filter) const {
    if (!protocol::validate_topic_filter(filter) || protocol::split_shared(filter)) return false;
    return rules_->check_subscribe(who, filter);
}

std::size_t acl_file::rule_count() const noexcept {
    return rules_->count;
}

}  // namespace edgemq::auth
