#include "broker/net/tls_stream.hpp"

#include <mbedtls/asn1.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cassert>
#include <cerrno>
#include <cstring>

#include "broker/core/settings.hpp"
#include "broker/net/tls_native.hpp"

namespace edgemq::net {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

// Boost 1.74's error_category has a protected non-virtual destructor by design
// (categories are never deleted through it); -Wnon-virtual-dtor cannot know that.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class tls_error_category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "tls"; }
    std::string message(int value) const override { return mbedtls_message(-value); }
};
#pragma GCC diagnostic pop

// Record payloads are at most 16 KiB (RFC 5246 6.2.1).
constexpr std::size_t record_payload_limit = 16384;

const char* alert_name(int code) {
    switch (code) {
        case MBEDTLS_SSL_ALERT_MSG_UNEXPECTED_MESSAGE: return "unexpected_message";
        case MBEDTLS_SSL_ALERT_MSG_BAD_RECORD_MAC: return "bad_record_mac";
        case MBEDTLS_SSL_ALERT_MSG_RECORD_OVERFLOW: return "record_overflow";
        case MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE: return "handshake_failure";
        case MBEDTLS_SSL_ALERT_MSG_BAD_CERT: return "bad_certificate";
        case MBEDTLS_SSL_ALERT_MSG_UNSUPPORTED_CERT: return "unsupported_certificate";
        case MBEDTLS_SSL_ALERT_MSG_CERT_REVOKED: return "certificate_revoked";
        case MBEDTLS_SSL_ALERT_MSG_CERT_EXPIRED: return "certificate_expired";
        case MBEDTLS_SSL_ALERT_MSG_CERT_UNKNOWN: return "certificate_unknown";
        case MBEDTLS_SSL_ALERT_MSG_ILLEGAL_PARAMETER: return "illegal_parameter";
        case MBEDTLS_SSL_ALERT_MSG_UNKNOWN_CA: return "unknown_ca";
        case MBEDTLS_SSL_ALERT_MSG_ACCESS_DENIED: return "access_denied";
        case MBEDTLS_SSL_ALERT_MSG_DECODE_ERROR: return "decode_error";
        case MBEDTLS_SSL_ALERT_MSG_DECRYPT_ERROR: return "decrypt_error";
        case MBEDTLS_SSL_ALERT_MSG_PROTOCOL_VERSION: return "protocol_version";
        case MBEDTLS_SSL_ALERT_MSG_INSUFFICIENT_SECURITY: return "insufficient_security";
        case MBEDTLS_SSL_ALERT_MSG_INTERNAL_ERROR: return "internal_error";
        case MBEDTLS_SSL_ALERT_MSG_INAPROPRIATE_FALLBACK: return "inappropriate_fallback";
        case MBEDTLS_SSL_ALERT_MSG_USER_CANCELED: return "user_canceled";
        case MBEDTLS_SSL_ALERT_MSG_UNSUPPORTED_EXT: return "unsupported_extension";
        case MBEDTLS_SSL_ALERT_MSG_UNRECOGNIZED_NAME: return "unrecognized_name";
        case 116: return "certificate_required";
        default: return nullptr;
    }
}

// What the peer's alert probably means, for whoever reads the log.
const char* alert_hint(int code) {
    switch (code) {
        case MBEDTLS_SSL_ALERT_MSG_BAD_CERT:
        case MBEDTLS_SSL_ALERT_MSG_UNKNOWN_CA:
        case MBEDTLS_SSL_ALERT_MSG_CERT_UNKNOWN:
        case MBEDTLS_SSL_ALERT_MSG_CERT_EXPIRED:
        case MBEDTLS_SSL_ALERT_MSG_UNSUPPORTED_CERT: return " (the peer does not accept our certificate)";
        case MBEDTLS_SSL_ALERT_MSG_PROTOCOL_VERSION:
            return " (the peer wants a TLS version other than 1.2, the only one mbedTLS 2.28 speaks)";
        case MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE:
        case MBEDTLS_SSL_ALERT_MSG_INSUFFICIENT_SECURITY: return " (no cipher suite or curve in common?)";
        case 116: return " (the peer requires a client certificate)";
        default: return "";
    }
}

std::string hex_byte(unsigned value) {
    static constexpr char digits[] = "0123456789ABCDEF";
    return {digits[(value >> 4) & 0xf], digits[value & 0xf]};
}

// One attribute value the way OpenSSL prints it with XN_FLAG_RFC2253 (what Mosquitto's
// use_subject_as_username shows): RFC 4514 escapes, and bytes >= 0x80 and control
// characters as \XX.
std::string escape_rfc4514(const unsigned char* p, std::size_t n) {
    std::string out;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        const unsigned char c = p[i];
        if (c >= 0x80 || c < 0x20 || c == 0x7f) {
            out += '\\';
            out += hex_byte(c);
        } else if (std::strchr(",+\"\\<>;", c) != nullptr || (i == 0 && (c == '#' || c == ' ')) ||
                   (i + 1 == n && c == ' ')) {
            out += '\\';
            out += static_cast<char>(c);
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

std::string attribute_type(const mbedtls_asn1_buf& oid) {
    const char* short_name = nullptr;
    if (mbedtls_oid_get_attr_short_name(&oid, &short_name) == 0 && short_name != nullptr) return short_name;
    char dotted[128];
    const int n = mbedtls_oid_get_numeric_string(dotted, sizeof dotted, &oid);
    return n > 0 ? std::string(dotted, static_cast<std::size_t>(n)) : std::string("?");
}

// Unknown attribute types: the value's DER as #hex, as RFC 4514 2.4 asks.
std::string der_hex(const mbedtls_asn1_buf& value) {
    std::string out = "#" + hex_byte(static_cast<unsigned>(value.tag));
    if (value.len < 0x80) {
        out += hex_byte(static_cast<unsigned>(value.len));
    } else {
        unsigned char len[sizeof(std::size_t)];
        std::size_t count = 0;
        for (std::size_t v = value.len; v != 0; v >>= 8) len[count++] = static_cast<unsigned char>(v & 0xff);
        out += hex_byte(0x80 | static_cast<unsigned>(count));
        while (count != 0) out += hex_byte(len[--count]);
    }
    for (std::size_t i = 0; i < value.len; ++i) out += hex_byte(value.p[i]);
    return out;
}

// RFC 4514: RDNs from the most specific (last in the certificate) to the least,
// separated by ',', the attributes of a multi-valued RDN joined by '+'.
std::string rfc4514_name(const mbedtls_x509_name* name) {
    std::vector<std::string> rdns;
    std::string current;
    for (const mbedtls_x509_name* n = name; n != nullptr; n = n->next) {
        if (n->oid.p == nullptr) continue;
        if (!current.empty()) current += '+';
        const char* short_name = nullptr;
        const bool known = mbedtls_oid_get_attr_short_name(&n->oid, &short_name) == 0;
        current += attribute_type(n->oid);
        current += '=';
        current += known ? escape_rfc4514(n->val.p, n->val.len) : der_hex(n->val);
        if (n->next_merged == 0) {
            rdns.push_back(std::move(current));
            current.clear();
        }
    }
    if (!current.empty()) rdns.push_back(std::move(current));
    std::string out;
    for (auto it = rdns.rbegin(); it != rdns.rend(); ++it) {
        if (!out.empty()) out += ',';
        out += *it;
    }
    return out;
}

}  // namespace

const boost::system::error_category& tls_category() noexcept {
    static const tls_error_category category;
    return category;
}

// The mbedTLS session, the BIO's view of the socket, and what the operations remember
// between attempts. Lives on the heap so that the BIO context pointer stays valid
// while the stream moves between io_contexts.
struct tls_stream::state {
    explicit state(std::shared_ptr<const tls_context> ctx) : context(std::move(ctx)) { mbedtls_ssl_init(&ssl); }
    ~state() {
        mbedtls_ssl_free(&ssl);
        if (owns_fd && fd >= 0) ::close(fd);
    }
    state(const state&) = delete;
    state& operator=(const state&) = delete;

    void setup() {
        if (!context) {
            setup_error = "no TLS context";
            return;
        }
        int rc = mbedtls_ssl_setup(&ssl, &context->get_native().config);
        if (rc == 0 && context->role() == tls_role::client && !context->settings().server_name.empty())
            rc = mbedtls_ssl_set_hostname(&ssl, context->settings().server_name.c_str());
        if (rc != 0) {
            setup_error = "cannot set up the TLS session: " + mbedtls_message(rc);
            return;
        }
        mbedtls_ssl_set_bio(&ssl, this, &state::send, &state::recv, nullptr);
        ready = true;
    }

    bool server() const noexcept { return context && context->role() == tls_role::server; }

    // With optional client certificates mbedTLS lets a certificate that fails
    // verification through (so that a missing one passes). A client that sends one
    // means to be known by it: once its Certificate message is processed, refuse a bad
    // one with the matching fatal alert. Checked once per handshake.
    bool optional_certificate_refused() {
        if (certificate_checked || !server() ||
            context->settings().client_certificates != client_certificates::optional ||
            ssl.state <= MBEDTLS_SSL_CLIENT_CERTIFICATE || ssl.session_negotiate == nullptr)
            return false;
        certificate_checked = true;
        const std::uint32_t flags = ssl.session_negotiate->verify_result;
        if (ssl.session_negotiate->peer_cert == nullptr || flags == 0) return false;
        const unsigned char alert = (flags & MBEDTLS_X509_BADCERT_EXPIRED) != 0       ? MBEDTLS_SSL_ALERT_MSG_CERT_EXPIRED
                                    : (flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED) != 0 ? MBEDTLS_SSL_ALERT_MSG_UNKNOWN_CA
                                                                                      : MBEDTLS_SSL_ALERT_MSG_BAD_CERT;
        mbedtls_ssl_send_alert_message(&ssl, MBEDTLS_SSL_ALERT_LEVEL_FATAL, alert);  // best effort
        return true;
    }

    int descriptor() const noexcept { return socket != nullptr && socket->is_open() ? socket->native_handle() : -1; }

    // The BIO: straight on the descriptor, never blocking, never raising SIGPIPE.
    static int send(void* self, const unsigned char* data, std::size_t size) {
        auto& s = *static_cast<state*>(self);
        const int fd = s.descriptor();
        if (fd < 0) return MBEDTLS_ERR_NET_INVALID_CONTEXT;
        for (;;) {
            const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n >= 0) return static_cast<int>(n);
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return MBEDTLS_ERR_SSL_WANT_WRITE;
            s.last_errno = errno;
            return errno == EPIPE || errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET : MBEDTLS_ERR_NET_SEND_FAILED;
        }
    }
    static int recv(void* self, unsigned char* data, std::size_t size) {
        auto& s = *static_cast<state*>(self);
        const int fd = s.descriptor();
        if (fd < 0) return MBEDTLS_ERR_NET_INVALID_CONTEXT;
        for (;;) {
            const ssize_t n = ::recv(fd, data, size, MSG_DONTWAIT);
            if (n > 0 && s.first_byte < 0) s.first_byte = data[0];
            if (n >= 0) return static_cast<int>(n);
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return MBEDTLS_ERR_SSL_WANT_READ;
            s.last_errno = errno;
            return errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET : MBEDTLS_ERR_NET_RECV_FAILED;
        }
    }

    error_code to_error_code(int rc) const {
        switch (rc) {
            case 0:
            case MBEDTLS_ERR_SSL_CONN_EOF:
            case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY: return asio::error::eof;
            case MBEDTLS_ERR_NET_CONN_RESET:
            case MBEDTLS_ERR_NET_SEND_FAILED:
            case MBEDTLS_ERR_NET_RECV_FAILED:
                return {last_errno != 0 ? last_errno : ECONNRESET, boost::system::system_category()};
            case MBEDTLS_ERR_NET_INVALID_CONTEXT: return asio::error::bad_descriptor;
            default: return {-rc, tls_category()};
        }
    }

    // The alert the peer sent, if the last record was one.
    int received_alert() const noexcept {
        if (ssl.in_msg != nullptr && ssl.in_msgtype == MBEDTLS_SSL_MSG_ALERT && ssl.in_msglen >= 2) return ssl.in_msg[1];
        return -1;
    }

    std::string describe_alert() const {
        const int code = received_alert();
        const char* name = code >= 0 ? alert_name(code) : nullptr;
        std::string text = "the peer sent a fatal alert";
        if (name != nullptr) text += std::string(": ") + name + alert_hint(code);
        else if (code >= 0) text += " (" + std::to_string(code) + ")";
        return text;
    }

    std::string describe_io_failure(int rc) const {
        switch (rc) {
            case MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE: return describe_alert();
            case MBEDTLS_ERR_SSL_INVALID_MAC: return "bad record MAC (data corrupted or tampered with)";
            case MBEDTLS_ERR_SSL_INVALID_RECORD: return "invalid TLS record";
            case MBEDTLS_ERR_SSL_CONN_EOF: return "connection closed";
            case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY: return "connection closed (close_notify)";
            case MBEDTLS_ERR_NET_CONN_RESET:
            case MBEDTLS_ERR_NET_SEND_FAILED:
            case MBEDTLS_ERR_NET_RECV_FAILED: return std::strerror(last_errno != 0 ? last_errno : ECONNRESET);
            case MBEDTLS_ERR_NET_INVALID_CONTEXT: return "socket closed";
            default: return mbedtls_message(rc);
        }
    }

    std::string describe_handshake_failure(int rc) const {
        // Whatever mbedTLS says, bytes that are not a TLS record are the real story.
        if (first_byte >= 0 && first_byte != MBEDTLS_SSL_MSG_HANDSHAKE && first_byte != MBEDTLS_SSL_MSG_ALERT) {
            if (!server()) return "not TLS (the server does not speak TLS on this port?)";
            if (first_byte == 0x10) return "not TLS (plain MQTT sent to a TLS port?)";
            if ((first_byte >= 'A' && first_byte <= 'Z') || (first_byte >= 'a' && first_byte <= 'z'))
                return "not TLS (plain HTTP or text sent to a TLS port?)";
            if ((first_byte & 0x80) != 0) return "not TLS 1.2 (an SSLv2-style hello)";
            return "not TLS (first byte 0x" + hex_byte(static_cast<unsigned>(first_byte)) + ")";
        }
        const char* whose = server() ? "client certificate refused: " : "server certificate refused: ";
        switch (rc) {
            case MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE: return describe_alert();
            case MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE: return "no client certificate (this listener requires one)";
            case MBEDTLS_ERR_X509_CERT_VERIFY_FAILED: {
                const std::uint32_t flags = mbedtls_ssl_get_verify_result(&ssl);
                return std::string(whose) + describe_verify_flags(flags == 0xffffffffu ? 0 : flags);
            }
            case MBEDTLS_ERR_SSL_BAD_HS_CERTIFICATE:
                return std::string(whose) + "bad Certificate message (" + mbedtls_message(rc) + ")";
            case MBEDTLS_ERR_SSL_CONN_EOF:
                return first_byte < 0 ? "connection closed before the TLS handshake"
                                      : "connection closed during the TLS handshake";
            case MBEDTLS_ERR_SSL_BAD_HS_PROTOCOL_VERSION:
                return "the peer does not speak TLS 1.2 (the only version mbedTLS 2.28 offers)";
            case MBEDTLS_ERR_SSL_NO_CIPHER_CHOSEN:
            case MBEDTLS_ERR_SSL_NO_USABLE_CIPHERSUITE: return "no cipher suite in common";
            case MBEDTLS_ERR_SSL_BAD_HS_CLIENT_HELLO: return "malformed ClientHello (" + mbedtls_message(rc) + ")";
            case MBEDTLS_ERR_NET_CONN_RESET:
            case MBEDTLS_ERR_NET_SEND_FAILED:
            case MBEDTLS_ERR_NET_RECV_FAILED:
                return std::string("TLS handshake: ") + std::strerror(last_errno != 0 ? last_errno : ECONNRESET);
            default: return "TLS handshake failed: " + mbedtls_message(rc);
        }
    }

    std::shared_ptr<const tls_context> context;
    mbedtls_ssl_context ssl;
    bool ready = false;             // mbedtls_ssl_setup succeeded
    std::string setup_error;
    next_layer_type* socket = nullptr;  // the BIO's descriptor while attached to a stream
    int fd = -1;                    // while detached
    bool owns_fd = false;
    bool non_blocking = false;      // the socket's user flag, carried across release()
    int last_errno = 0;
    int first_byte = -1;            // first byte received: tells plain MQTT/HTTP from TLS
    bool handshake_done = false;
    bool certificate_checked = false;  // optional_certificate_refused ran
    error_code failed;              // handshake failed: every later operation reports it
    std::size_t pending_write_len = 0;  // a record mbedTLS has only partly sent
    const void* pending_write_data = nullptr;
    error_code write_broken;        // sticky write error
    error_code read_error;          // sticky eof or read error, reported after data
    bool close_notify_started = false;
    bool close_notify_done = false;
    std::string last_error;
};

tls_stream::detached::detached(std::unique_ptr<state> s) noexcept : state_(std::move(s)) {}
tls_stream::detached::detached(detached&&) noexcept = default;
tls_stream::detached& tls_stream::detached::operator=(detached&&) noexcept = default;
tls_stream::detached::~detached() = default;

tls_stream::tls_stream(next_layer_type socket, std::shared_ptr<const tls_context> context)
    : socket_(std::move(socket)), state_(std::make_unique<state>(std::move(context))) {
    state_->socket = &socket_;
    state_->setup();
}

tls_stream::tls_stream(asio::io_context& context, detached&& moved) : socket_(context), state_(std::move(moved.state_)) {
    if (!state_) {
        state_ = std::make_unique<state>(nullptr);
        state_->setup_error = "adopted an empty TLS stream";
    }
    state& s = *state_;
    if (s.fd >= 0) {
        sockaddr_storage address{};
        socklen_t length = sizeof address;
        const bool v6 = ::getsockname(s.fd, reinterpret_cast<sockaddr*>(&address), &length) == 0 &&
                        address.ss_family == AF_INET6;
        error_code ec;
        socket_.assign(v6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4(), s.fd, ec);
        if (ec) {
            s.last_error = "cannot adopt the socket: " + ec.message();
        } else {
            s.owns_fd = false;
            s.fd = -1;
            if (s.non_blocking) socket_.non_blocking(true, ec);
        }
    }
    s.socket = &socket_;
}

tls_stream::~tls_stream() = default;

tls_stream::detached tls_stream::release() noexcept {
    // An operation in flight would resume on this object after the state left it.
    assert(ops_in_flight_ == 0);
    std::unique_ptr<state> s = std::move(state_);
    if (s) {
        s->socket = nullptr;
        if (socket_.is_open()) {
            error_code ec;
            s->non_blocking = socket_.non_blocking();
            const int fd = socket_.release(ec);
            if (!ec) {
                s->fd = fd;
                s->owns_fd = true;
            }
        }
    }
    return detached(std::move(s));
}

const std::shared_ptr<const tls_context>& tls_stream::context() const noexcept {
    static const std::shared_ptr<const tls_context> none;
    return state_ ? state_->context : none;
}

tls_stream::want tls_stream::step_handshake(error_code& ec) {
    if (!state_) {
        ec = asio::error::bad_descriptor;
        return want::nothing;
    }
    state& s = *state_;
    if (s.failed) {
        ec = s.failed;
        return want::nothing;
    }
    if (!s.ready) {
        s.last_error = s.setup_error;
        ec = s.failed = asio::error::no_memory;
        return want::nothing;
    }
    if (s.handshake_done) return want::nothing;
    // mbedtls_ssl_handshake is this loop; stepping lets a bad optional client
    // certificate be refused before our Finished, so the client fails its handshake too.
    int rc = 0;
    while (s.ssl.state != MBEDTLS_SSL_HANDSHAKE_OVER) {
        rc = mbedtls_ssl_handshake_step(&s.ssl);
        if (rc != 0) break;
        if (s.optional_certificate_refused()) {
            s.last_error = "client certificate refused: " + describe_verify_flags(s.ssl.session_negotiate->verify_result);
            ec = s.failed = error_code(-MBEDTLS_ERR_X509_CERT_VERIFY_FAILED, tls_category());
            return want::nothing;
        }
    }
    if (rc == MBEDTLS_ERR_SSL_WANT_READ) return want::read;
    if (rc == MBEDTLS_ERR_SSL_WANT_WRITE) return want::write;
    if (rc != 0) {
        s.last_error = s.describe_handshake_failure(rc);
        ec = s.failed = s.to_error_code(rc);
        return want::nothing;
    }
    s.handshake_done = true;
    return want::nothing;
}

tls_stream::want tls_stream::step_read(void* data, std::size_t size, std::size_t& n, error_code& ec) {
    n = 0;
    if (!state_) {
        ec = asio::error::bad_descriptor;
        return want::nothing;
    }
    state& s = *state_;
    if (s.read_error) {
        ec = s.read_error;
        return want::nothing;
    }
    if (s.failed) {
        ec = s.failed;
        return want::nothing;
    }
    if (!s.handshake_done) {
        s.last_error = "read before the TLS handshake";
        ec = asio::error::not_connected;
        return want::nothing;
    }
    auto* out = static_cast<unsigned char*>(data);
    // One mbedtls_ssl_read returns at most one record: go on until the buffer is full
    // or the socket has nothing more (then a readiness wait is sure to be woken).
    while (n < size) {
        const int rc = mbedtls_ssl_read(&s.ssl, out + n, size - n);
        if (rc > 0) {
            n += static_cast<std::size_t>(rc);
            continue;
        }
        if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) {
            if (n != 0) return want::nothing;
            return rc == MBEDTLS_ERR_SSL_WANT_READ ? want::read : want::write;
        }
        s.read_error = s.to_error_code(rc);
        if (s.read_error != asio::error::eof) s.last_error = s.describe_io_failure(rc);
        if (n == 0) ec = s.read_error;
        return want::nothing;
    }
    return want::nothing;
}

tls_stream::want tls_stream::step_write(const void* data, std::size_t size, std::size_t& n, error_code& ec) {
    n = 0;
    if (!state_) {
        ec = asio::error::bad_descriptor;
        return want::nothing;
    }
    state& s = *state_;
    if (s.write_broken) {
        ec = s.write_broken;
        return want::nothing;
    }
    if (s.failed) {
        ec = s.failed;
        return want::nothing;
    }
    if (!s.handshake_done) {
        s.last_error = "write before the TLS handshake";
        ec = asio::error::not_connected;
        return want::nothing;
    }
    // mbedtls_ssl_write's contract: after WANT_WRITE, call again with the same length
    // until it succeeds; it then reports that length. (2.28 encrypted the data into its
    // record on the first call, so the bytes behind the pointer no longer matter; that
    // is what lets the gather buffer be shared per thread.)
    if (s.pending_write_len != 0) {
        data = s.pending_write_data;
        size = s.pending_write_len;
    } else {
        size = std::min(size, max_record_payload());
        if (size == 0) return want::nothing;
    }
    const int rc = mbedtls_ssl_write(&s.ssl, static_cast<const unsigned char*>(data), size);
    if (rc >= 0) {
        s.pending_write_len = 0;
        n = static_cast<std::size_t>(rc);
        return want::nothing;
    }
    if (rc == MBEDTLS_ERR_SSL_WANT_WRITE || rc == MBEDTLS_ERR_SSL_WANT_READ) {
        s.pending_write_len = size;
        s.pending_write_data = data;
        return rc == MBEDTLS_ERR_SSL_WANT_WRITE ? want::write : want::read;
    }
    s.pending_write_len = 0;
    s.last_error = s.describe_io_failure(rc);
    ec = s.write_broken = s.to_error_code(rc);
    return want::nothing;
}

bool tls_stream::write_pending() const noexcept { return state_ && state_->pending_write_len != 0; }

void tls_stream::wait_failed() noexcept {
    // The caller learns of the error and will not retry the same record; any later
    // write would otherwise send that record's bytes as if they were its own.
    if (state_ && state_->pending_write_len != 0 && !state_->write_broken) {
        state_->write_broken = asio::error::operation_aborted;
        state_->last_error = "write interrupted";
    }
}

std::size_t tls_stream::max_record_payload() const noexcept {
    if (!state_) return record_payload_limit;
    const int limit = mbedtls_ssl_get_max_out_record_payload(&state_->ssl);
    return limit > 0 ? std::min(static_cast<std::size_t>(limit), record_payload_limit) : record_payload_limit;
}

std::span<unsigned char> tls_stream::scratch() noexcept {
    thread_local std::array<unsigned char, record_payload_limit> buffer;
    return buffer;
}

tls_stream::want tls_stream::step_close_notify(error_code& ec) {
    if (!state_) return want::nothing;
    state& s = *state_;
    if (!s.handshake_done || s.failed || s.close_notify_done) return want::nothing;
    // A record half sent belongs to a write in flight (or a broken one): never cut into it.
    if (s.pending_write_len != 0) return want::nothing;
    s.close_notify_started = true;
    const int rc = mbedtls_ssl_close_notify(&s.ssl);
    if (rc == MBEDTLS_ERR_SSL_WANT_WRITE) return want::write;
    if (rc == MBEDTLS_ERR_SSL_WANT_READ) return want::read;
    s.close_notify_done = true;
    if (rc != 0) ec = s.to_error_code(rc);
    return want::nothing;
}

void tls_stream::send_close_notify() noexcept {
    if (!state_ || state_->close_notify_started) return;
    error_code ignored;
    step_close_notify(ignored);
}

tls_stream::want tls_stream::step_drain(error_code& ec) {
    if (!state_) return want::nothing;
    state& s = *state_;
    if (s.read_error || s.failed || !s.handshake_done) return want::nothing;
    unsigned char discard[4096];
    for (;;) {
        const int rc = mbedtls_ssl_read(&s.ssl, discard, sizeof discard);
        if (rc > 0) continue;
        if (rc == MBEDTLS_ERR_SSL_WANT_READ) return want::read;
        if (rc == MBEDTLS_ERR_SSL_WANT_WRITE) return want::write;
        s.read_error = s.to_error_code(rc);
        if (s.read_error != asio::error::eof) ec = s.read_error;
        return want::nothing;
    }
}

tls_stream::want tls_stream::teardown_step::operator()(tls_stream& s, std::size_t&, error_code& ec) {
    error_code ignored;
    if (stage_ == 0) {
        // A peer already gone makes close_notify fail: go on to close regardless.
        if (const want w = s.step_close_notify(ignored); w != want::nothing) return w;
        stage_ = 1;
        if (role_ == boost::beast::role_type::server) s.socket_.shutdown(next_layer_type::shutdown_send, ignored);
    }
    if (stage_ == 1) {
        if (const want w = s.step_drain(ec); w != want::nothing) return w;
        stage_ = 2;
    }
    if (role_ == boost::beast::role_type::client) s.socket_.shutdown(next_layer_type::shutdown_send, ignored);
    s.socket_.close(ignored);
    return want::nothing;
}

void teardown(boost::beast::role_type, tls_stream& stream, error_code& ec) {
    stream.send_close_notify();
    error_code ignored;
    stream.next_layer().shutdown(tls_stream::next_layer_type::shutdown_both, ignored);
    stream.next_layer().close(ec);
}

std::size_t tls_stream::read_some(std::span<char> out, error_code& ec) {
    ec = {};
    std::size_t n = 0;
    if (out.empty()) return 0;
    if (step_read(out.data(), out.size(), n, ec) != want::nothing) ec = asio::error::would_block;
    return n;
}

bool tls_stream::has_buffered_input() const noexcept {
    if (!state_) return false;
    const state& s = *state_;
    if (s.read_error) return true;
    if (!s.handshake_done || s.failed) return false;
    return mbedtls_ssl_get_bytes_avail(&s.ssl) != 0 || mbedtls_ssl_check_pending(&s.ssl) != 0;
}

bool tls_stream::handshake_done() const noexcept { return state_ && state_->handshake_done && !state_->failed; }

bool tls_stream::peer_certificate_verified() const noexcept {
    return handshake_done() && mbedtls_ssl_get_peer_cert(&state_->ssl) != nullptr &&
           mbedtls_ssl_get_verify_result(&state_->ssl) == 0;
}

std::optional<std::string> tls_stream::peer_identity(core::certificate_identity field) const {
    if (!peer_certificate_verified()) return std::nullopt;
    const mbedtls_x509_crt* cert = mbedtls_ssl_get_peer_cert(&state_->ssl);
    switch (field) {
        case core::certificate_identity::none: return std::nullopt;
        case core::certificate_identity::common_name:
            for (const mbedtls_x509_name* n = &cert->subject; n != nullptr; n = n->next)
                if (n->oid.p != nullptr && MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0)
                    return std::string(reinterpret_cast<const char*>(n->val.p), n->val.len);
            return std::nullopt;
        case core::certificate_identity::subject: {
            std::string subject = rfc4514_name(&cert->subject);
            if (subject.empty()) return std::nullopt;
            return subject;
        }
        case core::certificate_identity::subject_alt_name:
            for (const mbedtls_x509_sequence* san = &cert->subject_alt_names; san != nullptr; san = san->next) {
                if (san->buf.p == nullptr || (san->buf.tag & MBEDTLS_ASN1_CONSTRUCTED) != 0) continue;
                const int type = san->buf.tag & MBEDTLS_ASN1_TAG_VALUE_MASK;
                if (type == MBEDTLS_X509_SAN_RFC822_NAME || type == MBEDTLS_X509_SAN_DNS_NAME ||
                    type == MBEDTLS_X509_SAN_UNIFORM_RESOURCE_IDENTIFIER)
                    return std::string(reinterpret_cast<const char*>(san->buf.p), san->buf.len);
            }
            return std::nullopt;
    }
    return std::nullopt;
}

std::string tls_stream::last_error() const { return state_ ? state_->last_error : std::string("stream released"); }

}  // namespace edgemq::net
