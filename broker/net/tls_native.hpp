// Private to tls_context.cpp and tls_stream.cpp: the mbedTLS objects behind
// tls_context, and helpers both need. Nothing else includes mbedTLS.
#pragma once

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_cache.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crt.h>

#include <cstdint>
#include <string>
#include <vector>

#include "broker/net/tls_context.hpp"

namespace edgemq::net {

struct tls_context::native {
    native();
    ~native();
    native(const native&) = delete;
    native& operator=(const native&) = delete;

    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_x509_crt own_cert;
    mbedtls_pk_context own_key;
    mbedtls_x509_crt ca_chain;
    mbedtls_ssl_config config;
    std::vector<int> ciphersuites;  // zero-terminated; the config points into it
    std::vector<mbedtls_ecp_group_id> curves;  // MBEDTLS_ECP_DP_NONE-terminated; likewise
    // Server only: session resumption, by ticket (RFC 5077) or by session id.
    mbedtls_ssl_ticket_context tickets;
    mbedtls_ssl_cache_context cache;
};

// mbedtls_strerror as a string ("SSL - ..." or "X509 - ... : ASN1 - ...").
std::string mbedtls_message(int code);

// What is wrong with a certificate, from mbedTLS verification flags, in the words an
// operator looks for ("certificate expired", "unknown CA ...").
std::string describe_verify_flags(std::uint32_t flags);

}  // namespace edgemq::net
