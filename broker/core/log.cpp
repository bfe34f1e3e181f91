#include "broker/core/log.hpp"

#include <unistd.h>

#include <chrono>
#include <ctime>

namespace edgemq::log {
namespace {
std::atomic<level> g_level{level::info};
constexpr std::string_view level_names[] = {"error", "warn", "info", "debug", "trace"};
}  // namespace

bool parse_level(std::string_view text, level& out) noexcept {
    for (std::size_t i = 0; i < std::size(level_names); ++i) {
        if (text == level_names[i]) {
            out = static_cast<level>(i);
            return true;
        }
    }
    return false;
}

void set_level(level lvl) noexcept { g_level.store(lvl, std::memory_order_relaxed); }
level current_level() noexcept { return g_level.load(std::memory_order_relaxed); }

void write_line(level lvl, std::string_view text) noexcept {
    try {
        const auto now = std::chrono::system_clock::now();
        const std::time_t secs = std::chrono::system_clock::to_time_t(now);
        const auto millis =
            std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
        std::tm tm{};
        gmtime_r(&secs, &tm);
        char stamp[40];
        const std::size_t n = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
        std::string line;
        line.reserve(n + text.size() + 16);
        line.append(stamp, n);
        line.push_back('.');
        line.push_back(static_cast<char>('0' + millis / 100));
        line.push_back(static_cast<char>('0' + millis / 10 % 10));
        line.push_back(static_cast<char>('0' + millis % 10));
        line.append("Z ");
        line.append(level_names[static_cast<std::size_t>(lvl)]);
        line.push_back(' ');
        line.append(text);
        line.push_back('\n');
        const char* p = line.data();
        std::size_t left = line.size();
        while (left > 0) {
            ssize_t written = ::write(STDERR_FILENO, p, left);
            if (written <= 0) break;  // nowhere to log to; never fail the caller
            p += written;
            left -= static_cast<std::size_t>(written);
        }
    } catch (...) {
        // Logging must not throw into protocol code (e.g. bad_alloc): drop the line.
    }
}

}  // namespace edgemq::log
