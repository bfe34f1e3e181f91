// sqlite_db: one SQLite connection to one database file (RAII), with the error
// reporting every storage caller needs: any failure is a store_error (sqlite_error)
// whose message names the file, says what went wrong in words an operator can act on
// and carries SQLite's extended result code for code that must tell a full disk from a
// bug.
//
// This header does not include sqlite3.h (only storage/*.cpp do), so tests and other
// storage code can open and inspect a database without the C API.
//
// Threads: a sqlite_db is not synchronised; use it from one thread at a time (the
// connection is opened in SQLite's multi-thread mode, SQLITE_OPEN_NOMUTEX).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "broker/core/store.hpp"

struct sqlite3;

namespace edgemq::storage {

// A store_error with the SQLite extended result code (SQLITE_FULL, SQLITE_IOERR_WRITE,
// SQLITE_CORRUPT, ...) that caused it; 0 when it did not come from SQLite.
class sqlite_error : public core::store_error {
public:
    sqlite_error(int code, const std::string& what, std::string detail = {})
        : core::store_error(what), code_(code), detail_(std::move(detail)) {}
    int code() const noexcept { return code_; }
    // SQLite's own words (and the errno text), without the file name: "disk I/O error
    // (No space left on device)".
    const std::string& detail() const noexcept { return detail_; }

private:
    int code_;
    std::string detail_;
};

class sqlite_db {
public:
    enum class open_mode : std::uint8_t {
        existing,   // the file must exist
        create,     // create it when missing (its directory must exist)
    };

    // Opens `path` read-write. Throws sqlite_error naming the file: missing directory,
    // permission denied (with the errno text), a directory in its place, a file opened
    // read-only because it cannot be written. Reads nothing yet: a damaged or foreign
    // file shows up at the first statement (see sqlite_store's open checks).
    sqlite_db(std::string path, open_mode mode);
    sqlite_db() = default;  // closed; assign an opened one
    ~sqlite_db();
    sqlite_db(sqlite_db&& other) noexcept;
    sqlite_db& operator=(sqlite_db&& other) noexcept;
    sqlite_db(const sqlite_db&) = delete;
    sqlite_db& operator=(const sqlite_db&) = delete;

    sqlite3* handle() const noexcept { return db_; }
    const std::string& path() const noexcept { return path_; }

    // Runs one or more statements, discarding rows. Throws sqlite_error.
    void exec(std::string_view sql);
    // The first column of the first row as an integer / text (0 / "" when no row).
    std::int64_t query_int(std::string_view sql);
    std::string query_text(std::string_view sql);

    // Throws sqlite_error for result code `rc` (the connection's current error message
    // and errno are added): "<path>: <doing> failed (SQLite: <message>)".
    [[noreturn]] void fail(int rc, std::string_view doing) const;

    // Closes now (the destructor does otherwise). With `checkpoint` false, SQLite does
    // not checkpoint the WAL into the file on close: used when a file failed its
    // checks, so that it is left exactly as found.
    void close(bool checkpoint = true) noexcept;

private:
    sqlite3* db_ = nullptr;
    std::string path_;
};

// Words for an extended result code plus the OS error, e.g.
// "database or disk is full (No space left on device)"; used in log lines and errors.
std::string describe_sqlite_error(sqlite3* db, int rc);

}  // namespace edgemq::storage
