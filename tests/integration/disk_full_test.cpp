// Disk full (docs/DURABILITY.md, "Disk full and I/O errors"): on a small tmpfs made by
// the test, filled with a filler file and then with QoS 1 messages for an offline
// persistent session, edgemq refuses new messages (5.0: PUBACK 0x97, not routed; 3.1.1:
// disconnected without PUBACK), keeps serving, keeps what it had stored, and takes
// messages again once the filler is deleted.
//
// Needs root (mount -t tmpfs); without it the test says so and does nothing. The tmpfs
// is unmounted when the test ends, whatever happens (tmpfs_mount's destructor, after the
// broker has stopped).
#include "helpers.hpp"

#include "support/tmpfs_mount.hpp"

#include <filesystem>
#include <sstream>

using namespace edgemq::test;

TEST_SUITE_BEGIN("integration");

namespace {

std::string body(const std::string& who, int seq) {
    std::string b = who + ":" + std::to_string(seq) + ":";
    b.resize(1000, '.');
    return b;
}

// One QoS 1 PUBLISH and its PUBACK's reason code; nullopt if the connection closed first.
std::optional<std::uint8_t> publish_qos1(raw_client& c, const std::string& topic, const std::string& payload,
                                         std::uint16_t packet_id) {
    wire::publish_spec p;
    p.version = c.version();
    p.topic = topic;
    p.payload = payload;
    p.qos = 1;
    p.packet_id = packet_id;
    if (!c.try_send(wire::publish(p))) return std::nullopt;
    auto r = c.read(5000ms);
    if (r.what == raw_client::status::closed) return std::nullopt;
    if (r.what == raw_client::status::timeout) throw std::runtime_error("no PUBACK within 5 s");
    auto ack = wire::parse_ack(r.pkt, c.version());
    if (r.pkt.type() != wire::PUBACK || ack.packet_id != packet_id)
        throw std::runtime_error("expected PUBACK " + std::to_string(packet_id) + ", got " + r.pkt.describe());
    return ack.reason;
}

// Log lines with "warn" or "error" level, for the test output.
std::string warnings(const broker_process& broker) {
    std::istringstream in(broker.log());
    std::string out;
    for (std::string line; std::getline(in, line);)
        if (line.find("Z warn ") != std::string::npos || line.find("Z error ") != std::string::npos) out += line + "\n";
    return out;
}

}  // namespace

TEST_CASE("durability: disk full refuses new QoS 1 messages with 0x97 and keeps serving and recovers when space returns") {
    if (testing_mosquitto()) {
        MESSAGE("skipped: edgemq's disk-full behaviour");
        return;
    }
    tmpfs_mount disk(2 * 1024 * 1024);  // before the broker: unmounted after it stops
    if (!disk.mounted()) {
        MESSAGE("skipped: cannot make a small file system for the test: " << disk.why_not());
        return;
    }
    const auto data_dir = disk.path() / "data";
    std::filesystem::create_directories(data_dir);
    broker_config config;
    config.data_dir = data_dir;
    broker_process broker(config);

    {
        raw_client sub(broker);
        sub.connect(wire::v5, "full-sub", false, session_expiry(3600));
        sub.subscribe("full/#", wire::sub_options(1));
        sub.send(wire::disconnect());
        REQUIRE(sub.expect_closed());
    }
    const auto filler = disk.path() / "filler";
    const std::uint64_t free_at_start = disk.free_bytes();
    const std::uint64_t leave = 256 * 1024;
    const std::uint64_t filled = write_filler(filler, free_at_start > leave ? free_at_start - leave : 0);
    MESSAGE("tmpfs " << disk.path() << ": " << free_at_start << " bytes free, filler " << filled << ", "
                     << disk.free_bytes() << " left");

    // 5.0 publisher: 1 kB messages until the broker refuses one.
    raw_client pub5(broker);
    pub5.connect(wire::v5, "full-pub5");
    std::vector<int> accepted;  // sequence numbers of full-pub5 acknowledged with 0
    std::vector<int> refused;
    int seq = 0;
    std::uint8_t code = 0;
    for (; seq < 3000; ++seq) {
        auto reason = publish_qos1(pub5, "full/5", body("full-pub5", seq), static_cast<std::uint16_t>(seq % 60000 + 1));
        REQUIRE_MESSAGE(reason, "full-pub5 disconnected at message " << seq << "; log:\n" << broker.log());
        if (*reason == 0) {
            accepted.push_back(seq);
            continue;
        }
        code = *reason;
        refused.push_back(seq++);
        break;
    }
    REQUIRE_MESSAGE(!refused.empty(), "3000 messages of 1 kB and no refusal on a 2 MiB file system");
    MESSAGE(accepted.size() << " messages accepted before the disk was full, then PUBACK 0x" << std::hex << int(code));
    CHECK(code == 0x97);
    // Still full: the next one is refused too, on the same connection.
    auto again = publish_qos1(pub5, "full/5", body("full-pub5", seq), static_cast<std::uint16_t>(seq % 60000 + 1));
    REQUIRE(again);
    CHECK(*again == 0x97);
    if (*again == 0) accepted.push_back(seq);
    else refused.push_back(seq);
    ++seq;

    // 3.1.1 publisher: cannot be told, so it is disconnected without a PUBACK.
    {
        raw_client pub3(broker);
        pub3.connect(wire::v311, "full-pub3");
        wire::publish_spec p;
        p.version = wire::v311;
        p.topic = "full/3";
        p.payload = body("full-pub3", 0);
        p.qos = 1;
        p.packet_id = 1;
        pub3.send(wire::publish(p));
        wire::packet unexpected;
        bool closed = pub3.expect_closed(5000ms, &unexpected);
        INFO("instead of a close: " << unexpected.describe());
        CHECK(closed);
    }

    // The broker keeps serving: QoS 0 between two clients without sessions.
    {
        raw_client live_sub(broker);
        live_sub.connect(wire::v5, "full-live-sub");
        live_sub.subscribe("live/t", wire::sub_options(0));
        raw_client live_pub(broker);
        live_pub.connect(wire::v311, "full-live-pub");
        raw_publish(live_pub, "live/t", "still serving", 0);
        CHECK(live_sub.expect_publish().payload == "still serving");
    }

    // Space returns: new messages are taken again, from the first one.
    std::filesystem::remove(filler);
    MESSAGE("filler removed: " << disk.free_bytes() << " bytes free");
    auto first = publish_qos1(pub5, "full/5", body("full-pub5", seq), static_cast<std::uint16_t>(seq % 60000 + 1));
    REQUIRE(first);
    CHECK_MESSAGE(*first == 0, "first publish after space returned: 0x" << std::hex << int(*first));
    (*first == 0 ? accepted : refused).push_back(seq++);
    for (int i = 0; i < 20; ++i, ++seq) {
        auto reason = publish_qos1(pub5, "full/5", body("full-pub5", seq), static_cast<std::uint16_t>(seq % 60000 + 1));
        REQUIRE(reason);
        CHECK(*reason == 0);
        (*reason == 0 ? accepted : refused).push_back(seq);
    }
    {
        raw_client pub3(broker);
        pub3.connect(wire::v311, "full-pub3");
        raw_publish(pub3, "full/3", body("full-pub3", 1), 1, 2);
    }

    // Nothing stored is lost, also across kill -9: the session gets exactly what was
    // acknowledged, in order, and nothing that was refused.
    broker.kill9();
    broker.restart();
    raw_client sub(broker);
    auto ack = sub.connect(wire::v5, "full-sub", false, session_expiry(3600));
    CHECK(ack.session_present);
    std::vector<int> got5;
    std::vector<std::string> got3;
    while (got5.size() + got3.size() < accepted.size() + 1) {
        auto r = sub.read(5000ms);
        if (r.what != raw_client::status::packet) break;
        auto p = wire::parse_publish(r.pkt, wire::v5);
        sub.send(wire::ack(wire::PUBACK, p.packet_id));
        const auto colon = p.payload.find(':');
        const std::string who = p.payload.substr(0, colon);
        const std::string num = p.payload.substr(colon + 1, p.payload.find(':', colon + 1) - colon - 1);
        if (who == "full-pub5") got5.push_back(std::stoi(num));
        else got3.push_back(num);
    }
    CHECK(sub.expect_silence(300ms));
    CHECK(got5 == accepted);
    CHECK(got3 == std::vector<std::string>{"1"});
    const std::string warn = warnings(broker);
    MESSAGE("broker warnings and errors:\n" << (warn.empty() ? "(none)\n" : warn));
}

TEST_SUITE_END();
