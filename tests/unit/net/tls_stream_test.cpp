// tls_stream: mbedTLS as an Asio stream, over real loopback sockets. Server and client
// streams talk to each other (and to openssl s_client and mosquitto_pub); every wait is
// bounded by a deadline, nothing sleeps.
#include <doctest/doctest.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <stdlib.h>
#include <string>
#include <thread>
#include <vector>

#include "broker/core/settings.hpp"
#include "broker/net/tls_context.hpp"
#include "broker/net/tls_stream.hpp"
#include "support/run_process.hpp"
#include "support/temp_dir.hpp"
#include "support/test_certs.hpp"
#include "support/wait.hpp"

using namespace edgemq::net;
using namespace edgemq::test;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace fs = std::filesystem;
using boost::system::error_code;
using tcp = asio::ip::tcp;
using identity = edgemq::core::certificate_identity;

namespace {

temp_dir& dir() {
    static temp_dir d("edgemq-tls-stream");
    return d;
}

// Made once (about 0.2 s) for all test cases.
const test_certificates& certs() {
    static const test_certificates c = make_test_certificates(dir().path() / "pki", "device-7");
    return c;
}

std::shared_ptr<const tls_context> server_context(client_certificates mode = client_certificates::none) {
    tls_settings s;
    s.role = tls_role::server;
    s.cert_file = certs().server_cert.string();
    s.key_file = certs().server_key.string();
    if (mode != client_certificates::none) s.ca_file = certs().ca_cert.string();
    s.client_certificates = mode;
    return tls_context::create(s);
}

// A client trusting `ca` (the test CA unless given), presenting cert/key if given.
std::shared_ptr<const tls_context> client_context(const fs::path& cert = {}, const fs::path& key = {},
                                                  const fs::path& ca = {}, std::string server_name = "localhost") {
    tls_settings s;
    s.role = tls_role::client;
    s.cert_file = cert.string();
    s.key_file = key.string();
    s.ca_file = ca.empty() ? certs().ca_cert.string() : ca.string();
    s.server_name = std::move(server_name);
    return tls_context::create(s);
}

std::shared_ptr<const tls_context> client_with_certificate() {
    return client_context(certs().client_cert, certs().client_key);
}

// Two ends of a loopback TCP connection, non-blocking like the broker's sockets.
std::pair<tcp::socket, tcp::socket> socket_pair(asio::io_context& ioc) {
    tcp::acceptor acceptor(ioc, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    tcp::socket client(ioc);
    client.connect(acceptor.local_endpoint());
    tcp::socket server = acceptor.accept();
    server.non_blocking(true);
    client.non_blocking(true);
    return {std::move(server), std::move(client)};
}

// Runs handlers until pred() holds; false if the deadline passes first or nothing is
// left to run.
template <class Predicate>
bool run_until(asio::io_context& ioc, Predicate pred, std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + scaled(timeout);
    ioc.restart();
    while (!pred()) {
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline) return false;
        if (ioc.run_one_for(deadline - now) == 0 && ioc.stopped()) return pred();
    }
    return true;
}

std::string pattern(std::size_t size, unsigned seed) {
    std::mt19937 random(seed);
    std::string s(size, '\0');
    for (char& c : s) c = static_cast<char>(random());
    return s;
}

// A server stream and a client stream on one io_context.
struct tls_pair {
    explicit tls_pair(std::shared_ptr<const tls_context> server_ctx = server_context(),
                      std::shared_ptr<const tls_context> client_ctx = client_context()) {
        auto [s, c] = socket_pair(ioc);
        server = std::make_unique<tls_stream>(std::move(s), std::move(server_ctx));
        client = std::make_unique<tls_stream>(std::move(c), std::move(client_ctx));
    }

    // Both handshakes; a side that fails closes its socket, as the broker does, so
    // that the other side learns of it.
    void handshake() {
        bool server_done = false, client_done = false;
        server->async_handshake([&](const error_code& ec) {
            server_ec = ec;
            server_done = true;
            if (ec) server->next_layer().close();
        });
        client->async_handshake([&](const error_code& ec) {
            client_ec = ec;
            client_done = true;
            if (ec) client->next_layer().close();
        });
        REQUIRE(run_until(ioc, [&] { return server_done && client_done; }));
    }
    bool connected() const { return !server_ec && !client_ec; }

    // Writes `data` from one side and reads it whole on the other.
    std::string transfer(tls_stream& from, tls_stream& to, const std::string& data) {
        std::string got(data.size(), '\0');
        bool written = false, read = false;
        error_code write_ec, read_ec;
        asio::async_write(from, asio::buffer(data), [&](const error_code& ec, std::size_t) {
            write_ec = ec;
            written = true;
        });
        asio::async_read(to, asio::buffer(got), [&](const error_code& ec, std::size_t) {
            read_ec = ec;
            read = true;
        });
        REQUIRE(run_until(ioc, [&] { return written && read; }));
        CHECK_MESSAGE(!write_ec, write_ec.message());
        CHECK_MESSAGE(!read_ec, read_ec.message());
        return got;
    }

    asio::io_context ioc;  // first: outlives the streams
    std::unique_ptr<tls_stream> server;
    std::unique_ptr<tls_stream> client;
    error_code server_ec;
    error_code client_ec;
};

// Waits until `s` has input (in mbedTLS or in the socket) and reads it like the
// broker's readiness loop does.
std::size_t read_when_ready(asio::io_context& ioc, tls_stream& s, std::span<char> out, error_code& ec) {
    for (;;) {
        const std::size_t n = s.read_some(out, ec);
        if (ec != asio::error::would_block) return n;
        bool ready = false;
        s.next_layer().async_wait(tcp::socket::wait_read, [&](const error_code&) { ready = true; });
        REQUIRE(run_until(ioc, [&] { return ready; }));
    }
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST_SUITE_BEGIN("tls");

TEST_CASE("Handshake then small messages both ways") {
    tls_pair p;
    p.handshake();
    REQUIRE(p.connected());
    CHECK(p.server->handshake_done());
    CHECK(p.client->handshake_done());
    CHECK(p.server->last_error().empty());
    CHECK(p.transfer(*p.client, *p.server, "hello server") == "hello server");
    CHECK(p.transfer(*p.server, *p.client, "hello client") == "hello client");
    // The client verified the server; the server asked for no certificate.
    CHECK(p.client->peer_certificate_verified());
    CHECK(p.client->peer_identity(identity::common_name) == "localhost");
    CHECK_FALSE(p.server->peer_certificate_verified());
    CHECK_FALSE(p.server->peer_identity(identity::common_name).has_value());
}

TEST_CASE("Several MiB each way at the same time") {
    tls_pair p;
    p.handshake();
    REQUIRE(p.connected());
    const std::string up = pattern(5 * 1024 * 1024 + 17, 1);
    const std::string down = pattern(3 * 1024 * 1024 + 5, 2);
    std::string got_up(up.size(), '\0'), got_down(down.size(), '\0');
    int done = 0;
    std::size_t written_up = 0, written_down = 0;
    auto count = [&](std::size_t* n) {
        return [&, n](const error_code& ec, std::size_t bytes) {
            CHECK_MESSAGE(!ec, ec.message());
            if (n != nullptr) *n = bytes;
            ++done;
        };
    };
    asio::async_write(*p.client, asio::buffer(up), count(&written_up));
    asio::async_write(*p.server, asio::buffer(down), count(&written_down));
    asio::async_read(*p.server, asio::buffer(got_up), count(nullptr));
    asio::async_read(*p.client, asio::buffer(got_down), count(nullptr));
    REQUIRE(run_until(p.ioc, [&] { return done == 4; }, 30s));
    CHECK(written_up == up.size());
    CHECK(written_down == down.size());
    CHECK(got_up == up);
    CHECK(got_down == down);
}

TEST_CASE("Many small buffers in one write arrive intact and in few records") {
    tls_pair p;
    p.handshake();
    REQUIRE(p.connected());
    // 1000 MQTT-sized packets, like a burst of PUBACKs and small PUBLISHes.
    std::vector<std::string> packets;
    std::string all;
    for (int i = 0; i < 1000; ++i) {
        packets.push_back(pattern(static_cast<std::size_t>(4 + i % 37), static_cast<unsigned>(i)));
        all += packets.back();
    }
    std::vector<asio::const_buffer> gather;
    for (const auto& s : packets) gather.emplace_back(s.data(), s.size());

    SUBCASE("through asio::async_write") {
        CHECK(p.transfer(*p.server, *p.client, all) == all);  // warm-up: a single buffer
        std::string got(all.size(), '\0');
        bool written = false, read = false;
        asio::async_write(*p.server, gather, [&](const error_code& ec, std::size_t n) {
            CHECK(!ec);
            CHECK(n == all.size());
            written = true;
        });
        asio::async_read(*p.client, asio::buffer(got), [&](const error_code& ec, std::size_t) {
            CHECK(!ec);
            read = true;
        });
        REQUIRE(run_until(p.ioc, [&] { return written && read; }));
        CHECK(got == all);
    }
    SUBCASE("through async_write_all") {
        std::string got(all.size(), '\0');
        bool written = false, read = false;
        p.server->async_write_all(gather, [&](const error_code& ec, std::size_t n) {
            CHECK(!ec);
            CHECK(n == all.size());
            written = true;
        });
        asio::async_read(*p.client, asio::buffer(got), [&](const error_code& ec, std::size_t) {
            CHECK(!ec);
            read = true;
        });
        REQUIRE(run_until(p.ioc, [&] { return written && read; }));
        CHECK(got == all);
    }
    SUBCASE("record count on the wire") {
        // Count the TLS records as the client's socket receives them (the client stream
        // is not used again: its bytes are taken raw).
        auto records_for = [&](auto write) {
            bool written = false;
            write([&](const error_code& ec, std::size_t n) {
                CHECK(!ec);
                CHECK(n == all.size());
                written = true;
            });
            REQUIRE(run_until(p.ioc, [&] { return written; }));
            std::string wire;
            std::size_t records = 0, payload = 0, parsed = 0;
            // Whole records until their payloads cover what was written (each record
            // carries at least its share of plaintext).
            REQUIRE(wait_until(
                [&] {
                    char buf[65536];
                    error_code ec;
                    for (;;) {
                        const std::size_t n = p.client->next_layer().read_some(asio::buffer(buf), ec);
                        if (ec) break;
                        wire.append(buf, n);
                    }
                    while (wire.size() - parsed >= 5) {
                        const std::size_t len = static_cast<unsigned char>(wire[parsed + 3]) * 256u +
                                                static_cast<unsigned char>(wire[parsed + 4]);
                        if (wire.size() - parsed < 5 + len) break;
                        CHECK(wire[parsed] == 23);  // application data
                        parsed += 5 + len;
                        payload += len;
                        ++records;
                    }
                    return payload >= all.size() && parsed == wire.size();
                },
                scaled(5s)));
            return records;
        };
        SUBCASE("async_write_all: one record per 16 KiB") {
            const std::size_t records = records_for([&](auto handler) { p.server->async_write_all(gather, handler); });
            CHECK(records == (all.size() + 16383) / 16384);
        }
        SUBCASE("asio::async_write: one record per 16 buffers at most") {
            // Asio hands async_write_some at most 16 buffers at a time.
            const std::size_t records = records_for([&](auto handler) { asio::async_write(*p.server, gather, handler); });
            CHECK(records <= (gather.size() + 15) / 16);
        }
    }
}

TEST_CASE("An RSA server certificate works as well as an EC one") {
    // Most operators have RSA certificates: ECDHE-RSA suites must be on offer.
    const fs::path key = dir().path() / "rsa.key", csr = dir().path() / "rsa.csr", cert = dir().path() / "rsa.crt";
    for (std::vector<std::string> args :
         {std::vector<std::string>{"openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key.string(),
                                   "-out", csr.string(), "-subj", "/CN=localhost", "-config",
                                   (certs().dir / "openssl.cnf").string()},
          std::vector<std::string>{"openssl", "x509", "-req", "-in", csr.string(), "-CA", certs().ca_cert.string(),
                                   "-CAkey", certs().ca_key.string(), "-set_serial", "77", "-days", "30", "-extfile",
                                   (certs().dir / "openssl.cnf").string(), "-extensions", "server", "-out",
                                   cert.string()}}) {
        const auto r = run_process(args, 30s);
        REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    }
    tls_settings s;
    s.role = tls_role::server;
    s.cert_file = cert.string();
    s.key_file = key.string();
    tls_pair p(tls_context::create(s), client_context());
    p.handshake();
    REQUIRE(p.connected());
    CHECK(p.transfer(*p.client, *p.server, "rsa") == "rsa");
}

TEST_CASE("One context serves handshakes on several threads at once") {
    // The broker's workers share one tls_context (config, certificate, random generator).
    const auto server_ctx = server_context(client_certificates::required);
    const auto client_ctx = client_with_certificate();
    constexpr int threads = 4, connections = 8;
    std::atomic<int> verified{0};
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&] {
            asio::io_context ioc;
            std::vector<std::unique_ptr<tls_stream>> streams;
            int done = 0;
            for (int i = 0; i < connections; ++i) {
                auto [s, c] = socket_pair(ioc);
                streams.push_back(std::make_unique<tls_stream>(std::move(s), server_ctx));
                streams.push_back(std::make_unique<tls_stream>(std::move(c), client_ctx));
                tls_stream& server = *streams[streams.size() - 2];
                server.async_handshake([&, &server = server](const error_code& ec) {
                    if (!ec && server.peer_identity(identity::common_name) == "device-7") ++verified;
                    ++done;
                });
                streams.back()->async_handshake([&](const error_code&) { ++done; });
            }
            run_until(ioc, [&] { return done == 2 * connections; }, 30s);
        });
    }
    for (auto& w : workers) w.join();
    CHECK(verified == threads * connections);
}

TEST_CASE("Beast HTTP request and response over the stream") {
    tls_pair p;
    p.handshake();
    REQUIRE(p.connected());
    http::request<http::string_body> request(http::verb::get, "/mqtt", 11);
    request.set(http::field::host, "localhost");
    beast::flat_buffer server_buffer, client_buffer;
    http::request<http::string_body> received;
    http::response<http::string_body> response(http::status::ok, 11);
    http::response<http::string_body> answer;
    bool done = false;
    http::async_write(*p.client, request, [&](const error_code& ec, std::size_t) { CHECK(!ec); });
    http::async_read(*p.server, server_buffer, received, [&](const error_code& ec, std::size_t) {
        REQUIRE(!ec);
        response.body() = "edgemq over TLS: " + std::string(received.target());
        response.prepare_payload();
        http::async_write(*p.server, response, [&](const error_code& wec, std::size_t) { CHECK(!wec); });
    });
    http::async_read(*p.client, client_buffer, answer, [&](const error_code& ec, std::size_t) {
        CHECK(!ec);
        done = true;
    });
    REQUIRE(run_until(p.ioc, [&] { return done; }));
    CHECK(answer.result() == http::status::ok);
    CHECK(answer.body() == "edgemq over TLS: /mqtt");
}

TEST_CASE("Beast WebSocket over the stream exchanges a message and closes cleanly") {
    tls_pair p;
    p.handshake();
    REQUIRE(p.connected());
    websocket::stream<tls_stream&> server(*p.server);
    websocket::stream<tls_stream&> client(*p.client);
    bool accepted = false, opened = false;
    server.async_accept([&](const error_code& ec) {
        CHECK(!ec);
        accepted = true;
    });
    client.async_handshake("localhost", "/mqtt", [&](const error_code& ec) {
        CHECK(!ec);
        opened = true;
    });
    REQUIRE(run_until(p.ioc, [&] { return accepted && opened; }));

    beast::flat_buffer server_buffer;
    std::string message = pattern(70'000, 7);
    bool received = false, closed = false, server_saw_close = false;
    client.binary(true);
    client.async_write(asio::buffer(message), [&](const error_code& ec, std::size_t) { CHECK(!ec); });
    server.async_read(server_buffer, [&](const error_code& ec, std::size_t) {
        CHECK(!ec);
        received = true;
        // The client's close arrives during the next read.
        server.async_read(server_buffer, [&](const error_code& close_ec, std::size_t) {
            CHECK(close_ec == websocket::error::closed);
            server_saw_close = true;
        });
        client.async_close(websocket::close_code::normal, [&](const error_code& close_ec) {
            CHECK_MESSAGE(!close_ec, close_ec.message());
            closed = true;
        });
    });
    REQUIRE(run_until(p.ioc, [&] { return received && closed && server_saw_close; }));
    CHECK(beast::buffers_to_string(server_buffer.data()) == message);
    // The teardown closed both sockets after close_notify each way.
    CHECK_FALSE(p.client->next_layer().is_open());
    CHECK_FALSE(p.server->next_layer().is_open());
}

TEST_CASE("Client certificates required or optional or not asked for") {
    SUBCASE("required and valid: verified with its identity") {
        tls_pair p(server_context(client_certificates::required), client_with_certificate());
        p.handshake();
        REQUIRE(p.connected());
        CHECK(p.server->peer_certificate_verified());
        CHECK(p.server->peer_identity(identity::common_name) == "device-7");
    }
    SUBCASE("required and absent: refused") {
        tls_pair p(server_context(client_certificates::required), client_context());
        p.handshake();
        CHECK(p.server_ec);
        CHECK(p.client_ec);
        CHECK(p.server->last_error() == "no client certificate (this listener requires one)");
    }
    SUBCASE("required and from another CA: refused as unknown CA") {
        tls_pair p(server_context(client_certificates::required),
                   client_context(certs().other_client_cert, certs().other_client_key));
        p.handshake();
        CHECK(p.server_ec);
        CHECK(p.client_ec);
        CHECK_MESSAGE(contains(p.server->last_error(), "unknown CA"), p.server->last_error());
        CHECK(contains(p.server->last_error(), "client certificate refused"));
    }
    SUBCASE("required and expired: refused as expired") {
        tls_pair p(server_context(client_certificates::required),
                   client_context(certs().expired_cert, certs().expired_key));
        p.handshake();
        CHECK(p.server_ec);
        CHECK(p.client_ec);
        CHECK(p.server->last_error() == "client certificate refused: certificate expired");
        CHECK_FALSE(p.server->peer_certificate_verified());
        CHECK_FALSE(p.server->peer_identity(identity::common_name).has_value());
    }
    SUBCASE("optional and absent: connected but not authenticated") {
        tls_pair p(server_context(client_certificates::optional), client_context());
        p.handshake();
        REQUIRE(p.connected());
        CHECK_FALSE(p.server->peer_certificate_verified());
        CHECK_FALSE(p.server->peer_identity(identity::common_name).has_value());
        CHECK(p.transfer(*p.client, *p.server, "anonymous") == "anonymous");
    }
    SUBCASE("optional and valid: verified") {
        tls_pair p(server_context(client_certificates::optional), client_with_certificate());
        p.handshake();
        REQUIRE(p.connected());
        CHECK(p.server->peer_certificate_verified());
        CHECK(p.server->peer_identity(identity::common_name) == "device-7");
    }
    SUBCASE("optional and expired: refused and the client is told") {
        tls_pair p(server_context(client_certificates::optional),
                   client_context(certs().expired_cert, certs().expired_key));
        p.handshake();
        CHECK(p.server_ec);
        CHECK(p.server->last_error() == "client certificate refused: certificate expired");
        CHECK(p.client_ec);
        CHECK_MESSAGE(contains(p.client->last_error(), "certificate_expired"), p.client->last_error());
    }
    SUBCASE("optional and from another CA: refused") {
        tls_pair p(server_context(client_certificates::optional),
                   client_context(certs().other_client_cert, certs().other_client_key));
        p.handshake();
        CHECK(p.server_ec);
        CHECK_MESSAGE(contains(p.server->last_error(), "unknown CA"), p.server->last_error());
        // Nothing passes after a refused handshake.
        error_code ec;
        char buf[16];
        p.server->read_some(buf, ec);
        CHECK(ec);
    }
    SUBCASE("not asked for: a certificate the client has is not sent") {
        tls_pair p(server_context(client_certificates::none), client_with_certificate());
        p.handshake();
        REQUIRE(p.connected());
        CHECK_FALSE(p.server->peer_certificate_verified());
        CHECK_FALSE(p.server->peer_identity(identity::subject).has_value());
    }
}

TEST_CASE("Identity from a verified client certificate: CN subject and subjectAltName") {
    auto subject_by_openssl = [](const fs::path& cert) {
        const auto r = run_process({"openssl", "x509", "-in", cert.string(), "-noout", "-subject", "-nameopt", "RFC2253"},
                                   10s);
        REQUIRE_MESSAGE(r.exit_code == 0, r.output);
        std::string s = r.output;
        REQUIRE(s.rfind("subject=", 0) == 0);
        s = s.substr(8);
        while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
        return s;
    };
    SUBCASE("plain CN") {
        tls_pair p(server_context(client_certificates::required), client_with_certificate());
        p.handshake();
        REQUIRE(p.connected());
        CHECK(p.server->peer_identity(identity::common_name) == "device-7");
        CHECK(p.server->peer_identity(identity::subject) == "CN=device-7,O=edgemq test");
        CHECK(p.server->peer_identity(identity::subject) == certs().client_subject);
        CHECK(p.server->peer_identity(identity::subject) == subject_by_openssl(certs().client_cert));
        CHECK(p.server->peer_identity(identity::subject_alt_name) == "device-7@clients.edgemq.test");
        CHECK(p.server->peer_identity(identity::subject_alt_name) == certs().client_email);
        CHECK_FALSE(p.server->peer_identity(identity::none).has_value());
    }
    SUBCASE("a CN that needs RFC 4514 escapes reads like Mosquitto's (OpenSSL's) subject") {
        const auto odd = make_test_certificates(dir().path() / "odd", "#a,b+c \"q\" <d>;e\\ ");
        tls_settings s;
        s.role = tls_role::server;
        s.cert_file = certs().server_cert.string();
        s.key_file = certs().server_key.string();
        s.ca_file = odd.ca_cert.string();
        s.client_certificates = client_certificates::required;
        tls_pair p(tls_context::create(s), client_context(odd.client_cert, odd.client_key));
        p.handshake();
        REQUIRE(p.connected());
        CHECK(p.server->peer_identity(identity::common_name) == "#a,b+c \"q\" <d>;e\\ ");
        const auto subject = p.server->peer_identity(identity::subject);
        CHECK(subject == subject_by_openssl(odd.client_cert));
        CHECK(subject == odd.client_subject);
    }
}

TEST_CASE("Plain MQTT sent to a TLS server fails the handshake at once") {
    asio::io_context ioc;
    auto [s, raw] = socket_pair(ioc);
    tls_stream server(std::move(s), server_context());
    // CONNECT, MQTT 3.1.1, clean session, keep-alive 60, empty client id.
    const std::string connect("\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00", 14);
    asio::write(raw, asio::buffer(connect));
    const auto start = std::chrono::steady_clock::now();
    bool done = false;
    error_code result;
    server.async_handshake([&](const error_code& ec) {
        result = ec;
        done = true;
    });
    REQUIRE(run_until(ioc, [&] { return done; }, 2s));
    CHECK(std::chrono::steady_clock::now() - start < scaled(1s));
    CHECK(result);
    CHECK(server.last_error() == "not TLS (plain MQTT sent to a TLS port?)");
    CHECK_FALSE(server.handshake_done());

    SUBCASE("and plain HTTP too") {
        auto [s2, raw2] = socket_pair(ioc);
        tls_stream server2(std::move(s2), server_context());
        asio::write(raw2, asio::buffer(std::string("GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n")));
        bool done2 = false;
        server2.async_handshake([&](const error_code&) { done2 = true; });
        REQUIRE(run_until(ioc, [&] { return done2; }, 2s));
        CHECK(server2.last_error() == "not TLS (plain HTTP or text sent to a TLS port?)");
    }
}

TEST_CASE("A client that connects and closes gives a clear handshake error") {
    asio::io_context ioc;
    auto [s, raw] = socket_pair(ioc);
    tls_stream server(std::move(s), server_context());
    raw.close();
    bool done = false;
    error_code result;
    server.async_handshake([&](const error_code& ec) {
        result = ec;
        done = true;
    });
    REQUIRE(run_until(ioc, [&] { return done; }));
    CHECK(result == asio::error::eof);
    CHECK(server.last_error() == "connection closed before the TLS handshake");
}

TEST_CASE("The client role checks the server's CA and name") {
    SUBCASE("another CA") {
        tls_pair p(server_context(), client_context({}, {}, certs().other_ca_cert));
        p.handshake();
        CHECK(p.client_ec);
        CHECK_MESSAGE(p.client->last_error() ==
                          "server certificate refused: unknown CA (certificate not signed by a CA in ca_file)",
                      p.client->last_error());
        CHECK(p.server_ec);
        CHECK_MESSAGE(contains(p.server->last_error(), "unknown_ca"), p.server->last_error());
    }
    SUBCASE("another name") {
        tls_pair p(server_context(), client_context({}, {}, {}, "broker.example.com"));
        p.handshake();
        CHECK(p.client_ec);
        CHECK(p.client->last_error() == "server certificate refused: certificate does not match the server name");
    }
    SUBCASE("the IP address in subjectAltName") {
        tls_pair p(server_context(), client_context({}, {}, {}, "127.0.0.1"));
        p.handshake();
        // mbedTLS 2.28 matches names against dNSName entries only, not iPAddress ones.
        CHECK(p.client_ec);
    }
}

TEST_CASE("close_notify and TCP EOF read as eof") {
    tls_pair p;
    p.handshake();
    REQUIRE(p.connected());
    SUBCASE("close_notify after data: the data first and then eof") {
        bool shut = false, written = false;
        asio::async_write(*p.client, asio::buffer(std::string("last words")), [&](const error_code& ec, std::size_t) {
            CHECK(!ec);
            written = true;
            p.client->async_shutdown([&](const error_code& sec) {
                CHECK(!sec);
                shut = true;
            });
        });
        REQUIRE(run_until(p.ioc, [&] { return written && shut; }));
        // The close_notify may come in a later segment (Nagle): read until the eof.
        char buf[64];
        error_code ec;
        std::string got;
        while (!ec) got.append(buf, read_when_ready(p.ioc, *p.server, buf, ec));
        CHECK(ec == asio::error::eof);
        CHECK(got == "last words");
        CHECK(p.server->has_buffered_input());  // the eof is known: no need to wait
        CHECK(p.server->read_some(buf, ec) == 0);
        CHECK(ec == asio::error::eof);
        bool read = false;
        p.server->async_read_some(asio::buffer(buf), [&](const error_code& rec, std::size_t rn) {
            CHECK(rec == asio::error::eof);
            CHECK(rn == 0);
            read = true;
        });
        REQUIRE(run_until(p.ioc, [&] { return read; }));
    }
    SUBCASE("close_notify while a read waits") {
        bool read = false;
        char buf[64];
        p.server->async_read_some(asio::buffer(buf), [&](const error_code& ec, std::size_t) {
            CHECK(ec == asio::error::eof);
            read = true;
        });
        p.client->async_shutdown([](const error_code& ec) { CHECK(!ec); });
        REQUIRE(run_until(p.ioc, [&] { return read; }));
    }
    SUBCASE("TCP FIN without close_notify") {
        p.client->next_layer().shutdown(tcp::socket::shutdown_send);
        char buf[64];
        error_code ec;
        read_when_ready(p.ioc, *p.server, buf, ec);
        CHECK(ec == asio::error::eof);
    }
    SUBCASE("send_close_notify before closing the socket") {
        p.server->send_close_notify();
        p.server->next_layer().shutdown(tcp::socket::shutdown_send);
        char buf[64];
        error_code ec;
        read_when_ready(p.ioc, *p.client, buf, ec);
        CHECK(ec == asio::error::eof);
    }
}

TEST_CASE("A corrupted record is an error with mbedTLS's reason") {
    tls_pair p;
    p.handshake();
    REQUIRE(p.connected());
    // An application-data record whose MAC cannot check out.
    std::string record("\x17\x03\x03\x00\x30", 5);
    record += pattern(0x30, 9);
    asio::write(p.client->next_layer(), asio::buffer(record));
    char buf[64];
    error_code ec;
    read_when_ready(p.ioc, *p.server, buf, ec);
    CHECK(ec);
    CHECK(ec != asio::error::eof);
    CHECK(ec.category() == tls_category());
    CHECK_MESSAGE(contains(p.server->last_error(), "MAC"), p.server->last_error());
}

TEST_CASE("read_some and has_buffered_input drive a readiness loop") {
    tls_pair p;
    p.handshake();
    REQUIRE(p.connected());
    char buf[1000];
    error_code ec;
    CHECK(p.server->read_some(buf, ec) == 0);
    CHECK(ec == asio::error::would_block);
    CHECK_FALSE(p.server->has_buffered_input());

    const std::string data = pattern(50'000, 3);
    bool written = false;
    asio::async_write(*p.client, asio::buffer(data), [&](const error_code& wec, std::size_t) {
        CHECK(!wec);
        written = true;
    });
    REQUIRE(run_until(p.ioc, [&] { return written; }));
    // A 16 KiB record read into 1000 bytes leaves the rest decrypted in mbedTLS: no
    // readiness event will come for it.
    std::string got;
    bool saw_buffered = false;
    while (got.size() < data.size()) {
        const std::size_t n = read_when_ready(p.ioc, *p.server, buf, ec);
        REQUIRE(!ec);
        got.append(buf, n);
        if (p.server->has_buffered_input()) {
            saw_buffered = true;
            const std::size_t more = p.server->read_some(buf, ec);
            CHECK(!ec);
            CHECK(more > 0);
            got.append(buf, more);
        }
    }
    CHECK(saw_buffered);
    CHECK(got == data);
    CHECK(p.server->read_some(buf, ec) == 0);
    CHECK(ec == asio::error::would_block);
}

TEST_CASE("Handlers never run inside the initiating function") {
    tls_pair p;
    p.handshake();
    REQUIRE(p.connected());
    CHECK(p.transfer(*p.client, *p.server, "a") == "a");
    bool called = false;
    p.server->async_handshake([&](const error_code& ec) {  // done already: completes at once
        CHECK(!ec);
        called = true;
    });
    CHECK_FALSE(called);
    REQUIRE(run_until(p.ioc, [&] { return called; }));

    // Input already decrypted: the read could complete at once, but must post.
    bool written = false;
    asio::async_write(*p.client, asio::buffer(std::string("bcdef")), [&](const error_code&, std::size_t) {
        written = true;
    });
    REQUIRE(run_until(p.ioc, [&] { return written; }));
    char one[1];
    error_code ec;
    read_when_ready(p.ioc, *p.server, one, ec);
    REQUIRE(p.server->has_buffered_input());
    char buf[16];
    std::size_t got = 0;
    called = false;
    p.server->async_read_some(asio::buffer(buf), [&](const error_code& rec, std::size_t n) {
        CHECK(!rec);
        got = n;
        called = true;
    });
    CHECK_FALSE(called);
    REQUIRE(run_until(p.ioc, [&] { return called; }));
    CHECK(std::string(buf, got) == "cdef");

    called = false;
    p.server->async_write_some(asio::const_buffer(), [&](const error_code& wec, std::size_t n) {
        CHECK(!wec);
        CHECK(n == 0);
        called = true;
    });
    CHECK_FALSE(called);
    REQUIRE(run_until(p.ioc, [&] { return called; }));
}

TEST_CASE("release and adopt move a connection to another io_context mid-stream") {
    asio::io_context client_ioc;
    auto [s, c] = socket_pair(client_ioc);
    auto server = std::make_unique<tls_stream>(std::move(s), server_context(client_certificates::required));
    tls_stream client(std::move(c), client_with_certificate());
    int handshakes = 0;
    server->async_handshake([&](const error_code& ec) {
        CHECK(!ec);
        ++handshakes;
    });
    client.async_handshake([&](const error_code& ec) {
        CHECK(!ec);
        ++handshakes;
    });
    REQUIRE(run_until(client_ioc, [&] { return handshakes == 2; }));

    // Two packets in one record: the first worker reads the first only, like a broker
    // that moves the connection right after CONNECT; the second stays in mbedTLS.
    bool written = false;
    asio::async_write(client, asio::buffer(std::string("CONNECTPUBLISH")), [&](const error_code&, std::size_t) {
        written = true;
    });
    REQUIRE(run_until(client_ioc, [&] { return written; }));
    char connect[7];
    error_code ec;
    read_when_ready(client_ioc, *server, connect, ec);
    REQUIRE(!ec);
    CHECK(std::string(connect, 7) == "CONNECT");
    REQUIRE(server->has_buffered_input());
    auto moved = std::make_shared<tls_stream::detached>(server->release());
    CHECK_FALSE(server->next_layer().is_open());
    server.reset();

    // The other worker: its own io_context on its own thread.
    asio::io_context worker_ioc;
    auto work = asio::make_work_guard(worker_ioc);
    std::thread worker([&] { worker_ioc.run_for(scaled(30s)); });
    const std::string upload = pattern(2 * 1024 * 1024, 4);
    std::atomic<bool> worker_done{false};
    std::string worker_error;
    std::optional<std::string> identity_there;
    std::string publish;
    std::unique_ptr<tls_stream> adopted;
    std::string echo(upload.size(), '\0');
    asio::post(worker_ioc, [&, moved] {
        adopted = std::make_unique<tls_stream>(worker_ioc, std::move(*moved));
        identity_there = adopted->peer_identity(identity::common_name);
        // What mbedTLS held is there without waiting for the socket.
        if (!adopted->has_buffered_input()) worker_error = "buffered input lost";
        char buf[64];
        error_code rec;
        const std::size_t n = adopted->read_some(buf, rec);
        publish.assign(buf, n);
        // Then the data keeps flowing both ways: read 2 MiB and send them back.
        asio::async_read(*adopted, asio::buffer(echo), [&](const error_code& e, std::size_t) {
            if (e) {
                worker_error = "read: " + e.message();
                worker_done = true;
                return;
            }
            asio::async_write(*adopted, asio::buffer(echo), [&](const error_code& we, std::size_t) {
                if (we) worker_error = "write: " + we.message();
                worker_done = true;
            });
        });
    });
    std::string back(upload.size(), '\0');
    bool uploaded = false, downloaded = false;
    asio::async_write(client, asio::buffer(upload), [&](const error_code& e, std::size_t) {
        CHECK(!e);
        uploaded = true;
    });
    asio::async_read(client, asio::buffer(back), [&](const error_code& e, std::size_t) {
        CHECK(!e);
        downloaded = true;
    });
    const bool finished = run_until(client_ioc, [&] { return uploaded && downloaded; }, 30s);
    // The client can have every byte before the worker's write has completed: its stream
    // must outlive the operation (like a connection, which its handlers keep alive).
    CHECK(wait_until([&] { return worker_done.load(); }, scaled(10s)));
    // Then tear the stream down on the worker's own thread.
    asio::post(worker_ioc, [&] {
        adopted.reset();
        work.reset();
    });
    worker.join();
    REQUIRE(finished);
    CHECK(worker_done);
    CHECK(worker_error.empty());
    CHECK(publish == "PUBLISH");
    CHECK(identity_there == "device-7");
    CHECK(back == upload);
}

// One openssl s_client run (client certificate of "device-7", plus `options`) against a
// server tls_stream on `ctx`: after the handshake the server writes `greeting` (if any),
// sends close_notify and reads until the client's answer.
struct s_client_run {
    process_result client;
    error_code handshake;
    error_code after_close;  // what the read after our close_notify gave
    std::string server_error;
    std::optional<std::string> identity;  // the client certificate's CN as the server saw it
};

s_client_run serve_s_client(const std::shared_ptr<const tls_context>& ctx, const std::vector<std::string>& options,
                            const std::string& greeting = {}) {
    asio::io_context ioc;
    tcp::acceptor acceptor(ioc, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    std::vector<std::string> args = {"openssl", "s_client", "-connect",
                                     "127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()),
                                     "-servername", "localhost", "-CAfile", certs().ca_cert.string(),
                                     "-verify_return_error", "-cert", certs().client_cert.string(), "-key",
                                     certs().client_key.string(), "-ign_eof"};
    args.insert(args.end(), options.begin(), options.end());
    s_client_run run;
    std::thread client([&] { run.client = run_process(args, scaled(20s)); });
    tcp::socket socket = acceptor.accept();
    socket.non_blocking(true);
    tls_stream server(std::move(socket), ctx);
    bool finished = false;
    char buf[256];
    auto close_and_drain = [&] {
        server.async_shutdown([&](const error_code&) {
            // s_client answers our close_notify with its own and exits.
            server.async_read_some(asio::buffer(buf), [&](const error_code& rec, std::size_t) {
                run.after_close = rec;
                finished = true;
            });
        });
    };
    server.async_handshake([&](const error_code& ec) {
        run.handshake = ec;
        if (ec) {
            finished = true;
            return;
        }
        if (greeting.empty()) return close_and_drain();
        asio::async_write(server, asio::buffer(greeting), [&](const error_code& wec, std::size_t) {
            CHECK(!wec);
            close_and_drain();
        });
    });
    const bool done = run_until(ioc, [&] { return finished; }, 20s);
    server.next_layer().close();
    client.join();
    REQUIRE(done);
    run.server_error = server.last_error();
    run.identity = server.peer_identity(identity::common_name);
    return run;
}

TEST_CASE("openssl s_client talks to the server stream") {
    const auto run = serve_s_client(server_context(client_certificates::required), {"-verify_hostname", "localhost"},
                                    "hello from edgemq\n");
    CHECK_MESSAGE(!run.handshake, run.server_error);
    CHECK(run.after_close == asio::error::eof);
    CHECK(run.identity == "device-7");
    CHECK_MESSAGE(contains(run.client.output, "hello from edgemq"), run.client.output);
    CHECK_MESSAGE(contains(run.client.output, "Verify return code: 0 (ok)"), run.client.output);
    CHECK_MESSAGE(contains(run.client.output, "TLSv1.2"), run.client.output);
}

TEST_CASE("a client resumes its TLS session with a ticket or a session id and keeps its certificate identity") {
    // openssl s_client saves the session of a full handshake, then resumes it in another
    // process: an abbreviated handshake (no certificates, no key exchange), after which
    // the server still knows the client certificate's CN, the user name of a listener
    // with use_identity_as_username.
    temp_dir dir("tls-resume");
    const std::string session_file = (dir.path() / "session.pem").string();
    const auto ctx = server_context(client_certificates::required);
    auto connect_with = [&](std::shared_ptr<const tls_context> server_ctx, std::vector<std::string> options) {
        auto run = serve_s_client(server_ctx, options);
        CHECK_MESSAGE(!run.handshake, run.server_error);
        CHECK(run.identity == "device-7");
        return run.client.output;
    };

    const std::string first = connect_with(ctx, {"-sess_out", session_file});
    CHECK_MESSAGE(contains(first, "New, TLSv1.2"), first);
    CHECK_MESSAGE(contains(first, "TLS session ticket lifetime hint: 7200"), first);
    // The key exchange runs on X25519, not on mbedTLS's default first choice secp521r1
    // (several times the work).
    CHECK_MESSAGE(contains(first, "Server Temp Key: X25519"), first);
    const std::string by_ticket = connect_with(ctx, {"-sess_in", session_file});
    CHECK_MESSAGE(contains(by_ticket, "Reused, TLSv1.2"), by_ticket);

    // A client without ticket support resumes from the server's session-id cache.
    const std::string no_ticket = connect_with(ctx, {"-no_ticket", "-sess_out", session_file});
    CHECK_MESSAGE(contains(no_ticket, "New, TLSv1.2"), no_ticket);
    const std::string by_id = connect_with(ctx, {"-no_ticket", "-sess_in", session_file});
    CHECK_MESSAGE(contains(by_id, "Reused, TLSv1.2"), by_id);

    // A new context (what a SIGHUP reload builds) honours no session of the old one: the
    // client makes a full handshake against the new certificates.
    connect_with(ctx, {"-sess_out", session_file});
    const std::string after_reload = connect_with(server_context(client_certificates::required),
                                                  {"-sess_in", session_file});
    CHECK_MESSAGE(contains(after_reload, "New, TLSv1.2"), after_reload);
}

TEST_CASE("mosquitto_pub publishes through the server stream") {
    if (run_process({"mosquitto_pub", "--help"}, 10s).output.find("mosquitto_pub") == std::string::npos) {
        MESSAGE("mosquitto_pub is not installed: skipped");
        return;
    }
    asio::io_context ioc;
    tcp::acceptor acceptor(ioc, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    const std::string port = std::to_string(acceptor.local_endpoint().port());
    process_result result;
    std::thread client([&] {
        result = run_process({"mosquitto_pub", "-h", "localhost", "-p", port, "--cafile", certs().ca_cert.string(),
                              "--cert", certs().client_cert.string(), "--key", certs().client_key.string(), "-V",
                              "mqttv311", "-i", "tls-unit", "-t", "tls/unit", "-m", "hello over mbedTLS"},
                             scaled(20s));
    });
    tcp::socket socket = acceptor.accept();
    socket.non_blocking(true);
    tls_stream server(std::move(socket), server_context(client_certificates::required));
    std::string received;
    bool connack_sent = false, finished = false;
    error_code handshake_ec, end;
    char buf[4096];
    // A broker in miniature: CONNACK once CONNECT is in, then read until the client leaves.
    std::function<void()> read_more = [&] {
        server.async_read_some(asio::buffer(buf), [&](const error_code& ec, std::size_t n) {
            received.append(buf, n);
            if (ec) {
                end = ec;
                finished = true;
                return;
            }
            if (!connack_sent && received.size() >= 2 && received.size() >= 2u + static_cast<unsigned char>(received[1])) {
                connack_sent = true;
                static const std::string connack("\x20\x02\x00\x00", 4);
                asio::async_write(server, asio::buffer(connack), [](const error_code& wec, std::size_t) { CHECK(!wec); });
            }
            read_more();
        });
    };
    server.async_handshake([&](const error_code& ec) {
        handshake_ec = ec;
        if (ec) {
            finished = true;
            return;
        }
        read_more();
    });
    const bool done = run_until(ioc, [&] { return finished; }, 20s);
    server.next_layer().close();
    client.join();
    REQUIRE(done);
    CHECK_MESSAGE(!handshake_ec, server.last_error());
    CHECK_MESSAGE(result.exit_code == 0, result.output);
    CHECK(end == asio::error::eof);
    REQUIRE(!received.empty());
    CHECK(received[0] == '\x10');  // CONNECT
    CHECK(contains(received, "tls-unit"));
    CHECK(contains(received, std::string("\x30", 1) + char(2 + 8 + 18) + std::string("\x00\x08tls/unit", 10) +
                                 "hello over mbedTLS"));  // PUBLISH QoS 0
    CHECK(received.substr(received.size() - 2) == std::string("\xe0\x00", 2));  // DISCONNECT
}

TEST_SUITE_END();
