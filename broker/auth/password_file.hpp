// A Mosquitto password file: who may connect, with which password.
//
// Format (what mosquitto_passwd writes, so its files work unchanged):
//   USERNAME:HASH        one user per line, HASH as in password_hash.hpp
//   # comment            a line whose first non-blank character is '#'
//                        blank lines are skipped
// Blanks around USERNAME and HASH are ignored, as Mosquitto does.
//
// Where we differ from Mosquitto 2.0 on purpose: it skips a line without ':' silently
// and drops (with a log line) a user whose hash it cannot read, so a typo locks that
// user out at run time; we refuse the whole file with file_error "FILE:LINE: why" so the
// operator sees it at start-up or reload. A user listed twice (which Mosquitto resolves
// by an accident of its hash table) is an error too, as is a second ':' after the hash.
//
// Immutable once loaded; verify() is safe from many threads at once.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "broker/auth/file_error.hpp"
#include "broker/auth/password_hash.hpp"

namespace edgemq::auth {

class password_file {
public:
    // Reads and checks the whole file. Throws file_error ("FILE: cannot open: ...",
    // "FILE:LINE: why").
    static password_file load(const std::string& path);
    // The same from text already in memory; `file_name` is what error messages call it.
    static password_file parse(std::string_view text, const std::string& file_name);

    // True when `username` is in the file and `password` hashes to its entry. An
    // unknown user costs one hash too (with the parameters most entries use), so the
    // response time does not tell which users exist.
    bool verify(std::string_view username, std::string_view password) const;

    bool contains(std::string_view username) const;
    std::size_t size() const noexcept { return users_.size(); }

private:
    password_file() = default;

    std::map<std::string, password_hash, std::less<>> users_;
    password_hash decoy_;  // hashed for unknown users, never matches
};

}  // namespace edgemq::auth
