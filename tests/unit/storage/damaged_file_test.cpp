// Files edgemq must not start over: corrupt pages, a damaged header, something that
// is not a database, a directory, files it may not read or write. Each gives a
// store_error naming the file and saying what to do, and the file is left untouched.
// Also: what a killed process committed is there at the next open.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <functional>
#include <random>

#include "storage/sqlite_db.hpp"
#include "store_test_support.hpp"

using namespace edgemq;
using namespace edgemq::storage;
using namespace edgemq::storage::test;

namespace {

// The store_error text of opening `path`, or "(opened)".
std::string open_error(const std::string& path) {
    try {
        sqlite_store store(path, core::durability::process);
    } catch (const core::store_error& e) {
        return e.what();
    }
    return "(opened)";
}

// A closed database of about 40 pages with rows in every table.
void make_database(const std::string& path) {
    sqlite_store store(path, core::durability::process);
    std::vector<core::store_op> batch;
    for (std::uint64_t i = 1; i <= 100; ++i) {
        batch.push_back(put_msg(i, std::string(1000, static_cast<char>('a' + i % 26))));
        batch.push_back(ops::put_delivery{delivery(1, i, i)});
    }
    batch.push_back(ops::put_session{{1, "client", 60, 0, std::nullopt}});
    REQUIRE(submit_wait(store, std::move(batch)));
    store.close();
}

void overwrite(const std::string& path, std::int64_t offset, std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::string garbage(n, '\0');
    for (char& c : garbage) c = static_cast<char>(rng());
    const int fd = ::open(path.c_str(), O_WRONLY);
    REQUIRE(fd >= 0);
    REQUIRE(::pwrite(fd, garbage.data(), garbage.size(), offset) == static_cast<ssize_t>(n));
    ::close(fd);
}

// Runs `body` in a forked child and returns what it wrote to the pipe (the child's
// own result, since doctest's checks cannot cross a fork). The store is not open in
// the parent while this runs, so the child inherits no threads.
std::string in_child(const std::function<std::string()>& body, int* status_out = nullptr) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(fds[0]);
        std::string out;
        try {
            out = body();
        } catch (const std::exception& e) {
            out = std::string("(exception) ") + e.what();
        }
        [[maybe_unused]] auto n = ::write(fds[1], out.data(), out.size());
        ::_exit(0);
    }
    ::close(fds[1]);
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (status_out != nullptr) *status_out = status;
    return out;
}

// Runs `body` as user nobody (65534) when we are root, whom permissions do not stop.
std::string as_unprivileged(const std::function<std::string()>& body) {
    if (::geteuid() != 0) return body();
    return in_child([&] {
        if (::setgid(65534) != 0 || ::setuid(65534) != 0) return std::string("(setuid failed)");
        return body();
    });
}

}  // namespace

TEST_CASE("a database with corrupt pages is refused naming the file and left untouched") {
    temp_dir dir;
    const std::string path = dir.file("edgemq.db");
    make_database(path);
    const std::int64_t size = file_size(path);
    REQUIRE(size > 20 * 4096);
    // Garbage over pages 3 to 12 (b-tree and overflow pages), the header intact.
    overwrite(path, 2 * 4096, 10 * 4096, 1);
    const std::string before = read_file(path);
    const std::string what = open_error(path);
    INFO(what);
    CHECK(contains(what, path + ": the database is corrupt (SQLite: "));
    CHECK(contains(what, "edgemq will not start over it: move it aside (the broker then starts empty) or restore a backup"));
    CHECK(read_file(path) == before);
    CHECK_FALSE(fs::exists(path + "-wal"));
    CHECK_FALSE(fs::exists(path + "-shm"));
    // And again: a refused file stays refused (nothing was "repaired" by the attempt).
    CHECK(contains(open_error(path), "the database is corrupt"));
}

TEST_CASE("a database with a damaged header is refused as not a database") {
    temp_dir dir;
    const std::string path = dir.file("edgemq.db");
    make_database(path);
    overwrite(path, 0, 100, 2);
    const std::string before = read_file(path);
    const std::string what = open_error(path);
    INFO(what);
    CHECK(contains(what, path + ": the file is not a database"));
    CHECK(contains(what, "file is not a database"));
    CHECK(contains(what, "edgemq will not start over it"));
    CHECK(read_file(path) == before);
}

TEST_CASE("a file that is not a database is refused and left untouched") {
    temp_dir dir;
    const std::string path = dir.file("edgemq.db");
    std::string text;
    for (int i = 0; i < 200; ++i) text += "this is a log file, not a database\n";
    write_file(path, text);
    const std::string what = open_error(path);
    INFO(what);
    CHECK(contains(what, path + ": the file is not a database"));
    CHECK(read_file(path) == text);
    CHECK_FALSE(fs::exists(path + "-wal"));
    CHECK_FALSE(fs::exists(path + "-shm"));
}

TEST_CASE("a directory in place of the database file is refused") {
    temp_dir dir;
    const std::string path = dir.file("edgemq.db");
    fs::create_directory(path);
    const std::string what = open_error(path);
    INFO(what);
    CHECK(contains(what, path + ": cannot open the database: it is a directory"));
}

TEST_CASE("a missing data directory is reported and nothing is created") {
    temp_dir dir;
    const std::string path = dir.file("no-such-dir/edgemq.db");
    const std::string what = open_error(path);
    INFO(what);
    CHECK(contains(what, path + ": cannot open the database: its directory does not exist"));
    CHECK_FALSE(fs::exists(dir.file("no-such-dir")));
}

TEST_CASE("an unreadable database file is refused naming the file and the errno text") {
    temp_dir dir;
    const std::string path = dir.file("edgemq.db");
    make_database(path);
    // Others may enter the directory; the file is nobody's to read.
    fs::permissions(dir.path(), fs::perms::owner_all | fs::perms::others_exec | fs::perms::group_exec);
    fs::permissions(path, fs::perms::none);
    const std::string before = read_file(path);  // we (the owner or root) still can
    if (::geteuid() == 0) MESSAGE("running as root: the open is tried as user nobody in a child process");
    const std::string what = as_unprivileged([&] { return open_error(path); });
    INFO(what);
    CHECK(contains(what, path + ": cannot open the database: permission denied (Permission denied)"));
    fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
    CHECK(read_file(path) == before);
}

TEST_CASE("a database in a directory that cannot be entered is refused") {
    temp_dir dir;
    const std::string sub = dir.file("private");
    fs::create_directory(sub);
    make_database(sub + "/edgemq.db");
    fs::permissions(dir.path(), fs::perms::owner_all | fs::perms::others_exec | fs::perms::group_exec);
    // 0700 and the open tried as nobody when root; 0000 for an unprivileged owner.
    fs::permissions(sub, ::geteuid() == 0 ? fs::perms::owner_all : fs::perms::none);
    const std::string what = as_unprivileged([&] { return open_error(sub + "/edgemq.db"); });
    INFO(what);
    CHECK(contains(what, sub + "/edgemq.db: cannot open the database: Permission denied"));
}

TEST_CASE("a database that can be read but not written is refused") {
    temp_dir dir;
    const std::string path = dir.file("edgemq.db");
    make_database(path);
    fs::permissions(dir.path(), fs::perms::owner_all | fs::perms::others_all | fs::perms::group_all);
    fs::permissions(path, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
    const std::string what = as_unprivileged([&] { return open_error(path); });
    INFO(what);
    CHECK(contains(what, path + ": cannot open the database for writing"));
}

TEST_CASE("what a killed process committed is there at the next open") {
    // durability process: the commit is in the WAL in the page cache, not fsync'ed,
    // and the process dies without close(): no checkpoint, the WAL stays.
    temp_dir dir;
    const std::string path = dir.file("edgemq.db");
    int status = 0;
    const std::string child = in_child(
        [&] {
            sqlite_store store(path, core::durability::process);
            std::vector<core::store_op> batch{put_msg(7, "acknowledged"), ops::put_delivery{delivery(1, 1, 7)},
                                              ops::put_session{{1, "c", 60, 0, std::nullopt}}};
            if (!submit_wait(store, std::move(batch))) return std::string("(not committed)");
            ::kill(::getpid(), SIGKILL);  // as a watchdog would
            return std::string("(still alive)");
        },
        &status);
    CHECK(child.empty());
    CHECK(WIFSIGNALED(status));
    CHECK(file_size(path + "-wal") > 0);
    sqlite_store store(path, core::durability::process);
    const auto s = store.load();
    REQUIRE(s.messages.size() == 1);
    CHECK(s.messages[0].payload == "acknowledged");
    CHECK(s.deliveries.size() == 1);
    CHECK(s.sessions.size() == 1);
}
