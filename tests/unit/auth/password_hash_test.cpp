// Password hashes in Mosquitto's two formats: fixtures written by mosquitto_passwd 2.0.11
// verify, malformed text is refused with a reason, new hashes have fresh salts.
#include <doctest/doctest.h>

#include <stdexcept>
#include <string>

#include "broker/auth/password_hash.hpp"

using namespace edgemq::auth;

namespace {

// mosquitto_passwd -c -b pw alice secret; -H sha512 -b pw bob hunter2; -I 1000 -b pw carol x
constexpr const char* alice_hash =
    "$7$101$eYZhtdFkOVFK+BIu$D4GRm161IFc9PNDPHXcXo1GfovFg/46JG9x/nKOC3f2fvH1Ch7MbxB1GnlZL70RiLD3RTwyitZEKMKo36bk3rw==";
constexpr const char* bob_hash =
    "$6$d3kixEJS7eFT8/Cu$e5fIzTQ/kmIZtX9hPRMbstmuAU0fEbU38joGhOYIXFh7kb+15paBS1xaDjcOSEcU2owQIINaPSJRGgD97ztOew==";
constexpr const char* carol_hash =
    "$7$1000$MMCqZ+QG+Sn8eilQ$TlJdTwsbnPxCX7id2VpIfR689s0lSb4zvlua8byV6giscoROzOL+3P9TUYwrve057LVrW2wHGDEQz2fRFvfmvg==";

std::string reason_for(const std::string& text) {
    try {
        (void)parse_password_hash(text);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "(accepted)";
}

}  // namespace

TEST_CASE("password hash: $7$ and $6$ from mosquitto_passwd parse and format back unchanged") {
    const auto alice = parse_password_hash(alice_hash);
    CHECK(alice.kind == password_hash::scheme::pbkdf2_sha512);
    CHECK(alice.iterations == 101);
    CHECK(alice.salt.size() == password_salt_size);
    CHECK(alice.digest.size() == password_digest_size);
    CHECK(format_password_hash(alice) == alice_hash);

    const auto bob = parse_password_hash(bob_hash);
    CHECK(bob.kind == password_hash::scheme::sha512);
    CHECK(format_password_hash(bob) == bob_hash);

    const auto carol = parse_password_hash(carol_hash);
    CHECK(carol.iterations == 1000);
    CHECK(format_password_hash(carol) == carol_hash);
}

TEST_CASE("password hash: mosquitto_passwd fixtures verify only with the right password") {
    CHECK(verify_password(parse_password_hash(alice_hash), "secret"));
    CHECK_FALSE(verify_password(parse_password_hash(alice_hash), "Secret"));
    CHECK_FALSE(verify_password(parse_password_hash(alice_hash), ""));
    CHECK(verify_password(parse_password_hash(bob_hash), "hunter2"));
    CHECK_FALSE(verify_password(parse_password_hash(bob_hash), "hunter3"));
    CHECK(verify_password(parse_password_hash(carol_hash), "x"));
    CHECK_FALSE(verify_password(parse_password_hash(carol_hash), "y"));
}

TEST_CASE("password hash: malformed text is refused with the reason") {
    CHECK(reason_for("") == "missing password hash");
    CHECK(reason_for("secret").find("not hashed") != std::string::npos);
    CHECK(reason_for("$5$abc$def").find("unknown hash type '$5$'") != std::string::npos);
    CHECK(reason_for("$7$101$eYZhtdFkOVFK+BIu").find("$7$ITERATIONS$SALT$HASH") != std::string::npos);
    CHECK(reason_for("$6$a$b$c").find("$6$SALT$HASH") != std::string::npos);
    CHECK(reason_for("$7$0$eYZhtdFkOVFK+BIu$AAAA").find("iteration count '0'") != std::string::npos);
    CHECK(reason_for("$7$1x$eYZhtdFkOVFK+BIu$AAAA").find("iteration count '1x'") != std::string::npos);
    CHECK(reason_for("$7$99999999999$eYZhtdFkOVFK+BIu$AAAA").find("iteration count") != std::string::npos);
    CHECK(reason_for("$7$101$eYZh!dFkOVFK+BIu$AAAA") == "salt is not valid base64");
    CHECK(reason_for("$7$101$eYZhtdFkOVFK+BI$AAAA") == "salt is not valid base64");  // not a multiple of 4
    CHECK(reason_for("$7$101$AAAA$AAAA").find("salt is 3 bytes, expected 12") != std::string::npos);
    CHECK(reason_for("$7$101$eYZhtdFkOVFK+BIu$AAAA").find("hash is 3 bytes, expected 64") != std::string::npos);
    CHECK(reason_for("$7$101$eYZhtdFkOVFK+BIu$").find("hash is not valid base64") != std::string::npos);
    CHECK(reason_for(std::string(alice_hash) + "$").find("$7$ITERATIONS$SALT$HASH") != std::string::npos);
    CHECK(reason_for("$7$1$2$3$4$5$6").find("too many") != std::string::npos);
}

TEST_CASE("password hash: new hashes are $7$ with fresh salts and the given iterations") {
    const auto a = make_password_hash("pw");
    const auto b = make_password_hash("pw");
    CHECK(a.kind == password_hash::scheme::pbkdf2_sha512);
    CHECK(a.iterations == default_hash_iterations);
    CHECK(a.salt.size() == password_salt_size);
    CHECK(a.salt != b.salt);
    CHECK(a.digest != b.digest);
    CHECK(verify_password(a, "pw"));
    CHECK(verify_password(b, "pw"));
    CHECK(parse_password_hash(format_password_hash(a)) == a);

    const auto slow = make_password_hash("pw", 2000);
    CHECK(slow.iterations == 2000);
    CHECK(format_password_hash(slow).starts_with("$7$2000$"));
    CHECK(verify_password(slow, "pw"));
    CHECK_THROWS_AS(make_password_hash("pw", 0), std::invalid_argument);
}

TEST_CASE("password hash: every byte of a binary password counts (MQTT 5.0 section 3.1.3.6)") {
    // CONNECT's Password is Binary Data: a NUL byte does not end it.
    const std::string with_nul("ab\0cd", 5);
    const auto hash = make_password_hash(with_nul);
    CHECK(verify_password(hash, with_nul));
    CHECK_FALSE(verify_password(hash, "ab"));
    CHECK_FALSE(verify_password(hash, std::string("ab\0ce", 5)));
}
