#include "broker/app/data_dir.hpp"

#include <unistd.h>

#include <cstdlib>

namespace edgemq::app {

std::string default_data_dir() {
    if (const char* state = std::getenv("STATE_DIRECTORY"); state && *state) {
        std::string dir = state;
        // systemd lists several directories separated by ':' when configured so.
        return dir.substr(0, dir.find(':'));
    }
    if (::geteuid() == 0) return "/var/lib/edgemq";
    if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg && *xdg) return std::string(xdg) + "/edgemq";
    if (const char* home = std::getenv("HOME"); home && *home) return std::string(home) + "/.local/state/edgemq";
    return "edgemq-data";
}

}  // namespace edgemq::app
