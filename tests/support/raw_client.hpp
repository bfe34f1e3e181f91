// raw_client: a blocking TCP client for byte-exact MQTT tests (plain POSIX sockets).
//
// Sends whatever bytes it is given and reads back whole MQTT packets, each read with
// a timeout, so a test can check flags, packet ids and reason codes, withhold
// acknowledgements, or watch the broker close the connection.
//
// Contract
// - Every blocking call takes a timeout; none waits longer. Timeouts are multiplied
//   by EDGEMQ_TEST_TIME_SCALE.
// - Errors of the test's own doing (cannot connect, a parse of a malformed packet
//   from the broker, an unexpected packet in expect()) throw std::runtime_error.
// - The peer closing (EOF or reset) is a normal result, never an exception:
//   read() reports it, try_send() returns false.
// - Not thread-safe; the socket is close-on-exec and sends never raise SIGPIPE.
#pragma once

#include "support/mqtt_wire.hpp"

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace edgemq::test {

class broker_process;

class raw_client {
public:
    using ms = std::chrono::milliseconds;
    static constexpr ms default_timeout{3000};

    raw_client(const std::string& host, std::uint16_t port, ms connect_timeout = default_timeout);
    explicit raw_client(const broker_process& broker, ms connect_timeout = default_timeout);
    ~raw_client();
    raw_client(const raw_client&) = delete;
    raw_client& operator=(const raw_client&) = delete;

    // Throws if the bytes cannot be written (e.g. the broker already closed).
    void send(std::span<const std::uint8_t> data);
    void send_hex(std::string_view hex) { send(wire::from_hex(hex)); }
    // False if the peer has closed or reset the connection.
    bool try_send(std::span<const std::uint8_t> data);

    enum class status { packet, timeout, closed };
    struct result {
        status what = status::timeout;
        wire::packet pkt;
    };
    // The next whole packet, or timeout, or closed (EOF/reset; buffered bytes that do
    // not form a whole packet are dropped). Throws on a malformed remaining length.
    result read(ms timeout = default_timeout);
    // The next packet; throws if there is none within the timeout or it has another type.
    wire::packet expect(ms timeout = default_timeout);
    wire::packet expect(std::uint8_t type, ms timeout = default_timeout);
    // True if the connection is closed within the timeout without any other packet
    // arriving first; the unexpected packet, if any, is in *unexpected.
    bool expect_closed(ms timeout = default_timeout, wire::packet* unexpected = nullptr);
    // True if nothing at all arrives (and no close) within `quiet` (not scaled).
    bool expect_silence(ms quiet);

    // CONNECT + read the CONNACK; throws if it is not a CONNACK. Remembers the version
    // so the other helpers parse v5 properties.
    wire::connack_view connect(const wire::connect_spec& spec, ms timeout = default_timeout);
    // Shorthand: connect with client id, clean flag and v5 properties; requires success.
    wire::connack_view connect(std::uint8_t version, const std::string& client_id, bool clean = true,
                               const wire::props& properties = {});
    // SUBSCRIBE one filter and wait for its SUBACK; returns the SUBACK reason codes.
    wire::bytes subscribe(const std::string& filter, std::uint8_t options, std::uint16_t packet_id = 1,
                          const wire::props& properties = {});
    // Every byte that arrives until the peer closes or `timeout` passes (for non-MQTT
    // replies, e.g. HTTP on a WebSocket port).
    std::string read_raw(ms timeout = default_timeout);
    // Reads the next PUBLISH (throws on timeout/other packet) and parses it.
    wire::publish_view expect_publish(ms timeout = default_timeout);

    std::uint8_t version() const { return version_; }
    void set_version(std::uint8_t v) { version_ = v; }
    // FIN; the broker sees a clean close of the socket (no DISCONNECT packet).
    void close();
    // RST (SO_LINGER 0): the network "dies" from the broker's view.
    void abort();
    // Half-close: FIN, but the socket stays open for reading what the broker answers.
    void shutdown_send();
    bool is_open() const { return fd_ >= 0; }
    // The socket, for poll(2) over several clients (-1 when closed). Read only through
    // read(): it may hold buffered bytes of the next packet.
    int native_handle() const { return fd_; }
    // The client's own port (the broker logs it as the peer); 0 when closed.
    std::uint16_t local_port() const;

    // read() without EDGEMQ_TEST_TIME_SCALE: for windows that are time under test.
    result read_unscaled(ms timeout);

private:
    bool fill(ms timeout, bool& closed);

    int fd_ = -1;
    std::uint8_t version_ = wire::v5;
    wire::bytes buf_;
};

}  // namespace edgemq::test
