#include "support/test_certs.hpp"

#include <chrono>
#include <fstream>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "support/run_process.hpp"

namespace edgemq::test {

namespace fs = std::filesystem;

namespace {

void openssl(const fs::path& dir, std::vector<std::string> args) {
    args.insert(args.begin(), "openssl");
    const process_result r = run_process(args, std::chrono::seconds(30));
    if (r.exit_code != 0) {
        std::string command;
        for (const auto& a : args) command += (command.empty() ? "" : " ") + a;
        throw std::runtime_error("make_test_certificates in " + dir.string() + ": '" + command + "' failed (exit " +
                                 std::to_string(r.exit_code) + (r.timed_out ? ", timed out" : "") + "): " + r.output);
    }
}

// For -subj: '/', '+', '=' and '\' are special there.
std::string subj_escape(const std::string& value) {
    std::string out;
    for (char c : value) {
        if (c == '/' || c == '+' || c == '=' || c == '\\') out += '\\';
        out += c;
    }
    return out;
}

// RFC 4514 escaping of an ASCII value (what the TLS layer and Mosquitto print).
std::string rfc4514_escape(const std::string& value) {
    std::string out;
    for (std::size_t i = 0; i < value.size(); ++i) {
        const char c = value[i];
        if (std::string_view(",+\"\\<>;").find(c) != std::string_view::npos || (i == 0 && (c == '#' || c == ' ')) ||
            (i + 1 == value.size() && c == ' '))
            out += '\\';
        out += c;
    }
    return out;
}

std::string email_local_part(const std::string& cn) {
    std::string out;
    for (char c : cn) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                        c == '-' || c == '_';
        out += ok ? c : '-';
    }
    return out;
}

const std::vector<std::string> new_key = {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"};

void make_ca(const fs::path& dir, const fs::path& cnf, const std::string& subject, const fs::path& cert,
             const fs::path& key) {
    std::vector<std::string> args = {"req", "-x509", "-new", "-config", cnf.string(), "-extensions", "v3_ca"};
    args.insert(args.end(), new_key.begin(), new_key.end());
    args.insert(args.end(), {"-keyout", key.string(), "-out", cert.string(), "-days", "3650", "-set_serial", "1",
                             "-subj", subject});
    openssl(dir, args);
}

void make_request(const fs::path& dir, const fs::path& cnf, const std::string& subject, const fs::path& csr,
                  const fs::path& key) {
    std::vector<std::string> args = {"req", "-new", "-config", cnf.string()};
    args.insert(args.end(), new_key.begin(), new_key.end());
    args.insert(args.end(), {"-keyout", key.string(), "-out", csr.string(), "-subj", subject});
    openssl(dir, args);
}

void sign(const fs::path& dir, const fs::path& cnf, const fs::path& csr, const fs::path& ca_cert, const fs::path& ca_key,
          const std::string& serial, const std::string& extensions, const fs::path& cert) {
    openssl(dir, {"x509", "-req", "-in", csr.string(), "-CA", ca_cert.string(), "-CAkey", ca_key.string(), "-set_serial",
                  serial, "-days", "825", "-sha256", "-extfile", cnf.string(), "-extensions", extensions, "-out",
                  cert.string()});
}

}  // namespace

test_certificates make_test_certificates(const fs::path& dir, const std::string& client_cn) {
    if (client_cn.empty()) throw std::invalid_argument("make_test_certificates: empty client CN");
    fs::create_directories(dir);
    test_certificates c;
    c.dir = fs::absolute(dir);
    c.client_cn = client_cn;
    c.client_email = email_local_part(client_cn) + "@clients.edgemq.test";
    c.client_subject = "CN=" + rfc4514_escape(client_cn) + ",O=edgemq test";
    const fs::path d = c.dir;
    c.ca_cert = d / "ca.crt";
    c.ca_key = d / "ca.key";
    c.server_cert = d / "server.crt";
    c.server_key = d / "server.key";
    c.client_cert = d / "client.crt";
    c.client_key = d / "client.key";
    c.expired_cert = d / "expired.crt";
    c.expired_key = d / "expired.key";
    c.other_ca_cert = d / "other-ca.crt";
    c.other_ca_key = d / "other-ca.key";
    c.other_client_cert = d / "other-client.crt";
    c.other_client_key = d / "other-client.key";

    // One configuration for every step; `openssl ca` (the only way to back-date a
    // certificate with OpenSSL 3.0) needs absolute paths for its database.
    const fs::path cnf = d / "openssl.cnf";
    const fs::path ca_db = d / "ca-db";
    fs::create_directories(ca_db);
    std::ofstream(ca_db / "index.txt", std::ios::trunc).flush();
    std::ofstream(ca_db / "serial", std::ios::trunc) << "1000\n";
    {
        std::ofstream out(cnf, std::ios::trunc);
        out << "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = unused\n"
            << "[v3_ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n"
            << "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n"
            << "[server]\nbasicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\n"
            << "extendedKeyUsage = serverAuth\nsubjectAltName = DNS:localhost,IP:127.0.0.1\n"
            << "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n"
            << "[client]\nbasicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\n"
            << "extendedKeyUsage = clientAuth\nsubjectAltName = email:" << c.client_email << "\n"
            << "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n"
            << "[ca]\ndefault_ca = test_ca\n"
            << "[test_ca]\ndatabase = " << (ca_db / "index.txt").string() << "\nnew_certs_dir = " << ca_db.string()
            << "\nserial = " << (ca_db / "serial").string()
            << "\ndefault_md = sha256\npolicy = any\nunique_subject = no\nemail_in_dn = no\npreserve = yes\n"
            << "[any]\ncommonName = supplied\norganizationName = optional\n";
        if (!out) throw std::runtime_error("make_test_certificates: cannot write " + cnf.string());
    }
    const std::string client_subject = "/O=edgemq test/CN=" + subj_escape(client_cn);

    make_ca(d, cnf, "/O=edgemq test/CN=edgemq test CA", c.ca_cert, c.ca_key);
    make_ca(d, cnf, "/O=edgemq test/CN=edgemq other CA", c.other_ca_cert, c.other_ca_key);

    make_request(d, cnf, "/O=edgemq test/CN=localhost", d / "server.csr", c.server_key);
    sign(d, cnf, d / "server.csr", c.ca_cert, c.ca_key, "2", "server", c.server_cert);

    make_request(d, cnf, client_subject, d / "client.csr", c.client_key);
    sign(d, cnf, d / "client.csr", c.ca_cert, c.ca_key, "3", "client", c.client_cert);

    make_request(d, cnf, client_subject, d / "other-client.csr", c.other_client_key);
    sign(d, cnf, d / "other-client.csr", c.other_ca_cert, c.other_ca_key, "2", "client", c.other_client_cert);

    make_request(d, cnf, client_subject, d / "expired.csr", c.expired_key);
    openssl(d, {"ca", "-batch", "-config", cnf.string(), "-cert", c.ca_cert.string(), "-keyfile", c.ca_key.string(),
                "-in", (d / "expired.csr").string(), "-out", c.expired_cert.string(), "-startdate",
                "20200101000000Z", "-enddate", "20200201000000Z", "-extensions", "client", "-notext"});
    return c;
}

}  // namespace edgemq::test
