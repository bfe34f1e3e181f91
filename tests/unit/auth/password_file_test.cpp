// Password files: files written by the real mosquitto_passwd verify, comments and blanks
// are skipped, and every malformed line is refused as "FILE:LINE: why".
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "auth_test_support.hpp"
#include "broker/auth/password_file.hpp"

using namespace edgemq::auth;
using namespace edgemq::auth_test;

namespace {

std::string error_of(const std::string& text) {
    try {
        (void)password_file::parse(text, "pw.txt");
    } catch (const file_error& e) {
        return e.what();
    }
    return "(accepted)";
}

constexpr const char* alice_line =
    "alice:$7$101$eYZhtdFkOVFK+BIu$D4GRm161IFc9PNDPHXcXo1GfovFg/46JG9x/nKOC3f2fvH1Ch7MbxB1GnlZL70RiLD3RTwyitZEKMKo36bk3rw==";
constexpr const char* bob_line =
    "bob:$6$d3kixEJS7eFT8/Cu$e5fIzTQ/kmIZtX9hPRMbstmuAU0fEbU38joGhOYIXFh7kb+15paBS1xaDjcOSEcU2owQIINaPSJRGgD97ztOew==";

}  // namespace

TEST_CASE("password file: accepts what the real mosquitto_passwd writes") {
    EDGEMQ_REQUIRE_PROGRAM("mosquitto_passwd");
    temp_dir dir;
    const auto path = dir.file("passwords");
    auto tool = [&](std::vector<std::string> args) {
        args.insert(args.begin(), "mosquitto_passwd");
        const auto r = run(args);
        REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    };
    tool({"-c", "-b", path, "alice", "s3cret"});
    tool({"-b", path, "bob", "pass word with spaces"});
    tool({"-H", "sha512", "-b", path, "carol", "old-style"});  // $6$
    tool({"-I", "1000", "-b", path, "dave", "slow"});
    tool({"-b", path, "erin", "\xc3\xa9t\xc3\xa9"});  // UTF-8 password
    tool({"-b", path, "alice", "changed"});           // update in place

    const auto file = password_file::load(path);
    CHECK(file.size() == 5);
    CHECK(file.verify("alice", "changed"));
    CHECK_FALSE(file.verify("alice", "s3cret"));
    CHECK(file.verify("bob", "pass word with spaces"));
    CHECK(file.verify("carol", "old-style"));
    CHECK(file.verify("dave", "slow"));
    CHECK(file.verify("erin", "\xc3\xa9t\xc3\xa9"));
    CHECK(read_file(path).find("carol:$6$") != std::string::npos);
    CHECK(read_file(path).find("dave:$7$1000$") != std::string::npos);
}

TEST_CASE("password file: wrong password and unknown user are refused") {
    const auto file = password_file::parse(std::string(alice_line) + "\n" + bob_line + "\n", "pw.txt");
    CHECK(file.verify("alice", "secret"));
    CHECK(file.verify("bob", "hunter2"));
    CHECK_FALSE(file.verify("alice", "hunter2"));
    CHECK_FALSE(file.verify("bob", "secret"));
    CHECK_FALSE(file.verify("mallory", "secret"));
    CHECK_FALSE(file.verify("", ""));
    CHECK_FALSE(file.verify("Alice", "secret"));  // user names are case sensitive
    CHECK(file.contains("alice"));
    CHECK_FALSE(file.contains("mallory"));
}

TEST_CASE("password file: comments and blank lines are skipped and blanks trimmed") {
    const auto text = std::string("# users of the plant\n\n   \n  # indented comment\r\n") + "  " + alice_line +
                      "  \r\n" + "\t" + bob_line;  // CRLF, tabs, no final newline
    const auto file = password_file::parse(text, "pw.txt");
    CHECK(file.size() == 2);
    CHECK(file.verify("alice", "secret"));
    CHECK(file.verify("bob", "hunter2"));
    CHECK(password_file::parse("", "empty").size() == 0);
    CHECK_FALSE(password_file::parse("", "empty").verify("alice", "secret"));
}

TEST_CASE("password file: malformed lines name the file and line") {
    CHECK(error_of("# ok\nalice\n") == "pw.txt:2: missing ':' between user name and password hash");
    CHECK(error_of(":$7$101$x$y\n") == "pw.txt:1: empty user name before ':'");
    CHECK(error_of("\n\nalice:\n") == "pw.txt:3: user 'alice': missing password hash");
    CHECK(error_of("alice:secret\n").starts_with("pw.txt:1: user 'alice': password is not hashed"));
    CHECK(error_of("alice:$5$abc$def\n") ==
          "pw.txt:1: user 'alice': unknown hash type '$5$' (expected $7$ or $6$, as mosquitto_passwd writes)");
    CHECK(error_of("alice:$7$101$!!!!$AAAA\n") == "pw.txt:1: user 'alice': salt is not valid base64");
    CHECK(error_of("alice:$7$101$eYZhtdFkOVFK+BIu$AAAA\n")
              .starts_with("pw.txt:1: user 'alice': hash is 3 bytes, expected 64"));
    CHECK(error_of(std::string(alice_line) + ":extra\n") ==
          "pw.txt:1: unexpected ':' after the password hash of user 'alice'");
    CHECK(error_of(std::string(alice_line) + "\n" + bob_line + "\n" + alice_line + "\n") ==
          "pw.txt:3: user 'alice' is already defined on line 1");
}

TEST_CASE("password file: a missing file is named in the error") {
    temp_dir dir;
    const auto path = dir.file("nope");
    try {
        (void)password_file::load(path);
        FAIL("loaded a missing file");
    } catch (const file_error& e) {
        CHECK(std::string(e.what()) == path + ": cannot open: No such file or directory");
        CHECK(e.file() == path);
        CHECK(e.line() == 0);
    }
    CHECK_THROWS_AS((void)password_file::load(dir.path()), file_error);  // a directory
}

TEST_CASE("password file: an unknown user costs a hash like a known one") {
    // No timing oracle for which users exist: with an expensive hash the unknown user
    // must take about as long. Lower bound on a ratio, generous for shared machines.
    const auto hash = make_password_hash("right", 20000);
    const auto file = password_file::parse("alice:" + format_password_hash(hash) + "\n", "pw.txt");
    auto fastest = [&](const char* user) {
        auto best = std::chrono::steady_clock::duration::max();
        for (int i = 0; i < 3; ++i) {
            const auto start = std::chrono::steady_clock::now();
            CHECK_FALSE(file.verify(user, "wrong"));
            best = std::min(best, std::chrono::steady_clock::now() - start);
        }
        return best;
    };
    const auto known = fastest("alice");
    const auto unknown = fastest("mallory");
    CHECK(unknown * 4 > known);
    CHECK(known * 4 > unknown);
}
