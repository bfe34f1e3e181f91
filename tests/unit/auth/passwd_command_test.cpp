// `edgemq passwd`: creates, adds, updates, deletes and hashes in place like
// mosquitto_passwd; its files are read by our reader, by mosquitto_passwd and by the
// real mosquitto broker.
#include <doctest/doctest.h>

#include <initializer_list>
#include <iostream>
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <vector>

#include "auth_test_support.hpp"
#include "broker/auth/passwd_command.hpp"
#include "broker/auth/password_file.hpp"

using namespace edgemq::auth;
using namespace edgemq::auth_test;

namespace {

struct outcome {
    int status = -1;
    std::string out;
    std::string err;
};

outcome passwd(std::initializer_list<std::string> args, const std::string& input = "") {
    std::vector<std::string> all{"passwd"};
    all.insert(all.end(), args);
    std::vector<const char*> argv;
    for (const auto& a : all) argv.push_back(a.c_str());
    std::istringstream in(input);
    std::ostringstream out;
    std::ostringstream err;
    const int status = run_passwd_command(static_cast<int>(argv.size()), argv.data(), in, out, err);
    return {status, out.str(), err.str()};
}

unsigned mode_of(const std::string& path) {
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_mode & 0777;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

}  // namespace

TEST_CASE("passwd: -c -b creates a 0600 file that our reader verifies") {
    temp_dir dir;
    const auto path = dir.file("pw");
    const auto r = passwd({"-c", "-b", path, "alice", "s3cret"});
    CHECK_MESSAGE(r.status == 0, r.err);
    CHECK(r.out.empty());
    CHECK(mode_of(path) == 0600);
    const auto text = read_file(path);
    CHECK(text.starts_with("alice:$7$101$"));
    CHECK(text.ends_with("\n"));
    CHECK(lines_of(text).size() == 1);
    const auto file = password_file::load(path);
    CHECK(file.verify("alice", "s3cret"));
    CHECK_FALSE(file.verify("alice", "S3cret"));

    // -c replaces whatever was there.
    REQUIRE(passwd({"-c", "-b", path, "bob", "pw"}).status == 0);
    CHECK(password_file::load(path).size() == 1);
    CHECK(password_file::load(path).verify("bob", "pw"));
}

TEST_CASE("passwd: adds and updates users and keeps other lines as they were") {
    temp_dir dir;
    const auto path = dir.file("pw");
    REQUIRE(passwd({"-c", "-b", path, "alice", "a1"}).status == 0);
    const auto alice_line = lines_of(read_file(path)).at(0);
    write_file(path, "# plant users\n" + alice_line + "\n\n  # keep me\n");
    ::chmod(path.c_str(), 0644);

    REQUIRE(passwd({"-b", path, "bob", "b1"}).status == 0);
    auto lines = lines_of(read_file(path));
    REQUIRE(lines.size() == 5);
    CHECK(lines[0] == "# plant users");
    CHECK(lines[1] == alice_line);
    CHECK(lines[2].empty());
    CHECK(lines[3] == "  # keep me");
    CHECK(lines[4].starts_with("bob:$7$"));
    CHECK(mode_of(path) == 0600);

    REQUIRE(passwd({"-b", path, "alice", "a2"}).status == 0);
    lines = lines_of(read_file(path));
    REQUIRE(lines.size() == 5);
    CHECK(lines[1].starts_with("alice:$7$"));
    CHECK(lines[1] != alice_line);  // updated in place, same position
    const auto file = password_file::load(path);
    CHECK(file.verify("alice", "a2"));
    CHECK_FALSE(file.verify("alice", "a1"));
    CHECK(file.verify("bob", "b1"));
}

TEST_CASE("passwd: -I sets the iteration count of the new hash") {
    temp_dir dir;
    const auto path = dir.file("pw");
    REQUIRE(passwd({"-c", "-I", "2000", "-b", path, "alice", "pw"}).status == 0);
    CHECK(read_file(path).starts_with("alice:$7$2000$"));
    CHECK(password_file::load(path).verify("alice", "pw"));
    // Accepted for scripts written for mosquitto_passwd.
    REQUIRE(passwd({"-H", "sha512-pbkdf2", "-b", path, "bob", "pw"}).status == 0);
    CHECK(password_file::load(path).verify("bob", "pw"));
}

TEST_CASE("passwd: reads one line from input that is not a terminal") {
    temp_dir dir;
    const auto path = dir.file("pw");
    const auto r = passwd({"-c", path, "alice"}, "from stdin\r\nignored\n");
    CHECK_MESSAGE(r.status == 0, r.err);
    CHECK(password_file::load(path).verify("alice", "from stdin"));

    const auto none = passwd({"-c", dir.file("other"), "alice"}, "");
    CHECK(none.status == 1);
    CHECK(none.err.find("no password given") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(dir.file("other")));
}

TEST_CASE("passwd: -D deletes a user and fails for one not in the file") {
    temp_dir dir;
    const auto path = dir.file("pw");
    REQUIRE(passwd({"-c", "-b", path, "alice", "a"}).status == 0);
    REQUIRE(passwd({"-b", path, "bob", "b"}).status == 0);
    REQUIRE(passwd({"-D", path, "alice"}).status == 0);
    const auto file = password_file::load(path);
    CHECK_FALSE(file.contains("alice"));
    CHECK(file.verify("bob", "b"));

    const auto missing = passwd({"-D", path, "alice"});
    CHECK(missing.status == 1);
    CHECK(missing.err == "Error: user 'alice' is not in " + path + "\n");
}

TEST_CASE("passwd: -U hashes plain-text passwords and leaves hashes alone") {
    temp_dir dir;
    const auto path = dir.file("pw");
    REQUIRE(passwd({"-c", "-b", path, "hashed", "already"}).status == 0);
    const auto hashed_line = lines_of(read_file(path)).at(0);
    write_file(path, "# plain\nalice:  plain one \n" + hashed_line + "\nbob:pa:ss\n");

    const auto r = passwd({"-U", path});
    CHECK_MESSAGE(r.status == 0, r.err);
    const auto lines = lines_of(read_file(path));
    REQUIRE(lines.size() == 4);
    CHECK(lines[0] == "# plain");
    CHECK(lines[1].starts_with("alice:$7$101$"));
    CHECK(lines[2] == hashed_line);  // mosquitto_passwd would hash the hash
    CHECK(mode_of(path) == 0600);
    const auto file = password_file::load(path);
    CHECK(file.verify("alice", "plain one"));  // blanks around it trimmed, as Mosquitto
    CHECK(file.verify("hashed", "already"));
    CHECK(file.verify("bob", "pa:ss"));

    // Twice is harmless.
    const auto before = read_file(path);
    REQUIRE(passwd({"-U", path}).status == 0);
    CHECK(read_file(path) == before);

    write_file(path, "alice:$7$101$broken$x\n");
    const auto broken = passwd({"-U", path});
    CHECK(broken.status == 1);
    CHECK(broken.err.find(path + ":1: user 'alice'") != std::string::npos);
}

TEST_CASE("passwd: bad command lines exit 2 with the usage") {
    temp_dir dir;
    const auto path = dir.file("pw");
    for (const auto& args : std::vector<std::vector<std::string>>{
             {},
             {path},
             {"-c", "-D", path, "alice"},
             {"-x", path, "alice"},
             {"-I", "0", "-b", path, "alice", "pw"},
             {"-I", "many", "-b", path, "alice", "pw"},
             {"-I"},
             {"-H", "sha512", "-b", path, "alice", "pw"},
             {"-H", "md5", "-b", path, "alice", "pw"},
             {"-b", path, "alice"},
             {path, "alice", "extra"},
             {"-U", path, "alice"},
             {"-U", "-c", path},
             {"-D", "-b", path, "alice", "pw"},
         }) {
        std::vector<std::string> all{"passwd"};
        all.insert(all.end(), args.begin(), args.end());
        std::vector<const char*> argv;
        for (const auto& a : all) argv.push_back(a.c_str());
        std::istringstream in("pw\n");
        std::ostringstream out;
        std::ostringstream err;
        CAPTURE(all.size());
        CHECK(run_passwd_command(static_cast<int>(argv.size()), argv.data(), in, out, err) == 2);
        CHECK(err.str().starts_with("Error: "));
        CHECK(err.str().find("Usage: edgemq passwd") != std::string::npos);
    }
    CHECK_FALSE(std::filesystem::exists(path));
    const auto help = passwd({"--help"});
    CHECK(help.status == 0);
    CHECK(help.out.starts_with("Usage: edgemq passwd"));
}

TEST_CASE("passwd: errors exit 1 with a clear message and leave the file alone") {
    temp_dir dir;
    const auto path = dir.file("pw");

    auto r = passwd({"-b", path, "alice", "pw"});  // no -c: the file must exist
    CHECK(r.status == 1);
    CHECK(r.err.find(path + ": cannot open: No such file or directory (use -c to create it)") != std::string::npos);

    REQUIRE(passwd({"-c", "-b", path, "alice", "pw"}).status == 0);
    const auto before = read_file(path);
    for (const auto& [user, why] : std::vector<std::pair<std::string, std::string>>{
             {"a:b", "must not contain ':'"},
             {"", "user name is empty"},
             {"tab\there", "control characters"},
             {"#root", "must not start with '#'"},
             {" padded", "must not start or end with a space"},
         }) {
        r = passwd({"-b", path, user, "pw"});
        CHECK(r.status == 1);
        CHECK_MESSAGE(r.err.find(why) != std::string::npos, r.err);
    }
    r = passwd({"-b", path, "bob", ""});
    CHECK(r.status == 1);
    CHECK(r.err == "Error: empty password\n");
    CHECK(read_file(path) == before);

    write_file(path, "alice:$7$1$x$y\nnot a user line\n");
    r = passwd({"-b", path, "bob", "pw"});
    CHECK(r.status == 1);
    CHECK(r.err == "Error: " + path + ":2: missing ':' between user name and password\n");
    CHECK(read_file(path) == "alice:$7$1$x$y\nnot a user line\n");
}

TEST_CASE("passwd: a symbolic link is followed and stays a link") {
    temp_dir dir;
    const auto target = dir.file("real");
    const auto link = dir.file("link");
    REQUIRE(passwd({"-c", "-b", target, "alice", "a"}).status == 0);
    std::filesystem::create_symlink(target, link);
    REQUIRE(passwd({"-b", link, "bob", "b"}).status == 0);
    CHECK(std::filesystem::is_symlink(link));
    CHECK(password_file::load(target).verify("bob", "b"));
    // No temporary files left behind.
    CHECK(std::distance(std::filesystem::directory_iterator(dir.path()), std::filesystem::directory_iterator{}) ==
          2);
}

TEST_CASE("passwd: mosquitto_passwd reads and extends the files we write") {
    EDGEMQ_REQUIRE_PROGRAM("mosquitto_passwd");
    temp_dir dir;
    const auto path = dir.file("pw");
    REQUIRE(passwd({"-c", "-b", path, "alice", "from edgemq"}).status == 0);
    REQUIRE(passwd({"-I", "500", "-b", path, "bob", "also edgemq"}).status == 0);
    // mosquitto_passwd refuses ("Corrupt password file") a file it cannot read.
    const auto r = run({"mosquitto_passwd", "-b", path, "carol", "from mosquitto"});
    REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    const auto file = password_file::load(path);
    CHECK(file.verify("alice", "from edgemq"));
    CHECK(file.verify("bob", "also edgemq"));
    CHECK(file.verify("carol", "from mosquitto"));
}

TEST_CASE("passwd: the mosquitto broker accepts the files we write") {
    EDGEMQ_REQUIRE_PROGRAM("mosquitto");
    EDGEMQ_REQUIRE_PROGRAM("mosquitto_pub");
    temp_dir dir;
    const auto path = dir.file("pw");
    REQUIRE(passwd({"-c", "-b", path, "alice", "right horse"}).status == 0);
    REQUIRE(passwd({"-I", "1000", "-b", path, "bob", "battery staple"}).status == 0);
    write_file(dir.file("plain"), "carol:plain text\n");
    REQUIRE(passwd({"-U", dir.file("plain")}).status == 0);
    write_file(path, read_file(path) + read_file(dir.file("plain")));

    mosquitto_broker broker(dir, "allow_anonymous false\npassword_file " + path + "\n");
    CHECK(broker.accepts("alice", "right horse"));
    CHECK(broker.accepts("bob", "battery staple"));
    CHECK(broker.accepts("carol", "plain text"));
    CHECK_FALSE(broker.accepts("alice", "wrong horse"));
    CHECK_FALSE(broker.accepts("bob", "right horse"));
    CHECK_FALSE(broker.accepts("mallory", "right horse"));
    // Mosquitto logs and drops entries it cannot decode instead of failing.
    CHECK_MESSAGE(broker.log().find("Error") == std::string::npos, broker.log());
}

namespace {

struct terminal_run {
    int status = -1;
    std::string screen;  // everything the terminal showed
};

// Runs the command in a child whose standard input and output are a new pseudo
// terminal, typing each answer once the expected prompt has appeared.
terminal_run passwd_on_terminal(const std::vector<std::string>& args,
                                const std::vector<std::pair<std::string, std::string>>& dialogue) {
    int master = -1;
    const pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
    REQUIRE(pid >= 0);
    if (pid == 0) {
        std::vector<const char*> argv{"passwd"};
        for (const auto& a : args) argv.push_back(a.c_str());
        const int status = run_passwd_command(static_cast<int>(argv.size()), argv.data(), std::cin, std::cout,
                                              std::cerr);
        std::cout.flush();
        std::cerr.flush();
        ::_exit(status);
    }
    terminal_run result;
    std::size_t step = 0;
    std::size_t searched_from = 0;
    const auto deadline = std::chrono::steady_clock::now() + edgemq::test::scaled(std::chrono::seconds(20));
    char buf[512];
    for (;;) {
        if (step < dialogue.size() && result.screen.find(dialogue[step].first, searched_from) != std::string::npos) {
            searched_from = result.screen.size();  // the next prompt is looked for in new output
            const auto& answer = dialogue[step].second;
            REQUIRE(::write(master, answer.data(), answer.size()) == static_cast<ssize_t>(answer.size()));
            ++step;
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                                std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            ::kill(pid, SIGKILL);
            break;
        }
        pollfd p{master, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
        const auto n = ::read(master, buf, sizeof buf);
        if (n <= 0) break;  // EIO once the child has exited
        result.screen.append(buf, static_cast<std::size_t>(n));
    }
    ::close(master);
    int status = 0;
    ::waitpid(pid, &status, 0);
    result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
}

}  // namespace

TEST_CASE("passwd: asks twice on a terminal without echoing the password") {
    temp_dir dir;
    const auto path = dir.file("pw");
    const auto ok = passwd_on_terminal({"-c", path, "alice"},
                                       {{"Password: ", "tty secret\n"}, {"Reenter password: ", "tty secret\n"}});
    CHECK_MESSAGE(ok.status == 0, ok.screen);
    CHECK(ok.screen.find("tty secret") == std::string::npos);
    CHECK(password_file::load(path).verify("alice", "tty secret"));

    const auto mismatch = passwd_on_terminal({"-c", dir.file("other"), "bob"},
                                             {{"Password: ", "one\n"}, {"Reenter password: ", "two\n"}});
    CHECK(mismatch.status == 1);
    CHECK(mismatch.screen.find("the passwords do not match") != std::string::npos);
    CHECK(mismatch.screen.find("one") == std::string::npos);
    CHECK_FALSE(std::filesystem::exists(dir.file("other")));
}
