// sqlite_store on real files: open and create, what survives a reopen, message
// reference counting, session removal, ordering of callbacks, group commit.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <sstream>
#include <thread>

#include "storage/schema.hpp"
#include "storage/sqlite_db.hpp"
#include "store_test_support.hpp"

using namespace edgemq;
using namespace edgemq::storage;
using namespace edgemq::storage::test;
using namespace std::string_literals;

namespace {

std::string hex(const std::string& s) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned char c : s) {
        out.push_back(digits[c >> 4]);
        out.push_back(digits[c & 15]);
    }
    return out;
}

// Printable forms, so that a mismatch shows what differs.
std::string show(const core::stored_message& m) {
    std::ostringstream o;
    o << m.id << ' ' << m.topic << ' ' << hex(m.payload) << ' ' << hex(m.forwarded_properties) << " q" << int(m.qos)
      << " r" << m.retain << " e" << m.expires_at;
    return o.str();
}
std::string show(const core::stored_delivery& d) {
    std::ostringstream o;
    o << d.session_id << '/' << d.row << " m" << d.message_id << " q" << int(d.qos) << " r" << d.retain << " ids";
    for (auto id : d.subscription_identifiers) o << ' ' << id;
    o << " seq" << d.send_seq << " rel" << d.released;
    return o.str();
}
std::string show(const core::stored_subscription& s) {
    std::ostringstream o;
    o << s.session_id << ' ' << s.filter << " q" << int(s.options.qos) << " nl" << s.options.no_local << " rap"
      << s.options.retain_as_published << " rh" << int(s.options.retain_handling) << " id" << s.identifier;
    return o.str();
}
template <class T>
std::vector<std::string> show_all(const std::vector<T>& v) {
    std::vector<std::string> out;
    for (const auto& x : v) out.push_back(show(x));
    return out;
}

bool has_message(core::store& store, std::uint64_t id) {
    const auto state = store.load();
    return std::any_of(state.messages.begin(), state.messages.end(), [&](const auto& m) { return m.id == id; });
}

protocol::will_message sample_will() {
    protocol::will_message w;
    w.topic = "clients/a/status";
    w.payload = "\0gone\0\xff"s;
    w.qos = 2;
    w.retain = true;
    w.props.will_delay_interval = 30;
    w.props.payload_format_indicator = 0;
    w.props.message_expiry_interval = 600;
    w.props.content_type = "application/octet-stream";
    w.props.response_topic = "clients/a/reply";
    w.props.correlation_data = "\0\1\2"s;
    w.props.user_properties = {{"site", "north"}, {"site", "south"}};
    return w;
}

}  // namespace

TEST_CASE("open creates the database with the current schema version") {
    temp_dir dir;
    const std::string path = dir.file("edgemq.db");
    {
        sqlite_store store(path, core::durability::process);
        CHECK(store.effective_settings().schema_version == current_schema_version());
        CHECK(store.path() == path);
        store.close();
    }
    CHECK(fs::exists(path));
    // close() checkpointed with TRUNCATE and SQLite removed the WAL: the file alone is the state.
    CHECK(file_size(path + "-wal") == 0);
    sqlite_db db(path, sqlite_db::open_mode::existing);
    CHECK(db.query_int("SELECT version FROM schema_version") == current_schema_version());
    CHECK(db.query_int("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN ('messages', 'sessions', "
                       "'subscriptions', 'deliveries', 'inbound', 'retained', 'schema_version')") == 7);
    CHECK(db.query_int("PRAGMA auto_vacuum") == 2);  // INCREMENTAL, set at creation
    CHECK(db.query_text("PRAGMA journal_mode") == "wal");  // persistent in the file
}

TEST_CASE("durability process sets synchronous NORMAL and the other PRAGMAs") {
    temp_dir dir;
    sqlite_store store(dir.file("edgemq.db"), core::durability::process);
    const auto& s = store.effective_settings();
    CHECK(store.mode() == core::durability::process);
    CHECK(s.journal_mode == "wal");
    CHECK(s.synchronous == 1);  // NORMAL
    CHECK(s.auto_vacuum == 2);  // INCREMENTAL
    CHECK(s.wal_autocheckpoint == 2048);
    CHECK(s.journal_size_limit == 16 << 20);
    CHECK(s.foreign_keys == 0);
    CHECK(s.secure_delete == 2);  // FAST
    CHECK(s.temp_store == 2);     // MEMORY
    CHECK(s.busy_timeout_ms == 5000);
    CHECK(s.page_size == 4096);
}

TEST_CASE("durability power sets synchronous FULL") {
    temp_dir dir;
    sqlite_store store(dir.file("edgemq.db"), core::durability::power);
    CHECK(store.mode() == core::durability::power);
    CHECK(store.effective_settings().synchronous == 2);  // FULL: fsync at each commit
    CHECK(store.effective_settings().journal_mode == "wal");
}

TEST_CASE("durability none is not a store") {
    temp_dir dir;
    CHECK_THROWS_AS(sqlite_store(dir.file("edgemq.db"), core::durability::none), std::invalid_argument);
    CHECK_FALSE(fs::exists(dir.file("edgemq.db")));
}

TEST_CASE("reopen keeps everything of every operation type exactly") {
    temp_dir dir;
    const std::string path = dir.file("edgemq.db");
    const std::string binary = "\0\x01\x02\xff\xfe\0 payload with NULs\0"s;
    const std::string forwarded = "\x01\x01\x26\0\x01k\0\x01v"s;

    core::stored_session with_will;
    with_will.id = 10;
    with_will.client_id = "client-a";
    with_will.expiry_interval = 0xFFFFFFFF;
    with_will.disconnected_at = 1700000000123;
    with_will.will = sample_will();
    core::stored_session without_will;
    without_will.id = 11;
    without_will.client_id = "client-b";
    without_will.expiry_interval = 60;

    core::stored_subscription sub1{10, "a/+/c", {2, true, true, 2}, 268435455};
    core::stored_subscription sub2{10, "$share/g/x/#", {1, false, false, 0}, 0};
    core::stored_subscription sub3{11, "#", {0, false, true, 1}, 7};

    auto d1 = delivery(10, 1, 1, 2);
    d1.retain = true;
    d1.subscription_identifiers = {1, 268435455};
    auto d2 = delivery(10, 2, 2, 1);
    auto d3 = delivery(11, 3, 1, 1);
    auto d4 = delivery(11, 4, 2, 2);

    {
        sqlite_store store(path, core::durability::process);
        auto m1 = ops::put_message{1, make_message("t/1", binary, 2, true, forwarded), 1234567890123};
        auto m2 = ops::put_message{2, make_message("t/2", "", 1, false), 0};
        auto m3 = ops::put_message{3, make_message("retained/topic", std::string(100000, 'r'), 0, true), 0};
        REQUIRE(submit_wait(store, {m1, m2, m3, ops::put_session{with_will}, ops::put_session{without_will},
                                    ops::put_subscription{sub1}, ops::put_subscription{sub2},
                                    ops::put_subscription{sub3}}));
        REQUIRE(submit_wait(store, {ops::put_delivery{d1}, ops::put_delivery{d2}, ops::put_delivery{d3},
                                    ops::put_delivery{d4}, ops::put_inbound{10, 1}, ops::put_inbound{10, 65535},
                                    ops::put_inbound{11, 7}, ops::put_retained{"retained/topic", 3}}));
        REQUIRE(submit_wait(store, {ops::mark_sent{10, 1, 77}, ops::mark_released{10, 1}, ops::mark_sent{11, 4, 1 << 20},
                                    ops::put_subscription{{10, "a/+/c", {2, true, true, 2}, 268435455}}}));
        store.close();
    }
    d1.send_seq = 77;
    d1.released = true;
    d4.send_seq = 1 << 20;

    sqlite_store store(path, core::durability::process);
    const core::stored_state s = store.load();

    // Message 1 is still referenced by (11, 3); 2 by (10, 2) and (11, 4); 3 by the retained entry.
    REQUIRE(s.messages.size() == 3);
    CHECK(show(s.messages[0]) == show(core::stored_message{1, "t/1", binary, forwarded, 2, true, 1234567890123}));
    CHECK(show(s.messages[1]) == show(core::stored_message{2, "t/2", "", "", 1, false, 0}));
    CHECK(show(s.messages[2]) ==
          show(core::stored_message{3, "retained/topic", std::string(100000, 'r'), "", 0, true, 0}));

    REQUIRE(s.sessions.size() == 2);
    CHECK(s.sessions[0].id == 10);
    CHECK(s.sessions[0].client_id == "client-a");
    CHECK(s.sessions[0].expiry_interval == 0xFFFFFFFF);
    CHECK(s.sessions[0].disconnected_at == 1700000000123);
    REQUIRE(s.sessions[0].will.has_value());
    CHECK(*s.sessions[0].will == sample_will());
    CHECK(s.sessions[1].id == 11);
    CHECK(s.sessions[1].client_id == "client-b");
    CHECK(s.sessions[1].expiry_interval == 60);
    CHECK(s.sessions[1].disconnected_at == 0);
    CHECK_FALSE(s.sessions[1].will.has_value());

    CHECK(show_all(s.subscriptions) == show_all(std::vector{sub2, sub1, sub3}));  // by (session, filter)
    CHECK(show_all(s.deliveries) == show_all(std::vector{d1, d2, d3, d4}));
    CHECK(s.inbound == std::vector<std::pair<std::uint64_t, std::uint16_t>>{{10, 1}, {10, 65535}, {11, 7}});
    CHECK(s.retained == std::vector<std::pair<std::string, std::uint64_t>>{{"retained/topic", 3}});
    CHECK(s.max_message_id == 3);
    CHECK(s.max_session_id == 11);
    CHECK(s.max_delivery_row == 4);
}

TEST_CASE("load orders deliveries by session and row") {
    temp_dir dir;
    sqlite_store store(dir.file("edgemq.db"), core::durability::process);
    REQUIRE(submit_wait(store, {put_msg(1), ops::put_delivery{delivery(2, 5, 1)}, ops::put_delivery{delivery(1, 9, 1)},
                                ops::put_delivery{delivery(1, 3, 1)}, ops::put_delivery{delivery(2, 100, 1)}}));
    const auto s = store.load();
    std::vector<std::pair<std::uint64_t, std::uint64_t>> order;
    for (const auto& d : s.deliveries) order.emplace_back(d.session_id, d.row);
    CHECK(order == std::vector<std::pair<std::uint64_t, std::uint64_t>>{{1, 3}, {1, 9}, {2, 5}, {2, 100}});
    CHECK(s.max_delivery_row == 100);
}

TEST_CASE("a message is deleted when its last delivery is removed") {
    temp_dir dir;
    sqlite_store store(dir.file("edgemq.db"), core::durability::process);
    REQUIRE(submit_wait(store, {put_msg(1), ops::put_delivery{delivery(1, 1, 1)}, ops::put_delivery{delivery(2, 2, 1)}}));
    REQUIRE(submit_wait(store, {ops::remove_delivery{1, 1}}));
    CHECK(has_message(store, 1));  // (2, 2) still refers to it
    REQUIRE(submit_wait(store, {ops::remove_delivery{2, 2}}));
    CHECK_FALSE(has_message(store, 1));
    CHECK(store.statistics().messages_deleted == 1);
    // Removing again is harmless.
    REQUIRE(submit_wait(store, {ops::remove_delivery{2, 2}}));
    CHECK(store.statistics().messages_deleted == 1);
}

TEST_CASE("a released delivery no longer holds its message") {
    temp_dir dir;
    sqlite_store store(dir.file("edgemq.db"), core::durability::process);
    REQUIRE(submit_wait(store, {put_msg(1), ops::put_delivery{delivery(1, 1, 1, 2)}}));
    REQUIRE(submit_wait(store, {ops::mark_sent{1, 1, 5}, ops::mark_released{1, 1}}));
    const auto s = store.load();
    CHECK(s.messages.empty());
    REQUIRE(s.deliveries.size() == 1);
    CHECK(s.deliveries[0].released);
    CHECK(s.deliveries[0].send_seq == 5);
    CHECK(s.deliveries[0].message_id == 1);  // kept, though the message is gone
    CHECK(s.max_message_id == 1);            // so a new message never takes its id
    // Marking again or removing the released delivery does not count twice.
    REQUIRE(submit_wait(store, {ops::mark_released{1, 1}, ops::remove_delivery{1, 1}}));
    CHECK(store.load().deliveries.empty());
    CHECK(store.statistics().messages_deleted == 1);
}

TEST_CASE("a retained entry keeps its message until replaced or removed") {
    temp_dir dir;
    sqlite_store store(dir.file("edgemq.db"), core::durability::process);
    REQUIRE(submit_wait(store, {put_msg(1), ops::put_retained{"t", 1}}));
    CHECK(has_message(store, 1));
    REQUIRE(submit_wait(store, {ops::put_retained{"t", 1}}));  // the same again
    CHECK(has_message(store, 1));
    REQUIRE(submit_wait(store, {put_msg(2), ops::put_retained{"t", 2}}));
    CHECK_FALSE(has_message(store, 1));
    CHECK(has_message(store, 2));
    // A message both retained and queued lives while either remains.
    REQUIRE(submit_wait(store, {ops::put_delivery{delivery(1, 1, 2)}}));
    REQUIRE(submit_wait(store, {ops::remove_retained{"t"}}));
    CHECK(has_message(store, 2));
    CHECK(store.load().retained.empty());
    REQUIRE(submit_wait(store, {ops::remove_delivery{1, 1}}));
    CHECK_FALSE(has_message(store, 2));
}

TEST_CASE("remove_retained of one message id leaves a newer retained message alone") {
    temp_dir dir;
    sqlite_store store(dir.file("edgemq.db"), core::durability::process);
    REQUIRE(submit_wait(store, {put_msg(1), ops::put_retained{"t", 1}}));
    REQUIRE(submit_wait(store, {put_msg(2), ops::put_retained{"t", 2}}));
    REQUIRE(submit_wait(store, {ops::remove_retained{"t", 1}}));  // expired, but replaced meanwhile
    auto state = store.load();
    REQUIRE(state.retained.size() == 1);
    CHECK(state.retained[0].second == 2);
    REQUIRE(submit_wait(store, {ops::remove_retained{"t", 2}}));
    CHECK(store.load().retained.empty());
    CHECK(store.load().messages.empty());
}

TEST_CASE("a send sequence number marked on a row is taken from the row of the session that had it") {
    temp_dir dir;
    sqlite_store store(dir.file("edgemq.db"), core::durability::process);
    REQUIRE(submit_wait(store, {put_msg(1), ops::put_delivery{delivery(1, 1, 1, 2)}, ops::put_delivery{delivery(1, 2, 1, 2)},
                                ops::put_delivery{delivery(2, 3, 1, 2)}}));
    // Reserved for row 1, then given to row 2 instead; session 2's number 7 is its own.
    REQUIRE(submit_wait(store, {ops::mark_sent{1, 1, 7}, ops::mark_sent{2, 3, 7}}));
    REQUIRE(submit_wait(store, {ops::mark_sent{1, 2, 7}}));
    std::vector<std::pair<std::uint64_t, std::uint64_t>> seqs;  // (row, send_seq)
    for (const auto& d : store.load().deliveries) seqs.emplace_back(d.row, d.send_seq);
    std::sort(seqs.begin(), seqs.end());
    CHECK(seqs == std::vector<std::pair<std::uint64_t, std::uint64_t>>{{1, 0}, {2, 7}, {3, 7}});
}

TEST_CASE("a message referenced again in the same transaction is kept") {
    temp_dir dir;
    sqlite_store store(dir.file("edgemq.db"), core::durability::process);
    REQUIRE(submit_wait(store, {put_msg(1), ops::put_delivery{delivery(1, 1, 1)}}));
    // The last reference goes and a new one comes in one batch.
    REQUIRE(submit_wait(store, {ops::remove_delivery{1, 1}, ops::put_delivery{delivery(2, 2, 1)}}));
    CHECK(has_message(store, 1));
    CHECK(store.statistics().messages_deleted == 0);
}

TEST_CASE("a delivery put twice replaces the first and its reference") {
    temp_dir dir;
    sqlite_store store(dir.file("edgemq.db"), core::durability::process);
    REQUIRE(submit_wait(store, {put_msg(1), put_msg(2), ops::put_delivery{delivery(1, 1, 1)}}));
    REQUIRE(submit_wait(store, {ops::put_delivery{delivery(1, 1, 2)}}));
    CHECK_FALSE(has_message(store, 1));
    const auto s = store.load();
    REQUIRE(s.deliveries.size() == 1);
    CHECK(s.deliveries[0].message_id == 2);
}

TEST_CASE("a message nothing refers to is deleted at the next open") {
    temp_dir dir;
    const std::string path = dir.file("edgemq.db");
    {
        sqlite_store store(path, core::durability::process);
        REQUIRE(submit_wait(store, {put_msg(1), put_msg(2), ops::put_retained{"keep", 2}}));
        CHECK(has_message(store, 1));  // put before its deliveries: kept while running
        store.close();
    }
    sqlite_store store(path, core::durability::process);
    const auto s = store.load();
    REQUIRE(s.messages.size() == 1);
    CHECK(s.messages[0].id == 2);
}

TEST_CASE("remove_session removes its subscriptions deliveries and inbound ids") {
    temp_dir dir;
    sqlite_store store(dir.file("edgemq.db"), core::durability::process);
    core::stored_session a{1, "a", 100, 0, sample_will()};
    core::stored_session b{2, "b", 100, 0, std::nullopt};
    REQUIRE(submit_wait(store, {put_msg(1), put_msg(2), ops::put_session{a}, ops::put_session{b},
                                ops::put_subscription{{1, "x/#", {1}, 0}}, ops::put_subscription{{1, "y", {2}, 3}},
                                ops::put_subscription{{2, "x/#", {1}, 0}}, ops::put_delivery{delivery(1, 1, 1)},
                                ops::put_delivery{delivery(1, 2, 2)}, ops::put_delivery{delivery(2, 3, 2)},
                                ops::put_inbound{1, 42}, ops::put_inbound{2, 43}}));
    REQUIRE(submit_wait(store, {ops::remove_session{1}}));
    const auto s = store.load();
    REQUIRE(s.sessions.size() == 1);
    CHECK(s.sessions[0].id == 2);
    REQUIRE(s.subscriptions.size() == 1);
    CHECK(s.subscriptions[0].session_id == 2);
    REQUIRE(s.deliveries.size() == 1);
    CHECK(s.deliveries[0].session_id == 2);
    CHECK(s.inbound == std::vector<std::pair<std::uint64_t, std::uint16_t>>{{2, 43}});
    // Message 1 was only queued for session 1; message 2 is still queued for session 2.
    REQUIRE(s.messages.size() == 1);
    CHECK(s.messages[0].id == 2);
}

TEST_CASE("put_session for a client id held by another session replaces that session") {
    temp_dir dir;
    sqlite_store store(dir.file("edgemq.db"), core::durability::process);
    REQUIRE(submit_wait(store, {put_msg(1), ops::put_session{{1, "same", 100, 0, std::nullopt}},
                                ops::put_delivery{delivery(1, 1, 1)}, ops::put_subscription{{1, "t", {1}, 0}}}));
    REQUIRE(submit_wait(store, {ops::put_session{{2, "same", 5, 0, std::nullopt}}}));
    const auto s = store.load();
    REQUIRE(s.sessions.size() == 1);
    CHECK(s.sessions[0].id == 2);
    CHECK(s.deliveries.empty());
    CHECK(s.subscriptions.empty());
    CHECK(s.messages.empty());
    // Updating a session in place keeps what belongs to it.
    REQUIRE(submit_wait(store, {ops::put_subscription{{2, "t", {1}, 0}},
                                ops::put_session{{2, "same", 9, 1700000000000, sample_will()}}}));
    const auto s2 = store.load();
    REQUIRE(s2.sessions.size() == 1);
    CHECK(s2.sessions[0].expiry_interval == 9);
    CHECK(s2.sessions[0].will == sample_will());
    CHECK(s2.subscriptions.size() == 1);
}

TEST_CASE("remove_subscription and remove_inbound remove one row each") {
    temp_dir dir;
    sqlite_store store(dir.file("edgemq.db"), core::durability::process);
    REQUIRE(submit_wait(store, {ops::put_subscription{{1, "a", {1}, 0}}, ops::put_subscription{{1, "b", {1}, 0}},
                                ops::put_inbound{1, 1}, ops::put_inbound{1, 2}, ops::put_inbound{1, 2}}));
    REQUIRE(submit_wait(store, {ops::remove_subscription{1, "a"}, ops::remove_inbound{1, 1}}));
    const auto s = store.load();
    REQUIRE(s.subscriptions.size() == 1);
    CHECK(s.subscriptions[0].filter == "b");
    CHECK(s.inbound == std::vector<std::pair<std::uint64_t, std::uint16_t>>{{1, 2}});
}

TEST_CASE("done callbacks run once each in submission order") {
    temp_dir dir;
    sqlite_store store(dir.file("edgemq.db"), core::durability::process);
    std::vector<int> order;  // written only by the writer thread, read after close()
    int failed = 0;          // likewise
    constexpr int n = 2000;
    for (int i = 0; i < n; ++i) {
        store.submit({put_msg(static_cast<std::uint64_t>(i + 1)), ops::put_retained{"t" + std::to_string(i),
                                                                                    static_cast<std::uint64_t>(i + 1)}},
                     [&order, &failed, i](bool ok) {
                         failed += ok ? 0 : 1;
                         order.push_back(i);
                     });
    }
    store.close();
    CHECK(failed == 0);
    REQUIRE(order.size() == n);
    for (int i = 0; i < n; ++i) REQUIRE(order[static_cast<std::size_t>(i)] == i);
    CHECK(store.statistics().committed_batches == n);
}

TEST_CASE("group commit applies everything queued in one transaction") {
    temp_dir dir;
    sqlite_store store(dir.file("edgemq.db"), core::durability::power);
    // The first batch's callback holds the writer (callbacks run on it) until the
    // other 999 are queued: they must then go in exactly one transaction.
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    std::promise<void> first_done;
    store.submit({put_msg(1)}, [&, released](bool) {
        first_done.set_value();
        released.wait();
    });
    first_done.get_future().wait();
    std::atomic<int> ok{0};
    for (int i = 2; i <= 1000; ++i) {
        store.submit({put_msg(static_cast<std::uint64_t>(i)), ops::put_delivery{delivery(1, static_cast<std::uint64_t>(i), static_cast<std::uint64_t>(i))}},
                     [&ok](bool committed) { ok += committed ? 1 : 0; });
    }
    release.set_value();
    store.close();
    CHECK(ok == 999);
    const auto c = store.statistics();
    CHECK(c.commits == 2);
    CHECK(c.committed_batches == 1000);
    CHECK(c.committed_ops == 1 + 999 * 2);
}

TEST_CASE("a delivery put and removed in one transaction is never written and neither is its message") {
    temp_dir dir;
    const std::string path = dir.file("edgemq.db");
    {
        sqlite_store store(path, core::durability::process);
        // Hold the writer (callbacks run on it) so that what follows meets in one
        // transaction, as when a subscriber acknowledges before the writer gets to it.
        std::promise<void> release;
        std::shared_future<void> released = release.get_future().share();
        std::promise<void> first_done;
        store.submit({ops::put_session{{1, "one", 100, 0, std::nullopt}}, ops::put_session{{2, "two", 100, 0, std::nullopt}}},
                     [&, released](bool) {
                         first_done.set_value();
                         released.wait();
                     });
        first_done.get_future().wait();
        std::atomic<int> ok{0};
        auto count = [&ok](bool committed) { ok += committed ? 1 : 0; };
        // Message 10 for two sessions, one of which acknowledges at once.
        store.submit({put_msg(10), ops::put_delivery{delivery(1, 10, 10)}, ops::put_delivery{delivery(2, 11, 10)}}, count);
        store.submit({ops::remove_delivery{1, 10}}, count);
        // Message 20 for one session, sent (QoS 2), released and completed.
        store.submit({put_msg(20), ops::put_delivery{delivery(1, 21, 20, 2)}}, count);
        store.submit({ops::mark_sent{1, 21, 1}}, count);
        store.submit({ops::mark_released{1, 21}}, count);
        store.submit({ops::remove_delivery{1, 21}}, count);
        // A removal for another session's row cancels nothing.
        store.submit({put_msg(30), ops::put_delivery{delivery(2, 31, 30)}}, count);
        store.submit({ops::remove_delivery{1, 31}}, count);
        release.set_value();
        store.close();
        CHECK(ok == 8);
        const auto c = store.statistics();
        CHECK(c.commits == 2);
        CHECK(c.cancelled_ops == 2 + 5);
    }
    sqlite_store again(path, core::durability::process);
    const core::stored_state state = again.load();
    std::vector<std::uint64_t> rows, messages;
    for (const auto& d : state.deliveries) rows.push_back(d.row);
    for (const auto& m : state.messages) messages.push_back(m.id);
    std::sort(messages.begin(), messages.end());
    CHECK(rows == std::vector<std::uint64_t>{11, 31});
    CHECK(messages == std::vector<std::uint64_t>{10, 30});
}

TEST_CASE("submit from many threads and close drains everything") {
    temp_dir dir;
    const std::string path = dir.file("edgemq.db");
    std::atomic<int> committed{0};
    constexpr int threads = 4, per_thread = 500;
    {
        sqlite_store store(path, core::durability::process);
        std::vector<std::thread> workers;
        for (int t = 0; t < threads; ++t) {
            workers.emplace_back([&, t] {
                for (int i = 0; i < per_thread; ++i) {
                    const auto id = static_cast<std::uint64_t>(t * per_thread + i + 1);
                    store.submit({put_msg(id), ops::put_delivery{delivery(static_cast<std::uint64_t>(t + 1), id, id)}},
                                 [&committed](bool ok) { committed += ok ? 1 : 0; });
                }
            });
        }
        for (auto& w : workers) w.join();
        store.close();  // without waiting for the callbacks first
        CHECK(committed == threads * per_thread);
    }
    sqlite_store store(path, core::durability::process);
    const auto s = store.load();
    CHECK(s.deliveries.size() == threads * per_thread);
    CHECK(s.messages.size() == threads * per_thread);
    CHECK(s.max_message_id == threads * per_thread);
    // Per thread, rows are in submission order.
    for (std::size_t i = 1; i < s.deliveries.size(); ++i) {
        if (s.deliveries[i].session_id == s.deliveries[i - 1].session_id)
            CHECK(s.deliveries[i].row > s.deliveries[i - 1].row);
    }
}

TEST_CASE("an empty batch is answered in order") {
    temp_dir dir;
    sqlite_store store(dir.file("edgemq.db"), core::durability::process);
    CHECK(submit_wait(store, {}));
}

TEST_CASE("an operation SQLite refuses fails only its own batch") {
    temp_dir dir;
    const std::string path = dir.file("edgemq.db");
    { sqlite_store(path, core::durability::process).close(); }
    {
        // A trigger in the file makes SQLite refuse one subscription (SQLITE_CONSTRAINT),
        // as it would refuse a value it cannot store.
        sqlite_db db(path, sqlite_db::open_mode::existing);
        db.exec("CREATE TRIGGER refuse BEFORE INSERT ON subscriptions WHEN NEW.filter = 'refused' "
                "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END");
    }
    sqlite_store store(path, core::durability::process);
    // Hold the writer in the first callback so the next three batches share one transaction.
    std::promise<void> release, first_done;
    std::shared_future<void> released = release.get_future().share();
    store.submit({}, [&, released](bool) {
        first_done.set_value();
        released.wait();
    });
    first_done.get_future().wait();
    std::vector<std::pair<char, bool>> answers;  // written by the writer thread, read after close()
    auto record = [&answers](char which) { return [&answers, which](bool ok) { answers.emplace_back(which, ok); }; };
    store.submit({put_msg(1), ops::put_retained{"a", 1}}, record('A'));
    store.submit({ops::put_subscription{{1, "refused", {1}, 0}}, put_msg(2), ops::put_retained{"b", 2}}, record('B'));
    store.submit({put_msg(3), ops::put_retained{"c", 3}}, record('C'));
    release.set_value();
    const auto c = [&] {
        store.close();
        return store.statistics();
    }();
    CHECK(answers == std::vector<std::pair<char, bool>>{{'A', true}, {'B', false}, {'C', true}});
    CHECK(c.commits == 2);
    CHECK(c.failed_batches == 1);
    CHECK(c.failure_episodes == 0);  // not a disk problem

    sqlite_store reopened(path, core::durability::process);
    const auto s = reopened.load();
    CHECK(s.retained == std::vector<std::pair<std::string, std::uint64_t>>{{"a", 1}, {"c", 3}});
    CHECK(s.subscriptions.empty());
    REQUIRE(s.messages.size() == 2);  // message 2 went with its batch
    CHECK(s.messages[0].id == 1);
    CHECK(s.messages[1].id == 3);
}
