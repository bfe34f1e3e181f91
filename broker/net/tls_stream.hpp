// TLS over a connected TCP socket, through mbedTLS, as an Asio stream: it meets
// AsyncReadStream and AsyncWriteStream, so boost::asio::async_read/async_write, Beast's
// http::async_read/async_write and websocket::stream<tls_stream&> work on it.
//
// mbedTLS reads and writes the socket's descriptor itself (::recv/::send with
// MSG_DONTWAIT, no copies through memory buffers); an operation that would block waits
// with socket.async_wait and tries again. The socket's own non-blocking flag is left as
// the caller set it.
//
// Threads: like a socket, one stream is used by one thread at a time (its worker). At
// most one read-side operation (async_read_some, read_some, async_handshake) and one
// write-side operation (async_write_some, async_write_all, async_shutdown) may be
// outstanding at once, as with Asio's ssl::stream. Handlers are never invoked from
// inside the initiating function.
//
// Errors: operations report asio::error::eof when the peer ended the session (a
// close_notify or a TCP FIN), system errors (connection_reset, ...) as such, and TLS
// failures in tls_category() (the value is the negated mbedTLS code). last_error() then
// holds one line for the log ("certificate expired", "unknown CA ...", "not TLS (plain
// MQTT sent to a TLS port?)").
//
// Memory: mbedTLS 2.28 allocates its input and output record buffers (about 2 x 16.7 KB)
// when the stream is constructed; the gather buffer of async_write_some is one per
// thread, not per stream.
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/role.hpp>
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <string>

namespace edgemq::core {
// broker/core/settings.hpp: which part of a certificate names the client.
enum class certificate_identity : std::uint8_t;
}  // namespace edgemq::core

namespace edgemq::net {

class tls_context;

// TLS errors; value() is the negated mbedTLS error code, message() mbedTLS's text.
const boost::system::error_category& tls_category() noexcept;

class tls_stream {
    struct state;  // the mbedTLS session and what travels with it (tls_stream.cpp)

public:
    using next_layer_type = boost::asio::ip::tcp::socket;
    using lowest_layer_type = next_layer_type::lowest_layer_type;
    using executor_type = next_layer_type::executor_type;

    // The TLS session and the socket's descriptor, between release() on one thread and
    // the adopting constructor on another. Destroying it closes the descriptor.
    class detached {
    public:
        detached(detached&&) noexcept;
        detached& operator=(detached&&) noexcept;
        ~detached();

    private:
        friend class tls_stream;
        explicit detached(std::unique_ptr<state> s) noexcept;
        std::unique_ptr<state> state_;
    };

    // Takes over a connected socket; the handshake is async_handshake. Does not throw
    // for TLS set-up problems (out of memory in mbedTLS): the handshake then fails with
    // last_error() saying why.
    tls_stream(next_layer_type socket, std::shared_ptr<const tls_context> context);
    // Continues a stream released on another io_context (see release()) on `context`;
    // call only on the thread that runs `context`.
    tls_stream(boost::asio::io_context& context, detached&& moved);
    ~tls_stream();
    tls_stream(const tls_stream&) = delete;
    tls_stream& operator=(const tls_stream&) = delete;

    executor_type get_executor() noexcept { return socket_.get_executor(); }
    next_layer_type& next_layer() noexcept { return socket_; }
    const next_layer_type& next_layer() const noexcept { return socket_; }
    lowest_layer_type& lowest_layer() noexcept { return socket_.lowest_layer(); }
    const std::shared_ptr<const tls_context>& context() const noexcept;

    // Server or client handshake, as the context says: void(error_code). On a server with
    // client_certificates::optional, a certificate the client sends must verify, or the
    // handshake fails (after a fatal alert to the client).
    template <class CompletionToken>
    auto async_handshake(CompletionToken&& token);

    // Decrypted bytes into the first non-empty buffer: void(error_code, std::size_t). It
    // fills as much of it as arrived; completes at once with 0 for an empty buffer.
    template <class MutableBufferSequence, class CompletionToken>
    auto async_read_some(const MutableBufferSequence& buffers, CompletionToken&& token);

    // Encrypts and sends a prefix of `buffers`: void(error_code, std::size_t). Small
    // buffers are gathered into full records (up to 16 KiB) through a per-thread scratch
    // buffer, but boost::asio::async_write hands over at most 16 buffers per call: for a
    // long sequence of small buffers (a burst of MQTT packets) async_write_all makes far
    // fewer records.
    template <class ConstBufferSequence, class CompletionToken>
    auto async_write_some(const ConstBufferSequence& buffers, CompletionToken&& token);

    // Writes all of `buffers` (like boost::asio::async_write), gathering across the whole
    // sequence so that n bytes of small buffers take ceil(n / 16 KiB) records:
    // void(error_code, std::size_t). The buffers must stay valid until completion.
    template <class ConstBufferSequence, class CompletionToken>
    auto async_write_all(const ConstBufferSequence& buffers, CompletionToken&& token);

    // Sends close_notify (waiting for the socket to take it), without waiting for the
    // peer's; leaves the TCP socket open: void(error_code). Best effort: completes
    // without error when there is no session to close, or a write is still in flight.
    template <class CompletionToken>
    auto async_shutdown(CompletionToken&& token);

    // Non-blocking close_notify for a caller about to shut the socket down: one attempt,
    // errors ignored. Not while a write is in flight (then it does nothing).
    void send_close_notify() noexcept;

    // For a readiness loop that waits with next_layer().async_wait itself: decrypts as
    // much as fits into `out` without blocking. Returns the byte count with ec clear;
    // or 0 with ec = would_block when nothing is available; eof when the peer closed
    // (close_notify or FIN); another error for a broken record or a reset (last_error()
    // says what). Bytes read before an error are returned first, the error next call.
    // Returning fewer bytes than out.size() means the socket had nothing more: wait for
    // readability (unless has_buffered_input()). When `out` was filled, more may be
    // waiting in the socket too: read again before waiting.
    std::size_t read_some(std::span<char> out, boost::system::error_code& ec);
    // mbedTLS holds decrypted input (or a pending eof/error) that read_some would return
    // without touching the socket: do not wait for the socket before reading.
    bool has_buffered_input() const noexcept;

    bool handshake_done() const noexcept;
    // The peer sent a certificate and it verified against the context's ca_file.
    bool peer_certificate_verified() const noexcept;
    // From a verified peer certificate: the subject's first CN, the whole subject as an
    // RFC 4514 string like Mosquitto's use_subject_as_username ("CN=dev,O=Acme,C=NL",
    // most specific first, bytes >= 0x80 escaped as \XX) or the first subjectAltName that
    // is a DNS name, an e-mail address or a URI. Empty without a verified certificate,
    // for `none`, or when the certificate has no such field.
    std::optional<std::string> peer_identity(core::certificate_identity field) const;
    // Why the last operation failed, for one log line; empty if nothing failed.
    std::string last_error() const;

    // Moving to another worker: with no operation of this stream outstanding (a wait
    // of the caller's own on next_layer() is cancelled with operation_aborted), takes
    // the descriptor out of the socket (which is left closed) and the TLS session with
    // it, decrypted input mbedTLS holds included; this stream is then unusable. The
    // socket's non-blocking flag travels with it. The TLS session is never used by two
    // threads at once as long as the adopting side starts after release() returned.
    detached release() noexcept;

private:
    enum class want : std::uint8_t { nothing, read, write };
    template <class Step, bool WithSize>
    class op;
    template <class Buffers>
    class write_step;
    class teardown_step;
    template <class Handler>
    friend void async_teardown(boost::beast::role_type, tls_stream&, Handler&&);

    // One attempt each; `want` says what to wait for before trying again.
    want step_handshake(boost::system::error_code& ec);
    want step_read(void* data, std::size_t size, std::size_t& n, boost::system::error_code& ec);
    // One record from data (at most max_record_payload() bytes), or, while a record is
    // pending (write_pending()), finishes that one whatever the arguments.
    want step_write(const void* data, std::size_t size, std::size_t& n, boost::system::error_code& ec);
    want step_close_notify(boost::system::error_code& ec);
    // Reads and discards until the peer's close_notify or EOF.
    want step_drain(boost::system::error_code& ec);
    bool write_pending() const noexcept;
    // A wait ended in an error: a record left half-sent can never be finished.
    void wait_failed() noexcept;
    std::size_t max_record_payload() const noexcept;
    // The calling thread's gather buffer: its contents are needed only during one
    // step_write call (mbedTLS copies the data into its record at once).
    static std::span<unsigned char> scratch() noexcept;

    template <class Self>
    void wait(Self& self, want w) {
        socket_.async_wait(w == want::read ? next_layer_type::wait_read : next_layer_type::wait_write,
                           std::move(self));
    }

    next_layer_type socket_;
    std::unique_ptr<state> state_;
    std::uint8_t ops_in_flight_ = 0;  // for release()'s precondition
};

// Beast's websocket::stream<tls_stream&> closes through these (found by ADL). Both send
// close_notify; async_teardown then, like Beast's TCP teardown, shuts down sending
// (server first, client after), reads until the peer's close_notify or EOF and closes
// the socket. teardown is non-blocking: close_notify if the socket takes it, then close.
void teardown(boost::beast::role_type role, tls_stream& stream, boost::system::error_code& ec);
template <class Handler>
void async_teardown(boost::beast::role_type role, tls_stream& stream, Handler&& handler);

// ---------------------------------------------------------------------------------
// Implementation of the templates.

// Runs Step until it needs nothing more, waiting for readiness in between; completes
// through a post when nothing had to be waited for (never inside the initiation).
template <class Step, bool WithSize>
class tls_stream::op {
public:
    op(tls_stream& stream, Step step) : stream_(&stream), step_(std::move(step)) { ++stream.ops_in_flight_; }

    template <class Self>
    void operator()(Self& self, boost::system::error_code wait_ec = {}) {
        if (phase_ == phase::posted) return finish(self);
        const bool initiating = phase_ == phase::initial;
        phase_ = phase::running;
        if (wait_ec) {
            // The socket was closed or the wait cancelled under us.
            stream_->wait_failed();
            ec_ = wait_ec;
            return finish(self);
        }
        const want w = step_(*stream_, n_, ec_);
        if (w != want::nothing) return stream_->wait(self, w);
        if (initiating) {
            phase_ = phase::posted;
            auto executor = stream_->get_executor();
            boost::asio::post(executor, std::move(self));
            return;
        }
        finish(self);
    }

private:
    enum class phase : std::uint8_t { initial, running, posted };

    template <class Self>
    void finish(Self& self) {
        --stream_->ops_in_flight_;
        if constexpr (WithSize) {
            self.complete(ec_, n_);
        } else {
            self.complete(ec_);
        }
    }

    tls_stream* stream_;
    Step step_;
    boost::system::error_code ec_;
    std::size_t n_ = 0;
    phase phase_ = phase::initial;
};

// Walks a buffer sequence record by record: a buffer of at least a record's payload is
// encrypted in place, smaller ones are gathered (with what follows) into one record.
template <class Buffers>
class tls_stream::write_step {
public:
    write_step(const Buffers& buffers, bool all) : buffers_(buffers), all_(all) {}

    want operator()(tls_stream& s, std::size_t& n, boost::system::error_code& ec) {
        for (;;) {
            const void* data = nullptr;
            std::size_t size = 0;
            if (!s.write_pending()) {
                skip_empty();
                const bool more = current() != end();
                // write_some: as much as goes without waiting, but after a wait only
                // the record that waited; bounded so one stream cannot hog its thread.
                if (!more || (!all_ && (waited_ || records_ >= 64) && written_ != 0)) {
                    n = written_;
                    return want::nothing;
                }
                const std::size_t limit = s.max_record_payload();
                const boost::asio::const_buffer b = *current() + offset_;
                if (b.size() >= limit || !more_after_current()) {
                    data = b.data();
                    size = std::min(b.size(), limit);
                } else {
                    const std::span<unsigned char> out = s.scratch().first(limit);
                    size = gather(out);
                    data = out.data();
                }
            }
            std::size_t k = 0;
            const want w = s.step_write(data, size, k, ec);
            if (w != want::nothing) {
                waited_ = true;
                return w;
            }
            if (ec) {
                n = written_;
                return want::nothing;
            }
            written_ += k;
            ++records_;
            advance(k);
        }
    }

private:
    using iterator = decltype(boost::asio::buffer_sequence_begin(std::declval<const Buffers&>()));

    iterator current() const { return std::next(boost::asio::buffer_sequence_begin(buffers_), index_); }
    iterator end() const { return boost::asio::buffer_sequence_end(buffers_); }

    void skip_empty() {
        for (auto it = current(); it != end() && boost::asio::const_buffer(*it).size() <= offset_; ++it) {
            ++index_;
            offset_ = 0;
        }
    }
    bool more_after_current() const {
        for (auto it = std::next(current()); it != end(); ++it)
            if (boost::asio::const_buffer(*it).size() != 0) return true;
        return false;
    }
    // Copies from the current position without consuming (advance does, once written).
    std::size_t gather(std::span<unsigned char> out) const {
        std::size_t copied = 0;
        std::size_t skip = offset_;
        for (auto it = current(); it != end() && copied < out.size(); ++it) {
            const boost::asio::const_buffer b = boost::asio::const_buffer(*it) + skip;
            skip = 0;
            copied += boost::asio::buffer_copy(boost::asio::buffer(out.data() + copied, out.size() - copied), b);
        }
        return copied;
    }
    void advance(std::size_t k) {
        while (k != 0) {
            const std::size_t left = boost::asio::const_buffer(*current()).size() - offset_;
            if (k < left) {
                offset_ += k;
                return;
            }
            k -= left;
            ++index_;
            offset_ = 0;
        }
    }

    Buffers buffers_;
    bool all_;
    bool waited_ = false;
    std::size_t index_ = 0;   // position: buffer index and offset within it
    std::size_t offset_ = 0;
    std::size_t written_ = 0;
    unsigned records_ = 0;
};

template <class CompletionToken>
auto tls_stream::async_handshake(CompletionToken&& token) {
    auto step = [](tls_stream& s, std::size_t&, boost::system::error_code& ec) { return s.step_handshake(ec); };
    return boost::asio::async_compose<CompletionToken, void(boost::system::error_code)>(
        op<decltype(step), false>(*this, step), token, socket_);
}

template <class MutableBufferSequence, class CompletionToken>
auto tls_stream::async_read_some(const MutableBufferSequence& buffers, CompletionToken&& token) {
    boost::asio::mutable_buffer first;
    for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers); ++it) {
        first = boost::asio::mutable_buffer(*it);
        if (first.size() != 0) break;
    }
    auto step = [first](tls_stream& s, std::size_t& n, boost::system::error_code& ec) {
        if (first.size() == 0) return want::nothing;
        return s.step_read(first.data(), first.size(), n, ec);
    };
    return boost::asio::async_compose<CompletionToken, void(boost::system::error_code, std::size_t)>(
        op<decltype(step), true>(*this, step), token, socket_);
}

template <class ConstBufferSequence, class CompletionToken>
auto tls_stream::async_write_some(const ConstBufferSequence& buffers, CompletionToken&& token) {
    return boost::asio::async_compose<CompletionToken, void(boost::system::error_code, std::size_t)>(
        op<write_step<ConstBufferSequence>, true>(*this, write_step<ConstBufferSequence>(buffers, false)),
        token, socket_);
}

template <class ConstBufferSequence, class CompletionToken>
auto tls_stream::async_write_all(const ConstBufferSequence& buffers, CompletionToken&& token) {
    return boost::asio::async_compose<CompletionToken, void(boost::system::error_code, std::size_t)>(
        op<write_step<ConstBufferSequence>, true>(*this, write_step<ConstBufferSequence>(buffers, true)),
        token, socket_);
}

template <class CompletionToken>
auto tls_stream::async_shutdown(CompletionToken&& token) {
    auto step = [](tls_stream& s, std::size_t&, boost::system::error_code& ec) { return s.step_close_notify(ec); };
    return boost::asio::async_compose<CompletionToken, void(boost::system::error_code)>(
        op<decltype(step), false>(*this, step), token, socket_);
}

// close_notify, shutdown(send) for a server, drain, shutdown(send) for a client, close.
class tls_stream::teardown_step {
public:
    explicit teardown_step(boost::beast::role_type role) : role_(role) {}
    want operator()(tls_stream& s, std::size_t& n, boost::system::error_code& ec);

private:
    boost::beast::role_type role_;
    std::uint8_t stage_ = 0;
};

template <class Handler>
void async_teardown(boost::beast::role_type role, tls_stream& stream, Handler&& handler) {
    boost::asio::async_compose<Handler, void(boost::system::error_code)>(
        tls_stream::op<tls_stream::teardown_step, false>(stream, tls_stream::teardown_step(role)),
        handler, stream.next_layer());
}

}  // namespace edgemq::net
