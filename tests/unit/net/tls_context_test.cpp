// tls_context: what start-up says about bad TLS settings. Every refusal names the
// setting, the file and what is wrong, so that an operator can fix it from one line.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <stdlib.h>
#include <string>

#include "broker/net/tls_context.hpp"
#include "support/run_process.hpp"
#include "support/temp_dir.hpp"
#include "support/test_certs.hpp"

using namespace edgemq::net;
using namespace edgemq::test;
namespace fs = std::filesystem;

namespace {

temp_dir& dir() {
    static temp_dir d("edgemq-tls-context");
    return d;
}

const test_certificates& certs() {
    static const test_certificates c = make_test_certificates(dir().path() / "pki");
    return c;
}

tls_settings server_settings() {
    tls_settings s;
    s.role = tls_role::server;
    s.cert_file = certs().server_cert.string();
    s.key_file = certs().server_key.string();
    return s;
}

fs::path write_file(const std::string& name, const std::string& content) {
    const fs::path p = dir().path() / name;
    std::ofstream(p, std::ios::trunc) << content;
    return p;
}

// The message of the exception tls_context throws, or "" if it does not.
std::string refusal(const tls_settings& s) {
    try {
        tls_context context(s);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return {};
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

TEST_SUITE_BEGIN("tls");

TEST_CASE("tls_context accepts the test server certificate with and without client certificates") {
    auto s = server_settings();
    CHECK(refusal(s).empty());
    s.ca_file = certs().ca_cert.string();
    for (auto mode : {client_certificates::none, client_certificates::optional, client_certificates::required}) {
        s.client_certificates = mode;
        CHECK(refusal(s).empty());
    }
    const auto shared = tls_context::create(s);
    CHECK(shared->role() == tls_role::server);
    CHECK(shared->settings().cert_file == s.cert_file);
}

TEST_CASE("tls_context names a missing file") {
    auto s = server_settings();
    s.cert_file = (dir().path() / "no-such.pem").string();
    CHECK(refusal(s) == "tls cert_file " + s.cert_file + ": cannot open: No such file or directory");
    s = server_settings();
    s.key_file = (dir().path() / "no-such.key").string();
    CHECK(refusal(s) == "tls key_file " + s.key_file + ": cannot open: No such file or directory");
    s = server_settings();
    s.ca_file = (dir().path() / "no-such-ca.pem").string();
    s.client_certificates = client_certificates::required;
    CHECK(refusal(s) == "tls ca_file " + s.ca_file + ": cannot open: No such file or directory");
}

TEST_CASE("tls_context refuses garbage PEM with mbedTLS's reason") {
    auto s = server_settings();
    s.cert_file = write_file("garbage.pem", "-----BEGIN CERTIFICATE-----\nthis is not base64 !!!\n"
                                            "-----END CERTIFICATE-----\n")
                      .string();
    const std::string pem = refusal(s);
    CHECK_MESSAGE(starts_with(pem, "tls cert_file " + s.cert_file + ": cannot parse certificate: "), pem);
    CHECK(pem.find("PEM") != std::string::npos);

    s.cert_file = write_file("text.pem", "hello, I am not a certificate\n").string();
    const std::string text = refusal(s);
    CHECK_MESSAGE(starts_with(text, "tls cert_file " + s.cert_file + ": cannot parse certificate: "), text);

    s.cert_file = write_file("empty.pem", "").string();
    CHECK(refusal(s) == "tls cert_file " + s.cert_file + ": file is empty");

    s = server_settings();
    s.key_file = write_file("garbage.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").string();
    const std::string key = refusal(s);
    CHECK_MESSAGE(starts_with(key, "tls key_file " + s.key_file + ": cannot parse private key: "), key);
}

TEST_CASE("tls_context refuses a key that does not match the certificate") {
    auto s = server_settings();
    s.key_file = certs().client_key.string();
    const std::string why = refusal(s);
    CHECK_MESSAGE(starts_with(why, "tls key_file " + s.key_file +
                                       ": private key does not match the certificate in cert_file " + s.cert_file),
                  why);
}

TEST_CASE("tls_context refuses an encrypted key") {
    const fs::path encrypted = dir().path() / "encrypted.key";
    const auto r = run_process({"openssl", "pkey", "-in", certs().server_key.string(), "-aes256", "-passout",
                                "pass:secret", "-out", encrypted.string()},
                               std::chrono::seconds(10));
    REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    auto s = server_settings();
    s.key_file = encrypted.string();
    CHECK(refusal(s) == "tls key_file " + s.key_file +
                            ": the private key is encrypted; a key without a passphrase is needed");
}

TEST_CASE("tls_context needs a CA file to verify client certificates") {
    auto s = server_settings();
    s.client_certificates = client_certificates::optional;
    CHECK(starts_with(refusal(s), "tls ca_file: required to verify client certificates"));
    s.client_certificates = client_certificates::required;
    CHECK(starts_with(refusal(s), "tls ca_file: required to verify client certificates"));
    s.cert_file.clear();
    CHECK(refusal(s) == "tls cert_file: required for a TLS listener");
}

TEST_CASE("tls_context refuses a certificate made for the other role") {
    auto s = server_settings();
    s.cert_file = certs().client_cert.string();
    s.key_file = certs().client_key.string();
    CHECK(refusal(s) == "tls cert_file " + s.cert_file + ": the certificate's extendedKeyUsage does not allow serverAuth");

    tls_settings c;
    c.role = tls_role::client;
    c.ca_file = certs().ca_cert.string();
    c.cert_file = certs().server_cert.string();
    c.key_file = certs().server_key.string();
    CHECK(refusal(c) == "tls cert_file " + c.cert_file + ": the certificate's extendedKeyUsage does not allow clientAuth");
}

TEST_CASE("tls_context client settings") {
    tls_settings c;
    c.role = tls_role::client;
    CHECK(starts_with(refusal(c), "tls ca_file: required to verify the server"));
    c.verify_peer = false;
    CHECK(refusal(c).empty());
    c.verify_peer = true;
    c.ca_file = certs().ca_cert.string();
    c.server_name = "localhost";
    CHECK(refusal(c).empty());
    c.cert_file = certs().client_cert.string();
    CHECK(refusal(c) == "tls cert_file and key_file: a client certificate needs both");
    c.key_file = certs().client_key.string();
    CHECK(refusal(c).empty());
}

TEST_SUITE_END();
