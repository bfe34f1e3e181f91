#include "broker/auth/password_file.hpp"

#include <stdexcept>
#include <utility>

#include "broker/auth/text_file.hpp"

namespace edgemq::auth {

password_file password_file::load(const std::string& path) {
    return parse(detail::read_text_file(path), path);
}

password_file password_file::parse(std::string_view text, const std::string& file_name) {
    password_file file;
    std::map<std::string, std::size_t, std::less<>> first_line;
    // Parameters of the decoy: the most common (scheme, iterations) among the entries.
    std::map<std::pair<password_hash::scheme, int>, std::size_t> parameter_counts;

    detail::line_reader lines(text);
    std::string_view line;
    std::size_t number = 0;
    while (lines.next(line, number)) {
        const auto content = detail::trim(line);
        if (content.empty() || content.front() == '#') continue;
        const auto colon = content.find(':');
        if (colon == std::string_view::npos) {
            throw file_error(file_name, number, "missing ':' between user name and password hash");
        }
        const auto username = detail::trim(content.substr(0, colon));
        const auto hash_text = detail::trim(content.substr(colon + 1));
        if (username.empty()) throw file_error(file_name, number, "empty user name before ':'");
        if (hash_text.find(':') != std::string_view::npos) {
            throw file_error(file_name, number, "unexpected ':' after the password hash of user '" +
                                                    std::string(username) + "'");
        }
        if (const auto seen = first_line.find(username); seen != first_line.end()) {
            throw file_error(file_name, number, "user '" + std::string(username) + "' is already defined on line " +
                                                    std::to_string(seen->second));
        }
        password_hash hash;
        try {
            hash = parse_password_hash(hash_text);
        } catch (const std::invalid_argument& e) {
            throw file_error(file_name, number, "user '" + std::string(username) + "': " + e.what());
        }
        ++parameter_counts[{hash.kind, hash.iterations}];
        first_line.emplace(username, number);
        file.users_.emplace(username, std::move(hash));
    }

    file.decoy_.kind = password_hash::scheme::pbkdf2_sha512;
    file.decoy_.iterations = default_hash_iterations;
    std::size_t best = 0;
    for (const auto& [parameters, count] : parameter_counts) {
        if (count > best) {
            best = count;
            file.decoy_.kind = parameters.first;
            file.decoy_.iterations = parameters.second;
        }
    }
    file.decoy_.salt.assign(password_salt_size, '\0');
    // No password hashes to an all-zero digest that we could find; verify() ignores the
    // result for unknown users anyway.
    file.decoy_.digest.assign(password_digest_size, '\0');
    return file;
}

bool password_file::verify(std::string_view username, std::string_view password) const {
    const auto it = users_.find(username);
    const bool known = it != users_.end();
    const bool matches = verify_password(known ? it->second : decoy_, password);
    return known && matches;
}

bool password_file::contains(std::string_view username) const {
    return users_.find(username) != users_.end();
}

}  // namespace edgemq::auth
