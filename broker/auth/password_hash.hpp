// Password hashes as Mosquitto writes them in its password files, so that files made by
// mosquitto_passwd work here unchanged and files made by `edgemq passwd` work in
// Mosquitto (checked against mosquitto_passwd and mosquitto 2.0.11):
//
//   $7$ITERATIONS$SALT$HASH   PBKDF2-HMAC-SHA512 (mosquitto_passwd 2.0's default)
//   $6$SALT$HASH              SHA-512 over the password then the salt (Mosquitto 1.x);
//                             read only: nothing here writes it any more
//
// SALT and HASH are standard base64 with padding; the salt is 12 bytes and the hash 64,
// the only sizes Mosquitto 2.0 accepts.
//
// All functions are thread-safe; the hashing is done by mbedTLS, which stays out of
// this header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace edgemq::auth {

// mosquitto_passwd's PW_DEFAULT_ITERATIONS: low, but what Mosquitto users' files have.
inline constexpr int default_hash_iterations = 101;
inline constexpr std::size_t password_salt_size = 12;
inline constexpr std::size_t password_digest_size = 64;

struct password_hash {
    enum class scheme : std::uint8_t {
        sha512,         // "$6$"
        pbkdf2_sha512,  // "$7$"
    };
    scheme kind = scheme::pbkdf2_sha512;
    int iterations = default_hash_iterations;  // pbkdf2_sha512 only
    std::string salt;                          // raw bytes, password_salt_size of them
    std::string digest;                        // raw bytes, password_digest_size of them

    bool operator==(const password_hash&) const = default;
};

// Reads the text after "user:". Throws std::invalid_argument with a short reason
// ("unknown hash type '$5$' ...", "salt is not valid base64", ...) that the file readers
// prefix with FILE:LINE.
password_hash parse_password_hash(std::string_view text);

// The text form parse_password_hash reads.
std::string format_password_hash(const password_hash& hash);

// A fresh hash of `password` with a random salt (mbedTLS CTR-DRBG seeded from the
// system's entropy) as "$7$". Throws std::invalid_argument for iterations < 1 and
// std::runtime_error if the random generator cannot be seeded.
password_hash make_password_hash(std::string_view password, int iterations = default_hash_iterations);

// True when `password` (all its bytes: CONNECT's Password is binary data, and unlike
// Mosquitto a NUL byte does not end it) hashes to `stored`. The digests are compared in
// constant time.
bool verify_password(const password_hash& stored, std::string_view password);

}  // namespace edgemq::auth
