// A database edgemq cannot read stops it at start-up with one line naming the file and
// what to do, and it never starts empty over that file nor changes it
// (docs/DURABILITY.md, Start-up). Each case makes a real database with state in it (a
// persistent session with a queued message, a retained message), stops the broker
// gracefully, damages the file, and runs the same edgemq command line again.
#include "helpers.hpp"

#include "support/run_process.hpp"

#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>

using namespace edgemq::test;

TEST_SUITE_BEGIN("integration");

namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void write_file(const fs::path& p, const std::string& bytes) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << bytes;
    REQUIRE(out.good());
}

std::string garbage(std::size_t n) {
    std::mt19937 rng(4);  // fixed: the same damage every run
    std::string g(n, '\0');
    for (auto& c : g) c = static_cast<char>(rng() & 0xFF);
    return g;
}

// Creates state and stops the broker gracefully; returns the database path.
fs::path make_database(broker_process& broker) {
    {
        raw_client sub(broker);
        sub.connect(wire::v5, "corrupt-sub", false, session_expiry(3600));
        sub.subscribe("corrupt/t", wire::sub_options(1));
        sub.send(wire::disconnect());
        CHECK(sub.expect_closed());
        raw_client pub(broker);
        pub.connect(wire::v5, "corrupt-pub");
        raw_publish(pub, "corrupt/t", "queued", 1, 1);
        raw_publish(pub, "corrupt/r", std::string(3000, 'r'), 1, 2, {}, true);
    }
    REQUIRE(broker.stop() == 0);
    const fs::path db = broker.data_dir() / "edgemq.db";
    REQUIRE(fs::is_regular_file(db));
    const fs::path wal = broker.data_dir() / "edgemq.db-wal";
    if (fs::exists(wal) && fs::file_size(wal) > 0)
        MESSAGE("note: " << wal << " is left after a graceful stop (" << fs::file_size(wal) << " bytes)");
    return db;
}

// Runs the broker's own command line, which must fail; checks how.
void expect_refusal(const broker_process& broker, const fs::path& db) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = run_process(broker.command_line(), scaled(10s), output_mode::separate);
    const double secs = seconds_since(t0);
    INFO("stderr:\n" << r.error_output << "stdout:\n" << r.output);
    CHECK_FALSE(r.timed_out);  // it did not go on serving
    CHECK(r.exit_code > 0);
    CHECK(secs < scaled(5s).count() / 1000.0);
    CHECK(r.error_output.find("listening") == std::string::npos);
    // The error is one line; informational log lines before it ("starting") are fine.
    static const std::regex info_line(R"(^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z (trace|debug|info) .*)");
    std::vector<std::string> errors;
    std::istringstream lines(r.error_output);
    for (std::string line; std::getline(lines, line);)
        if (!line.empty() && !std::regex_match(line, info_line)) errors.push_back(line);
    REQUIRE(errors.size() == 1);
    CHECK_MESSAGE(errors[0].find(db.string()) != std::string::npos, "the line does not name " << db);
    MESSAGE("edgemq exited " << r.exit_code << " after " << secs << " s: " << errors[0]);
}

// The operator's way out: the good file back in place, and everything is there again.
void expect_good_copy_restores(broker_process& broker, const fs::path& db, const std::string& good) {
    for (const char* suffix : {"-wal", "-shm"}) fs::remove(db.string() + suffix);
    fs::remove_all(db);
    write_file(db, good);
    broker.restart();
    raw_client sub(broker);
    auto ack = sub.connect(wire::v5, "corrupt-sub", false, session_expiry(3600));
    CHECK(ack.session_present);
    CHECK(sub.expect_publish().payload == "queued");
}

bool skip_unless_edgemq() {
    if (!testing_mosquitto()) return false;
    MESSAGE("skipped: edgemq's database file");
    return true;
}

}  // namespace

TEST_CASE("corrupt database: garbage over the file header stops edgemq with one line and the file unchanged") {
    if (skip_unless_edgemq()) return;
    broker_process broker;
    const fs::path db = make_database(broker);
    const std::string good = read_file(db);
    std::string bad = good;
    bad.replace(0, 100, garbage(100));
    write_file(db, bad);
    expect_refusal(broker, db);
    CHECK(read_file(db) == bad);
    expect_good_copy_restores(broker, db, good);
}

TEST_CASE("corrupt database: garbage over every page after the first stops edgemq with one line and the file unchanged") {
    if (skip_unless_edgemq()) return;
    broker_process broker;
    const fs::path db = make_database(broker);
    const std::string good = read_file(db);
    REQUIRE(good.size() > 100);
    // Page size: big-endian 16 bits at offset 16 (1 means 65536).
    std::size_t page = (static_cast<unsigned char>(good[16]) << 8) | static_cast<unsigned char>(good[17]);
    if (page == 1) page = 65536;
    REQUIRE(good.size() > page);
    MESSAGE("database " << good.size() << " bytes, " << good.size() / page << " pages of " << page);
    std::string bad = good;
    bad.replace(page, good.size() - page, garbage(good.size() - page));
    write_file(db, bad);
    expect_refusal(broker, db);
    CHECK(read_file(db) == bad);
}

TEST_CASE("corrupt database: the second half of the file cut off stops edgemq with one line and the file unchanged") {
    if (skip_unless_edgemq()) return;
    broker_process broker;
    const fs::path db = make_database(broker);
    const std::string good = read_file(db);
    const std::string bad = good.substr(0, good.size() / 2);
    write_file(db, bad);
    expect_refusal(broker, db);
    CHECK(read_file(db) == bad);
}

TEST_CASE("corrupt database: a file that is not an SQLite database stops edgemq with one line and the file unchanged") {
    if (skip_unless_edgemq()) return;
    broker_process broker;
    const fs::path db = make_database(broker);
    std::string text;
    for (int i = 0; i < 200; ++i) text += "this is a text file where edgemq.db should be\n";
    write_file(db, text);
    expect_refusal(broker, db);
    CHECK(read_file(db) == text);
}

TEST_CASE("unreadable database: a directory named edgemq.db stops edgemq with one line") {
    if (skip_unless_edgemq()) return;
    broker_process broker;
    const fs::path db = make_database(broker);
    fs::remove(db);
    fs::create_directory(db);
    std::ofstream(db / "keep") << "x";
    expect_refusal(broker, db);
    CHECK(fs::is_directory(db));
    CHECK(fs::exists(db / "keep"));
}

TEST_CASE("corrupt database: a file from a newer edgemq (schema_version) stops edgemq with one line and the file unchanged") {
    if (skip_unless_edgemq()) return;
    if (!fs::exists("/usr/bin/sqlite3")) {
        MESSAGE("skipped: needs /usr/bin/sqlite3 (apt-get install sqlite3) to edit the file");
        return;
    }
    broker_process broker;
    const fs::path db = make_database(broker);
    auto r = run_process({"/usr/bin/sqlite3", db.string(),
                          "UPDATE schema_version SET version = version + 100; SELECT version FROM schema_version;"},
                         scaled(5s));
    INFO("sqlite3: " << r.output);
    REQUIRE(r.exit_code == 0);
    for (const char* suffix : {"-wal", "-shm"}) REQUIRE_FALSE(fs::exists(db.string() + suffix));
    const std::string newer = read_file(db);
    expect_refusal(broker, db);
    CHECK(read_file(db) == newer);
}

TEST_SUITE_END();
