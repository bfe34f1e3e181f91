#include "broker/app/process_signals.hpp"

#include <cerrno>
#include <cstring>
#include <pthread.h>
#include <stdexcept>
#include <string>

namespace edgemq::app {

process_signals::process_signals() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGHUP);
    if (const int rc = ::pthread_sigmask(SIG_BLOCK, &set_, nullptr); rc != 0)
        throw std::runtime_error(std::string("cannot block SIGINT, SIGTERM and SIGHUP: ") + std::strerror(rc));
}

int process_signals::wait() {
    for (;;) {
        const int signo = ::sigwaitinfo(&set_, nullptr);
        if (signo > 0) return signo;
        // EINTR: another signal (e.g. one a debugger sends) interrupted the wait.
        if (errno != EINTR) throw std::runtime_error(std::string("sigwaitinfo: ") + std::strerror(errno));
    }
}

}  // namespace edgemq::app
