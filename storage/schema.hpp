// The database schema and how a file moves from one schema version to the next.
//
// A database records its version in the one-row table `schema_version`. A migration
// step is SQL that takes a file from version N-1 to N; `migrate` applies the steps a
// file lacks in ONE transaction (a crash mid-way leaves the old version intact) and
// refuses a file written by a newer edgemq, whose schema this build does not know.
//
// To change the schema: append a step to schema_migrations() in schema.cpp (never edit
// a released one), teach sqlite_store its new columns, add a test that opens a file
// of the previous version.
//
// Threads: none of its own; the caller owns the sqlite_db.
#pragma once

#include <span>
#include <string_view>

#include "storage/sqlite_db.hpp"

namespace edgemq::storage {

struct migration {
    int version;           // the version the file has after this step (1, 2, ...)
    std::string_view sql;  // one or more statements
};

// edgemq's migrations, in order; the last one's version is the current schema.
std::span<const migration> schema_migrations() noexcept;
int current_schema_version() noexcept;

// The file's schema version: 0 for a file without tables (new or empty). Throws
// store_error for a SQLite file that holds tables but no schema_version: another
// program's database, which edgemq must not take over.
int read_schema_version(sqlite_db& db);

// Brings the file to the last version of `steps` (which must be consecutive, starting
// at 1) and returns the version it had before. Throws store_error naming the file
// when it was written by a newer edgemq (its version is past the last step) or when a
// step fails; the file then keeps its previous version.
int migrate(sqlite_db& db, std::span<const migration> steps);

}  // namespace edgemq::storage
