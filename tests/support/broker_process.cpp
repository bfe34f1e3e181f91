#include "support/broker_process.hpp"

#include "support/wait.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <poll.h>
#include <regex>
#include <signal.h>
#include <sstream>
#include <stdexcept>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef EDGEMQ_BIN_DEFAULT
#define EDGEMQ_BIN_DEFAULT "edgemq"
#endif

namespace edgemq::test {

namespace {

using namespace std::chrono_literals;

std::string env_or(const char* name, std::string fallback) {
    const char* v = std::getenv(name);
    return (v && *v) ? std::string(v) : fallback;
}

// What each thread of a process that would not exit is doing: a hang that shows up once
// in CI can be told apart (a lost signal: main in epoll_wait; a worker that never
// finishes: main in futex; a slow disk: fsync) without a debugger.
std::string describe_threads(pid_t pid) {
    const auto read_line = [](const std::filesystem::path& p) {
        std::ifstream in(p);
        std::string line;
        std::getline(in, line);
        return line;
    };
    std::ostringstream out;
    std::error_code ec;
    const std::filesystem::path task = "/proc/" + std::to_string(pid) + "/task";
    for (const auto& entry : std::filesystem::directory_iterator(task, ec)) {
        const std::string stat = read_line(entry.path() / "stat");
        const auto close_paren = stat.rfind(')');
        const char state = close_paren != std::string::npos && close_paren + 2 < stat.size() ? stat[close_paren + 2] : '?';
        out << "  thread " << entry.path().filename().string() << " (" << read_line(entry.path() / "comm")
            << ") state " << state << " wchan " << read_line(entry.path() / "wchan") << " syscall "
            << read_line(entry.path() / "syscall") << "\n";
    }
    if (ec) out << "  (cannot read " << task.string() << ": " << ec.message() << ")\n";
    return out.str();
}

bool env_flag(const char* name) {
    const char* v = std::getenv(name);
    return v && *v && std::string_view(v) != "0";
}

std::runtime_error errno_error(const std::string& what) {
    return std::runtime_error(what + ": " + std::strerror(errno));
}

bool can_connect(const std::string& host, std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
}

std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

}  // namespace

std::string edgemq_binary() { return env_or("EDGEMQ_BIN", EDGEMQ_BIN_DEFAULT); }

broker_kind selected_broker_kind() {
    return env_or("EDGEMQ_TEST_BROKER", "edgemq") == "mosquitto" ? broker_kind::mosquitto
                                                                  : broker_kind::edgemq;
}

std::uint16_t pick_free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw errno_error("socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = 0;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        throw errno_error("bind 127.0.0.1:0");
    }
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
}

// ---- broker_config ----

void broker_config::set(std::string_view key, std::string_view value) {
    const std::string v(value);
    auto fail = [&] { return std::invalid_argument("config " + std::string(key) + ": bad value '" + v + "'"); };
    auto as_bool = [&] {
        if (v == "true") return true;
        if (v == "false") return false;
        throw fail();
    };
    auto as_int = [&] {
        std::size_t used = 0;
        long long n = 0;
        try {
            n = std::stoll(v, &used);
        } catch (const std::logic_error&) {
            throw fail();
        }
        if (used != v.size()) throw fail();
        return n;
    };
    if (key == "workers") workers = static_cast<int>(as_int());
    else if (key == "log_level") log_level = v;
    else if (key == "connect_timeout") {
        try {
            connect_timeout = std::stod(v);
        } catch (const std::logic_error&) {
            throw fail();
        }
    }
    else if (key == "max_keep_alive") max_keep_alive = static_cast<int>(as_int());
    else if (key == "max_packet_size") max_packet_size = static_cast<std::uint32_t>(as_int());
    else if (key == "receive_maximum") receive_maximum = static_cast<int>(as_int());
    else if (key == "topic_alias_maximum") topic_alias_maximum = static_cast<int>(as_int());
    else if (key == "send_topic_aliases") send_topic_aliases = as_bool();
    else if (key == "max_queued_messages") max_queued_messages = as_int();
    else if (key == "max_queued_bytes") max_queued_bytes = as_int();
    else if (key == "queue_full_policy") queue_full_policy = v;
    else if (key == "queue_qos0_offline") queue_qos0_offline = as_bool();
    else throw std::invalid_argument("unknown config key '" + std::string(key) + "'");
}

std::string broker_config::to_edgemq_json() const {
    std::ostringstream out;
    out << "{\n";
    bool first = true;
    auto key = [&](const char* k) -> std::ostream& {
        out << (first ? "  " : ",\n  ") << json_string(k) << ": ";
        first = false;
        return out;
    };
    if (workers) key("workers") << *workers;
    if (log_level) key("log_level") << json_string(*log_level);
    if (connect_timeout) key("connect_timeout") << *connect_timeout;
    if (max_keep_alive) key("max_keep_alive") << *max_keep_alive;
    if (max_packet_size) key("max_packet_size") << *max_packet_size;
    if (receive_maximum) key("receive_maximum") << *receive_maximum;
    if (topic_alias_maximum) key("topic_alias_maximum") << *topic_alias_maximum;
    if (send_topic_aliases) key("send_topic_aliases") << (*send_topic_aliases ? "true" : "false");
    if (max_queued_messages) key("max_queued_messages") << *max_queued_messages;
    if (max_queued_bytes) key("max_queued_bytes") << *max_queued_bytes;
    if (queue_full_policy) key("queue_full_policy") << json_string(*queue_full_policy);
    if (queue_qos0_offline) key("queue_qos0_offline") << (*queue_qos0_offline ? "true" : "false");
    out << "\n}\n";
    return out.str();
}

std::string broker_config::to_mosquitto_conf(std::uint16_t listen_port, const std::filesystem::path& persistence_dir) const {
    std::ostringstream out;
    out << "# written by tests/support/broker_process.cpp\n"
        << "listener " << listen_port << " 127.0.0.1\n"
        << "allow_anonymous true\n"
        << "log_dest stderr\n"
        << "log_timestamp_format %Y-%m-%dT%H:%M:%S\n"
        << "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
        << "connection_messages true\n"
        << "persistence " << (durability && *durability == "none" ? "false" : "true") << "\n"
        << "persistence_location " << persistence_dir.string() << "/\n";
    if (log_level && *log_level == "debug") out << "log_type debug\n";
    // Run as root we would otherwise drop to user mosquitto, which cannot write the
    // 0700 temp dir.
    if (::geteuid() == 0) out << "user root\n";
    // Closest equivalents. Not mapped (no Mosquitto 2.0 option): workers,
    // connect_timeout, send_topic_aliases (Mosquitto never assigns outgoing aliases),
    // queue_full_policy (Mosquitto always drops the newest).
    if (max_keep_alive) out << "max_keepalive " << *max_keep_alive << "\n";
    if (max_packet_size) out << "max_packet_size " << *max_packet_size << "\n";
    // Mosquitto's max_inflight_messages is its outgoing window; there is no separate
    // setting for the Receive Maximum it advertises, so this is the nearest.
    if (receive_maximum) out << "max_inflight_messages " << *receive_maximum << "\n";
    if (topic_alias_maximum) out << "max_topic_alias " << *topic_alias_maximum << "\n";
    // edgemq defaults differ from Mosquitto's (1000 / false): match edgemq's defaults
    // so that the same expectations hold.
    out << "max_queued_messages " << max_queued_messages.value_or(1000000) << "\n";
    if (max_queued_bytes) out << "max_queued_bytes " << *max_queued_bytes << "\n";
    out << "queue_qos0_messages " << (queue_qos0_offline.value_or(true) ? "true" : "false") << "\n";
    return out.str();
}

// ---- broker_process ----

broker_process::broker_process(broker_config config) : kind_(selected_broker_kind()), config_(std::move(config)) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "edgemq-test-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw errno_error("mkdtemp " + tmpl);
    std::filesystem::path root(tmpl);
    root_ = root;
    data_dir_ = config_.data_dir.value_or(root / "data");
    std::filesystem::create_directories(data_dir_);
    try {
        // Mosquitto's port is picked before it binds, so a parallel test can take it
        // first: then pick another.
        for (int attempt = 1;; ++attempt) {
            try {
                start();
                break;
            } catch (const std::runtime_error& e) {
                bool port_taken = kind_ == broker_kind::mosquitto && !config_.port &&
                                  std::string_view(e.what()).find("Address already in use") != std::string_view::npos;
                if (!port_taken || attempt == 3) throw;
                port_ = 0;
            }
        }
    } catch (...) {
        reap_reader();
        std::error_code ec;
        std::filesystem::remove_all(root, ec);
        throw;
    }
}

broker_process::~broker_process() {
    stop();
    reap_reader();
    std::filesystem::path root = root_;
    if (env_flag("EDGEMQ_TEST_KEEP")) {
        std::fprintf(stderr, "broker_process: kept %s\n", root.c_str());
        return;
    }
    std::error_code ec;
    std::filesystem::remove_all(root, ec);
}

std::string broker_process::uri() const { return "tcp://" + host_ + ":" + std::to_string(port_); }

std::string broker_process::log() const {
    std::lock_guard lock(log_mutex_);
    return log_;
}

bool broker_process::log_contains(std::string_view needle) const {
    std::lock_guard lock(log_mutex_);
    return log_.find(needle) != std::string::npos;
}

std::uint16_t broker_process::port_of(std::string_view type, std::size_t index) const {
    for (const auto& [t, p] : listener_ports_)
        if (t == type && index-- == 0) return p;
    throw std::runtime_error("the broker logged no such " + std::string(type) + " listener");
}

std::vector<std::string> broker_process::command_line() const {
    if (kind_ == broker_kind::mosquitto)
        return {env_or("MOSQUITTO_BIN", "/usr/sbin/mosquitto"), "-c", (root_ / "mosquitto.conf").string()};
    std::vector<std::string> args{edgemq_binary(), "--data-dir", data_dir_.string()};
    if (!config_.listeners_from_config) {
        args.insert(args.end(), {"-p", std::to_string(config_.port.value_or(0)), "--bind", "127.0.0.1"});
    }
    if (config_.durability) {
        args.push_back("--durability");
        args.push_back(*config_.durability);
    }
    args.push_back("-c");
    args.push_back((root_ / "edgemq.json").string());
    args.insert(args.end(), config_.extra_args.begin(), config_.extra_args.end());
    return args;
}

void broker_process::start() {
    reap_reader();
    if (kind_ == broker_kind::mosquitto) {
        if (config_.port) port_ = *config_.port;
        if (port_ == 0) port_ = pick_free_port();
        std::ofstream(root_ / "mosquitto.conf") << config_.to_mosquitto_conf(port_, data_dir_);
    } else {
        port_ = 0;
        host_ = "127.0.0.1";
        std::ofstream(root_ / "edgemq.json") << config_.config_text.value_or(config_.to_edgemq_json());
    }
    std::vector<std::string> args = command_line();
    if (::access(args[0].c_str(), X_OK) != 0)
        throw std::runtime_error("broker binary not executable: " + args[0] +
                                 " (set EDGEMQ_BIN, or EDGEMQ_TEST_BROKER=mosquitto)");

    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw errno_error("pipe2");
    // Everything the child needs is built before fork: after fork in a multithreaded
    // process (Paho runs threads) only async-signal-safe calls are allowed.
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_t parent = ::getpid();

    pid_t pid = ::fork();
    if (pid < 0) {
        ::close(fds[0]);
        ::close(fds[1]);
        ::close(devnull);
        throw errno_error("fork");
    }
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(127);
        ::dup2(devnull, STDIN_FILENO);
        ::dup2(fds[1], STDOUT_FILENO);
        ::dup2(fds[1], STDERR_FILENO);
        // Do not leak the test's sockets (Paho, raw clients) into the broker: a client
        // socket held open by the broker would hide a close from the tests.
        if (::syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
            for (int fd = 3; fd < 4096; ++fd) ::close(fd);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    ::close(fds[1]);
    ::close(devnull);
    pid_ = pid;
    pipe_read_fd_ = fds[0];

    std::size_t log_start;
    {
        std::lock_guard lock(log_mutex_);
        reader_eof_ = false;
        log_start = log_.size();
    }
    bool tee = env_flag("EDGEMQ_TEST_VERBOSE");
    reader_ = std::thread([this, tee] {
        char buf[4096];
        for (;;) {
            pollfd p{pipe_read_fd_, POLLIN, 0};
            int r = ::poll(&p, 1, 100);
            if (r < 0 && errno == EINTR) continue;
            if (r == 0) {
                std::lock_guard lock(log_mutex_);
                if (reader_eof_) break;  // asked to stop (see reap_reader)
                continue;
            }
            ssize_t n = ::read(pipe_read_fd_, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            std::lock_guard lock(log_mutex_);
            if (n <= 0) {
                reader_eof_ = true;
                log_cv_.notify_all();
                break;
            }
            log_.append(buf, static_cast<std::size_t>(n));
            if (tee) std::fwrite(buf, 1, static_cast<std::size_t>(n), stderr);
            log_cv_.notify_all();
        }
    });

    auto deadline = std::chrono::steady_clock::now() + scaled(10s);
    std::unique_lock lock(log_mutex_);
    if (kind_ == broker_kind::edgemq) {
        // Every listener logs "listening TYPE ADDRESS:PORT", then "edgemq started".
        static const std::regex listening(R"(listening (mqtts?|wss?) ([0-9.]+|\[[0-9a-fA-F:]+\]):([0-9]+))");
        bool found = log_cv_.wait_until(lock, deadline, [&] {
            return log_.find("edgemq started", log_start) != std::string::npos || reader_eof_;
        });
        if (found && !reader_eof_) {
            listener_ports_.clear();
            const std::string tail = log_.substr(log_start);
            for (std::sregex_iterator it(tail.begin(), tail.end(), listening), end; it != end; ++it) {
                const auto& m = *it;
                const auto listener_port = static_cast<std::uint16_t>(std::stoi(m[3].str()));
                listener_ports_.emplace_back(m[1].str(), listener_port);
                if (m[1].str() == "mqtt" && port_ == 0) {
                    host_ = m[2].str();
                    port_ = listener_port;
                }
            }
        }
        if (found && port_ != 0) return;
    } else {
        // Mosquitto prints "mosquitto version X running" once its listeners are open.
        bool found = log_cv_.wait_until(lock, deadline, [&] {
            return log_.find(" running", log_start) != std::string::npos || reader_eof_;
        });
        lock.unlock();
        if (found && wait_until([&] { return can_connect(host_, port_); }, scaled(3s))) return;
        lock.lock();
    }
    std::string why = reader_eof_ ? "exited before listening" : "no listening line within 10 s";
    std::string captured = log_.substr(log_start);
    lock.unlock();
    stop();
    throw std::runtime_error("broker " + args[0] + " " + why + "; log:\n" + captured);
}

void broker_process::send_signal(int signo) {
    if (pid_ > 0) ::kill(pid_, signo);
}

std::optional<int> broker_process::wait_exit(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return std::nullopt;
    int status = 0;
    bool exited = wait_until(
        [&] {
            pid_t r = ::waitpid(pid_, &status, WNOHANG);
            return r == pid_ || (r < 0 && errno == ECHILD);
        },
        scaled(timeout), 2ms);
    if (!exited) {
        const std::string threads = describe_threads(pid_);
        std::lock_guard lock(log_mutex_);
        log_ += "\n[broker_process] still running after the wait; its threads:\n" + threads;
        return std::nullopt;
    }
    pid_ = -1;
    reap_reader();
    return status;
}

int broker_process::stop(std::chrono::milliseconds grace, int signo) {
    if (pid_ <= 0) return 0;
    int status = 0;
    grace = scaled(grace);
    ::kill(pid_, signo);
    bool exited = wait_until(
        [&] {
            pid_t r = ::waitpid(pid_, &status, WNOHANG);
            return r == pid_ || (r < 0 && errno == ECHILD);
        },
        grace, 2ms);
    int result = status;
    if (!exited) {
        const std::string threads = describe_threads(pid_);
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        result = -1;
        std::lock_guard lock(log_mutex_);
        log_ += "\n[broker_process] did not exit within the grace period after signal " + std::to_string(signo) +
                "; its threads then:\n" + threads + "[broker_process] killed\n";
    }
    pid_ = -1;
    reap_reader();
    return result;
}

void broker_process::kill9() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    reap_reader();
}

void broker_process::restart() {
    stop();
    start();
}

void broker_process::reap_reader() {
    if (reader_.joinable()) {
        // The child is gone, so EOF arrives at once unless a grandchild kept the pipe;
        // then give up after a second (the reader checks the flag every 100 ms).
        {
            std::unique_lock lock(log_mutex_);
            log_cv_.wait_for(lock, 1s, [&] { return reader_eof_; });
            reader_eof_ = true;
        }
        reader_.join();
    }
    if (pipe_read_fd_ >= 0) {
        ::close(pipe_read_fd_);
        pipe_read_fd_ = -1;
    }
}

}  // namespace edgemq::test
