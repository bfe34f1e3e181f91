#include "broker/auth/passwd_command.hpp"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <iostream>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>
#include <vector>

#include "broker/auth/file_error.hpp"
#include "broker/auth/password_hash.hpp"
#include "broker/auth/text_file.hpp"

namespace edgemq::auth {
namespace {

constexpr std::string_view usage_text =
    "Usage: edgemq passwd [-c | -D] [-b] [-I ITERATIONS] FILE USERNAME [PASSWORD]\n"
    "       edgemq passwd [-I ITERATIONS] -U FILE\n"
    "Manages Mosquitto password files (mosquitto_passwd's format, $7$ PBKDF2-SHA512 hashes).\n"
    " -b  batch mode: take PASSWORD from the command line\n"
    " -c  create FILE, replacing an existing one\n"
    " -D  delete USERNAME\n"
    " -I  PBKDF2 iterations of new hashes (default 101, as mosquitto_passwd)\n"
    " -U  hash the plain-text passwords of FILE in place\n"
    "Without -b the password is read twice from the terminal, or one line from standard\n"
    "input when that is not a terminal.\n";

constexpr std::size_t max_field_size = 65535;  // MQTT's string limit, as mosquitto_passwd

// Exit status 2: the command line itself is wrong.
struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};
// Exit status 1: the command cannot be done.
struct command_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct command {
    bool create = false;
    bool remove = false;
    bool batch = false;
    bool hash_file = false;
    int iterations = default_hash_iterations;
    std::string file;
    std::string username;
    std::string password;  // batch mode
};

int parse_iterations(std::string_view text) {
    long long value = 0;
    if (text.empty() || text.size() > 10) value = -1;
    for (char c : text) {
        if (c < '0' || c > '9') value = -1;
        if (value >= 0) value = value * 10 + (c - '0');
    }
    if (value < 1 || value > std::numeric_limits<int>::max()) {
        throw usage_error("-I takes a whole number of iterations, at least 1: '" + std::string(text) + "'");
    }
    return static_cast<int>(value);
}

command parse_command_line(int argc, const char* const* argv) {
    command cmd;
    if (argc < 1) throw usage_error("no arguments");
    int i = 1;
    for (; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--") {
            ++i;
            break;
        }
        if (arg.size() < 2 || arg.front() != '-') break;
        if (arg == "-c") {
            cmd.create = true;
        } else if (arg == "-D") {
            cmd.remove = true;
        } else if (arg == "-b") {
            cmd.batch = true;
        } else if (arg == "-U") {
            cmd.hash_file = true;
        } else if (arg == "-I" || arg == "-H") {
            if (i + 1 == argc) throw usage_error(std::string(arg) + " needs a value");
            const std::string_view value = argv[++i];
            if (arg == "-I") {
                cmd.iterations = parse_iterations(value);
            } else if (value == "sha512") {
                throw usage_error("-H sha512 ($6$) hashes are accepted in password files but no longer written; "
                                  "use the default, sha512-pbkdf2");
            } else if (value != "sha512-pbkdf2") {
                throw usage_error("unknown hash type '" + std::string(value) + "' (only sha512-pbkdf2)");
            }
        } else {
            throw usage_error("unknown option '" + std::string(arg) + "'");
        }
    }
    if (cmd.create && cmd.remove) throw usage_error("-c and -D cannot be used together");
    if (cmd.hash_file && (cmd.create || cmd.remove || cmd.batch)) {
        throw usage_error("-U cannot be used with -c, -D or -b");
    }
    if (cmd.remove && cmd.batch) throw usage_error("-D and -b cannot be used together");

    const std::vector<std::string_view> positional(argv + i, argv + argc);
    const std::size_t expected = cmd.hash_file ? 1 : cmd.batch ? 3 : 2;
    if (positional.size() != expected) {
        throw usage_error(cmd.hash_file ? "-U takes exactly one argument, the password file"
                          : cmd.batch   ? "-b needs FILE, USERNAME and PASSWORD"
                                        : "expected FILE and USERNAME");
    }
    cmd.file = positional[0];
    if (!cmd.hash_file) cmd.username = positional[1];
    if (cmd.batch) cmd.password = positional[2];
    return cmd;
}

void check_username(std::string_view username) {
    if (username.empty()) throw command_error("the user name is empty");
    if (username.size() > max_field_size) throw command_error("the user name is longer than 65535 bytes");
    for (char c : username) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7f) throw command_error("the user name must not contain control characters");
    }
    if (username.find(':') != std::string_view::npos) throw command_error("the user name must not contain ':'");
    // Both readers would see a comment, or trim the blanks away.
    if (username.front() == '#') throw command_error("the user name must not start with '#'");
    if (username.front() == ' ' || username.back() == ' ') {
        throw command_error("the user name must not start or end with a space");
    }
}

void check_password(std::string_view password) {
    if (password.empty()) throw command_error("empty password");
    if (password.size() > max_field_size) throw command_error("the password is longer than 65535 bytes");
}

// Echo off on the terminal for as long as this lives; a SIGINT or SIGTERM meanwhile
// puts the terminal back before the default action ends the process.
struct terminal_state {
    static inline termios saved{};
    static inline volatile std::sig_atomic_t active = 0;

    static void restore_and_reraise(int signal_number) {
        if (active) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved);
        std::signal(signal_number, SIG_DFL);
        std::raise(signal_number);
    }
};

class echo_off {
public:
    echo_off() {
        if (::tcgetattr(STDIN_FILENO, &terminal_state::saved) != 0) return;
        struct sigaction handler {};
        handler.sa_handler = &terminal_state::restore_and_reraise;
        ::sigemptyset(&handler.sa_mask);
        ::sigaction(SIGINT, &handler, &old_int_);
        ::sigaction(SIGTERM, &handler, &old_term_);
        termios quiet = terminal_state::saved;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        terminal_state::active = 1;
        ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        engaged_ = true;
    }
    ~echo_off() {
        if (!engaged_) return;
        ::tcsetattr(STDIN_FILENO, TCSANOW, &terminal_state::saved);
        terminal_state::active = 0;
        ::sigaction(SIGINT, &old_int_, nullptr);
        ::sigaction(SIGTERM, &old_term_, nullptr);
    }
    echo_off(const echo_off&) = delete;
    echo_off& operator=(const echo_off&) = delete;

private:
    bool engaged_ = false;
    struct sigaction old_int_ {};
    struct sigaction old_term_ {};
};

bool read_line(std::istream& in, std::string& line) {
    if (!std::getline(in, line)) return false;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return true;
}

std::string read_password(std::istream& in, std::ostream& out) {
    std::string first;
    if (&in == &std::cin && ::isatty(STDIN_FILENO)) {
        std::string second;
        bool got_both = false;
        {
            echo_off quiet;
            out << "Password: " << std::flush;
            const bool got_first = read_line(in, first);
            out << '\n';
            if (got_first) {
                out << "Reenter password: " << std::flush;
                got_both = read_line(in, second);
                out << '\n' << std::flush;
            }
        }
        if (!got_both) throw command_error("no password entered");
        if (first != second) throw command_error("the passwords do not match");
    } else if (!read_line(in, first)) {
        throw command_error("no password given: expected one line on standard input (or use -b)");
    }
    return first;
}

// A line of an existing password file, kept as it was unless the command changes it.
struct file_line {
    std::string text;       // without the '\n'
    std::string username;   // empty for a blank or comment line
    std::string hash_text;  // what follows ':', trimmed
};

std::vector<file_line> read_password_lines(const std::string& path) {
    std::string text;
    try {
        text = detail::read_text_file(path);
    } catch (const file_error& e) {
        throw command_error(std::string(e.what()) + " (use -c to create it)");
    }
    std::vector<file_line> lines;
    detail::line_reader reader(text);
    std::string_view line;
    std::size_t number = 0;
    while (reader.next(line, number)) {
        file_line entry{std::string(line), {}, {}};
        const auto content = detail::trim(line);
        if (!content.empty() && content.front() != '#') {
            const auto colon = content.find(':');
            if (colon == std::string_view::npos) {
                throw command_error(file_error(path, number, "missing ':' between user name and password").what());
            }
            entry.username = std::string(detail::trim(content.substr(0, colon)));
            if (entry.username.empty()) {
                throw command_error(file_error(path, number, "empty user name before ':'").what());
            }
            entry.hash_text = std::string(detail::trim(content.substr(colon + 1)));
        }
        lines.push_back(std::move(entry));
    }
    return lines;
}

std::string entry_for(std::string_view username, std::string_view password, int iterations) {
    return std::string(username) + ":" + format_password_hash(make_password_hash(password, iterations));
}

void write_atomically(const std::string& path, const std::string& content) {
    std::string target = path;
    if (char* real = ::realpath(path.c_str(), nullptr)) {  // replace a link's target, not the link
        target = real;
        std::free(real);
    }
    std::string temporary = target + ".tmp-XXXXXX";
    const int fd = ::mkstemp(temporary.data());  // mode 0600
    if (fd < 0) {
        throw command_error("cannot create a temporary file beside " + target + ": " + std::strerror(errno));
    }
    auto fail = [&](const std::string& what) {
        const int saved_errno = errno;
        ::close(fd);
        ::unlink(temporary.c_str());
        throw command_error(what + " " + temporary + ": " + std::strerror(saved_errno));
    };
    if (::fchmod(fd, S_IRUSR | S_IWUSR) != 0) fail("cannot set the mode of");
    std::size_t written = 0;
    while (written < content.size()) {
        const auto n = ::write(fd, content.data() + written, content.size() - written);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail("cannot write");
        written += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) fail("cannot flush");
    if (::close(fd) != 0) {
        const int saved_errno = errno;
        ::unlink(temporary.c_str());
        throw command_error("cannot write " + temporary + ": " + std::strerror(saved_errno));
    }
    if (::rename(temporary.c_str(), target.c_str()) != 0) {
        const int saved_errno = errno;
        ::unlink(temporary.c_str());
        throw command_error("cannot replace " + target + ": " + std::strerror(saved_errno));
    }
    // The rename itself is durable once the directory is flushed.
    const auto slash = target.rfind('/');
    const std::string directory = slash == std::string::npos ? "." : slash == 0 ? "/" : target.substr(0, slash);
    const int dir_fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
        ::fsync(dir_fd);
        ::close(dir_fd);
    }
}

std::string join(const std::vector<file_line>& lines) {
    std::string text;
    for (const auto& line : lines) {
        text += line.text;
        text += '\n';
    }
    return text;
}

void hash_plain_text_file(const command& cmd) {
    auto lines = read_password_lines(cmd.file);
    bool changed = false;
    std::size_t number = 0;
    for (auto& line : lines) {
        ++number;
        if (line.username.empty()) continue;
        try {
            (void)parse_password_hash(line.hash_text);
            continue;  // already hashed
        } catch (const std::invalid_argument& e) {
            if (line.hash_text.starts_with("$6$") || line.hash_text.starts_with("$7$")) {
                throw command_error(file_error(cmd.file, number, "user '" + line.username + "': " + e.what() +
                                                                     "; fix or delete this line")
                                        .what());
            }
        }
        if (line.hash_text.empty()) {
            throw command_error(file_error(cmd.file, number, "user '" + line.username + "' has no password").what());
        }
        check_password(line.hash_text);
        line.text = entry_for(line.username, line.hash_text, cmd.iterations);
        changed = true;
    }
    if (changed) write_atomically(cmd.file, join(lines));
}

void set_or_delete_user(const command& cmd, std::istream& in, std::ostream& out) {
    check_username(cmd.username);
    if (cmd.remove) {
        auto lines = read_password_lines(cmd.file);
        std::vector<file_line> kept;
        for (auto& line : lines) {
            if (line.username != cmd.username) kept.push_back(std::move(line));
        }
        if (kept.size() == lines.size()) throw command_error("user '" + cmd.username + "' is not in " + cmd.file);
        write_atomically(cmd.file, join(kept));
        return;
    }
    // Read the file first: no point asking for a password to add to a file we cannot use.
    std::vector<file_line> lines;
    if (!cmd.create) lines = read_password_lines(cmd.file);
    const std::string password = cmd.batch ? cmd.password : read_password(in, out);
    check_password(password);
    const std::string entry = entry_for(cmd.username, password, cmd.iterations);

    std::vector<file_line> result;
    bool placed = false;
    for (auto& line : lines) {
        if (line.username != cmd.username) {
            result.push_back(std::move(line));
        } else if (!placed) {  // the first entry takes the new hash, later duplicates go
            result.push_back({entry, cmd.username, {}});
            placed = true;
        }
    }
    if (!placed) result.push_back({entry, cmd.username, {}});
    write_atomically(cmd.file, join(result));
}

}  // namespace

int run_passwd_command(int argc, const char* const* argv, std::istream& in, std::ostream& out,
                       std::ostream& err) {
    // Only in first place: "-b FILE USER -h" sets the password "-h".
    if (argc == 2 && (std::string_view(argv[1]) == "-h" || std::string_view(argv[1]) == "--help")) {
        out << usage_text;
        return 0;
    }
    command cmd;
    try {
        cmd = parse_command_line(argc, argv);
    } catch (const usage_error& e) {
        err << "Error: " << e.what() << "\n\n" << usage_text;
        return 2;
    }
    try {
        if (cmd.hash_file) {
            hash_plain_text_file(cmd);
        } else {
            set_or_delete_user(cmd, in, out);
        }
    } catch (const std::exception& e) {
        err << "Error: " << e.what() << '\n';
        return 1;
    }
    return 0;
}

}  // namespace edgemq::auth
