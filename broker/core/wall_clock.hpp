// Converting between the steady clock the core schedules with and the wall clock the
// store keeps deadlines in, so a deadline means the same instant after a restart.
#pragma once

#include <chrono>

#include "broker/core/store.hpp"
#include "broker/session/message.hpp"

namespace edgemq::core {

inline wall_ms wall_now() noexcept {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// `steady_now` and `wall` are the same instant on the two clocks.
inline wall_ms to_wall(session::time_point t, session::time_point steady_now, wall_ms wall) noexcept {
    if (t == session::never) return 0;
    return wall + std::chrono::duration_cast<std::chrono::milliseconds>(t - steady_now).count();
}

inline session::time_point to_steady(wall_ms t, session::time_point steady_now, wall_ms wall) noexcept {
    if (t == 0) return session::never;
    return steady_now + std::chrono::milliseconds(t - wall);
}

}  // namespace edgemq::core
