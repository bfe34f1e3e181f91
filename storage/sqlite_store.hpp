// sqlite_store: core::store in one SQLite file, written by one thread in batches.
//
// Contract (in addition to core::store's):
// - The constructor opens or creates the file (its directory must exist) and checks
//   it before anything is written: `PRAGMA quick_check`, the schema version, that it
//   is edgemq's. It throws core::store_error naming the file and what to do when the
//   file cannot be opened (errno text), is corrupt or not a database, belongs to
//   another program or to a newer edgemq. A file that fails these checks is left
//   exactly as it was: edgemq never starts empty over an existing file.
// - Durability: `process` commits with synchronous=NORMAL (a committed transaction is
//   in the WAL in the OS page cache: survives kill -9 of edgemq, not power loss);
//   `power` with synchronous=FULL (the WAL is fsync'ed at every commit). `none` is not
//   a store: the app then creates none (the constructor throws std::invalid_argument).
// - submit() only queues (no SQL on the caller's thread). The store's writer thread
//   wakes at the first submission, waits `commit_delay` more (or until 512 batches are
//   queued) so that more work joins, takes everything queued, applies it in one
//   transaction, commits, then calls every
//   `done(true)` in submission order. Each done is called exactly once, in submission
//   order, on the writer thread, never under a lock of the store.
// - A failed transaction (disk full, I/O error) is rolled back; every batch in it gets
//   done(false); its remove_*/mark_* operations are retried first in the next
//   transaction after a backoff (50 ms doubling to 2 s) until they succeed. One warn
//   line is logged when failures start and one info line when writing works again.
//   A batch whose own operation SQLite rejects as such (a bug: constraint, too big)
//   gets done(false) alone; the other batches of its transaction are committed.
// - Messages: one row per message id, referenced by unreleased deliveries and retained
//   entries. When the last reference goes (remove_delivery, mark_released,
//   remove_session, put_retained replacing it, remove_retained) the row is deleted in
//   that same transaction. A message put but never referenced stays until the next
//   start, when unreferenced rows are deleted. A released delivery keeps its
//   message_id but its message may be gone (only the PUBREL is left to send).
//   put_message of an id already stored keeps the stored row (messages are immutable).
// - A delivery put and removed within the same transaction is not written at all (nor
//   its mark_*), and neither is a message put in it whose references are all such.
// - put_session for a client id stored under another session id first removes that
//   other session (with its subscriptions, deliveries and inbound ids): a client id
//   has one session.
// - load() may be called from any thread; it is meant to run once before submits.
// - close() drains the queue (every pending batch is committed or failed and its done
//   called), stops the writer, checkpoints the WAL into the file (TRUNCATE) and closes.
//   Removals that still cannot be written after 5 attempts at close are logged (as an
//   error) and dropped. The destructor calls close().
//
// Threads: submit(), statistics() from any thread; load() and close() from one.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "broker/core/store.hpp"

namespace edgemq::storage {

class sqlite_store final : public core::store {
public:
    // Counters since open, for tests, benchmarks and metrics.
    struct counters {
        std::uint64_t commits = 0;              // transactions committed
        std::uint64_t committed_batches = 0;    // submit() batches answered done(true)
        std::uint64_t committed_ops = 0;        // operations in those transactions
        std::uint64_t failed_batches = 0;       // submit() batches answered done(false)
        std::uint64_t failed_transactions = 0;  // rolled back (disk full, I/O error, ...)
        std::uint64_t failure_episodes = 0;     // runs of consecutive failed transactions
        std::uint64_t retried_ops = 0;          // remove/mark operations re-queued after a failure
        std::uint64_t dropped_ops = 0;          // operations given up (see close(), rejected batches)
        std::uint64_t messages_deleted = 0;     // message rows deleted when unreferenced
        std::uint64_t vacuums = 0;              // PRAGMA incremental_vacuum runs
        std::uint64_t cancelled_ops = 0;        // left unwritten: undone within the same transaction
    };

    // The PRAGMA values in effect on the store's connection, read back from SQLite
    // after open (what SQLite does, not what we asked for), for the start-up log line.
    struct settings {
        std::string journal_mode;           // "wal"
        int synchronous = 0;                // 1 NORMAL (process), 2 FULL (power)
        int auto_vacuum = 0;                // 2 INCREMENTAL
        int wal_autocheckpoint = 0;         // pages
        std::int64_t journal_size_limit = 0;  // bytes
        int foreign_keys = 0;
        int secure_delete = 0;              // 2 FAST
        int temp_store = 0;                 // 2 MEMORY
        int busy_timeout_ms = 0;
        int page_size = 0;
        int schema_version = 0;
        double quick_check_ms = 0;          // time the open check took
    };

    // Opens or creates `path` (see the contract above). `mode` is process or power.
    // `commit_delay`: see the contract above.
    sqlite_store(std::string path, core::durability mode, std::chrono::microseconds commit_delay = {});
    ~sqlite_store() override;
    sqlite_store(const sqlite_store&) = delete;
    sqlite_store& operator=(const sqlite_store&) = delete;

    core::durability mode() const noexcept override;
    core::stored_state load() override;
    void submit(std::vector<core::store_op> ops, std::function<void(bool committed)> done) override;
    void close() override;

    counters statistics() const noexcept;
    const settings& effective_settings() const noexcept;
    const std::string& path() const noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace edgemq::storage
