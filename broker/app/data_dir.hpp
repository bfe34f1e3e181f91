// The directory edgemq keeps its state in when neither --data-dir nor the
// configuration names one.
#pragma once

#include <string>

namespace edgemq::app {

// $STATE_DIRECTORY (set by systemd's StateDirectory=), else /var/lib/edgemq when
// running as root, else $XDG_STATE_HOME/edgemq or ~/.local/state/edgemq.
std::string default_data_dir();

}  // namespace edgemq::app
