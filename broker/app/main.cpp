// edgemq: reads the command line and the configuration, starts the broker, and runs
// until SIGINT or SIGTERM. Errors in either input end the process with one line naming
// what is wrong and a non-zero exit status.
#include <csignal>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string_view>
#include <vector>

#include "broker/app/command_line.hpp"
#include "broker/app/access.hpp"
#include "broker/auth/passwd_command.hpp"
#include "broker/app/data_dir.hpp"
#include "broker/app/process_signals.hpp"
#include "broker/app/version.hpp"
#include "broker/config/config_file.hpp"
#include "broker/core/log.hpp"
#include "broker/core/restore.hpp"
#include "broker/net/server.hpp"
#include "storage/sqlite_store.hpp"

using namespace edgemq;

namespace {

// The listeners of --listen / --port, which replace the configuration file's.
std::vector<core::listener_settings> command_line_listeners(const app::command_line& cl,
                                                            const config::app_settings& settings) {
    std::vector<core::listener_settings> out;
    if (cl.port) {
        core::listener_settings plain;
        plain.limits = settings.default_limits;
        if (!settings.broker.listeners.empty()) plain.bind = settings.broker.listeners.front().bind;
        if (cl.bind) plain.bind = *cl.bind;
        plain.port = *cl.port;
        out.push_back(plain);
    }
    for (const std::string& url : cl.listen) {
        const app::listen_url u = app::parse_listen_url(url);
        core::listener_settings ls;
        ls.limits = settings.default_limits;
        ls.type = u.type;
        ls.bind = u.host;
        ls.port = u.port;
        if (!u.path.empty()) ls.path = u.path;
        if (ls.tls()) {
            if (!cl.cert_file || !cl.key_file)
                throw app::usage_error("option --listen " + url + ": TLS needs --cert FILE and --key FILE");
            ls.cert_file = *cl.cert_file;
            ls.key_file = *cl.key_file;
            if (cl.ca_file) ls.ca_file = *cl.ca_file;
            ls.require_certificate = cl.require_certificate;
            if (cl.require_certificate && !cl.ca_file)
                throw app::usage_error("option --require-cert: needs --cafile FILE to check client certificates against");
        }
        out.push_back(ls);
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    // A client that vanishes mid-write must not kill the broker.
    std::signal(SIGPIPE, SIG_IGN);
    if (argc >= 2 && std::string_view(argv[1]) == "passwd")
        return auth::run_passwd_command(argc - 1, argv + 1, std::cin, std::cout, std::cerr);
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
        if (cl.bind && !cl.port && cl.listen.empty()) {
            // --bind alone moves the default listener.
            for (auto& ls : settings.broker.listeners) ls.bind = *cl.bind;
        }
        if (cl.port || !cl.listen.empty()) settings.broker.listeners = command_line_listeners(cl, settings);
        if (cl.password_file) settings.broker.auth.password_file = *cl.password_file;
        if (cl.acl_file) settings.broker.auth.acl_file = *cl.acl_file;
        if (cl.allow_anonymous) settings.broker.auth.allow_anonymous = *cl.allow_anonymous;
        if (cl.data_dir) settings.broker.data_dir = *cl.data_dir;
        if (cl.durability && !config::parse_durability(*cl.durability, settings.broker.durability_mode))
            throw app::usage_error("option --durability: '" + *cl.durability + "' is not one of none, process, power");
        if (cl.workers) settings.broker.workers = *cl.workers;
        if (cl.log_level && !log::parse_level(*cl.log_level, settings.log_level))
            throw app::usage_error("option --log-level: '" + *cl.log_level +
                                   "' is not one of error, warn, info, debug, trace");
        log::set_level(settings.log_level);

        // Before the store's writer and the workers start, so that they inherit the mask:
        // from here on SIGINT, SIGTERM and SIGHUP wait for the loop below.
        app::process_signals signals;
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

        // Password and ACL files: read now (an error stops the start, naming file and
        // line), and again on SIGHUP (an error then keeps the previous rules).
        const core::auth_settings auth_files = settings.broker.auth;
        std::shared_ptr<const core::authorizer> access = app::load_authorizer(auth_files);
        log::info(app::describe_access(auth_files));

        net::server server(settings.broker, app::version);
        server.shared().set_authorizer(access);
        if (store) {
            const auto restored = core::restore_state(server.shared(), store->load());
            server.shared().set_store(store.get());
            if (restored.sessions != 0 || restored.retained != 0)
                log::info("restored ", restored.sessions, " sessions, ", restored.subscriptions, " subscriptions, ",
                          restored.deliveries, " queued messages, ", restored.retained, " retained messages");
        }
        server.start();
        for (;;) {
            const int signo = signals.wait();
            if (signo != SIGHUP) {
                log::info("received ", signo == SIGINT ? "SIGINT" : "SIGTERM", ", shutting down");
                break;
            }
            log::info("received SIGHUP, reloading certificates, password and ACL files");
            server.reload_tls();
            try {
                server.shared().set_authorizer(app::load_authorizer(auth_files));
            } catch (const std::exception& e) {
                log::error("reload: keeping the previous password and ACL rules: ", e.what());
            }
        }
        server.stop();
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
