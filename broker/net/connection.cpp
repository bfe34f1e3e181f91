#include "broker/net/connection.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "broker/app/version.hpp"
#include "broker/core/log.hpp"
#include "broker/net/handoff.hpp"
#include "broker/net/listener.hpp"
#include "broker/net/server.hpp"
#include "broker/net/tls_stream.hpp"
#include "broker/net/worker.hpp"

namespace edgemq::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using boost::system::error_code;

namespace {
// How long a closing connection may take to flush its last packets and see the
// client's FIN before the socket is closed regardless.
constexpr auto close_linger = std::chrono::seconds(2);
// Bounds on the HTTP request that may precede a WebSocket upgrade.
constexpr std::uint32_t http_header_limit = 8 * 1024;
constexpr std::uint64_t http_body_limit = 4 * 1024;

// The subprotocol to answer with, from the client's Sec-WebSocket-Protocol list:
// "mqtt" [MQTT-6.0.0-4], else "mqttv3.1" (old clients), "" when none was offered
// (lenient: some clients offer none), nullopt when only others were.
std::optional<std::string> choose_subprotocol(std::string_view offered) {
    if (offered.empty()) return std::string();
    bool legacy = false;
    while (!offered.empty()) {
        const auto comma = offered.find(',');
        std::string_view token = offered.substr(0, comma);
        while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) token.remove_prefix(1);
        while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
        if (token == "mqtt") return std::string("mqtt");
        if (token == "mqttv3.1") legacy = true;
        if (comma == std::string_view::npos) break;
        offered.remove_prefix(comma + 1);
    }
    if (legacy) return std::string("mqttv3.1");
    return std::nullopt;
}

core::certificate_identity identity_field(const core::listener_settings& ls) { return ls.identity_as_username; }

}  // namespace

// The HTTP request (and, for an upgrade, Beast's WebSocket handshake) of a ws/wss
// connection. Lives only until the upgrade is done.
struct http_exchange {
    beast::flat_buffer buffer;
    http::request_parser<http::string_body> parser;
    http::response<http::string_body> response;
    std::unique_ptr<websocket::stream<asio::ip::tcp::socket&>> plain_upgrade;
    std::unique_ptr<websocket::stream<tls_stream&>> tls_upgrade;
};

connection::connection(worker& owner, asio::ip::tcp::socket socket, std::string peer, listener_slot& slot,
                       std::shared_ptr<const tls_context> tls)
    : worker_(owner), slot_(&slot), socket_(owner.context()),
      protocol_(owner.core(), *this, std::move(peer), slot.settings) {
    if (tls) {
        tls_ = std::make_unique<tls_stream>(std::move(socket), std::move(tls));
    } else {
        socket_ = std::move(socket);
    }
    handshake_deadline_ = std::chrono::steady_clock::now() + slot.settings.limits.connect_timeout;
    phase_ = tls_ ? phase::tls_handshake : slot.settings.websocket() ? phase::http : phase::open;
}

connection::connection(worker& owner, connection_handoff&& handoff)
    : worker_(owner), slot_(handoff.slot), socket_(owner.context()),
      protocol_(owner.core(), *this, std::move(handoff.peer), handoff.slot->settings) {
    if (handoff.tls) {
        tls_ = std::make_unique<tls_stream>(owner.context(), std::move(*handoff.tls));
    } else {
        error_code ec;
        // The protocol family must match the descriptor's; ask the kernel.
        sockaddr_storage addr{};
        socklen_t len = sizeof addr;
        ::getsockname(handoff.fd, reinterpret_cast<sockaddr*>(&addr), &len);
        socket_.assign(addr.ss_family == AF_INET6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4(), handoff.fd, ec);
        if (!ec) socket_.non_blocking(true, ec);  // Asio's own flag: the descriptor has O_NONBLOCK already
        if (ec) {
            ::close(handoff.fd);
            closed_ = true;
        }
    }
    ws_ = std::move(handoff.ws);
    ws_control_out_ = std::move(handoff.ws_control_out);
    protocol_.set_certificate_identity(std::move(handoff.certificate_identity));
    replay_ = std::move(handoff.replay);
}

connection::~connection() { slot_->open.fetch_sub(1, std::memory_order_relaxed); }

asio::ip::tcp::socket& connection::socket() noexcept { return tls_ ? tls_->next_layer() : socket_; }

void connection::start() {
    if (closed_) {  // a moved descriptor that could not be adopted
        worker_.forget(this);
        return;
    }
    switch (phase_) {
        case phase::tls_handshake: start_tls(); return;
        case phase::http: start_http(); return;
        case phase::open: break;
    }
    if (!replay_.empty()) {
        const std::string replay = std::move(replay_);
        protocol_.on_input(replay);
        if (closed_ || closing_) return;
    }
    if (!ws_control_out_.empty()) worker_.mark_dirty(shared_from_this());
    // A moved TLS connection may hold decrypted input already; try before waiting.
    on_readable({});
}

void connection::start_tls() {
    tls_->async_handshake([self = shared_from_this()](const error_code& ec) {
        if (self->closed_) return;
        if (ec) {
            // One line, at info: a refused certificate is something an operator looks for.
            log::info("TLS handshake with ", self->protocol_.peer(), " failed: ", self->tls_->last_error());
            self->close_socket("TLS handshake failed");
            return;
        }
        const core::listener_settings& ls = self->slot_->settings;
        if (identity_field(ls) != core::certificate_identity::none)
            self->protocol_.set_certificate_identity(self->tls_->peer_identity(identity_field(ls)));
        if (ls.websocket()) {
            self->phase_ = phase::http;
            self->start_http();
        } else {
            self->start_reading();
        }
    });
}

void connection::start_http() {
    http_ = std::make_unique<http_exchange>();
    http_->parser.header_limit(http_header_limit);
    http_->parser.body_limit(http_body_limit);
    auto done = [self = shared_from_this()](const error_code& ec, std::size_t) { self->on_http_request(ec); };
    if (tls_) {
        http::async_read(*tls_, http_->buffer, http_->parser, std::move(done));
    } else {
        http::async_read(socket_, http_->buffer, http_->parser, std::move(done));
    }
}

void connection::on_http_request(const error_code& ec) {
    if (closed_) return;
    if (ec) {
        if (ec == http::error::end_of_stream || ec == asio::error::eof) {
            close_socket("connection closed by client");
        } else if (ec == http::error::header_limit || ec == http::error::body_limit) {
            answer_http(431, "request too large\n");
        } else {
            log::debug("bad HTTP request from ", protocol_.peer(), ": ", ec.message());
            answer_http(400, "bad request\n");
        }
        return;
    }
    const auto& request = http_->parser.get();
    std::string_view target(request.target().data(), request.target().size());
    target = target.substr(0, target.find('?'));
    const core::listener_settings& ls = slot_->settings;
    if (!websocket::is_upgrade(request)) {
        if (request.method() != http::verb::get && request.method() != http::verb::head) {
            answer_http(405, "method not allowed\n");
        } else if (target == "/" || target == ls.path) {
            answer_http(200, std::string("edgemq ") + app::version + ": MQTT over WebSocket at " + ls.path +
                                 " (subprotocol mqtt)\n");
        } else {
            answer_http(404, "not found\n");
        }
        return;
    }
    if (target != ls.path) {
        answer_http(404, "no WebSocket endpoint here; MQTT is at " + ls.path + "\n");
        return;
    }
    const auto offered = request[http::field::sec_websocket_protocol];
    const auto chosen = choose_subprotocol(std::string_view(offered.data(), offered.size()));
    if (!chosen) {
        log::info("WebSocket upgrade from ", protocol_.peer(), " refused: subprotocol '",
                  std::string_view(offered.data(), offered.size()), "' is not mqtt");
        answer_http(400, "the WebSocket subprotocol must be mqtt [MQTT-6.0.0-3]\n");
        return;
    }
    // Beast checks the upgrade request (version 13, key, ...) and writes 101 or an
    // error response; after it, the framing is ours (see ws_codec.hpp).
    auto decorate = websocket::stream_base::decorator([protocol = *chosen](websocket::response_type& res) {
        res.set(http::field::server, std::string("edgemq/") + app::version);
        if (!protocol.empty()) res.set(http::field::sec_websocket_protocol, protocol);
    });
    auto done = [self = shared_from_this()](const error_code& accept_ec) { self->on_upgraded(accept_ec); };
    if (tls_) {
        http_->tls_upgrade = std::make_unique<websocket::stream<tls_stream&>>(*tls_);
        http_->tls_upgrade->set_option(std::move(decorate));
        http_->tls_upgrade->async_accept(request, std::move(done));
    } else {
        http_->plain_upgrade = std::make_unique<websocket::stream<asio::ip::tcp::socket&>>(socket_);
        http_->plain_upgrade->set_option(std::move(decorate));
        http_->plain_upgrade->async_accept(request, std::move(done));
    }
}

void connection::answer_http(unsigned status, std::string body) {
    auto& res = http_->response;
    res.result(status);
    res.version(11);
    res.set(http::field::server, std::string("edgemq/") + app::version);
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.keep_alive(false);
    if (http_->parser.is_header_done() && http_->parser.get().method() == http::verb::head) {
        res.content_length(body.size());
    } else {
        res.body() = std::move(body);
        res.prepare_payload();
    }
    auto done = [self = shared_from_this()](const error_code&, std::size_t) {
        if (self->closed_) return;
        self->phase_ = phase::open;  // so that close() lingers like any other close
        self->http_.reset();
        self->closing_ = true;
        self->close_deadline_ = std::chrono::steady_clock::now() + close_linger;
        self->begin_linger();
    };
    if (tls_) {
        http::async_write(*tls_, res, std::move(done));
    } else {
        http::async_write(socket_, res, std::move(done));
    }
}

void connection::on_upgraded(const error_code& ec) {
    if (closed_) return;
    if (ec) {
        log::info("WebSocket upgrade from ", protocol_.peer(), " failed: ", ec.message());
        close_socket("WebSocket handshake failed");
        return;
    }
    // Bytes the client sent right after its request are already frames.
    std::string early(static_cast<const char*>(http_->buffer.data().data()), http_->buffer.size());
    http_.reset();
    ws_ = std::make_unique<ws::frame_decoder>();
    phase_ = phase::open;
    if (!early.empty() && !deliver_input(std::span<char>(early.data(), early.size()))) return;
    start_reading();
}

void connection::start_reading() {
    phase_ = phase::open;
    on_readable({});
}

std::size_t connection::read_transport(std::span<char> buffer, error_code& ec) {
    if (tls_) return tls_->read_some(buffer, ec);
    return socket_.read_some(asio::buffer(buffer.data(), buffer.size()), ec);
}

bool connection::deliver_input(std::span<char> bytes) {
    std::size_t n = bytes.size();
    if (ws_) {
        n = ws_->decode(bytes, ws_control_out_);
        if (ws_->current() == ws::frame_decoder::state::failed)
            log::info("closing WebSocket of ", protocol_.client_id().empty() ? protocol_.peer() : protocol_.client_id(),
                      ": ", ws_->error());
    }
    if (n != 0) protocol_.on_input(std::string_view(bytes.data(), n));
    if (closed_ || closing_) return false;
    if (ws_ && ws_->current() != ws::frame_decoder::state::open) {
        // The client closed the WebSocket (or broke it): answer, then end like a lost
        // connection (the Will is due unless DISCONNECT came first; v5 3.1.2.5).
        ws_close_sent_ = true;  // the answering Close is in ws_control_out_
        protocol_.on_transport_closed(ws_->current() == ws::frame_decoder::state::closing ? "WebSocket closed by client"
                                                                                          : ws_->error());
        close();
        return false;
    }
    if (!ws_control_out_.empty()) worker_.mark_dirty(shared_from_this());
    return true;
}

void connection::wait_readable() {
    if (tls_ && tls_->has_buffered_input()) {
        asio::post(worker_.context(), [self = shared_from_this()] { self->on_readable({}); });
        return;
    }
    socket().async_wait(asio::ip::tcp::socket::wait_read,
                        [self = shared_from_this()](const error_code& ec) { self->on_readable(ec); });
}

void connection::on_readable(const error_code& wait_ec) {
    if (closed_ || closing_) return;
    if (wait_ec) {
        if (wait_ec != asio::error::operation_aborted) close_socket(wait_ec.message());
        return;
    }
    if (write_in_flight_ && protocol_.output().size() >= worker_.core().settings().max_output_buffer) {
        // The client is not taking what we write. Reading on would queue our answers to
        // what it sends (PUBACK, PINGRESP, ...) without bound; leave its bytes in the
        // kernel until the write completes, so TCP flow control holds it back.
        reads_paused_ = true;
        return;
    }
    if (worker_.core().downstream_congested()) {
        // Leave the bytes in the kernel: TCP flow control slows the client down until
        // the workers we route to have caught up.
        worker_.defer_read(shared_from_this(), std::chrono::microseconds(200));
        return;
    }
    const std::span<char> buffer = worker_.read_buffer();
    error_code ec;
    const std::size_t n = read_transport(buffer, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
        wait_readable();
        return;
    }
    if (ec == asio::error::eof && phase_ == phase::open) {
        // The client half-closed (or closed): the packets it sent before still get their
        // answers (CONNACK, PINGRESP, acknowledgements) before we close our side; the
        // session learns of the close then, and a Will is due as for any lost connection.
        closed_by_client_ = true;
        close();
        return;
    }
    if (ec) {
        close_socket(ec == asio::error::eof ? "connection closed by client"
                     : tls_                 ? "TLS: " + tls_->last_error()
                                            : ec.message());
        return;
    }
    if (!deliver_input(buffer.first(n))) return;
    if (protocol_.take_slow_down()) {
        // What this client sent goes to a subscriber with a backlog. Leave its next
        // bytes in the kernel for a while, longer each time in a row (up to 64 ms), so
        // TCP flow control slows it down. The delay is bounded, so a stuck subscriber
        // slows publishers but cannot stop them (its queue limit then applies).
        slow_down_delay_ = std::min(std::max(slow_down_delay_ * 2, std::chrono::microseconds(500)),
                                    std::chrono::microseconds(64'000));
        worker_.defer_read(shared_from_this(), slow_down_delay_);
        return;
    }
    slow_down_delay_ = {};
    if (n == buffer.size()) {
        // More is probably waiting; let the worker's other connections go first.
        asio::post(worker_.context(), [self = shared_from_this()] { self->on_readable({}); });
    } else {
        wait_readable();
    }
}

void connection::resume_reading() {
    if (!closed_ && !closing_ && phase_ == phase::open) on_readable({});
}

void connection::output_ready() {
    if (!closed_) worker_.mark_dirty(shared_from_this());
}

void connection::flush() {
    if (closed_ || write_in_flight_ || lingering_ || phase_ != phase::open) return;
    core::output_queue& out = protocol_.output();
    if (ws_ && closing_ && out.empty() && !ws_close_sent_) {
        // The MQTT side is done: close the WebSocket too (RFC 6455 5.5.1).
        ws::append_close_frame(ws_control_out_, ws::close_code::normal);
        ws_close_sent_ = true;
    }
    if (out.empty() && ws_control_out_.empty()) {
        if (closing_) begin_linger();
        return;
    }
    writing_.swap(out);
    gather_.clear();
    if (ws_) {
        // Pending control frames, then everything queued as one binary frame: control
        // frames may only go between whole frames, and ours are never fragmented.
        ws_prefix_.swap(ws_control_out_);
        ws_control_out_.clear();
        std::uint64_t data_bytes = 0;
        writing_.for_each_segment([&](std::string_view s) { data_bytes += s.size(); });
        if (data_bytes != 0) {
            char header[ws::max_server_header];
            ws_prefix_.append(header, ws::encode_header(ws::opcode::binary, data_bytes, header));
        }
        gather_.emplace_back(ws_prefix_.data(), ws_prefix_.size());
    }
    writing_.for_each_segment([this](std::string_view s) { gather_.emplace_back(s.data(), s.size()); });
    write_in_flight_ = true;
    auto done = [self = shared_from_this()](const error_code& ec, std::size_t) { self->on_written(ec); };
    if (tls_) {
        // One TLS record per 16 KiB of the whole sequence (asio::async_write would hand
        // the stream 16 buffers at a time, a record each).
        tls_->async_write_all(gather_, std::move(done));
    } else {
        asio::async_write(socket_, gather_, std::move(done));
    }
}

void connection::on_written(const error_code& ec) {
    write_in_flight_ = false;
    if (closed_) return;
    if (ec) {
        close_socket(ec == asio::error::operation_aborted ? "write cancelled" : "write failed: " + ec.message());
        return;
    }
    writing_.clear();
    ws_prefix_.clear();
    // Room again: let the session send what waited, then write it all at once.
    if (!closing_) protocol_.on_output_written();
    if (protocol_.output().empty()) {
        writing_.release_if_larger_than(4096);
        if (gather_.capacity() > 64) std::vector<asio::const_buffer>().swap(gather_);
    }
    flush();
    if (reads_paused_ && !closing_ && !closed_) {
        reads_paused_ = false;
        wait_readable();
    }
}

void connection::close() {
    if (closed_ || closing_) return;
    if (phase_ != phase::open) {
        // Still in a handshake: nothing of ours to flush.
        close_socket("closed during the handshake");
        return;
    }
    closing_ = true;
    close_deadline_ = std::chrono::steady_clock::now() + close_linger;
    flush();
}

void connection::shut_down() {
    if (phase_ != phase::open) {
        close_socket("broker shutting down");
        return;
    }
    protocol_.shut_down();
}

void connection::begin_linger() {
    // Send FIN after the last packet, then read and discard until the client closes too.
    // Closing with unread input would make the kernel send RST, and the client could
    // lose the DISCONNECT we just wrote.
    lingering_ = true;
    if (tls_) tls_->send_close_notify();  // best effort: the peer learns the TLS session ended cleanly
    error_code ec;
    socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    if (ec) {
        close_socket("closed");
        return;
    }
    socket().async_wait(asio::ip::tcp::socket::wait_read,
                        [self = shared_from_this()](const error_code& wait_ec) { self->drain_after_close(wait_ec); });
}

void connection::drain_after_close(const error_code& wait_ec) {
    if (closed_) return;
    if (wait_ec) {
        close_socket("closed");
        return;
    }
    const std::span<char> buffer = worker_.read_buffer();
    error_code ec;
    const std::size_t n = socket().read_some(asio::buffer(buffer.data(), buffer.size()), ec);
    if ((ec && ec != asio::error::would_block && ec != asio::error::try_again) || (!ec && n == 0)) {
        close_socket(closed_by_client_ ? "connection closed by client" : "closed");
        return;
    }
    socket().async_wait(asio::ip::tcp::socket::wait_read,
                        [self = shared_from_this()](const error_code& e) { self->drain_after_close(e); });
}

void connection::tick(std::chrono::steady_clock::time_point now) {
    if (closed_) return;
    if (closing_) {
        if (now >= close_deadline_) close_socket("close timed out");
        return;
    }
    if (phase_ != phase::open) {
        if (now >= handshake_deadline_) {
            log::info("closing ", protocol_.peer(), ": ", phase_ == phase::tls_handshake ? "TLS" : "WebSocket",
                      " handshake not done within the connect timeout");
            close_socket("handshake timed out");
        }
        return;
    }
    protocol_.tick();
}

void connection::migrate(unsigned worker_index, std::string replay) {
    // Nothing has been written yet (the CONNECT is not answered), so only the
    // descriptor, the TLS and WebSocket state and the unprocessed input move.
    closed_ = true;
    auto handoff = std::make_unique<connection_handoff>();
    handoff->slot = slot_;
    handoff->peer = protocol_.peer();
    handoff->replay = std::move(replay);
    handoff->ws = std::move(ws_);
    handoff->ws_control_out = std::move(ws_control_out_);
    handoff->certificate_identity = protocol_.certificate_identity();
    if (tls_) {
        handoff->tls = std::make_unique<tls_stream::detached>(tls_->release());
    } else {
        error_code ec;
        handoff->fd = socket_.release(ec);
        if (ec) {
            log::warn("cannot move connection to worker ", worker_index, ": ", ec.message());
            worker_.forget(this);
            return;
        }
    }
    // The slot's count moves with the connection: the new one decrements it.
    slot_->open.fetch_add(1, std::memory_order_relaxed);
    worker_.forget(this);
    worker& target = worker_.owner().worker_at(worker_index);
    asio::post(target.context(), [&target, h = std::shared_ptr<connection_handoff>(std::move(handoff))]() mutable {
        target.adopt(std::move(*h));
    });
}

void connection::close_socket(std::string_view why) {
    if (closed_) return;
    closed_ = true;
    error_code ec;
    socket().close(ec);
    http_.reset();
    protocol_.on_transport_closed(why);
    worker_.forget(this);
}

}  // namespace edgemq::net
