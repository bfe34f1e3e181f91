// statement: one prepared SQLite statement (RAII), internal to storage/*.cpp (it
// includes sqlite3.h). Binds are 1-based like SQLite's; columns 0-based.
//
// Strings and blobs are bound SQLITE_STATIC: the caller keeps the bytes alive until
// the statement is reset, which every use here does before its data goes away (the
// store binds straight from the submitted, immutable message: no copy per write).
//
// Errors throw sqlite_error naming the database file and the statement.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string_view>
#include <utility>

#include "storage/sqlite_db.hpp"

namespace edgemq::storage {

class statement {
public:
    statement() = default;
    // `persistent`: the statement lives as long as the store and is reused for every
    // write; SQLite then keeps it out of its lookaside memory.
    statement(sqlite_db& db, std::string_view sql, bool persistent = false) : db_(&db), sql_(sql) {
        const int rc = sqlite3_prepare_v3(db.handle(), sql.data(), static_cast<int>(sql.size()),
                                          persistent ? SQLITE_PREPARE_PERSISTENT : 0, &st_, nullptr);
        if (rc != SQLITE_OK) db.fail(rc, "preparing \"" + std::string(sql) + "\"");
    }
    ~statement() { sqlite3_finalize(st_); }
    statement(statement&& o) noexcept
        : db_(o.db_), sql_(o.sql_), st_(std::exchange(o.st_, nullptr)) {}
    statement& operator=(statement&& o) noexcept {
        if (this != &o) {
            sqlite3_finalize(st_);
            db_ = o.db_;
            sql_ = o.sql_;
            st_ = std::exchange(o.st_, nullptr);
        }
        return *this;
    }
    statement(const statement&) = delete;
    statement& operator=(const statement&) = delete;

    statement& bind(int i, std::int64_t v) { return check(sqlite3_bind_int64(st_, i, v)); }
    statement& bind(int i, std::uint64_t v) { return bind(i, static_cast<std::int64_t>(v)); }
    statement& bind(int i, std::uint32_t v) { return bind(i, std::int64_t{v}); }
    statement& bind(int i, std::uint16_t v) { return bind(i, std::int64_t{v}); }
    statement& bind(int i, std::uint8_t v) { return bind(i, std::int64_t{v}); }
    statement& bind(int i, bool v) { return bind(i, std::int64_t{v ? 1 : 0}); }
    statement& bind_text(int i, std::string_view s) {
        // A non-null pointer even for "": a null one would bind NULL, not an empty value.
        return check(sqlite3_bind_text64(st_, i, s.empty() ? "" : s.data(), s.size(), SQLITE_STATIC, SQLITE_UTF8));
    }
    statement& bind_blob(int i, std::string_view s) {
        return check(sqlite3_bind_blob64(st_, i, s.empty() ? "" : s.data(), s.size(), SQLITE_STATIC));
    }
    statement& bind_null(int i) { return check(sqlite3_bind_null(st_, i)); }

    // true: a row is ready; false: done. Throws on error (after resetting).
    bool step() {
        const int rc = sqlite3_step(st_);
        if (rc == SQLITE_ROW) return true;
        if (rc == SQLITE_DONE) return false;
        // The connection's error code is the extended one (SQLITE_IOERR_WRITE, ...).
        const int code = sqlite3_extended_errcode(db_->handle());
        sqlite3_reset(st_);
        db_->fail(code != SQLITE_OK ? code : rc, sql_);
    }
    // Runs a statement that returns no rows (or whose rows do not matter) and resets it.
    void run() {
        while (step()) {
        }
        reset();
    }
    // Ready to run again; bindings are kept until rebound (and released by clear()).
    void reset() noexcept { sqlite3_reset(st_); }
    void clear() noexcept { sqlite3_clear_bindings(st_); }

    bool is_null(int col) const noexcept { return sqlite3_column_type(st_, col) == SQLITE_NULL; }
    std::int64_t column_int64(int col) const noexcept { return sqlite3_column_int64(st_, col); }
    std::uint64_t column_u64(int col) const noexcept { return static_cast<std::uint64_t>(column_int64(col)); }
    std::string_view column_blob(int col) const noexcept {
        // Blob first, then bytes: the order SQLite documents as conversion-free.
        const void* p = sqlite3_column_blob(st_, col);
        const int n = sqlite3_column_bytes(st_, col);
        return p == nullptr ? std::string_view() : std::string_view(static_cast<const char*>(p), static_cast<std::size_t>(n));
    }
    std::string_view column_text(int col) const noexcept {
        const unsigned char* p = sqlite3_column_text(st_, col);
        const int n = sqlite3_column_bytes(st_, col);
        return p == nullptr ? std::string_view()
                            : std::string_view(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
    }

private:
    statement& check(int rc) {
        if (rc != SQLITE_OK) db_->fail(rc, "binding a parameter of \"" + std::string(sql_) + "\"");
        return *this;
    }

    sqlite_db* db_ = nullptr;
    std::string_view sql_;  // points at a string literal or the caller's lasting text
    sqlite3_stmt* st_ = nullptr;
};

}  // namespace edgemq::storage
