#include "storage/sqlite_db.hpp"

#include <sqlite3.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <utility>

#include "storage/sqlite_statement.hpp"

namespace edgemq::storage {

std::string describe_sqlite_error(sqlite3* db, int rc) {
    // The connection's message is more specific than the code's ("no such table: x"),
    // but only while it still describes `rc`.
    std::string text = (db != nullptr && sqlite3_extended_errcode(db) == rc) ? sqlite3_errmsg(db)
                                                                             : sqlite3_errstr(rc);
    const int primary = rc & 0xff;
    if (db != nullptr && (primary == SQLITE_IOERR || primary == SQLITE_CANTOPEN || primary == SQLITE_FULL ||
                          primary == SQLITE_PERM || primary == SQLITE_READONLY)) {
        if (const int err = sqlite3_system_errno(db); err != 0) {
            text += " (";
            text += std::strerror(err);
            text += ')';
        }
    }
    return text;
}

sqlite_db::sqlite_db(std::string path, open_mode mode) : path_(std::move(path)) {
    // Memory statistics take a global mutex at every allocation SQLite makes (several
    // per row written); nothing here reads them. Only possible before SQLite starts.
    static std::once_flag configured;
    std::call_once(configured, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
    // NOMUTEX: callers serialise access themselves (sqlite_store holds its own mutex),
    // so SQLite's per-call mutex would be pure cost. EXRESCODE: extended codes from
    // every call, so SQLITE_IOERR_WRITE and SQLITE_FULL are told apart.
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
    if (mode == open_mode::create) flags |= SQLITE_OPEN_CREATE;
    const int rc = sqlite3_open_v2(path_.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) {
        const int err = db_ != nullptr ? sqlite3_system_errno(db_) : 0;
        const std::string detail = describe_sqlite_error(db_, rc);
        sqlite3_close(db_);
        db_ = nullptr;
        std::string what = path_ + ": cannot open the database: ";
        switch (err) {
            case ENOENT:
                what += mode == open_mode::create
                            ? "its directory does not exist (create the data directory first)"
                            : "no such file";
                break;
            case EACCES:
            case EPERM:
                what += "permission denied (" + std::string(std::strerror(err)) +
                        "): give the user edgemq runs as read and write access to the file and its directory";
                break;
            case EISDIR:
                what += "it is a directory, not a database file";
                break;
            default:
                what += "SQLite: " + detail;
                break;
        }
        throw sqlite_error(rc, what, detail);
    }
    // SQLite silently falls back to read-only when the file cannot be opened for
    // writing; edgemq would then fail at its first commit, far from the cause.
    if (sqlite3_db_readonly(db_, "main") == 1) {
        sqlite3_close(db_);
        db_ = nullptr;
        throw sqlite_error(SQLITE_READONLY,
                           path_ + ": cannot open the database for writing (permission denied or read-only "
                                   "file system): edgemq needs read and write access to the file and its directory");
    }
}

sqlite_db::~sqlite_db() { close(); }

sqlite_db::sqlite_db(sqlite_db&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)), path_(std::move(other.path_)) {}

sqlite_db& sqlite_db::operator=(sqlite_db&& other) noexcept {
    if (this != &other) {
        close();
        db_ = std::exchange(other.db_, nullptr);
        path_ = std::move(other.path_);
    }
    return *this;
}

void sqlite_db::close(bool checkpoint) noexcept {
    if (db_ == nullptr) return;
    if (!checkpoint) sqlite3_db_config(db_, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
    // sqlite3_close_v2 never fails: it defers the close until every statement is
    // finalized, which our statement objects do before their connection goes.
    sqlite3_close_v2(db_);
    db_ = nullptr;
}

void sqlite_db::fail(int rc, std::string_view doing) const {
    std::string detail = describe_sqlite_error(db_, rc);
    const std::string what = path_ + ": " + std::string(doing) + " failed (SQLite: " + detail + ")";
    throw sqlite_error(rc, what, std::move(detail));
}

void sqlite_db::exec(std::string_view sql) {
    // sqlite3_exec needs a NUL-terminated string; these are short, rare statements.
    const std::string text(sql);
    const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) fail(rc, text);
}

std::int64_t sqlite_db::query_int(std::string_view sql) {
    statement st(*this, sql);
    return st.step() ? st.column_int64(0) : 0;
}

std::string sqlite_db::query_text(std::string_view sql) {
    statement st(*this, sql);
    return st.step() ? std::string(st.column_text(0)) : std::string();
}

}  // namespace edgemq::storage
