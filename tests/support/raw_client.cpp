#include "support/raw_client.hpp"

#include "support/broker_process.hpp"
#include "support/wait.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <unistd.h>

namespace edgemq::test {

namespace {

std::runtime_error sys_error(const std::string& what) { return std::runtime_error(what + ": " + std::strerror(errno)); }

int remaining_ms(std::chrono::steady_clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

}  // namespace

raw_client::raw_client(const std::string& host, std::uint16_t port, ms connect_timeout) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) throw sys_error("socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
        ::close(fd_);
        throw std::runtime_error("raw_client: not an IPv4 address: " + host);
    }
    int r = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    if (r != 0 && errno != EINPROGRESS) {
        auto e = sys_error("connect " + host + ":" + std::to_string(port));
        ::close(fd_);
        throw e;
    }
    if (r != 0) {
        pollfd p{fd_, POLLOUT, 0};
        int err = 0;
        socklen_t len = sizeof err;
        if (::poll(&p, 1, static_cast<int>(scaled(connect_timeout).count())) != 1 ||
            ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            ::close(fd_);
            fd_ = -1;
            errno = err ? err : ETIMEDOUT;
            throw sys_error("connect " + host + ":" + std::to_string(port));
        }
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

raw_client::raw_client(const broker_process& broker, ms connect_timeout)
    : raw_client(broker.host(), broker.port(), connect_timeout) {}

raw_client::~raw_client() { close(); }

void raw_client::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

void raw_client::shutdown_send() {
    if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

std::uint16_t raw_client::local_port() const {
    if (fd_ < 0) return 0;
    sockaddr_in addr{};
    socklen_t len = sizeof addr;
    if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
    return ntohs(addr.sin_port);
}

void raw_client::abort() {
    if (fd_ < 0) return;
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close();
}

bool raw_client::try_send(std::span<const std::uint8_t> data) {
    if (fd_ < 0) return false;
    auto deadline = std::chrono::steady_clock::now() + scaled(default_timeout);
    std::size_t off = 0;
    while (off < data.size()) {
        ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            pollfd p{fd_, POLLOUT, 0};
            if (::poll(&p, 1, remaining_ms(deadline)) <= 0) return false;
            continue;
        }
        return false;  // EPIPE, ECONNRESET: the broker closed
    }
    return true;
}

void raw_client::send(std::span<const std::uint8_t> data) {
    if (!try_send(data)) throw std::runtime_error("raw_client: could not send " + wire::to_hex(data) + " (closed?)");
}

bool raw_client::fill(ms timeout, bool& closed) {
    closed = false;
    if (fd_ < 0) {
        closed = true;
        return false;
    }
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        pollfd p{fd_, POLLIN, 0};
        int r = ::poll(&p, 1, remaining_ms(deadline));
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) return false;
        std::uint8_t chunk[65536];
        ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
        if (n > 0) {
            buf_.insert(buf_.end(), chunk, chunk + n);
            return true;
        }
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        closed = true;  // 0 = EOF, ECONNRESET = reset
        return false;
    }
}

raw_client::result raw_client::read(ms timeout) { return read_unscaled(scaled(timeout)); }

std::string raw_client::read_raw(ms timeout) {
    const auto deadline = std::chrono::steady_clock::now() + scaled(timeout);
    for (;;) {
        bool closed = false;
        auto left = std::chrono::duration_cast<ms>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        if (!fill(left, closed) && (closed || std::chrono::steady_clock::now() >= deadline)) break;
    }
    std::string out(buf_.begin(), buf_.end());
    buf_.clear();
    return out;
}

raw_client::result raw_client::read_unscaled(ms timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        // A whole packet in the buffer?
        if (buf_.size() >= 2) {
            std::uint32_t len = 0;
            std::size_t i = 1;
            bool complete = false;
            for (int shift = 0; i < buf_.size() && shift <= 21; shift += 7) {
                std::uint8_t b = buf_[i++];
                len |= std::uint32_t(b & 0x7F) << shift;
                if (!(b & 0x80)) {
                    complete = true;
                    break;
                }
                if (shift == 21) throw std::runtime_error("raw_client: broker sent a remaining length > 4 bytes");
            }
            if (complete && buf_.size() - i >= len) {
                result res{status::packet, {}};
                res.pkt.header = buf_[0];
                res.pkt.body.assign(buf_.begin() + static_cast<std::ptrdiff_t>(i),
                                    buf_.begin() + static_cast<std::ptrdiff_t>(i + len));
                buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(i + len));
                return res;
            }
        }
        bool closed = false;
        auto left = std::chrono::duration_cast<ms>(deadline - std::chrono::steady_clock::now());
        if (left.count() < 0) left = ms(0);
        if (!fill(left, closed)) {
            if (closed) {
                buf_.clear();
                close();
                return {status::closed, {}};
            }
            if (std::chrono::steady_clock::now() >= deadline) return {status::timeout, {}};
        }
    }
}

wire::packet raw_client::expect(ms timeout) {
    auto r = read(timeout);
    if (r.what == status::timeout)
        throw std::runtime_error("raw_client: no packet within " + std::to_string(timeout.count()) + " ms");
    if (r.what == status::closed) throw std::runtime_error("raw_client: connection closed while expecting a packet");
    return r.pkt;
}

wire::packet raw_client::expect(std::uint8_t type, ms timeout) {
    auto p = expect(timeout);
    if (p.type() != type)
        throw std::runtime_error("raw_client: expected " + std::string(wire::type_name(type)) + ", got " + p.describe());
    return p;
}

bool raw_client::expect_closed(ms timeout, wire::packet* unexpected) {
    auto r = read(timeout);
    if (r.what == status::packet && unexpected) *unexpected = r.pkt;
    return r.what == status::closed;
}

// Not scaled: a quiet period is a lower bound, and some are time under test (a pause
// shorter than the keep alive must stay shorter on a slow machine).
bool raw_client::expect_silence(ms quiet) { return read_unscaled(quiet).what == status::timeout; }

wire::connack_view raw_client::connect(const wire::connect_spec& spec, ms timeout) {
    version_ = spec.version;
    send(wire::connect(spec));
    return wire::parse_connack(expect(wire::CONNACK, timeout), version_);
}

wire::connack_view raw_client::connect(std::uint8_t version, const std::string& client_id, bool clean,
                                       const wire::props& properties) {
    wire::connect_spec spec;
    spec.version = version;
    spec.client_id = client_id;
    spec.clean = clean;
    spec.properties = properties;
    auto ack = connect(spec);
    if (ack.reason != 0)
        throw std::runtime_error("raw_client: CONNECT of '" + client_id + "' refused with code " +
                                 std::to_string(ack.reason));
    return ack;
}

wire::bytes raw_client::subscribe(const std::string& filter, std::uint8_t options, std::uint16_t packet_id,
                                  const wire::props& properties) {
    send(wire::subscribe(packet_id, {{filter, options}}, version_, properties));
    auto ack = wire::parse_ack(expect(wire::SUBACK), version_);
    if (ack.packet_id != packet_id) throw std::runtime_error("raw_client: SUBACK for another packet id");
    return ack.reasons;
}

wire::publish_view raw_client::expect_publish(ms timeout) {
    return wire::parse_publish(expect(wire::PUBLISH, timeout), version_);
}

}  // namespace edgemq::test
