// Leveled logging to stderr, one write per line so lines from several workers never
// interleave. Formatting happens only when the level is enabled.
//
//   log::info("client connected: ", client_id, " from ", peer);
#pragma once

#include <atomic>
#include <charconv>
#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

namespace edgemq::log {

enum class level : std::uint8_t { error = 0, warn = 1, info = 2, debug = 3, trace = 4 };

// Parses "error", "warn", "info", "debug", "trace"; false otherwise.
bool parse_level(std::string_view text, level& out) noexcept;
void set_level(level lvl) noexcept;
level current_level() noexcept;
inline bool enabled(level lvl) noexcept { return lvl <= current_level(); }

// Writes "<UTC timestamp> <level> <text>\n" with a single write(2).
void write_line(level lvl, std::string_view text) noexcept;

namespace detail {
inline void append(std::string& out, std::string_view s) { out.append(s); }
inline void append(std::string& out, const char* s) { out.append(s); }
inline void append(std::string& out, const std::string& s) { out.append(s); }
inline void append(std::string& out, char c) { out.push_back(c); }
inline void append(std::string& out, bool b) { out.append(b ? "true" : "false"); }
template <class T>
    requires(std::is_arithmetic_v<T> && !std::same_as<T, bool> && !std::same_as<T, char>)
void append(std::string& out, T value) {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
    out.append(buf, ec == std::errc{} ? end : buf);
}
template <class... Args>
void emit(level lvl, const Args&... args) {
    if (!enabled(lvl)) return;
    std::string line;
    (append(line, args), ...);
    write_line(lvl, line);
}
}  // namespace detail

template <class... Args> void error(const Args&... a) { detail::emit(level::error, a...); }
template <class... Args> void warn(const Args&... a) { detail::emit(level::warn, a...); }
template <class... Args> void info(const Args&... a) { detail::emit(level::info, a...); }
template <class... Args> void debug(const Args&... a) { detail::emit(level::debug, a...); }
template <class... Args> void trace(const Args&... a) { detail::emit(level::trace, a...); }

}  // namespace edgemq::log
