#include "broker/net/tls_context.hpp"

#include <mbedtls/cipher.h>
#include <mbedtls/error.h>
#include <mbedtls/oid.h>
#include <mbedtls/ssl_ciphersuites.h>
#include <mbedtls/version.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "broker/net/tls_native.hpp"

#if MBEDTLS_VERSION_MAJOR != 2
#error "tls_context is written for mbedTLS 2.x (Debian 12 ships 2.28)"
#endif
#if !defined(MBEDTLS_THREADING_C)
#error "one tls_context serves all worker threads: mbedTLS must be built with MBEDTLS_THREADING_C"
#endif

namespace edgemq::net {

std::string mbedtls_message(int code) {
    char text[256];
    mbedtls_strerror(code, text, sizeof text);
    return text;
}

std::string describe_verify_flags(std::uint32_t flags) {
    struct known {
        std::uint32_t flags;
        const char* text;
    };
    static constexpr known table[] = {
        {MBEDTLS_X509_BADCERT_MISSING, "no certificate sent"},
        {MBEDTLS_X509_BADCERT_EXPIRED, "certificate expired"},
        {MBEDTLS_X509_BADCERT_FUTURE, "certificate not yet valid"},
        {MBEDTLS_X509_BADCERT_NOT_TRUSTED, "unknown CA (certificate not signed by a CA in ca_file)"},
        {MBEDTLS_X509_BADCERT_REVOKED, "certificate revoked"},
        {MBEDTLS_X509_BADCERT_CN_MISMATCH, "certificate does not match the server name"},
        {MBEDTLS_X509_BADCERT_KEY_USAGE | MBEDTLS_X509_BADCERT_EXT_KEY_USAGE | MBEDTLS_X509_BADCERT_NS_CERT_TYPE,
         "certificate not valid for this use (key usage or extended key usage)"},
        {MBEDTLS_X509_BADCERT_BAD_MD, "certificate signed with a hash that is not accepted (e.g. SHA-1)"},
        {MBEDTLS_X509_BADCERT_BAD_PK | MBEDTLS_X509_BADCERT_BAD_KEY,
         "certificate key or signature algorithm not accepted (e.g. RSA shorter than 2048 bits)"},
        {MBEDTLS_X509_BADCERT_SKIP_VERIFY, "certificate not verified"},
    };
    std::string out;
    std::uint32_t described = 0;
    for (const known& k : table) {
        if ((flags & k.flags) == 0) continue;
        if (!out.empty()) out += "; ";
        out += k.text;
        described |= k.flags;
    }
    if ((flags & ~described) != 0) {
        // Anything else in mbedTLS's own words (CRL problems, ...), minus its line breaks.
        char text[512];
        const int n = mbedtls_x509_crt_verify_info(text, sizeof text, "", flags & ~described);
        std::string rest(text, n > 0 ? static_cast<std::size_t>(n) : 0);
        for (char& c : rest)
            if (c == '\n') c = ';';
        while (!rest.empty() && (rest.back() == ';' || rest.back() == ' ')) rest.pop_back();
        if (!out.empty() && !rest.empty()) out += "; ";
        out += rest;
    }
    return out.empty() ? "certificate rejected" : out;
}

tls_context::native::native() {
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    mbedtls_x509_crt_init(&own_cert);
    mbedtls_pk_init(&own_key);
    mbedtls_x509_crt_init(&ca_chain);
    mbedtls_ssl_config_init(&config);
    mbedtls_ssl_ticket_init(&tickets);
    mbedtls_ssl_cache_init(&cache);
}

tls_context::native::~native() {
    mbedtls_ssl_config_free(&config);
    mbedtls_ssl_cache_free(&cache);
    mbedtls_ssl_ticket_free(&tickets);
    mbedtls_x509_crt_free(&ca_chain);
    mbedtls_pk_free(&own_key);
    mbedtls_x509_crt_free(&own_cert);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
}

namespace {

[[noreturn]] void fail(const char* setting, const std::string& file, const std::string& what) {
    throw std::runtime_error(std::string("tls ") + setting + " " + file + ": " + what);
}

// The whole file, with a terminating NUL counted in the size when it is PEM: mbedTLS
// tells PEM from DER by that NUL.
std::string read_file(const char* setting, const std::string& path) {
    errno = 0;
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(setting, path, std::string("cannot open: ") + (errno != 0 ? std::strerror(errno) : "unreadable"));
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) fail(setting, path, "read error");
    if (data.empty()) fail(setting, path, "file is empty");
    if (data.find("-----BEGIN") != std::string::npos) data.push_back('\0');
    return data;
}

void load_certificates(const char* setting, const std::string& path, mbedtls_x509_crt& chain) {
    const std::string data = read_file(setting, path);
    const int rc = mbedtls_x509_crt_parse(&chain, reinterpret_cast<const unsigned char*>(data.data()), data.size());
    if (rc < 0) fail(setting, path, "cannot parse certificate: " + mbedtls_message(rc));
    if (rc > 0) fail(setting, path, "cannot parse " + std::to_string(rc) + " of the certificates in the file");
    if (chain.version == 0) fail(setting, path, "no certificate in the file");
}

void load_key(const char* setting, const std::string& path, mbedtls_pk_context& key) {
    const std::string data = read_file(setting, path);
    const int rc =
        mbedtls_pk_parse_key(&key, reinterpret_cast<const unsigned char*>(data.data()), data.size(), nullptr, 0);
    if (rc == MBEDTLS_ERR_PK_PASSWORD_REQUIRED || rc == MBEDTLS_ERR_PK_PASSWORD_MISMATCH)
        fail(setting, path, "the private key is encrypted; a key without a passphrase is needed");
    if (rc != 0) fail(setting, path, "cannot parse private key: " + mbedtls_message(rc));
}

// The library's default list minus what is weak: only forward-secret (EC)DHE key
// exchanges; AEAD ciphers with full-length tags first (the default order already puts
// them first), then CBC with SHA-256/384 for old clients. Gone: static RSA key
// exchange, SHA-1 MACs, 8-byte CCM tags, PSK (never configured).
std::vector<int> choose_ciphersuites() {
    std::vector<int> chosen;
    for (const int* id = mbedtls_ssl_list_ciphersuites(); *id != 0; ++id) {
        const mbedtls_ssl_ciphersuite_t* suite = mbedtls_ssl_ciphersuite_from_id(*id);
        if (suite == nullptr || suite->max_minor_ver < MBEDTLS_SSL_MINOR_VERSION_3) continue;
        if (suite->key_exchange != MBEDTLS_KEY_EXCHANGE_ECDHE_ECDSA &&
            suite->key_exchange != MBEDTLS_KEY_EXCHANGE_ECDHE_RSA && suite->key_exchange != MBEDTLS_KEY_EXCHANGE_DHE_RSA)
            continue;
        if ((suite->flags & MBEDTLS_CIPHERSUITE_SHORT_TAG) != 0) continue;
        const mbedtls_cipher_info_t* cipher = mbedtls_cipher_info_from_type(suite->cipher);
        if (cipher == nullptr) continue;
        const bool aead =
            cipher->mode == MBEDTLS_MODE_GCM || cipher->mode == MBEDTLS_MODE_CCM || cipher->mode == MBEDTLS_MODE_CHACHAPOLY;
        const bool cbc_sha2 =
            cipher->mode == MBEDTLS_MODE_CBC && (suite->mac == MBEDTLS_MD_SHA256 || suite->mac == MBEDTLS_MD_SHA384);
        if (aead || cbc_sha2) chosen.push_back(*id);
    }
    chosen.push_back(0);
    return chosen;
}

// Key exchange groups, fastest first. mbedTLS picks the first of its own list that the
// client offers, and its default list starts with the largest curve: every handshake
// did its ECDHE on secp521r1, several times the work of X25519 or P-256 for no gain a
// 256-bit certificate key could use (full handshakes per second from one client with a
// P-256 certificate: 179 with secp521r1, 300 with P-256, 333 with X25519). The rest
// follow in the library's order, so that client certificates on any enabled curve
// still verify.
std::vector<mbedtls_ecp_group_id> choose_curves() {
    std::vector<mbedtls_ecp_group_id> chosen;
    for (const mbedtls_ecp_group_id first : {MBEDTLS_ECP_DP_CURVE25519, MBEDTLS_ECP_DP_SECP256R1}) {
        for (const mbedtls_ecp_group_id* id = mbedtls_ecp_grp_id_list(); *id != MBEDTLS_ECP_DP_NONE; ++id)
            if (*id == first) chosen.push_back(first);
    }
    for (const mbedtls_ecp_group_id* id = mbedtls_ecp_grp_id_list(); *id != MBEDTLS_ECP_DP_NONE; ++id)
        if (std::find(chosen.begin(), chosen.end(), *id) == chosen.end()) chosen.push_back(*id);
    chosen.push_back(MBEDTLS_ECP_DP_NONE);
    return chosen;
}

// A device that reconnects within the session lifetime skips the certificate
// exchange and the key agreement: an abbreviated handshake, one round trip and no
// public-key operation on either side, which matters on the small CPUs at both ends.
// Tickets first (the session travels encrypted with a key only this context holds, so
// the server keeps nothing per client); a small session-id cache for clients without
// ticket support. A resumed session keeps its verified client certificate, so identities
// (CN/SAN as user name) hold. The keys live and die with the context: a reload (SIGHUP)
// makes every client do a full handshake against the new certificates and CAs once.
void enable_resumption(tls_context::native& n) {
    if (const int rc = mbedtls_ssl_ticket_setup(&n.tickets, mbedtls_ctr_drbg_random, &n.drbg,
                                                MBEDTLS_CIPHER_AES_256_GCM, tls_session_lifetime_s);
        rc != 0)
        throw std::runtime_error("tls: cannot set up session tickets: " + mbedtls_message(rc));
    mbedtls_ssl_conf_session_tickets_cb(&n.config, mbedtls_ssl_ticket_write, mbedtls_ssl_ticket_parse, &n.tickets);
    mbedtls_ssl_cache_set_timeout(&n.cache, static_cast<int>(tls_session_lifetime_s));
    mbedtls_ssl_cache_set_max_entries(&n.cache, tls_session_cache_entries);
    mbedtls_ssl_conf_session_cache(&n.config, &n.cache, mbedtls_ssl_cache_get, mbedtls_ssl_cache_set);
}

}  // namespace

tls_context::tls_context(const tls_settings& settings) : settings_(settings), native_(std::make_unique<native>()) {
    native& n = *native_;
    const bool server = settings.role == tls_role::server;

    if (server) {
        if (settings.cert_file.empty()) throw std::runtime_error("tls cert_file: required for a TLS listener");
        if (settings.key_file.empty()) throw std::runtime_error("tls key_file: required for a TLS listener");
        if (settings.client_certificates != net::client_certificates::none && settings.ca_file.empty())
            throw std::runtime_error(
                "tls ca_file: required to verify client certificates (client certificates are optional or required)");
    } else {
        if (settings.cert_file.empty() != settings.key_file.empty())
            throw std::runtime_error("tls cert_file and key_file: a client certificate needs both");
        if (settings.verify_peer && settings.ca_file.empty())
            throw std::runtime_error("tls ca_file: required to verify the server (or turn verify_peer off)");
    }

    if (!settings.cert_file.empty()) {
        load_certificates("cert_file", settings.cert_file, n.own_cert);
        load_key("key_file", settings.key_file, n.own_key);
        if (const int rc = mbedtls_pk_check_pair(&n.own_cert.pk, &n.own_key); rc != 0)
            fail("key_file", settings.key_file,
                 "private key does not match the certificate in cert_file " + settings.cert_file + " (" +
                     mbedtls_message(rc) + ")");
        // A peer would refuse the certificate at every handshake; say so at start-up.
        const bool usable =
            server ? mbedtls_x509_crt_check_extended_key_usage(&n.own_cert, MBEDTLS_OID_SERVER_AUTH,
                                                               MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)) == 0
                   : mbedtls_x509_crt_check_extended_key_usage(&n.own_cert, MBEDTLS_OID_CLIENT_AUTH,
                                                               MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)) == 0;
        if (!usable)
            fail("cert_file", settings.cert_file,
                 server ? "the certificate's extendedKeyUsage does not allow serverAuth"
                        : "the certificate's extendedKeyUsage does not allow clientAuth");
    }
    const bool verify_peer = server ? settings.client_certificates != net::client_certificates::none
                                    : settings.verify_peer;
    if (!settings.ca_file.empty()) load_certificates("ca_file", settings.ca_file, n.ca_chain);

    static constexpr char personalization[] = "edgemq tls_context";
    if (const int rc = mbedtls_ctr_drbg_seed(&n.drbg, mbedtls_entropy_func, &n.entropy,
                                             reinterpret_cast<const unsigned char*>(personalization),
                                             sizeof personalization - 1);
        rc != 0)
        throw std::runtime_error("tls: cannot seed the random generator: " + mbedtls_message(rc));

    if (const int rc = mbedtls_ssl_config_defaults(&n.config, server ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
                                                   MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
        rc != 0)
        throw std::runtime_error("tls: cannot set up the configuration: " + mbedtls_message(rc));
    mbedtls_ssl_conf_rng(&n.config, mbedtls_ctr_drbg_random, &n.drbg);
    // mbedTLS 2.28 has no TLS 1.3; 1.0 and 1.1 are obsolete (RFC 8996).
    mbedtls_ssl_conf_min_version(&n.config, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_max_version(&n.config, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    n.ciphersuites = choose_ciphersuites();
    if (n.ciphersuites.size() == 1) throw std::runtime_error("tls: mbedTLS offers no acceptable cipher suite");
    mbedtls_ssl_conf_ciphersuites(&n.config, n.ciphersuites.data());
    n.curves = choose_curves();
    mbedtls_ssl_conf_curves(&n.config, n.curves.data());

    if (!settings.cert_file.empty()) {
        if (const int rc = mbedtls_ssl_conf_own_cert(&n.config, &n.own_cert, &n.own_key); rc != 0)
            fail("cert_file", settings.cert_file, "cannot use the certificate: " + mbedtls_message(rc));
    }
    if (!settings.ca_file.empty()) mbedtls_ssl_conf_ca_chain(&n.config, &n.ca_chain, nullptr);
    int authmode = MBEDTLS_SSL_VERIFY_NONE;
    if (server && settings.client_certificates == net::client_certificates::required)
        authmode = MBEDTLS_SSL_VERIFY_REQUIRED;
    // Optional: the handshake survives a bad certificate here; tls_stream then refuses
    // it itself, so that only "no certificate" passes.
    else if (server && settings.client_certificates == net::client_certificates::optional)
        authmode = MBEDTLS_SSL_VERIFY_OPTIONAL;
    else if (!server && verify_peer)
        authmode = MBEDTLS_SSL_VERIFY_REQUIRED;
    mbedtls_ssl_conf_authmode(&n.config, authmode);

    if (server) enable_resumption(n);
}

tls_context::~tls_context() = default;

}  // namespace edgemq::net
