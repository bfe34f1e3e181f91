// make_test_certificates: a throwaway PKI for TLS tests, made with the openssl CLI in
// about 0.2 s (EC P-256 keys, SHA-256 signatures, no passphrases).
//
//   ca_cert              "O=edgemq test,CN=edgemq test CA": basicConstraints=critical,CA:TRUE
//   server_cert/key      CN=localhost, subjectAltName=DNS:localhost,IP:127.0.0.1, serverAuth
//   client_cert/key      CN=<client_cn>, subjectAltName=email:<client_email>, clientAuth
//   expired_cert/key     like the client, valid only in January 2020
//   other_ca_cert        a second, unrelated CA ("CN=edgemq other CA")
//   other_client_cert/key  a client certificate (same CN) signed by the other CA
//
// Every call makes new keys, so two calls give unrelated PKIs. Throws
// std::runtime_error with openssl's output when a step fails.
#pragma once

#include <filesystem>
#include <string>

namespace edgemq::test {

struct test_certificates {
    std::filesystem::path dir;
    std::filesystem::path ca_cert, ca_key;
    std::filesystem::path server_cert, server_key;
    std::filesystem::path client_cert, client_key;
    std::filesystem::path expired_cert, expired_key;
    std::filesystem::path other_ca_cert, other_ca_key;
    std::filesystem::path other_client_cert, other_client_key;
    std::string client_cn;     // the client certificates' CN
    std::string client_email;  // their subjectAltName e-mail: <client_cn, made safe>@clients.edgemq.test
    std::string client_subject;  // RFC 4514, as Mosquitto prints it: "CN=<client_cn>,O=edgemq test"
};

// Writes the files into `dir` (created if missing). `client_cn` must not be empty.
test_certificates make_test_certificates(const std::filesystem::path& dir,
                                         const std::string& client_cn = "edgemq-test-client");

}  // namespace edgemq::test
