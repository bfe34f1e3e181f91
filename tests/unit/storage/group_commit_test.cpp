// Group commit measured: messages flow through the store from two threads as a
// broker's workers would send them (put_message + put_delivery when a publish is
// queued for an offline session, remove_delivery when it is acknowledged), in
// both durability modes. Prints ops/s, ops per commit and commits/s; checks only
// that batching happens (timing depends on the machine).
//
// Two shapes:
//   open loop:   each thread submits everything as fast as it can (peak throughput);
//   closed loop: each thread keeps at most 32 batches waiting for their done, as
//                publishers waiting for PUBACK do (batch sizes set by commit latency).
// EDGEMQ_STORAGE_BENCH_MESSAGES changes the message count (default 30000, to keep
// the unit suite fast; the figures in the storage report use 100000 in a Release build).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <thread>

#include "store_test_support.hpp"

using namespace edgemq;
using namespace edgemq::storage;
using namespace edgemq::storage::test;

namespace {

// Bytes this process caused to be written to storage (WAL, checkpoints), from
// /proc/self/io; 0 where the kernel does not account it.
std::uint64_t written_bytes() {
    std::ifstream in("/proc/self/io");
    std::string key;
    std::uint64_t value = 0;
    while (in >> key >> value)
        if (key == "write_bytes:") return value;
    return 0;
}

std::uint64_t bench_messages() {
    const char* env = std::getenv("EDGEMQ_STORAGE_BENCH_MESSAGES");
    return env != nullptr ? std::strtoull(env, nullptr, 10) : 30000;
}

// At most `limit` batches of one thread in flight.
class window {
public:
    explicit window(int limit) : free_(limit) {}
    void acquire() {
        std::unique_lock lock(m_);
        cv_.wait(lock, [&] { return free_ > 0; });
        --free_;
    }
    void release() {
        {
            std::lock_guard lock(m_);
            ++free_;
        }
        cv_.notify_one();
    }

private:
    std::mutex m_;
    std::condition_variable cv_;
    int free_;
};

struct result {
    double seconds = 0;
    std::uint64_t messages = 0;
    std::uint64_t bytes_written = 0;
    sqlite_store::counters c;
};

result run(core::durability mode, std::uint64_t messages, int in_flight /* 0 = open loop */) {
    temp_dir dir;
    const std::string path = dir.file("edgemq.db");
    sqlite_store store(path, mode);
    constexpr int threads = 2;
    std::atomic<std::uint64_t> failed{0};
    const std::uint64_t written_before = written_bytes();
    const auto t0 = std::chrono::steady_clock::now();
    // Outlive the threads: callbacks release them until close() has drained.
    std::vector<std::unique_ptr<window>> windows;
    for (int t = 0; t < threads; ++t) windows.push_back(std::make_unique<window>(in_flight > 0 ? in_flight : 1 << 30));
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            window& w = *windows[static_cast<std::size_t>(t)];
            const auto session = static_cast<std::uint64_t>(t + 1);
            const std::uint64_t per_thread = messages / threads;
            const std::string payload(100, 'p');
            auto done = [&failed, &w](bool ok) {
                if (!ok) ++failed;
                w.release();
            };
            for (std::uint64_t i = 0; i < per_thread; ++i) {
                const std::uint64_t id = session * 10000000 + i;
                w.acquire();
                store.submit({put_msg(id, payload, "plant/line1/temp"), ops::put_delivery{delivery(session, id, id)}},
                             done);
                // The acknowledgement of an earlier message (the subscriber lags by 16).
                if (i >= 16) {
                    w.acquire();
                    store.submit({ops::remove_delivery{session, id - 16}}, done);
                }
            }
            for (std::uint64_t i = per_thread >= 16 ? per_thread - 16 : 0; i < per_thread; ++i) {
                w.acquire();
                store.submit({ops::remove_delivery{session, session * 10000000 + i}}, done);
            }
        });
    }
    for (auto& w : workers) w.join();
    store.close();
    result r;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.bytes_written = written_bytes() - written_before;
    r.messages = messages / threads * threads;
    r.c = store.statistics();
    CHECK(failed == 0);
    sqlite_store reopened(path, mode);
    const auto state = reopened.load();
    CHECK(state.deliveries.empty());
    CHECK(state.messages.empty());
    return r;
}

void report(const std::string& name, const result& r) {
    const double ops = static_cast<double>(r.c.committed_ops);
    const double commits = static_cast<double>(r.c.commits);
    MESSAGE(name << ": " << r.c.committed_ops << " ops in " << r.c.committed_batches << " batches, " << r.c.commits
                 << " commits in " << r.seconds << " s: " << static_cast<long>(ops / r.seconds) << " ops/s, "
                 << static_cast<long>(commits / r.seconds) << " commits/s, " << ops / commits << " ops/commit, "
                 << r.bytes_written / std::max<std::uint64_t>(r.messages, 1) << " bytes written per message");
}

}  // namespace

TEST_CASE("group commit throughput with durability process") {
    const std::uint64_t n = bench_messages();
    const result open = run(core::durability::process, n, 0);
    report("process open loop", open);
    const result closed = run(core::durability::process, n, 32);
    report("process closed loop (32 in flight per thread)", closed);
    CHECK(open.c.committed_ops == n * 3);
    // Batching happens: fewer transactions than submitted batches (loose bounds: how
    // many batches meet in one commit depends on the machine and the sanitizer).
    CHECK(open.c.commits * 4 < open.c.committed_batches);
    CHECK(closed.c.commits < closed.c.committed_batches);
}

TEST_CASE("group commit throughput with durability power") {
    const std::uint64_t n = bench_messages();
    const result open = run(core::durability::power, n, 0);
    report("power open loop", open);
    const result closed = run(core::durability::power, n, 32);
    report("power closed loop (32 in flight per thread)", closed);
    CHECK(open.c.commits * 4 < open.c.committed_batches);
    CHECK(closed.c.commits < closed.c.committed_batches);
}
