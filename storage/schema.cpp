#include "storage/schema.hpp"

#include <sqlite3.h>

#include <cassert>
#include <string>

#include "storage/sqlite_statement.hpp"

namespace edgemq::storage {
namespace {

// Version 1. STRICT: a wrong type is an error, not a silent conversion. The tables
// keyed by a composite key are WITHOUT ROWID, so each row lives in one b-tree (the
// key's) instead of a table plus an index: one page write less per insert and
// delete, and (for deliveries) load order (session_id, row) for free.
// No foreign keys: a delivery's message is kept alive by the store's in-memory
// reference count, and a foreign key would need an index on deliveries(message_id),
// i.e. a second b-tree written on every delivery insert and delete.
constexpr std::string_view schema_v1 = R"sql(
CREATE TABLE schema_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
) STRICT;

-- Every payload once; deliveries and retained entries refer to it by id. The store
-- deletes a row when no unreleased delivery and no retained entry refers to it.
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    forwarded_properties BLOB NOT NULL,   -- encoded v5 properties (session::message)
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    expires_at INTEGER NOT NULL           -- wall-clock ms since the epoch; 0 = never
) STRICT;

CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    client_id TEXT NOT NULL UNIQUE,
    expiry_interval INTEGER NOT NULL,     -- seconds; 4294967295 = never
    disconnected_at INTEGER NOT NULL,     -- wall-clock ms; 0 = connected
    will_topic TEXT,                      -- NULL: no will (then all will_* are NULL)
    will_payload BLOB,
    will_qos INTEGER,
    will_retain INTEGER,
    will_properties BLOB                  -- storage/will_codec.hpp
) STRICT;

CREATE TABLE subscriptions (
    session_id INTEGER NOT NULL,
    filter TEXT NOT NULL,
    qos INTEGER NOT NULL,
    no_local INTEGER NOT NULL,
    rap INTEGER NOT NULL,                 -- Retain As Published
    retain_handling INTEGER NOT NULL,
    identifier INTEGER NOT NULL,          -- Subscription Identifier; 0 = none
    PRIMARY KEY (session_id, filter)
) STRICT, WITHOUT ROWID;

CREATE TABLE deliveries (
    session_id INTEGER NOT NULL,
    row INTEGER NOT NULL,                 -- queue order
    message_id INTEGER NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    subscription_identifiers BLOB NOT NULL, -- 4-byte big-endian values
    send_seq INTEGER NOT NULL,            -- 0 = not sent yet
    released INTEGER NOT NULL,            -- PUBREC received, PUBREL pending
    PRIMARY KEY (session_id, row)
) STRICT, WITHOUT ROWID;

-- QoS 2 packet ids a client sent that await its PUBREL.
CREATE TABLE inbound (
    session_id INTEGER NOT NULL,
    packet_id INTEGER NOT NULL,
    PRIMARY KEY (session_id, packet_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE retained (
    topic TEXT NOT NULL PRIMARY KEY,
    message_id INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
)sql";

// Version 2: the send sequence numbers in use per session, so that mark_sent can take
// a number away from a row it was reserved for earlier (see sqlite_store::apply).
constexpr const char* schema_v2 = R"sql(
CREATE INDEX deliveries_sent ON deliveries (session_id, send_seq) WHERE send_seq != 0;
)sql";

constexpr migration edgemq_migrations[] = {
    {1, schema_v1},
    {2, schema_v2},
};

}  // namespace

std::span<const migration> schema_migrations() noexcept { return edgemq_migrations; }

int current_schema_version() noexcept { return schema_migrations().back().version; }

int read_schema_version(sqlite_db& db) {
    const bool has_version_table =
        db.query_int("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_version'") != 0;
    if (!has_version_table) {
        if (db.query_int("SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'") != 0) {
            throw sqlite_error(SQLITE_OK, db.path() +
                                              ": this SQLite file is not an edgemq database (it has tables but no "
                                              "schema_version): edgemq will not write into it. Point edgemq at "
                                              "another file or data directory.");
        }
        return 0;
    }
    statement st(db, "SELECT version FROM schema_version WHERE id = 1");
    if (!st.step()) {
        throw sqlite_error(SQLITE_OK, db.path() +
                                          ": the database is damaged (its schema_version table is empty). edgemq "
                                          "will not start over it: move it aside (the broker then starts empty) "
                                          "or restore a backup.");
    }
    return static_cast<int>(st.column_int64(0));
}

int migrate(sqlite_db& db, std::span<const migration> steps) {
    assert(!steps.empty());
    const int from = read_schema_version(db);
    const int to = steps.back().version;
    if (from > to) {
        throw sqlite_error(SQLITE_OK, db.path() + ": written by a newer edgemq (schema version " +
                                          std::to_string(from) + "; this edgemq knows versions up to " +
                                          std::to_string(to) +
                                          "). Run that newer edgemq, or move the file aside (the broker then "
                                          "starts empty).");
    }
    if (from == to) return from;

    // IMMEDIATE: take the write lock now rather than fail half-way through.
    db.exec("BEGIN IMMEDIATE");
    try {
        for (const migration& step : steps) {
            if (step.version <= from) continue;
            db.exec(step.sql);
            statement set(db, "INSERT INTO schema_version (id, version) VALUES (1, ?1) "
                              "ON CONFLICT (id) DO UPDATE SET version = excluded.version");
            set.bind(1, std::int64_t{step.version}).run();
        }
        db.exec("COMMIT");
    } catch (const core::store_error& e) {
        if (sqlite3_get_autocommit(db.handle()) == 0) sqlite3_exec(db.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
        const int code = [&] {
            const auto* se = dynamic_cast<const sqlite_error*>(&e);
            return se != nullptr ? se->code() : 0;
        }();
        throw sqlite_error(code, db.path() + ": upgrading the database from schema version " + std::to_string(from) +
                                     " to " + std::to_string(to) + " failed, nothing was changed: " + e.what());
    }
    return from;
}

}  // namespace edgemq::storage
