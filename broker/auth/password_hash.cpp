#include "broker/auth/password_hash.hpp"

#include <mbedtls/base64.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/md.h>
#include <mbedtls/pkcs5.h>
#include <mbedtls/sha512.h>

#include <charconv>
#include <limits>
#include <stdexcept>

namespace edgemq::auth {
namespace {

const unsigned char* bytes(std::string_view s) noexcept {
    // mbedTLS may not accept a null pointer even with length 0.
    static const unsigned char empty = 0;
    return s.empty() ? &empty : reinterpret_cast<const unsigned char*>(s.data());
}

bool is_base64_char(char c) noexcept {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' ||
           c == '=';
}

std::string decode_base64(std::string_view text, const char* what, std::size_t expected_size) {
    // mbedTLS skips line breaks and spaces inside base64; a password file field has none.
    bool valid = !text.empty() && text.size() % 4 == 0;
    for (char c : text) valid = valid && is_base64_char(c);
    std::string out(text.size() / 4 * 3 + 3, '\0');
    std::size_t written = 0;
    if (!valid || mbedtls_base64_decode(reinterpret_cast<unsigned char*>(out.data()), out.size(), &written,
                                        bytes(text), text.size()) != 0) {
        throw std::invalid_argument(std::string(what) + " is not valid base64");
    }
    out.resize(written);
    if (out.size() != expected_size) {
        throw std::invalid_argument(std::string(what) + " is " + std::to_string(out.size()) + " bytes, expected " +
                                    std::to_string(expected_size) + " (as mosquitto_passwd writes)");
    }
    return out;
}

std::string encode_base64(std::string_view raw) {
    std::string out((raw.size() + 2) / 3 * 4 + 1, '\0');
    std::size_t written = 0;
    if (mbedtls_base64_encode(reinterpret_cast<unsigned char*>(out.data()), out.size(), &written, bytes(raw),
                              raw.size()) != 0) {
        throw std::runtime_error("base64 encoding failed");
    }
    out.resize(written);
    return out;
}

std::string pbkdf2_sha512(std::string_view password, std::string_view salt, int iterations) {
    mbedtls_md_context_t md;
    mbedtls_md_init(&md);
    std::string digest(password_digest_size, '\0');
    int rc = mbedtls_md_setup(&md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA512), 1 /* HMAC */);
    if (rc == 0) {
        rc = mbedtls_pkcs5_pbkdf2_hmac(&md, bytes(password), password.size(), bytes(salt), salt.size(),
                                       static_cast<unsigned int>(iterations),
                                       static_cast<std::uint32_t>(digest.size()),
                                       reinterpret_cast<unsigned char*>(digest.data()));
    }
    mbedtls_md_free(&md);
    if (rc != 0) throw std::runtime_error("PBKDF2-HMAC-SHA512 failed");
    return digest;
}

// Mosquitto 1.x: SHA-512(password || salt), one round.
std::string salted_sha512(std::string_view password, std::string_view salt) {
    mbedtls_sha512_context sha;
    mbedtls_sha512_init(&sha);
    std::string digest(password_digest_size, '\0');
    int rc = mbedtls_sha512_starts_ret(&sha, 0 /* SHA-512, not 384 */);
    if (rc == 0) rc = mbedtls_sha512_update_ret(&sha, bytes(password), password.size());
    if (rc == 0) rc = mbedtls_sha512_update_ret(&sha, bytes(salt), salt.size());
    if (rc == 0) rc = mbedtls_sha512_finish_ret(&sha, reinterpret_cast<unsigned char*>(digest.data()));
    mbedtls_sha512_free(&sha);
    if (rc != 0) throw std::runtime_error("SHA-512 failed");
    return digest;
}

std::string digest_of(const password_hash& params, std::string_view password) {
    return params.kind == password_hash::scheme::pbkdf2_sha512
               ? pbkdf2_sha512(password, params.salt, params.iterations)
               : salted_sha512(password, params.salt);
}

// Looks at every byte whatever the contents, so the time taken does not tell how much
// of a guessed digest was right.
bool equal_in_constant_time(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;  // sizes are fixed and public
    unsigned char diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        diff = static_cast<unsigned char>(diff | (static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i])));
    }
    return diff == 0;
}

std::string random_salt() {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    static constexpr std::string_view personalization = "edgemq password salt";
    std::string salt(password_salt_size, '\0');
    int rc = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, bytes(personalization),
                                   personalization.size());
    if (rc == 0) {
        rc = mbedtls_ctr_drbg_random(&drbg, reinterpret_cast<unsigned char*>(salt.data()), salt.size());
    }
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    if (rc != 0) throw std::runtime_error("cannot seed the random generator for a password salt");
    return salt;
}

}  // namespace

password_hash parse_password_hash(std::string_view text) {
    if (text.empty()) throw std::invalid_argument("missing password hash");
    if (text.front() != '$') {
        throw std::invalid_argument(
            "password is not hashed (plain text?): hash the file with 'edgemq passwd -U FILE'");
    }
    // "$7$..." splits into "", "7", then the fields.
    std::string_view fields[5];
    std::size_t count = 0;
    std::string_view rest = text.substr(1);
    for (;;) {
        const auto dollar = rest.find('$');
        if (count == std::size(fields)) throw std::invalid_argument("too many '$' fields in password hash");
        fields[count++] = rest.substr(0, dollar);
        if (dollar == std::string_view::npos) break;
        rest.remove_prefix(dollar + 1);
    }
    password_hash hash;
    std::size_t next = 1;
    if (fields[0] == "7") {
        hash.kind = password_hash::scheme::pbkdf2_sha512;
        if (count != 4) throw std::invalid_argument("a $7$ hash has the form $7$ITERATIONS$SALT$HASH");
        const auto digits = fields[1];
        int iterations = 0;
        const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), iterations);
        if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() || iterations < 1) {
            throw std::invalid_argument("iteration count '" + std::string(digits) +
                                        "' is not a whole number from 1 to " +
                                        std::to_string(std::numeric_limits<int>::max()));
        }
        hash.iterations = iterations;
        next = 2;
    } else if (fields[0] == "6") {
        hash.kind = password_hash::scheme::sha512;
        if (count != 3) throw std::invalid_argument("a $6$ hash has the form $6$SALT$HASH");
        hash.iterations = 0;
    } else {
        throw std::invalid_argument("unknown hash type '$" + std::string(fields[0]) +
                                    "$' (expected $7$ or $6$, as mosquitto_passwd writes)");
    }
    hash.salt = decode_base64(fields[next], "salt", password_salt_size);
    hash.digest = decode_base64(fields[next + 1], "hash", password_digest_size);
    return hash;
}

std::string format_password_hash(const password_hash& hash) {
    std::string out = hash.kind == password_hash::scheme::pbkdf2_sha512
                          ? "$7$" + std::to_string(hash.iterations) + "$"
                          : std::string("$6$");
    out += encode_base64(hash.salt);
    out += '$';
    out += encode_base64(hash.digest);
    return out;
}

password_hash make_password_hash(std::string_view password, int iterations) {
    if (iterations < 1) throw std::invalid_argument("the iteration count must be at least 1");
    password_hash hash;
    hash.kind = password_hash::scheme::pbkdf2_sha512;
    hash.iterations = iterations;
    hash.salt = random_salt();
    hash.digest = pbkdf2_sha512(password, hash.salt, iterations);
    return hash;
}

bool verify_password(const password_hash& stored, std::string_view password) {
    return equal_in_constant_time(digest_of(stored, password), stored.digest);
}

}  // namespace edgemq::auth
