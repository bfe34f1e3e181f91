// Helpers for the auth tests: a temporary directory, files, running Mosquitto's tools
// (mosquitto_passwd, mosquitto_pub) with a deadline, and a real mosquitto broker on a
// free port to check that the files we write work there.
//
// unit_auth links only edgemq_auth, so this is a small header-only copy of what
// tests/support offers the integration tests.
#pragma once

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <netinet/in.h>
#include <optional>
#include <poll.h>
#include <sstream>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "support/wait.hpp"

namespace edgemq::auth_test {

using namespace std::chrono_literals;

class temp_dir {
public:
    temp_dir() {
        const char* base = std::getenv("TMPDIR");
        std::string pattern = std::string(base && *base ? base : "/tmp") + "/edgemq-auth-XXXXXX";
        if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    std::string file(const std::string& name) const { return path_ + "/" + name; }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

inline void write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    REQUIRE(out.good());
}

inline std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

inline bool have_program(const std::string& name) {
    const char* path = std::getenv("PATH");
    std::stringstream dirs(path ? path : "/usr/bin:/bin");
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
        if (!dir.empty() && ::access((dir + "/" + name).c_str(), X_OK) == 0) return true;
    }
    return false;
}

struct run_result {
    int exit_code = -1;  // -1: killed or signalled
    bool timed_out = false;
    std::string output;  // stdout and stderr
};

// Runs a program to completion, stdin from /dev/null; SIGKILL (by PID) past `timeout`.
inline run_result run(const std::vector<std::string>& args, std::chrono::milliseconds timeout = 20s) {
    std::vector<std::string> copy = args;
    std::vector<char*> argv;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        const int devnull = ::open("/dev/null", O_RDONLY);
        ::dup2(devnull, STDIN_FILENO);
        ::dup2(fds[1], STDOUT_FILENO);
        ::dup2(fds[1], STDERR_FILENO);
        ::execvp(argv[0], argv.data());
        ::_exit(127);
    }
    ::close(fds[1]);
    run_result result;
    const auto deadline = std::chrono::steady_clock::now() + test::scaled(timeout);
    char buf[4096];
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            result.timed_out = true;
            ::kill(pid, SIGKILL);
            break;
        }
        pollfd p{fds[0], POLLIN, 0};
        const int r = ::poll(&p, 1, static_cast<int>(left.count()));
        if (r <= 0) continue;
        const auto n = ::read(fds[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        result.output.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!result.timed_out && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
    return result;
}

// A port nobody listens on right now (the broker may still lose a race for it; the
// broker class retries).
inline int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    ::close(fd);
    return ntohs(addr.sin_port);
}

// The real mosquitto broker on 127.0.0.1 with `extra_config` (password_file, acl_file,
// ...). Stopped by its PID when this goes out of scope.
class mosquitto_broker {
public:
    mosquitto_broker(const temp_dir& dir, const std::string& extra_config) : dir_(dir) {
        for (int attempt = 0; attempt < 3 && pid_ < 0; ++attempt) start(extra_config);
        REQUIRE_MESSAGE(pid_ > 0, "mosquitto did not start: " << log());
    }
    ~mosquitto_broker() { stop(); }
    mosquitto_broker(const mosquitto_broker&) = delete;
    mosquitto_broker& operator=(const mosquitto_broker&) = delete;

    int port() const { return port_; }
    std::string log() const { return read_file(log_path()); }

    // mosquitto_pub with these credentials: true when the broker let it in.
    bool accepts(const std::string& username, const std::string& password) const {
        const auto r = run({"mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(port_), "-u", username, "-P",
                            password, "-t", "edgemq/auth/test", "-m", "x", "-q", "1"},
                           20s);
        REQUIRE_FALSE(r.timed_out);
        if (r.exit_code != 0) CHECK_MESSAGE(r.output.find("not authorised") != std::string::npos, r.output);
        return r.exit_code == 0;
    }

private:
    std::string log_path() const { return dir_.file("mosquitto.log"); }

    void start(const std::string& extra_config) {
        port_ = free_port();
        const std::string conf = dir_.file("mosquitto.conf");
        write_file(conf, "listener " + std::to_string(port_) +
                             " 127.0.0.1\n"
                             "persistence false\n"
                             "log_dest stderr\n"
                             "log_type all\n"
                             // As root Mosquitto would switch to the user "mosquitto",
                             // who cannot read our 0600 files.
                             "user root\n" +
                             extra_config);
        const int log_fd = ::open(log_path().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        REQUIRE(log_fd >= 0);
        const pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            const int devnull = ::open("/dev/null", O_RDONLY);
            ::dup2(devnull, STDIN_FILENO);
            ::dup2(log_fd, STDOUT_FILENO);
            ::dup2(log_fd, STDERR_FILENO);
            ::execlp("mosquitto", "mosquitto", "-c", conf.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        ::close(log_fd);
        bool exited = false;
        const bool running = test::wait_until(
            [&] {
                int status = 0;
                if (::waitpid(pid, &status, WNOHANG) == pid) {
                    exited = true;
                    return true;
                }
                return log().find(" running") != std::string::npos;
            },
            test::scaled(10s));
        if (running && !exited) {
            pid_ = pid;
            return;
        }
        if (!exited) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
        MESSAGE("mosquitto failed to start on port " << port_ << ": " << log());
    }

    void stop() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGTERM);
        int status = 0;
        const bool gone = test::wait_until([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; },
                                           test::scaled(10s));
        if (!gone) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, &status, 0);
        }
        pid_ = -1;
    }

    const temp_dir& dir_;
    pid_t pid_ = -1;
    int port_ = 0;
};

// Skips the rest of a test case (with a message) when a Mosquitto program is missing.
#define EDGEMQ_REQUIRE_PROGRAM(name)                                                  \
    do {                                                                              \
        if (!::edgemq::auth_test::have_program(name)) {                               \
            MESSAGE("skipped: " name " is not installed (apt-get install mosquitto)"); \
            return;                                                                   \
        }                                                                             \
    } while (0)

}  // namespace edgemq::auth_test
