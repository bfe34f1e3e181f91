// The file must not grow without bound as messages pass through: freed pages are
// reused, a burst's pages are given back (incremental vacuum), the WAL is cut back
// after checkpoints. Sizes are the database file plus its WAL.
#include <doctest/doctest.h>

#include <algorithm>

#include "store_test_support.hpp"

using namespace edgemq;
using namespace edgemq::storage;
using namespace edgemq::storage::test;

namespace {

constexpr std::size_t payload_size = 200;

void put_wave(sqlite_store& store, std::uint64_t first, std::uint64_t n) {
    std::vector<core::store_op> batch;
    batch.reserve(n * 2);
    for (std::uint64_t id = first; id < first + n; ++id) {
        batch.push_back(put_msg(id, std::string(payload_size, static_cast<char>('a' + id % 26)), "sensors/x/temp"));
        batch.push_back(ops::put_delivery{delivery(1 + id % 4, id, id)});
    }
    REQUIRE(submit_wait(store, std::move(batch)));
}

void remove_wave(sqlite_store& store, std::uint64_t first, std::uint64_t n) {
    std::vector<core::store_op> batch;
    batch.reserve(n);
    for (std::uint64_t id = first; id < first + n; ++id) batch.push_back(ops::remove_delivery{1 + id % 4, id});
    REQUIRE(submit_wait(store, std::move(batch)));
}

}  // namespace

TEST_CASE("the file stays bounded while 100k messages pass through in waves") {
    temp_dir dir;
    const std::string path = dir.file("edgemq.db");
    sqlite_store store(path, core::durability::process);
    constexpr std::uint64_t wave = 1000, waves = 100;
    std::int64_t db_after_50 = 0, db_peak = 0, wal_peak = 0;
    auto measure = [&] {
        db_peak = std::max(db_peak, file_size(path));
        wal_peak = std::max(wal_peak, file_size(path + "-wal"));
    };
    for (std::uint64_t w = 0; w < waves; ++w) {
        put_wave(store, 1 + w * wave, wave);
        measure();
        remove_wave(store, 1 + w * wave, wave);
        measure();
        if (w == 49) db_after_50 = db_peak;
    }
    const std::int64_t db_after_100 = file_size(path), wal_after_100 = file_size(path + "-wal");
    CHECK(store.load().messages.empty());
    CHECK(store.statistics().messages_deleted == wave * waves);
    store.close();
    const std::int64_t closed = file_size(path);
    MESSAGE("100 waves of 1000 messages (" << payload_size << " B payload): database file peak over 50 waves "
                                           << db_after_50 << " B, over 100 waves " << db_peak << " B, at the end "
                                           << db_after_100 << " B; WAL peak " << wal_peak << " B, at the end "
                                           << wal_after_100 << " B; after close " << closed << " B");
    // 100k messages of ~250 B passed through (25 MB): the database file holds about
    // one wave (~300 KB) and does not grow from wave 50 to wave 100 (freed pages are
    // reused); the WAL is bounded by the checkpoint interval (2048 pages = 8 MiB)
    // plus one transaction.
    CHECK(db_peak <= 1 << 20);
    CHECK(db_peak == db_after_50);
    CHECK(wal_peak <= 10 << 20);
    CHECK(closed <= 1 << 20);  // the WAL checkpointed away, the pages of one wave free
}

TEST_CASE("a burst of 100k messages is given back to the file system once delivered") {
    temp_dir dir;
    const std::string path = dir.file("edgemq.db");
    sqlite_store store(path, core::durability::process);
    constexpr std::uint64_t n = 100000, batch = 10000;
    for (std::uint64_t first = 1; first <= n; first += batch) put_wave(store, first, batch);
    const std::int64_t full = store_bytes(path);
    for (std::uint64_t first = 1; first <= n; first += batch) remove_wave(store, first, batch);
    const std::int64_t drained = store_bytes(path);
    const auto c = store.statistics();
    CHECK(c.messages_deleted == n);
    CHECK(c.vacuums >= 1);
    store.close();
    const std::int64_t closed = file_size(path);
    MESSAGE("burst of 100k messages: db+WAL full " << full << " B, drained " << drained << " B, after close "
                                                   << closed << " B, " << c.vacuums << " incremental vacuums");
    CHECK(full > 20 << 20);
    CHECK(closed <= 1 << 20);
}
