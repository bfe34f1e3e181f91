// Internal to auth/: reading a whole configuration file and walking its lines, shared by
// the password file, the ACL file and `edgemq passwd`.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace edgemq::auth::detail {

// The whole file. Throws file_error("PATH: cannot open: REASON") and the like.
std::string read_text_file(const std::string& path);

// Space, tab, CR, LF, VT, FF: what Mosquitto's isspace()-based trimming removes.
constexpr bool is_blank(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

constexpr std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
    return s;
}

// Yields the lines of a text without their '\n', numbered from 1. A final line without
// '\n' counts; the empty remainder after a final '\n' does not.
class line_reader {
public:
    explicit line_reader(std::string_view text) noexcept : rest_(text) {}

    // False at the end; otherwise the next line and its number.
    bool next(std::string_view& line, std::size_t& number) noexcept {
        if (rest_.empty()) return false;
        const auto newline = rest_.find('\n');
        line = rest_.substr(0, newline);
        rest_.remove_prefix(newline == std::string_view::npos ? rest_.size() : newline + 1);
        number = ++count_;
        return true;
    }

private:
    std::string_view rest_;
    std::size_t count_ = 0;
};

}  // namespace edgemq::auth::detail
