#include "broker/auth/text_file.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "broker/auth/file_error.hpp"

namespace edgemq::auth::detail {

std::string read_text_file(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) throw file_error(path, "cannot open: is a directory");
    errno = 0;
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw file_error(path, std::string("cannot open: ") + (errno ? std::strerror(errno) : "unknown error"));
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) throw file_error(path, "read error");
    return std::move(text).str();
}

}  // namespace edgemq::auth::detail
