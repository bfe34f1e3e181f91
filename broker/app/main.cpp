// edgemq: reads the command line and the configuration, starts the broker, and runs
// until SIGINT or SIGTERM. Errors in either input end the process with one line naming
// what is wrong and a non-zero exit status.
#include <csignal>
#include <filesystem>
#include <iostream>
#include <memory>

#include "broker/app/command_line.hpp"
#include "broker/app/data_dir.hpp"
#include "broker/app/version.hpp"
#include "broker/config/config_file.hpp"
#include "broker/core/log.hpp"
#include "broker/core/restore.hpp"
#include "broker/net/server.hpp"
#include "storage/sqlite_store.hpp"

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
        if (cl.durability && !config::parse_durability(*cl.durability, settings.broker.durability_mode))
            throw app::usage_error("option --durability: '" + *cl.durability + "' is not one of none, process, power");
        if (cl.workers) settings.broker.workers = *cl.workers;
        if (cl.log_level && !log::parse_level(*cl.log_level, settings.log_level))
            throw app::usage_error("option --log-level: '" + *cl.log_level +
                                   "' is not one of error, warn, info, debug, trace");
        log::set_level(settings.log_level);

        log::info("edgemq ", app::version, " starting");
        // Declared before the server: it outlives the workers that submit to it.
        std::unique_ptr<core::store> store;
        if (settings.broker.durability_mode != core::durability::none) {
            if (settings.broker.data_dir.empty()) settings.broker.data_dir = app::default_data_dir();
            const std::filesystem::path dir = settings.broker.data_dir;
            std::error_code ec;
            std::filesystem::create_directories(dir, ec);
            if (ec)
                throw std::runtime_error("cannot create the data directory " + dir.string() + ": " + ec.message() +
                                         " (choose another with --data-dir, or --durability none)");
            const std::string path = (dir / "edgemq.db").string();
            store = std::make_unique<storage::sqlite_store>(
                path, settings.broker.durability_mode, std::chrono::milliseconds(settings.broker.commit_delay_ms));
            log::info("state in ", path, " (durability ", config::to_string(settings.broker.durability_mode), ")");
        } else {
            log::info("durability none: state is kept in memory only");
        }

        net::server server(settings.broker, app::version);
        if (store) {
            const auto restored = core::restore_state(server.shared(), store->load());
            server.shared().set_store(store.get());
            if (restored.sessions != 0 || restored.retained != 0)
                log::info("restored ", restored.sessions, " sessions, ", restored.subscriptions, " subscriptions, ",
                          restored.deliveries, " queued messages, ", restored.retained, " retained messages");
        }
        server.start();
        server.run_until_signal();
        if (store) store->close();  // everything the workers submitted is committed
        return 0;
    } catch (const app::usage_error& e) {
        std::cerr << "edgemq: " << e.what() << "\nTry 'edgemq --help'.\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "edgemq: " << e.what() << "\n";
        return 1;
    }
}
