// A full disk, for real: a small tmpfs (needs root and a kernel that lets this
// sandbox mount; otherwise skipped with a message, and covered again by the
// integration tests). New data is refused with done(false), what was stored stays,
// a removal submitted meanwhile is retried, and the store works again by itself once
// space returns.
#include <doctest/doctest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "store_test_support.hpp"

using namespace edgemq;
using namespace edgemq::storage;
using namespace edgemq::storage::test;

namespace {

struct tmpfs_mount {
    std::string dir;
    bool mounted = false;
    std::string error;
    tmpfs_mount(std::string where, const char* options) : dir(std::move(where)) {
        fs::create_directory(dir);
        if (::geteuid() != 0) {
            error = "not running as root";
        } else if (::mount("tmpfs", dir.c_str(), "tmpfs", 0, options) != 0) {
            error = std::string("mount -t tmpfs failed: ") + std::strerror(errno);
        } else {
            mounted = true;
        }
    }
    ~tmpfs_mount() {
        if (mounted) ::umount2(dir.c_str(), MNT_DETACH);
    }
};

}  // namespace

TEST_CASE("disk full refuses new data and keeps stored data and recovers when space returns") {
    temp_dir dir;
    tmpfs_mount small(dir.file("small"), "size=4m");
    if (!small.mounted) {
        MESSAGE("SKIPPED: the disk-full test needs a 4 MiB tmpfs (" << small.error
                                                                     << "); the integration tests cover it again");
        return;
    }
    const std::string path = small.dir + "/edgemq.db";
    const std::string filler = small.dir + "/filler";
    // Space to give back later; more than the WAL will hold, so that the final
    // checkpoint (which copies the WAL into the database file) fits too.
    write_file(filler, std::string(2560 * 1024, 'f'));

    std::uint64_t accepted = 0, first_refused = 0;
    int removal_attempt = -1;  // done of the removal submitted while full (writer thread)
    {
        sqlite_store store(path, core::durability::process);
        REQUIRE(submit_wait(store, {put_msg(1, "stored before"), ops::put_delivery{delivery(1, 1, 1)},
                                    ops::put_delivery{delivery(1, 2, 1)},
                                    ops::put_session{{1, "client", 60, 0, std::nullopt}}}));
        // Fill the disk with 16 KiB messages until one is refused.
        for (std::uint64_t id = 100; id < 2000; ++id) {
            if (!submit_wait(store, {put_msg(id, std::string(16384, 'x')), ops::put_delivery{delivery(2, id, id)}})) {
                first_refused = id;
                break;
            }
            ++accepted;
        }
        REQUIRE(first_refused != 0);
        MESSAGE("disk full after " << accepted << " messages of 16 KiB; store file " << file_size(path)
                                   << " B, WAL " << file_size(path + "-wal") << " B");
        auto c = store.statistics();
        CHECK(c.failed_transactions >= 1);
        CHECK(c.failure_episodes == 1);

        // Still full: a removal is kept and retried, new data is refused.
        store.submit({ops::remove_delivery{1, 1}}, [&](bool ok) { removal_attempt = ok ? 1 : 0; });
        CHECK_FALSE(submit_wait(store, {put_msg(5000, std::string(65536, 'y')), ops::put_delivery{delivery(3, 1, 5000)}}));
        CHECK(store.statistics().failure_episodes == 1);  // one episode, however many attempts

        // Space returns: the store recovers by itself.
        fs::remove(filler);
        CHECK(submit_wait(store, {put_msg(6000, "after"), ops::put_delivery{delivery(1, 3, 6000)}}));
        c = store.statistics();
        CHECK(c.failure_episodes == 1);
        CHECK(c.retried_ops >= 1);
        CHECK(c.failed_batches >= 2);
        store.close();
    }
    CHECK(removal_attempt != -1);  // its done was called (false while full, or true)

    sqlite_store store(path, core::durability::process);
    const auto s = store.load();
    auto has_message = [&](std::uint64_t id) {
        return std::any_of(s.messages.begin(), s.messages.end(), [&](const auto& m) { return m.id == id; });
    };
    auto has_delivery = [&](std::uint64_t session, std::uint64_t row) {
        return std::any_of(s.deliveries.begin(), s.deliveries.end(),
                           [&](const auto& d) { return d.session_id == session && d.row == row; });
    };
    CHECK(has_message(1));
    CHECK_FALSE(has_delivery(1, 1));  // the retried removal got through
    CHECK(has_delivery(1, 2));
    CHECK(has_delivery(1, 3));
    CHECK(has_message(6000));
    CHECK_FALSE(has_message(first_refused));
    CHECK_FALSE(has_message(5000));
    CHECK(s.sessions.size() == 1);
    std::uint64_t filled = 0;
    for (const auto& d : s.deliveries) filled += d.session_id == 2 ? 1 : 0;
    CHECK(filled == accepted);  // nothing acknowledged before the disk filled was lost
}
