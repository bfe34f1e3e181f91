// SIGINT, SIGTERM and SIGHUP for the whole process, taken synchronously by one thread.
//
// Why not Asio's signal_set: it needs a handler, a pipe and one io_context's reactor
// to read it, and it only exists once the server starts (a SIGTERM before then killed
// the process outright). CI once saw a SIGTERM sent right after start-up go unanswered.
// Blocking the signals in every thread and taking them with sigwaitinfo() has no
// handler and no pipe, and from the first lines of main() on a signal that arrives
// while the broker is still starting (restoring sessions, binding) waits for the main
// thread to ask for it.
#pragma once

#include <csignal>

namespace edgemq::app {

class process_signals {
public:
    // Blocks SIGINT, SIGTERM and SIGHUP in the calling thread. Threads started later
    // inherit the mask, so construct this in main() before any thread exists.
    // They stay blocked after this is gone: a second SIGTERM during the shutdown must
    // not kill the process with the default action on its way out.
    process_signals();
    process_signals(const process_signals&) = delete;
    process_signals& operator=(const process_signals&) = delete;

    // Waits for the next of the three and returns its number.
    int wait();

private:
    sigset_t set_{};
};

}  // namespace edgemq::app
