#include "storage/sqlite_store.hpp"

#include <sqlite3.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cassert>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "broker/core/log.hpp"
#include "storage/blob_codec.hpp"
#include "storage/schema.hpp"
#include "storage/sqlite_db.hpp"
#include "storage/sqlite_statement.hpp"

namespace edgemq::storage {
namespace {

using namespace std::chrono_literals;
namespace ops = core::store_ops;
using steady = std::chrono::steady_clock;

// --- tuning (measured and explained in the storage report / README) ---------------
// Another process (an operator's sqlite3 shell, a backup) may hold the write lock
// for a moment; wait rather than fail a commit.
constexpr int busy_timeout_ms = 5000;
// Checkpoint (copy the WAL back into the database file) every 2048 pages = 8 MiB of
// WAL instead of SQLite's 1000: a page rewritten by many small commits (the tail
// of the deliveries b-tree, say) reaches the database file once per checkpoint, so
// fewer checkpoints mean fewer writes to flash. The WAL then stays below ~8 MiB.
constexpr int wal_autocheckpoint_pages = 2048;
// After a checkpoint a WAL swollen by one huge transaction is cut back to this.
constexpr std::int64_t journal_size_limit_bytes = std::int64_t{16} << 20;
// Give free pages back to the file system once at least this many (1 MiB) are free
// and they are a quarter of the file; keep some for the next burst.
constexpr std::int64_t vacuum_min_free_pages = 256;
constexpr std::int64_t vacuum_keep_free_pages = 64;
// Retry after a failed transaction: do not hammer a full disk.
constexpr auto first_backoff = 50ms;
constexpr auto max_backoff = 2000ms;
constexpr int attempts_at_close = 5;
// A commit delay ends early once this many batches are queued: under load the time a
// transaction takes is batching window enough.
constexpr std::size_t commit_delay_max_batches = 512;

bool path_exists(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0;
}

std::int64_t size_of(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 ? static_cast<std::int64_t>(st.st_size) : -1;
}

// Reads the file once from start to end so that quick_check, whose reads jump around
// the file (b-tree order), finds it in the page cache: measured on a 100 MB store
// with a cold cache, 0.1 s of sequential reading + 0.2 s of check instead of 3.5 to
// 5.5 s of check alone (posix_fadvise WILLNEED and readahead(2) did not help). Not
// done for a file larger than a quarter of RAM, which the cache could not keep.
// Errors are ignored: quick_check reports what matters.
void prefetch(const std::string& path) {
    const std::int64_t size = size_of(path);
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
    if (size <= 0 || pages <= 0 || page <= 0 || size > static_cast<std::int64_t>(pages) * page / 4) return;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    std::vector<char> buffer(std::size_t{1} << 20);
    while (::read(fd, buffer.data(), buffer.size()) > 0) {
    }
    ::close(fd);
}

// Operations that add data fail with their batch; the others (remove_*, mark_*) are
// retried until they succeed.
bool adds_data(const core::store_op& op) {
    return std::visit(
        [](const auto& o) {
            using T = std::decay_t<decltype(o)>;
            return std::is_same_v<T, ops::put_message> || std::is_same_v<T, ops::put_session> ||
                   std::is_same_v<T, ops::put_subscription> || std::is_same_v<T, ops::put_delivery> ||
                   std::is_same_v<T, ops::put_inbound> || std::is_same_v<T, ops::put_retained>;
        },
        op);
}

// Failures of the disk or of the moment (full, I/O, locked by another process, out of
// memory): the same operations may well succeed later. Anything else (a constraint,
// a value too big, a type mismatch) is about one operation and will fail every time.
bool is_transient(int code) {
    switch (code & 0xff) {
        case SQLITE_FULL:
        case SQLITE_IOERR:
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
        case SQLITE_NOMEM:
        case SQLITE_CANTOPEN:
        case SQLITE_READONLY:
        case SQLITE_PROTOCOL:
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
        case SQLITE_INTERRUPT:
        case SQLITE_PERM:
        case SQLITE_ABORT:
            return true;
        default:
            return false;
    }
}

std::string advice_for_damaged(const std::string& path) {
    return ". edgemq will not start over it: move it aside (the broker then starts empty) or restore a backup; "
           "move " + path + "-wal and " + path + "-shm along with it if they exist.";
}

// Rewrites an error met while reading an existing file into what an operator must do.
[[noreturn]] void throw_unreadable(const std::string& path, const sqlite_error& e) {
    switch (e.code() & 0xff) {
        case SQLITE_CORRUPT:
            throw sqlite_error(e.code(),
                               path + ": the database is corrupt (SQLite: " + e.detail() + ")" + advice_for_damaged(path),
                               e.detail());
        case SQLITE_NOTADB:
            throw sqlite_error(e.code(),
                               path + ": the file is not a database, or its header is damaged (SQLite: " + e.detail() +
                                   ")" + advice_for_damaged(path),
                               e.detail());
        case SQLITE_IOERR:
        case SQLITE_CANTOPEN:
        case SQLITE_PERM:
            throw sqlite_error(e.code(),
                               path + ": the database cannot be read (SQLite: " + e.detail() +
                                   "). Check the disk and the permissions of the file and its directory "
                                   "(edgemq needs to create " + path + "-wal and " + path + "-shm next to it).",
                               e.detail());
        default:
            throw e;
    }
}

struct pending {
    std::vector<core::store_op> ops;
    std::function<void(bool)> done;  // empty for operations re-queued after a failure
    bool rejected = false;           // SQLite refused one of its operations (see process())
};

}  // namespace

struct sqlite_store::impl {
    impl(std::string path, core::durability mode, std::chrono::microseconds commit_delay);
    ~impl() { close(); }

    void open();
    void configure();
    void prepare();
    void rebuild_references();
    void run();
    void close();

    // The writer's work.
    void process(std::vector<pending>& work);
    struct attempt {
        bool ok = false;
        bool rejected_op = false;  // a non-transient error in batch `batch`
        std::size_t batch = 0;
        int code = 0;
        std::string what;
    };
    attempt try_commit(std::vector<pending>& work);
    void plan_cancellations(const std::vector<pending>& work);
    bool cancelled(std::size_t batch, std::size_t op) const {
        return !cancelled_.empty() && !cancelled_[batch].empty() && cancelled_[batch][op];
    }
    void rollback() noexcept;
    void on_failure(std::vector<pending>& work, const attempt& a);
    void maybe_vacuum();
    void final_checkpoint();

    void apply(const ops::put_message& op);
    void apply(const ops::put_session& op);
    void apply(const ops::remove_session& op);
    void apply(const ops::put_subscription& op);
    void apply(const ops::remove_subscription& op);
    void apply(const ops::put_delivery& op);
    void apply(const ops::mark_sent& op);
    void apply(const ops::mark_released& op);
    struct delivery_ref {
        std::uint64_t message_id;
        bool released;
    };
    std::optional<delivery_ref> find_delivery(std::uint64_t session_id, std::uint64_t row);
    void apply(const ops::remove_delivery& op);
    void apply(const ops::put_inbound& op);
    void apply(const ops::remove_inbound& op);
    void apply(const ops::put_retained& op);
    void apply(const ops::remove_retained& op);
    void remove_session_rows(std::uint64_t session_id);
    void delete_unreferenced();

    // Reference counts (writer thread; the constructor before the thread starts).
    void add_message(std::uint64_t id);
    void ref(std::uint64_t id);
    void unref(std::uint64_t id);

    std::string path_;
    core::durability mode_;
    sqlite_db db_;
    settings settings_;
    // The connection: the writer's transactions vs load() (taken per transaction,
    // uncontended in normal use).
    std::mutex db_mutex_;

    struct statements {
        statement begin, commit, rollback;
        statement put_message, find_session, put_session, delete_session_deliveries, delete_session_subscriptions,
            delete_session_inbound, delete_session;
        statement put_subscription, remove_subscription;
        statement insert_delivery, find_delivery, delete_delivery, unmark_sent, mark_sent, mark_released;
        statement put_inbound, remove_inbound;
        statement find_retained, delete_retained, insert_retained;
        statement delete_message, freelist_count, page_count;
    };
    std::unique_ptr<statements> st_;

    // The queue between submit() and the writer.
    std::mutex queue_mutex_;
    std::condition_variable wake_;
    std::vector<pending> queue_;
    std::chrono::microseconds commit_delay_{0};
    bool stopping_ = false;  // guarded by queue_mutex_
    bool writer_idle_ = false;  // waiting for work, not within a commit delay; guarded by queue_mutex_
    steady::time_point first_queued_at_{};  // when queue_ last became non-empty; guarded by queue_mutex_
    bool closed_ = false;    // guarded by queue_mutex_
    std::thread writer_;

    // Writer-thread state.
    // References per stored message id: unreleased deliveries + retained entries.
    // Every message row has an entry (0 while put but not yet referenced).
    std::unordered_map<std::uint64_t, std::uint32_t> refs_;
    struct undo_entry {
        std::uint64_t id;
        bool existed;
        std::uint32_t count;
    };
    std::vector<undo_entry> undo_;           // refs_ changes of the open transaction
    std::vector<std::uint64_t> zero_refs_;   // ids that reached 0 in it
    std::uint64_t deleted_in_transaction_ = 0;
    std::vector<pending> retry_;             // remove/mark ops of failed transactions
    int consecutive_failures_ = 0;
    steady::time_point failing_since_{};
    std::string ids_blob_;                   // scratch for subscription identifiers
    bool warned_dangling_ = false;
    // Per batch of the current work, per operation: left out of the transaction because
    // a later operation of the same work undoes it (see plan_cancellations). Empty when
    // nothing is; the plan_* maps are kept between transactions for their buckets.
    std::vector<std::vector<bool>> cancelled_;
    struct plan_where {
        std::uint32_t batch, op;
    };
    struct plan_row {
        plan_where put;
        std::uint64_t session_id, message_id;
        bool cancelled;
    };
    struct plan_message {
        plan_where put{};
        std::int64_t live = 0;    // references in this work not cancelled
        bool has_put = false;
        bool referenced = false;  // some put_delivery of this work referred to it
    };
    std::unordered_map<std::uint64_t, plan_row> plan_rows_;
    std::unordered_map<std::uint64_t, plan_message> plan_messages_;
    std::vector<std::pair<std::uint64_t, plan_where>> plan_marks_;

    struct {
        std::atomic<std::uint64_t> commits{0}, committed_batches{0}, committed_ops{0}, failed_batches{0},
            failed_transactions{0}, failure_episodes{0}, retried_ops{0}, dropped_ops{0}, messages_deleted{0},
            vacuums{0}, cancelled_ops{0};
    } counters_;
};


// --- open ---------------------------------------------------------------------------

sqlite_store::impl::impl(std::string path, core::durability mode, std::chrono::microseconds commit_delay)
    : path_(std::move(path)), mode_(mode), commit_delay_(commit_delay) {
    if (mode != core::durability::process && mode != core::durability::power)
        throw std::invalid_argument("sqlite_store: durability none keeps no store (the app creates none)");
    open();
    writer_ = std::thread([this] { run(); });
}

void sqlite_store::impl::open() {
    // What exists before SQLite touches anything decides what a failed open cleans up:
    // only what it created itself, so a file that fails its checks is left as found.
    const std::string wal = path_ + "-wal", shm = path_ + "-shm", journal = path_ + "-journal";
    const bool existed = path_exists(path_);
    if (!existed && errno != ENOENT) {
        throw sqlite_error(SQLITE_CANTOPEN, path_ + ": cannot open the database: " + std::strerror(errno) +
                                                " (check the permissions of its directory)");
    }
    const bool wal_existed = path_exists(wal), shm_existed = path_exists(shm);
    db_ = sqlite_db(path_, existed ? sqlite_db::open_mode::existing : sqlite_db::open_mode::create);

    // Until the file has passed its checks nothing may change it, not even the
    // checkpoint SQLite runs when the last connection closes.
    sqlite3_db_config(db_.handle(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
    sqlite3_busy_timeout(db_.handle(), busy_timeout_ms);
    try {
        int version = 0;
        try {
            // The first read: a foreign or damaged header fails here (SQLITE_NOTADB).
            version = read_schema_version(db_);
            // quick_check reads every page and checks each b-tree's structure, but not
            // that indexes agree with their tables (integrity_check adds that; with
            // this schema's single secondary index it costs about the same today, but
            // the difference grows with every index a later schema adds). Start-up
            // pays it once; a damaged file is caught before the broker acknowledges
            // anything. load() reads everything right after, from the warm cache.
            const auto t0 = steady::now();
            if (existed) prefetch(path_);
            statement check(db_, "PRAGMA quick_check(3)");
            std::string problems;
            while (check.step()) {
                const std::string_view line = check.column_text(0);
                if (line == "ok") continue;
                if (!problems.empty()) problems += "; ";
                problems += line;
            }
            settings_.quick_check_ms = std::chrono::duration<double, std::milli>(steady::now() - t0).count();
            if (!problems.empty()) throw sqlite_error(SQLITE_CORRUPT, problems, problems);
        } catch (const sqlite_error& e) {
            throw_unreadable(path_, e);
        }
        if (version == 0) {
            // Only takes effect before the first table is created: a file made without
            // it could change only with a full VACUUM.
            db_.exec("PRAGMA auto_vacuum = INCREMENTAL");
        }
        configure();
        migrate(db_, schema_migrations());
        settings_.schema_version = read_schema_version(db_);
    } catch (...) {
        db_.close(/*checkpoint=*/false);
        if (!existed) {
            ::unlink(path_.c_str());
            ::unlink(journal.c_str());
        }
        if (!wal_existed && (!existed || size_of(wal) == 0)) ::unlink(wal.c_str());
        if (!shm_existed) ::unlink(shm.c_str());
        throw;
    }
    sqlite3_db_config(db_.handle(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, nullptr);
    prepare();
    rebuild_references();
}

void sqlite_store::impl::configure() {
    const std::string mode = db_.query_text("PRAGMA journal_mode = WAL");
    if (mode != "wal") {
        throw sqlite_error(SQLITE_CANTOPEN, path_ + ": SQLite cannot use write-ahead logging here (journal mode \"" +
                                                mode +
                                                "\"): put the data directory on a local file system that supports "
                                                "shared memory (not a network share)");
    }
    // process: NORMAL. In WAL mode a commit appends to the WAL without fsync: the
    // transaction is in the OS page cache, so it survives kill -9 of edgemq but not a
    // power cut (which can lose the last commits, never corrupt the file).
    // power: FULL. The WAL is fsync'ed at every commit.
    db_.exec(mode_ == core::durability::power ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
    db_.exec("PRAGMA wal_autocheckpoint = " + std::to_string(wal_autocheckpoint_pages));
    db_.exec("PRAGMA journal_size_limit = " + std::to_string(journal_size_limit_bytes));
    // Our reference counts keep messages alive; see schema.cpp.
    db_.exec("PRAGMA foreign_keys = OFF");
    // Debian builds SQLite with SECURE_DELETE on, which overwrites every deleted
    // payload with zeros: extra page writes for each acknowledged message. FAST
    // zeroes only what costs no extra I/O.
    db_.exec("PRAGMA secure_delete = FAST");
    // Sorts and temporary b-trees in memory, not in temporary files on flash.
    db_.exec("PRAGMA temp_store = MEMORY");

    settings_.journal_mode = db_.query_text("PRAGMA journal_mode");
    settings_.synchronous = static_cast<int>(db_.query_int("PRAGMA synchronous"));
    settings_.auto_vacuum = static_cast<int>(db_.query_int("PRAGMA auto_vacuum"));
    settings_.wal_autocheckpoint = static_cast<int>(db_.query_int("PRAGMA wal_autocheckpoint"));
    settings_.journal_size_limit = db_.query_int("PRAGMA journal_size_limit");
    settings_.foreign_keys = static_cast<int>(db_.query_int("PRAGMA foreign_keys"));
    settings_.secure_delete = static_cast<int>(db_.query_int("PRAGMA secure_delete"));
    settings_.temp_store = static_cast<int>(db_.query_int("PRAGMA temp_store"));
    settings_.busy_timeout_ms = static_cast<int>(db_.query_int("PRAGMA busy_timeout"));
    settings_.page_size = static_cast<int>(db_.query_int("PRAGMA page_size"));
}

void sqlite_store::impl::prepare() {
    auto s = std::make_unique<statements>();
    auto p = [this](std::string_view sql) { return statement(db_, sql, /*persistent=*/true); };
    // IMMEDIATE: take the write lock at BEGIN, so a commit never fails half-way for
    // want of it (another process may read the file).
    s->begin = p("BEGIN IMMEDIATE");
    s->commit = p("COMMIT");
    s->rollback = p("ROLLBACK");
    // Messages are immutable: a second put of an id keeps the stored row.
    s->put_message = p(
        "INSERT INTO messages (id, topic, payload, forwarded_properties, qos, retain, expires_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING");
    s->find_session = p("SELECT id FROM sessions WHERE client_id = ?1");
    s->put_session = p(
        "INSERT INTO sessions (id, client_id, expiry_interval, disconnected_at, will_topic, will_payload, will_qos, "
        "will_retain, will_properties) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
        "ON CONFLICT (id) DO UPDATE SET client_id = excluded.client_id, expiry_interval = excluded.expiry_interval, "
        "disconnected_at = excluded.disconnected_at, will_topic = excluded.will_topic, "
        "will_payload = excluded.will_payload, will_qos = excluded.will_qos, will_retain = excluded.will_retain, "
        "will_properties = excluded.will_properties");
    s->delete_session_deliveries = p("DELETE FROM deliveries WHERE session_id = ?1 RETURNING message_id, released");
    s->delete_session_subscriptions = p("DELETE FROM subscriptions WHERE session_id = ?1");
    s->delete_session_inbound = p("DELETE FROM inbound WHERE session_id = ?1");
    s->delete_session = p("DELETE FROM sessions WHERE id = ?1");
    s->put_subscription = p(
        "INSERT INTO subscriptions (session_id, filter, qos, no_local, rap, retain_handling, identifier) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (session_id, filter) DO UPDATE SET qos = excluded.qos, "
        "no_local = excluded.no_local, rap = excluded.rap, retain_handling = excluded.retain_handling, "
        "identifier = excluded.identifier");
    s->remove_subscription = p("DELETE FROM subscriptions WHERE session_id = ?1 AND filter = ?2");
    // DO NOTHING, not REPLACE: a replaced row's message reference must be released
    // too, so the rare re-put is handled in apply() (changes() == 0).
    s->insert_delivery = p(
        "INSERT INTO deliveries (session_id, row, message_id, qos, retain, subscription_identifiers, send_seq, "
        "released) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (session_id, row) DO NOTHING");
    // A SELECT then the change, not RETURNING: SQLite runs RETURNING through a temporary
    // table made and dropped at every execution, which showed as a third of the
    // writer's time in a profile (allocating and zeroing its pages).
    s->find_delivery = p("SELECT message_id, released FROM deliveries WHERE session_id = ?1 AND row = ?2");
    s->delete_delivery = p("DELETE FROM deliveries WHERE session_id = ?1 AND row = ?2");
    s->unmark_sent = p("UPDATE deliveries SET send_seq = 0 "
                       "WHERE session_id = ?1 AND send_seq = ?3 AND send_seq != 0 AND row != ?2");
    s->mark_sent = p("UPDATE deliveries SET send_seq = ?3 WHERE session_id = ?1 AND row = ?2");
    s->mark_released = p("UPDATE deliveries SET released = 1 WHERE session_id = ?1 AND row = ?2");
    s->put_inbound = p("INSERT INTO inbound (session_id, packet_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING");
    s->remove_inbound = p("DELETE FROM inbound WHERE session_id = ?1 AND packet_id = ?2");
    s->find_retained = p("SELECT message_id FROM retained WHERE topic = ?1");
    s->delete_retained = p("DELETE FROM retained WHERE topic = ?1");
    s->insert_retained = p("INSERT INTO retained (topic, message_id) VALUES (?1, ?2)");
    s->delete_message = p("DELETE FROM messages WHERE id = ?1");
    s->freelist_count = p("PRAGMA freelist_count");
    s->page_count = p("PRAGMA page_count");
    st_ = std::move(s);
}

// Counts the references of every stored message, then deletes the messages nothing
// refers to: put but never referenced (the core stopped between the two), or left
// by a transaction that was cut short by a crash of an older build.
void sqlite_store::impl::rebuild_references() {
    refs_.clear();
    {
        statement st(db_, "SELECT id FROM messages");
        while (st.step()) refs_.emplace(st.column_u64(0), 0);
    }
    std::uint64_t dangling = 0;
    auto count = [&](std::string_view sql) {
        statement st(db_, sql);
        while (st.step()) {
            auto it = refs_.find(st.column_u64(0));
            if (it == refs_.end()) {
                ++dangling;
                continue;
            }
            ++it->second;
        }
    };
    count("SELECT message_id FROM deliveries WHERE released = 0");
    count("SELECT message_id FROM retained");
    if (dangling != 0) {
        log::warn("store ", path_, ": ", dangling,
                  " deliveries or retained entries refer to messages that are not stored; load() returns them as "
                  "they are");
    }
    std::vector<std::uint64_t> unreferenced;
    for (const auto& [id, n] : refs_)
        if (n == 0) unreferenced.push_back(id);
    if (unreferenced.empty()) return;
    try {
        db_.exec("BEGIN IMMEDIATE");
        for (std::uint64_t id : unreferenced) st_->delete_message.bind(1, id).run();
        db_.exec("COMMIT");
        for (std::uint64_t id : unreferenced) refs_.erase(id);
        log::info("store ", path_, ": deleted ", unreferenced.size(), " messages nothing referred to");
    } catch (const sqlite_error& e) {
        // Not fatal (a full disk at start-up): they are tried again at the next start.
        rollback();
        log::warn("store ", path_, ": could not delete ", unreferenced.size(), " unreferenced messages: ", e.what());
    }
}

// --- the writer ------------------------------------------------------------------

void sqlite_store::impl::run() {
    std::vector<pending> work;
    for (;;) {
        bool stopping = false;
        {
            std::unique_lock lock(queue_mutex_);
            if (consecutive_failures_ > 0) {
                // Do not hammer a full disk; what is submitted meanwhile just queues up.
                const auto backoff = std::min<steady::duration>(
                    first_backoff * (1 << std::min(consecutive_failures_ - 1, 10)), max_backoff);
                wake_.wait_for(lock, backoff, [] { return false; });
            }
            writer_idle_ = true;
            wake_.wait(lock, [&] { return stopping_ || !queue_.empty() || !retry_.empty(); });
            writer_idle_ = false;
            if (commit_delay_.count() > 0 && !queue_.empty()) {
                // Let more work join this transaction: acknowledgements that cancel
                // rows still queued (plan_cancellations), and fewer, fuller commits.
                // Counted from the oldest submission waiting: under load it arrived
                // while the last transaction was written, and nothing more is waited.
                wake_.wait_until(lock, first_queued_at_ + commit_delay_,
                                 [&] { return stopping_ || queue_.size() >= commit_delay_max_batches; });
            }
            if (queue_.empty() && retry_.empty()) break;  // stopping and drained
            stopping = stopping_;
            if (retry_.empty()) {
                work.swap(queue_);  // the common case: no copy, and both keep their capacity
            } else {
                work.swap(retry_);  // retried removals first: they were submitted earlier
                for (pending& p : queue_) work.push_back(std::move(p));
                queue_.clear();
            }
        }
        process(work);
        work.clear();
        if (stopping && consecutive_failures_ >= attempts_at_close && !retry_.empty()) {
            std::size_t n = 0;
            for (const pending& p : retry_) n += p.ops.size();
            counters_.dropped_ops.fetch_add(n, std::memory_order_relaxed);
            log::error("store ", path_, ": closing with ", n,
                       " removals that could not be written: after a restart those messages are delivered again");
            retry_.clear();
        }
    }
    final_checkpoint();
}

void sqlite_store::impl::process(std::vector<pending>& work) {
    for (;;) {
        const attempt a = try_commit(work);
        if (a.ok) break;
        if (!a.rejected_op) {
            on_failure(work, a);
            return;
        }
        // SQLite refused an operation itself (a bug in what was submitted, or a value
        // too big): only its batch fails; the transaction runs again without it.
        pending& bad = work[a.batch];
        bad.rejected = true;
        log::error("store ", path_, ": an operation was refused and its batch of ", bad.ops.size(),
                   " operations not stored: ", a.what);
        if (!bad.done) counters_.dropped_ops.fetch_add(bad.ops.size(), std::memory_order_relaxed);
    }

    std::uint64_t ops_done = 0, batches_ok = 0, batches_failed = 0;
    for (const pending& p : work) {
        if (p.rejected) continue;
        ops_done += p.ops.size();
    }
    counters_.commits.fetch_add(1, std::memory_order_relaxed);
    counters_.committed_ops.fetch_add(ops_done, std::memory_order_relaxed);
    if (consecutive_failures_ > 0) {
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - failing_since_).count();
        log::info("store ", path_, ": writing again after ", consecutive_failures_, " failed attempts over ", ms,
                  " ms");
        consecutive_failures_ = 0;
    }
    // Durable (as the mode promises): tell the callers, in submission order.
    for (pending& p : work) {
        if (!p.done) continue;
        (p.rejected ? batches_failed : batches_ok) += 1;
        try {
            p.done(!p.rejected);
        } catch (...) {
            log::error("store ", path_, ": a completion handler threw; ignored");
        }
    }
    counters_.committed_batches.fetch_add(batches_ok, std::memory_order_relaxed);
    counters_.failed_batches.fetch_add(batches_failed, std::memory_order_relaxed);
    maybe_vacuum();
}

// A delivery put and removed within one work (the subscriber acknowledged it before the
// writer got to it) need not touch the file: the put, the removal and any mark_* of that
// row are left out, and so is a message whose every reference is left out. Under load
// this is the common case for a connected persistent subscriber, and it saves both the
// SQL and the disk writes. Rows are unique broker-wide, so the row alone identifies a
// delivery.
void sqlite_store::impl::plan_cancellations(const std::vector<pending>& work) {
    plan_rows_.clear();
    plan_messages_.clear();
    plan_marks_.clear();
    cancelled_.clear();
    std::size_t cancelled_count = 0;
    auto cancel = [&](plan_where w) {
        if (cancelled_.empty()) cancelled_.resize(work.size());
        auto& flags = cancelled_[w.batch];
        if (flags.empty()) flags.assign(work[w.batch].ops.size(), false);
        flags[w.op] = true;
        ++cancelled_count;
    };
    for (std::uint32_t b = 0; b < work.size(); ++b) {
        if (work[b].rejected) continue;
        const auto& ops_of = work[b].ops;
        for (std::uint32_t i = 0; i < ops_of.size(); ++i) {
            const core::store_op& op = ops_of[i];
            if (const auto* put = std::get_if<ops::put_delivery>(&op)) {
                const core::stored_delivery& d = put->delivery;
                plan_rows_[d.row] = plan_row{{b, i}, d.session_id, d.message_id, false};
                plan_message& m = plan_messages_[d.message_id];
                ++m.live;
                m.referenced = true;
            } else if (const auto* sent = std::get_if<ops::mark_sent>(&op)) {
                plan_marks_.push_back({sent->row, {b, i}});
            } else if (const auto* rel = std::get_if<ops::mark_released>(&op)) {
                plan_marks_.push_back({rel->row, {b, i}});
            } else if (const auto* r = std::get_if<ops::remove_delivery>(&op)) {
                auto it = plan_rows_.find(r->row);
                if (it == plan_rows_.end() || it->second.cancelled || it->second.session_id != r->session_id) continue;
                it->second.cancelled = true;
                cancel(it->second.put);
                cancel({b, i});
                --plan_messages_[it->second.message_id].live;
            } else if (const auto* pm = std::get_if<ops::put_message>(&op)) {
                plan_message& m = plan_messages_[pm->id];
                m.put = {b, i};
                m.has_put = true;
            } else if (const auto* pr = std::get_if<ops::put_retained>(&op)) {
                ++plan_messages_[pr->message_id].live;
            } else if (std::holds_alternative<ops::remove_session>(op)) {
                // Its rows go with it; keep things simple and cancel nothing across it.
                plan_rows_.clear();
            }
        }
    }
    // A mark_* comes between its row's put and removal, so it goes with them.
    for (const auto& [row, at] : plan_marks_) {
        auto it = plan_rows_.find(row);
        if (it != plan_rows_.end() && it->second.cancelled && it->second.put.batch <= at.batch) cancel(at);
    }
    for (const auto& [id, m] : plan_messages_)
        if (m.has_put && m.live == 0 && m.referenced) cancel(m.put);
    counters_.cancelled_ops.fetch_add(cancelled_count, std::memory_order_relaxed);
}

sqlite_store::impl::attempt sqlite_store::impl::try_commit(std::vector<pending>& work) {
    std::lock_guard lock(db_mutex_);
    constexpr std::size_t no_batch = std::numeric_limits<std::size_t>::max();
    std::size_t current = no_batch;
    try {
        plan_cancellations(work);
        st_->begin.run();
        for (current = 0; current < work.size(); ++current) {
            if (work[current].rejected) continue;
            const auto& ops_of = work[current].ops;
            for (std::size_t i = 0; i < ops_of.size(); ++i)
                if (!cancelled(current, i)) std::visit([this](const auto& o) { apply(o); }, ops_of[i]);
        }
        current = no_batch;
        delete_unreferenced();
        st_->commit.run();
        counters_.messages_deleted.fetch_add(deleted_in_transaction_, std::memory_order_relaxed);
        deleted_in_transaction_ = 0;
        undo_.clear();
        zero_refs_.clear();
        return {.ok = true};
    } catch (const sqlite_error& e) {
        rollback();
        const bool rejected = !is_transient(e.code()) && current != no_batch;
        return {.ok = false, .rejected_op = rejected, .batch = current, .code = e.code(), .what = e.what()};
    } catch (const std::exception& e) {
        // bad_alloc while encoding: as transient as SQLITE_NOMEM.
        rollback();
        return {.ok = false, .rejected_op = false, .batch = current, .code = SQLITE_NOMEM, .what = e.what()};
    }
}

void sqlite_store::impl::rollback() noexcept {
    // After some errors (SQLITE_FULL, SQLITE_IOERR, ...) SQLite has rolled back already.
    if (sqlite3_get_autocommit(db_.handle()) == 0) sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
    for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
        if (it->existed)
            refs_[it->id] = it->count;
        else
            refs_.erase(it->id);
    }
    undo_.clear();
    zero_refs_.clear();
    deleted_in_transaction_ = 0;
}

void sqlite_store::impl::on_failure(std::vector<pending>& work, const attempt& a) {
    counters_.failed_transactions.fetch_add(1, std::memory_order_relaxed);
    if (consecutive_failures_++ == 0) {
        counters_.failure_episodes.fetch_add(1, std::memory_order_relaxed);
        failing_since_ = steady::now();
        log::warn("store ", path_, ": cannot write (", a.what,
                  "): new messages are refused until writing works again; removals are kept and retried");
    }
    // What only removes or marks is kept, in order, and goes first next time.
    pending again;
    for (pending& p : work) {
        if (p.rejected) continue;
        for (core::store_op& op : p.ops)
            if (!adds_data(op)) again.ops.push_back(std::move(op));
    }
    std::uint64_t failed = 0;
    for (pending& p : work) {
        if (!p.done) continue;
        ++failed;
        try {
            p.done(false);
        } catch (...) {
            log::error("store ", path_, ": a completion handler threw; ignored");
        }
    }
    counters_.failed_batches.fetch_add(failed, std::memory_order_relaxed);
    counters_.retried_ops.fetch_add(again.ops.size(), std::memory_order_relaxed);
    if (!again.ops.empty()) retry_.push_back(std::move(again));
}

// Gives free pages back to the file system when many are free. Most of the time a
// freed page is reused by the next messages, and moving pages costs writes, so this
// waits until a quarter of the file (and at least 1 MiB) is free: after a burst.
void sqlite_store::impl::maybe_vacuum() {
    std::lock_guard lock(db_mutex_);
    try {
        const std::int64_t free_pages = st_->freelist_count.step() ? st_->freelist_count.column_int64(0) : 0;
        st_->freelist_count.reset();
        if (free_pages < vacuum_min_free_pages) return;
        const std::int64_t pages = st_->page_count.step() ? st_->page_count.column_int64(0) : 0;
        st_->page_count.reset();
        if (free_pages * 4 < pages) return;
        db_.exec("PRAGMA incremental_vacuum(" + std::to_string(free_pages - vacuum_keep_free_pages) + ")");
        // In WAL mode the file shrinks when the checkpoint copies the vacuum back.
        db_.exec("PRAGMA wal_checkpoint(PASSIVE)");
        counters_.vacuums.fetch_add(1, std::memory_order_relaxed);
    } catch (const sqlite_error& e) {
        rollback();
        log::debug("store ", path_, ": incremental vacuum failed (tried again later): ", e.what());
    }
}

void sqlite_store::impl::final_checkpoint() {
    std::lock_guard lock(db_mutex_);
    try {
        // TRUNCATE: everything into the database file and the WAL cut to zero bytes, so
        // the file alone is the state (a copy of it is a complete backup).
        db_.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    } catch (const sqlite_error& e) {
        log::warn("store ", path_, ": final checkpoint failed (the WAL keeps the data): ", e.what());
    }
}

// --- operations ------------------------------------------------------------------

void sqlite_store::impl::add_message(std::uint64_t id) {
    if (refs_.try_emplace(id, 0).second) undo_.push_back({id, false, 0});
}

void sqlite_store::impl::ref(std::uint64_t id) {
    auto [it, inserted] = refs_.try_emplace(id, 0);
    undo_.push_back({id, !inserted, it->second});
    ++it->second;
    if (inserted && !warned_dangling_) {
        // Legitimate: a retained message handed to a subscriber on another worker can
        // reach the store before its publisher's write does. Its put_message follows.
        warned_dangling_ = true;
        log::debug("store ", path_, ": a delivery or retained entry refers to message ", id,
                   " before the message itself is stored; further cases are not logged");
    }
}

void sqlite_store::impl::unref(std::uint64_t id) {
    auto it = refs_.find(id);
    if (it == refs_.end() || it->second == 0) return;
    undo_.push_back({id, true, it->second});
    if (--it->second == 0) zero_refs_.push_back(id);
}

// At the end of the transaction, not at once: a later operation of the same
// transaction may refer to the message again (another session's delivery).
void sqlite_store::impl::delete_unreferenced() {
    for (std::uint64_t id : zero_refs_) {
        auto it = refs_.find(id);
        if (it == refs_.end() || it->second != 0) continue;
        st_->delete_message.bind(1, id).run();
        undo_.push_back({id, true, 0});
        refs_.erase(it);
        ++deleted_in_transaction_;
    }
    zero_refs_.clear();
}

void sqlite_store::impl::apply(const ops::put_message& op) {
    assert(op.msg);
    const session::message& m = *op.msg;
    st_->put_message.bind(1, op.id)
        .bind_text(2, m.topic)
        .bind_blob(3, m.payload)
        .bind_blob(4, m.forwarded_properties)
        .bind(5, m.qos)
        .bind(6, m.retain)
        .bind(7, std::int64_t{op.expires_at})
        .run();
    add_message(op.id);
}

void sqlite_store::impl::apply(const ops::put_session& op) {
    const core::stored_session& s = *op.session;
    // A client id has one session: one stored under another id is replaced entirely.
    auto& find = st_->find_session;
    find.bind_text(1, s.client_id);
    const bool other = find.step() && find.column_u64(0) != s.id;
    const std::uint64_t other_id = other ? find.column_u64(0) : 0;
    find.reset();
    if (other) remove_session_rows(other_id);

    auto& st = st_->put_session;
    st.bind(1, s.id).bind_text(2, s.client_id).bind(3, s.expiry_interval).bind(4, std::int64_t{s.disconnected_at});
    std::string props;
    if (s.will) {
        props = encode_properties(s.will->props);
        st.bind_text(5, s.will->topic).bind_blob(6, s.will->payload).bind(7, s.will->qos).bind(8, s.will->retain);
        st.bind_blob(9, props);
    } else {
        st.bind_null(5).bind_null(6).bind_null(7).bind_null(8).bind_null(9);
    }
    st.run();
}

void sqlite_store::impl::apply(const ops::remove_session& op) { remove_session_rows(op.session_id); }

void sqlite_store::impl::remove_session_rows(std::uint64_t session_id) {
    auto& del = st_->delete_session_deliveries;
    del.bind(1, session_id);
    while (del.step())
        if (del.column_int64(1) == 0) unref(del.column_u64(0));
    del.reset();
    st_->delete_session_subscriptions.bind(1, session_id).run();
    st_->delete_session_inbound.bind(1, session_id).run();
    st_->delete_session.bind(1, session_id).run();
}

void sqlite_store::impl::apply(const ops::put_subscription& op) {
    const core::stored_subscription& s = op.subscription;
    st_->put_subscription.bind(1, s.session_id)
        .bind_text(2, s.filter)
        .bind(3, s.options.qos)
        .bind(4, s.options.no_local)
        .bind(5, s.options.retain_as_published)
        .bind(6, s.options.retain_handling)
        .bind(7, s.identifier)
        .run();
}

void sqlite_store::impl::apply(const ops::remove_subscription& op) {
    st_->remove_subscription.bind(1, op.session_id).bind_text(2, op.filter).run();
}

void sqlite_store::impl::apply(const ops::put_delivery& op) {
    const core::stored_delivery& d = op.delivery;
    encode_u32_list(d.subscription_identifiers, ids_blob_);
    auto& st = st_->insert_delivery;
    st.bind(1, d.session_id)
        .bind(2, d.row)
        .bind(3, d.message_id)
        .bind(4, d.qos)
        .bind(5, d.retain)
        .bind_blob(6, ids_blob_)
        .bind(7, d.send_seq)
        .bind(8, d.released);
    st.run();
    if (sqlite3_changes(db_.handle()) == 0) {
        // The row exists: replace it, releasing its own message reference first.
        apply(ops::remove_delivery{d.session_id, d.row});
        st.run();  // the bindings survive reset
    }
    if (!d.released) ref(d.message_id);
}

void sqlite_store::impl::apply(const ops::mark_sent& op) {
    // A send sequence number (and so a packet id) belongs to one row of a session. The
    // broker reserves numbers ahead of sending; when one goes to another row instead
    // (the queue changed, or a new connection of the session numbered afresh), the row
    // that had it was never sent with it and must lose it, or a restart could resend
    // the wrong message under a packet id the client holds [MQTT-4.3.3-9].
    if (op.send_seq != 0) st_->unmark_sent.bind(1, op.session_id).bind(2, op.row).bind(3, op.send_seq).run();
    st_->mark_sent.bind(1, op.session_id).bind(2, op.row).bind(3, op.send_seq).run();
}

// A released delivery no longer needs its message: only the PUBREL is left to send.
std::optional<sqlite_store::impl::delivery_ref> sqlite_store::impl::find_delivery(std::uint64_t session_id,
                                                                                 std::uint64_t row) {
    auto& find = st_->find_delivery;
    find.bind(1, session_id).bind(2, row);
    std::optional<delivery_ref> found;
    if (find.step()) found = delivery_ref{find.column_u64(0), find.column_int64(1) != 0};
    find.reset();
    return found;
}

void sqlite_store::impl::apply(const ops::mark_released& op) {
    const auto found = find_delivery(op.session_id, op.row);
    if (!found || found->released) return;
    st_->mark_released.bind(1, op.session_id).bind(2, op.row).run();
    unref(found->message_id);
}

void sqlite_store::impl::apply(const ops::remove_delivery& op) {
    const auto found = find_delivery(op.session_id, op.row);
    if (!found) return;
    st_->delete_delivery.bind(1, op.session_id).bind(2, op.row).run();
    if (!found->released) unref(found->message_id);
}

void sqlite_store::impl::apply(const ops::put_inbound& op) {
    st_->put_inbound.bind(1, op.session_id).bind(2, op.packet_id).run();
}

void sqlite_store::impl::apply(const ops::remove_inbound& op) {
    st_->remove_inbound.bind(1, op.session_id).bind(2, op.packet_id).run();
}

void sqlite_store::impl::apply(const ops::put_retained& op) {
    ref(op.message_id);  // before the old one is released: it may be the same message
    apply(ops::remove_retained{op.topic});
    st_->insert_retained.bind_text(1, op.topic).bind(2, op.message_id).run();
}

void sqlite_store::impl::apply(const ops::remove_retained& op) {
    auto& find = st_->find_retained;
    find.bind_text(1, op.topic);
    const bool found = find.step();
    const std::uint64_t message_id = found ? find.column_u64(0) : 0;
    find.reset();
    if (!found || (op.only_message_id != 0 && op.only_message_id != message_id)) return;
    st_->delete_retained.bind_text(1, op.topic).run();
    unref(message_id);
}

// --- close -----------------------------------------------------------------------

void sqlite_store::impl::close() {
    {
        std::lock_guard lock(queue_mutex_);
        if (closed_) return;
        closed_ = true;
        stopping_ = true;
    }
    wake_.notify_one();
    if (writer_.joinable()) writer_.join();
    std::lock_guard lock(db_mutex_);
    st_.reset();  // statements before their connection
    db_.close();
    const auto load = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
    log::info("store ", path_, " closed: ", load(counters_.commits), " transactions of ",
              load(counters_.committed_ops), " operations, of which ", load(counters_.cancelled_ops),
              " were undone within their transaction (acknowledged before written) and left out");
}

// --- the public face ---------------------------------------------------------------

sqlite_store::sqlite_store(std::string path, core::durability mode, std::chrono::microseconds commit_delay)
    : impl_(std::make_unique<impl>(std::move(path), mode, commit_delay)) {}

sqlite_store::~sqlite_store() = default;

core::durability sqlite_store::mode() const noexcept { return impl_->mode_; }

const std::string& sqlite_store::path() const noexcept { return impl_->path_; }

const sqlite_store::settings& sqlite_store::effective_settings() const noexcept { return impl_->settings_; }

sqlite_store::counters sqlite_store::statistics() const noexcept {
    const auto& c = impl_->counters_;
    auto get = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
    counters out;
    out.commits = get(c.commits);
    out.committed_batches = get(c.committed_batches);
    out.committed_ops = get(c.committed_ops);
    out.failed_batches = get(c.failed_batches);
    out.failed_transactions = get(c.failed_transactions);
    out.failure_episodes = get(c.failure_episodes);
    out.retried_ops = get(c.retried_ops);
    out.dropped_ops = get(c.dropped_ops);
    out.messages_deleted = get(c.messages_deleted);
    out.vacuums = get(c.vacuums);
    out.cancelled_ops = get(c.cancelled_ops);
    return out;
}

void sqlite_store::submit(std::vector<core::store_op> ops, std::function<void(bool committed)> done) {
    {
        std::lock_guard lock(impl_->queue_mutex_);
        if (!impl_->closed_) {
            if (impl_->queue_.empty()) impl_->first_queued_at_ = steady::now();
            impl_->queue_.push_back(pending{std::move(ops), std::move(done)});
            // Notify under the lock: close() cannot slip in between and the writer
            // cannot miss the wake-up. Only when it waits for work or the commit delay
            // should end early: waking it for every submission during the delay would
            // cost a context switch each.
            if (impl_->writer_idle_ || impl_->queue_.size() >= commit_delay_max_batches) impl_->wake_.notify_one();
            return;
        }
    }
    assert(!"sqlite_store::submit after close");
    if (done) done(false);
}

void sqlite_store::close() { impl_->close(); }

core::stored_state sqlite_store::load() {
    impl& s = *impl_;
    core::stored_state out;
    std::lock_guard lock(s.db_mutex_);
    if (s.db_.handle() == nullptr) throw core::store_error(s.path_ + ": load() after close()");
    sqlite_db& db = s.db_;
    auto damaged = [&](const std::string& what) {
        return sqlite_error(SQLITE_CORRUPT, s.path_ + ": the database is damaged (" + what + ")" +
                                                advice_for_damaged(s.path_));
    };
    auto max_of = [](std::uint64_t& m, std::uint64_t v) { m = std::max(m, v); };
    try {
        db.exec("BEGIN");  // one consistent snapshot
        {
            statement st(db, "SELECT id, topic, payload, forwarded_properties, qos, retain, expires_at FROM messages "
                             "ORDER BY id");
            while (st.step()) {
                core::stored_message m;
                m.id = st.column_u64(0);
                m.topic = st.column_text(1);
                m.payload = st.column_blob(2);
                m.forwarded_properties = st.column_blob(3);
                m.qos = static_cast<std::uint8_t>(st.column_int64(4));
                m.retain = st.column_int64(5) != 0;
                m.expires_at = st.column_int64(6);
                max_of(out.max_message_id, m.id);
                out.messages.push_back(std::move(m));
            }
        }
        {
            statement st(db, "SELECT id, client_id, expiry_interval, disconnected_at, will_topic, will_payload, "
                             "will_qos, will_retain, will_properties FROM sessions ORDER BY id");
            while (st.step()) {
                core::stored_session ses;
                ses.id = st.column_u64(0);
                ses.client_id = st.column_text(1);
                ses.expiry_interval = static_cast<std::uint32_t>(st.column_int64(2));
                ses.disconnected_at = st.column_int64(3);
                if (!st.is_null(4)) {
                    protocol::will_message w;
                    w.topic = st.column_text(4);
                    w.payload = st.column_blob(5);
                    w.qos = static_cast<std::uint8_t>(st.column_int64(6));
                    w.retain = st.column_int64(7) != 0;
                    if (!decode_properties(st.column_blob(8), w.props))
                        throw damaged("the will properties of client \"" + ses.client_id + "\" cannot be read");
                    ses.will = std::move(w);
                }
                max_of(out.max_session_id, ses.id);
                out.sessions.push_back(std::move(ses));
            }
        }
        {
            statement st(db, "SELECT session_id, filter, qos, no_local, rap, retain_handling, identifier "
                             "FROM subscriptions ORDER BY session_id, filter");
            while (st.step()) {
                core::stored_subscription sub;
                sub.session_id = st.column_u64(0);
                sub.filter = st.column_text(1);
                sub.options.qos = static_cast<std::uint8_t>(st.column_int64(2));
                sub.options.no_local = st.column_int64(3) != 0;
                sub.options.retain_as_published = st.column_int64(4) != 0;
                sub.options.retain_handling = static_cast<std::uint8_t>(st.column_int64(5));
                sub.identifier = static_cast<std::uint32_t>(st.column_int64(6));
                max_of(out.max_session_id, sub.session_id);
                out.subscriptions.push_back(std::move(sub));
            }
        }
        {
            statement st(db, "SELECT session_id, row, message_id, qos, retain, subscription_identifiers, send_seq, "
                             "released FROM deliveries ORDER BY session_id, row");
            while (st.step()) {
                core::stored_delivery d;
                d.session_id = st.column_u64(0);
                d.row = st.column_u64(1);
                d.message_id = st.column_u64(2);
                d.qos = static_cast<std::uint8_t>(st.column_int64(3));
                d.retain = st.column_int64(4) != 0;
                if (!decode_u32_list(st.column_blob(5), d.subscription_identifiers))
                    throw damaged("the subscription identifiers of a delivery cannot be read");
                d.send_seq = st.column_u64(6);
                d.released = st.column_int64(7) != 0;
                max_of(out.max_session_id, d.session_id);
                max_of(out.max_delivery_row, d.row);
                max_of(out.max_message_id, d.message_id);
                out.deliveries.push_back(std::move(d));
            }
        }
        {
            statement st(db, "SELECT session_id, packet_id FROM inbound ORDER BY session_id, packet_id");
            while (st.step()) {
                out.inbound.emplace_back(st.column_u64(0), static_cast<std::uint16_t>(st.column_int64(1)));
                max_of(out.max_session_id, out.inbound.back().first);
            }
        }
        {
            statement st(db, "SELECT topic, message_id FROM retained ORDER BY topic");
            while (st.step()) {
                out.retained.emplace_back(std::string(st.column_text(0)), st.column_u64(1));
                max_of(out.max_message_id, out.retained.back().second);
            }
        }
        db.exec("COMMIT");
    } catch (const sqlite_error& e) {
        if (sqlite3_get_autocommit(db.handle()) == 0) sqlite3_exec(db.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
        const int primary = e.code() & 0xff;
        if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB || primary == SQLITE_IOERR) {
            if (std::string_view(e.what()).find("edgemq will not start") != std::string_view::npos) throw;
            throw_unreadable(s.path_, e);
        }
        throw;
    }
    return out;
}

}  // namespace edgemq::storage
