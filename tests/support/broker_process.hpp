// broker_process: one broker under test, in its own temporary data directory, on a
// port chosen by the kernel.
//
// Contract
// - The constructor starts the broker and returns once it accepts connections, or
//   throws std::runtime_error (with the captured log) after ~10 s or if it exits early.
// - Which broker: `edgemq` by default (path from the env var EDGEMQ_BIN, else the
//   path compiled in as EDGEMQ_BIN_DEFAULT); `EDGEMQ_TEST_BROKER=mosquitto` starts
//   /usr/sbin/mosquitto (or $MOSQUITTO_BIN) instead, with the closest equivalents of
//   the edgemq config keys, so that the same suites can be compared against it.
// - The broker's stdout and stderr are drained by a background thread into a buffer
//   for the whole life of the process (the pipe never fills); log() returns a copy.
// - Destruction: SIGTERM, wait up to 5 s, then SIGKILL; always by PID, and only the
//   process this object started. Its temporary directory (config and, unless
//   broker_config::data_dir names another, the data directory) is removed unless
//   EDGEMQ_TEST_KEEP=1 (then its path is printed on stderr).
// - Not thread-safe except log()/log_contains(), which may be called from any thread.
//   Call start/stop/restart/kill9 from the thread that created the object: the child
//   gets PR_SET_PDEATHSIG (SIGKILL), tied to that thread, so no broker outlives a
//   crashed or timed-out test binary.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <signal.h>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <thread>
#include <vector>

namespace edgemq::test {

enum class broker_kind { edgemq, mosquitto };

// From EDGEMQ_TEST_BROKER ("mosquitto" or anything else / unset = edgemq).
broker_kind selected_broker_kind();
inline bool testing_mosquitto() { return selected_broker_kind() == broker_kind::mosquitto; }

// The edgemq binary under test: $EDGEMQ_BIN, else the path compiled in (the edgemq
// target of this build).
std::string edgemq_binary();

// The edgemq config keys the tests use (see the broker contract). Unset = broker default.
// to_edgemq_json() and to_mosquitto_conf() translate; keys Mosquitto lacks are dropped
// there (the tests that need them are documented as known Mosquitto failures).
struct broker_config {
    std::optional<int> workers;
    std::optional<std::string> log_level;  // error|warn|info|debug
    std::optional<double> connect_timeout;  // seconds
    std::optional<int> max_keep_alive;     // seconds
    std::optional<std::uint32_t> max_packet_size;
    std::optional<int> receive_maximum;
    std::optional<int> topic_alias_maximum;
    std::optional<bool> send_topic_aliases;
    std::optional<std::int64_t> max_queued_messages;
    std::optional<std::int64_t> max_queued_bytes;
    std::optional<std::string> queue_full_policy;  // drop_oldest|drop_newest
    std::optional<bool> queue_qos0_offline;

    // Not config-file keys: how the process is started.
    // Listen on this port (edgemq: `-p PORT`; Mosquitto: this port, no retry on
    // another) instead of one the kernel picks. For tests of rebinding a known port.
    std::optional<std::uint16_t> port;
    // edgemq: the configuration file's text verbatim instead of to_edgemq_json() (the
    // keys above are then not written). The command line still sets port and bind.
    std::optional<std::string> config_text;
    // edgemq: `--durability MODE` (none|process|power) on the command line; unset =
    // edgemq's default (process). Mosquitto: "none" turns its persistence off.
    std::optional<std::string> durability;
    // The data directory to use instead of `<temp dir>/data` (e.g. a small tmpfs made
    // by the test). It must exist; broker_process never removes it.
    std::optional<std::filesystem::path> data_dir;
    // edgemq: more command-line arguments (e.g. --listen URL, --password-file FILE).
    std::vector<std::string> extra_args;
    // edgemq: no -p/--bind on the command line, so the listeners of config_text apply.
    bool listeners_from_config = false;

    // Sets one key from its config-file name and a textual value ("max_packet_size",
    // "100"); throws std::invalid_argument for an unknown key or a bad value.
    void set(std::string_view key, std::string_view value);

    std::string to_edgemq_json() const;
    std::string to_mosquitto_conf(std::uint16_t listen_port, const std::filesystem::path& persistence_dir) const;
};

class broker_process {
public:
    explicit broker_process(broker_config config = {});
    ~broker_process();

    broker_process(const broker_process&) = delete;
    broker_process& operator=(const broker_process&) = delete;

    broker_kind kind() const { return kind_; }
    const std::string& host() const { return host_; }
    std::uint16_t port() const { return port_; }
    // "tcp://HOST:PORT", for Paho.
    std::string uri() const;
    // edgemq: the port of the index-th listener of `type` ("mqtt", "mqtts", "ws", "wss")
    // as logged at start-up; throws if there is none.
    std::uint16_t port_of(std::string_view type, std::size_t index = 0) const;
    const std::filesystem::path& data_dir() const { return data_dir_; }
    pid_t pid() const { return pid_; }
    bool running() const { return pid_ > 0; }

    // Copy of everything the broker printed so far (all starts, in order).
    std::string log() const;
    bool log_contains(std::string_view needle) const;

    // SIGTERM (or `signo`), wait (deadline), SIGKILL if needed. Returns the exit status
    // as given by waitpid, or -1 if it had to be killed. No-op if not running.
    int stop(std::chrono::milliseconds grace = std::chrono::seconds(5), int signo = SIGTERM);
    // Sends a signal and returns at once (e.g. SIGTERM, to watch the clients meanwhile).
    void send_signal(int signo);
    // Waits up to `timeout` (scaled) for the process to exit. Returns its waitpid
    // status, or nullopt if it is still running (then it is left running).
    std::optional<int> wait_exit(std::chrono::milliseconds timeout);
    // SIGKILL now: simulates a crash / power loss for persistence tests.
    void kill9();
    // stop() if running, then start again with the same data dir and config. edgemq
    // binds port 0 again, so port() may change; Mosquitto gets its old port back.
    // After stop() or kill9() it just starts (so a test can keep the broker down for a
    // while in between).
    void restart();
    // The command line this object starts the broker with (for tests that run the same
    // binary themselves, e.g. one that is expected to refuse to start).
    std::vector<std::string> command_line() const;

private:
    void start();
    void reap_reader();

    broker_kind kind_;
    broker_config config_;
    std::filesystem::path root_;  // the temp dir of this object: config, default data dir
    std::filesystem::path data_dir_;
    std::string host_ = "127.0.0.1";
    std::uint16_t port_ = 0;
    std::vector<std::pair<std::string, std::uint16_t>> listener_ports_;  // in log order
    pid_t pid_ = -1;
    int pipe_read_fd_ = -1;
    std::thread reader_;

    mutable std::mutex log_mutex_;
    std::condition_variable log_cv_;
    std::string log_;
    bool reader_eof_ = false;
};

// A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read it, close).
// Racy by nature; only used for Mosquitto, which cannot listen on port 0 and report.
std::uint16_t pick_free_port();

}  // namespace edgemq::test
