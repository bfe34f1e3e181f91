// Schema versions and migrations: a file of the current version reopens; missing steps
// are applied in one transaction; a failed step changes nothing; a file of a newer
// edgemq, or another program's database, is refused naming the file and left as is.
#include <doctest/doctest.h>

#include "storage/schema.hpp"
#include "storage/sqlite_db.hpp"
#include "store_test_support.hpp"

using namespace edgemq;
using namespace edgemq::storage;
using namespace edgemq::storage::test;

namespace {

constexpr migration test_steps[] = {
    {1, "CREATE TABLE schema_version (id INTEGER PRIMARY KEY, version INTEGER NOT NULL); "
        "CREATE TABLE t (x INTEGER NOT NULL)"},
    {2, "ALTER TABLE t ADD COLUMN y INTEGER NOT NULL DEFAULT 5; INSERT INTO t (x) VALUES (2)"},
    {3, "CREATE TABLE u (z INTEGER)"},
};

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const core::store_error& e) {
        return e.what();
    }
    return "(no store_error)";
}

}  // namespace

TEST_CASE("schema version 0 for a new file and migrate brings it to the current version") {
    temp_dir dir;
    sqlite_db db(dir.file("x.db"), sqlite_db::open_mode::create);
    CHECK(read_schema_version(db) == 0);
    CHECK(migrate(db, schema_migrations()) == 0);
    CHECK(read_schema_version(db) == current_schema_version());
    CHECK(migrate(db, schema_migrations()) == current_schema_version());  // nothing left to do
}

TEST_CASE("a file at an older version gets only the missing steps and keeps its rows") {
    temp_dir dir;
    sqlite_db db(dir.file("x.db"), sqlite_db::open_mode::create);
    CHECK(migrate(db, std::span(test_steps).first(1)) == 0);
    CHECK(read_schema_version(db) == 1);
    db.exec("INSERT INTO t (x) VALUES (1)");
    CHECK(migrate(db, test_steps) == 1);
    CHECK(read_schema_version(db) == 3);
    CHECK(db.query_int("SELECT count(*) FROM t") == 2);
    CHECK(db.query_int("SELECT y FROM t WHERE x = 1") == 5);
    CHECK(db.query_int("SELECT count(*) FROM sqlite_schema WHERE name = 'u'") == 1);
}

TEST_CASE("a failed migration step leaves the file at its previous version") {
    temp_dir dir;
    const std::string path = dir.file("x.db");
    sqlite_db db(path, sqlite_db::open_mode::create);
    CHECK(migrate(db, std::span(test_steps).first(1)) == 0);
    const migration broken[] = {test_steps[0], {2, "CREATE TABLE v (a); INSERT INTO no_such_table VALUES (1)"}};
    const std::string what = error_of([&] { migrate(db, broken); });
    INFO(what);
    CHECK(contains(what, path));
    CHECK(contains(what, "from schema version 1 to 2"));
    CHECK(contains(what, "no such table"));
    CHECK(read_schema_version(db) == 1);
    CHECK(db.query_int("SELECT count(*) FROM sqlite_schema WHERE name = 'v'") == 0);
}

TEST_CASE("a file of the current version reopens") {
    temp_dir dir;
    const std::string path = dir.file("edgemq.db");
    for (int i = 0; i < 3; ++i) {
        sqlite_store store(path, core::durability::process);
        CHECK(store.effective_settings().schema_version == current_schema_version());
        REQUIRE(submit_wait(store, {put_msg(static_cast<std::uint64_t>(i + 1)),
                                    ops::put_retained{"t" + std::to_string(i), static_cast<std::uint64_t>(i + 1)}}));
        store.close();
    }
    sqlite_store store(path, core::durability::process);
    CHECK(store.load().retained.size() == 3);
}

TEST_CASE("a file written by a newer edgemq is refused naming the file and the version") {
    temp_dir dir;
    const std::string path = dir.file("edgemq.db");
    { sqlite_store(path, core::durability::process).close(); }
    {
        sqlite_db db(path, sqlite_db::open_mode::existing);
        db.exec("UPDATE schema_version SET version = " + std::to_string(current_schema_version() + 1));
    }
    const std::string before = read_file(path);
    const std::string what = error_of([&] { sqlite_store store(path, core::durability::process); });
    CHECK(contains(what, path));
    CHECK(contains(what, "written by a newer edgemq"));
    CHECK(contains(what, "schema version " + std::to_string(current_schema_version() + 1)));
    CHECK(read_file(path) == before);
    CHECK_FALSE(fs::exists(path + "-wal"));
}

TEST_CASE("another program's SQLite database is refused and left as is") {
    temp_dir dir;
    const std::string path = dir.file("other.db");
    {
        sqlite_db db(path, sqlite_db::open_mode::create);
        db.exec("CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO accounts (name) VALUES ('x')");
    }
    const std::string before = read_file(path);
    const std::string what = error_of([&] { sqlite_store store(path, core::durability::process); });
    CHECK(contains(what, path));
    CHECK(contains(what, "not an edgemq database"));
    CHECK(read_file(path) == before);
}
