// Resource bounds a client cannot push the broker past (docs/ARCHITECTURE.md, "Flow
// control": "At most max_output_buffer bytes of encoded packets wait for the socket").
#include "helpers.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <vector>

using namespace edgemq::test;

TEST_SUITE_BEGIN("integration");

namespace {

long rss_kib(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

}  // namespace

// The broker must stop reading from (or disconnect) a client whose output is full, so
// TCP flow control blocks it; answers to what it sends (PINGRESP, PUBACK, SUBACK, ...)
// must not pile up. Regression: until d4f7d47 max_output_buffer bounded only PUBLISH
// deliveries and edgemq kept reading (Debug build: 11 MiB of PINGREQs in 8 s, RSS
// +6 MiB, still reading); since, the client blocks after ~6 MiB with RSS +0.3 MiB.
// Mosquitto 2.0.11 passes.
TEST_CASE("flow control: a client that sends PINGREQs and never reads is blocked and its answers are not buffered beyond max_output_buffer") {
    broker_config cfg;
    cfg.config_text = R"({"workers": 1, "max_output_buffer": 65536})";
    broker_process broker(cfg);

    // A small receive buffer: the client's side takes little of the broker's output.
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    int small = 4096;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(broker.port());
    ::inet_pton(AF_INET, broker.host().c_str(), &addr.sin_addr);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    const auto connect = wire::connect({wire::v311, "flood", true, 0});
    REQUIRE(::send(fd, connect.data(), connect.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(connect.size()));
    std::uint8_t connack[4];
    REQUIRE(::recv(fd, connack, sizeof connack, MSG_WAITALL) == 4);
    REQUIRE(connack[0] == 0x20);
    const long rss_before = rss_kib(broker.pid());

    // PINGREQs as fast as the broker takes them, never reading a PINGRESP. A broker
    // that bounds its output stops reading, so a send makes no progress for a second.
    const std::vector<std::uint8_t> burst = [] {
        std::vector<std::uint8_t> b;
        for (int i = 0; i < 32768; ++i) b.insert(b.end(), {0xC0, 0x00});
        return b;
    }();
    std::size_t sent = 0;
    bool blocked = false, closed = false;
    const auto deadline = std::chrono::steady_clock::now() + 8s;
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd, POLLOUT, 0};
        if (::poll(&p, 1, 1000) == 0) {
            blocked = true;
            break;
        }
        ssize_t n = ::send(fd, burst.data(), burst.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            sent += static_cast<std::size_t>(n);
        } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            closed = true;  // disconnecting a client that does not read also bounds it
            break;
        }
    }
    const long rss_after = rss_kib(broker.pid());
    ::close(fd);
    INFO("client sent " << sent / 1024 << " KiB of PINGREQs without reading; broker RSS " << rss_before
                        << " KiB -> " << rss_after << " KiB");
    CHECK_MESSAGE((blocked || closed),
                  "the broker kept reading for 8 s: its output grows with everything the client sends");
    if (!testing_mosquitto() && std::getenv("EDGEMQ_TEST_TIME_SCALE") == nullptr)  // RSS is noisy under sanitizers
        CHECK(rss_after - rss_before < 4 * 1024);
}

TEST_SUITE_END();
