#include "support/run_process.hpp"

#include "support/wait.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdexcept>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace edgemq::test {

process_result run_process(const std::vector<std::string>& args, std::chrono::milliseconds timeout,
                           output_mode mode) {
    if (args.empty()) throw std::invalid_argument("run_process: empty argv");
    std::vector<std::string> copy = args;
    std::vector<char*> argv;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);

    int fds[2];
    int err_fds[2] = {-1, -1};
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
    if (mode == output_mode::separate && ::pipe2(err_fds, O_CLOEXEC) != 0) {
        ::close(fds[0]);
        ::close(fds[1]);
        throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
    }
    int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) {
        const int fork_errno = errno;
        for (int fd : {fds[0], fds[1], err_fds[0], err_fds[1], devnull})
            if (fd >= 0) ::close(fd);
        throw std::runtime_error(std::string("fork: ") + std::strerror(fork_errno));
    }
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(127);
        ::dup2(devnull, STDIN_FILENO);
        ::dup2(fds[1], STDOUT_FILENO);
        ::dup2(err_fds[1] >= 0 ? err_fds[1] : fds[1], STDERR_FILENO);
        if (::syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
            for (int fd = 3; fd < 4096; ++fd) ::close(fd);
        ::execvp(argv[0], argv.data());
        ::_exit(127);
    }
    ::close(fds[1]);
    if (err_fds[1] >= 0) ::close(err_fds[1]);
    ::close(devnull);

    process_result result;
    auto deadline = std::chrono::steady_clock::now() + scaled(timeout);
    char buf[4096];
    // Reads both pipes until both reach EOF (normally: the child exited).
    pollfd pipes[2] = {{fds[0], POLLIN, 0}, {err_fds[0], POLLIN, 0}};
    std::string* sinks[2] = {&result.output, &result.error_output};
    int open_pipes = err_fds[0] >= 0 ? 2 : 1;
    while (open_pipes > 0) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            result.timed_out = true;
            break;
        }
        int r = ::poll(pipes, 2, static_cast<int>(left.count()));  // fd -1 is ignored
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) continue;  // loop re-checks the deadline
        for (int i = 0; i < 2; ++i) {
            if (pipes[i].fd < 0 || pipes[i].revents == 0) continue;
            ssize_t n = ::read(pipes[i].fd, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                pipes[i].fd = -1;
                --open_pipes;
                continue;
            }
            sinks[i]->append(buf, static_cast<std::size_t>(n));
        }
    }
    int status = 0;
    if (result.timed_out) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
    } else if (!wait_until([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, std::chrono::seconds(2), std::chrono::milliseconds(2))) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        result.timed_out = true;
    }
    ::close(fds[0]);
    if (err_fds[0] >= 0) ::close(err_fds[0]);
    result.exit_code = (!result.timed_out && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
    return result;
}

}  // namespace edgemq::test
