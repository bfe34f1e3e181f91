// edgemq: reads the command line and the configuration, starts the broker, and runs
// until SIGINT or SIGTERM. Errors in either input end the process with one line naming
// what is wrong and a non-zero exit status.
#include <csignal>
#include <iostream>

#include "broker/app/command_line.hpp"
#include "broker/app/version.hpp"
#include "broker/config/config_file.hpp"
#include "broker/core/log.hpp"
#include "broker/net/server.hpp"

using namespace edgemq;

int main(int argc, char** argv) {
    // A client that vanishes mid-write must not kill the broker.
    std::signal(SIGPIPE, SIG_IGN);
    try {
        const app::command_line cl = app::parse_command_line(argc, argv);
        if (cl.help) {
            std::cout << app::usage_text();
            return 0;
        }
        if (cl.version) {
            std::cout << "edgemq " << app::version << "\n";
            return 0;
        }
        config::app_settings settings;
        if (cl.config_file) config::load_file(*cl.config_file, settings);
        if (cl.port || cl.bind) {
            core::listener_settings plain;
            if (!settings.broker.listeners.empty()) plain.bind = settings.broker.listeners.front().bind;
            if (cl.bind) plain.bind = *cl.bind;
            plain.port = cl.port.value_or(1883);
            settings.broker.listeners = {plain};
        }
        if (cl.data_dir) settings.broker.data_dir = *cl.data_dir;
        if (cl.workers) settings.broker.workers = *cl.workers;
        if (cl.log_level && !log::parse_level(*cl.log_level, settings.log_level))
            throw app::usage_error("option --log-level: '" + *cl.log_level +
                                   "' is not one of error, warn, info, debug, trace");
        log::set_level(settings.log_level);

        log::info("edgemq ", app::version, " starting");
        net::server server(settings.broker, app::version);
        server.start();
        server.run_until_signal();
        return 0;
    } catch (const app::usage_error& e) {
        std::cerr << "edgemq: " << e.what() << "\nTry 'edgemq --help'.\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "edgemq: " << e.what() << "\n";
        return 1;
    }
}
