#pragma once

namespace edgemq::app {
inline constexpr const char* version = "0.1.0";
}
