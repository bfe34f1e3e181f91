// The exception auth/ throws for a password or ACL file it cannot use, so an operator
// knows which file and line to fix.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

namespace edgemq::auth {

// what() is "FILE:LINE: why", or "FILE: why" when no single line is at fault (the file
// cannot be opened or read).
class file_error : public std::runtime_error {
public:
    file_error(const std::string& file, std::size_t line, const std::string& why)
        : std::runtime_error(file + ":" + std::to_string(line) + ": " + why), file_(file), line_(line) {}
    file_error(const std::string& file, const std::string& why)
        : std::runtime_error(file + ": " + why), file_(file) {}

    const std::string& file() const noexcept { return file_; }
    // 1-based; 0 when the error is not about one line.
    std::size_t line() const noexcept { return line_; }

private:
    std::string file_;
    std::size_t line_ = 0;
};

}  // namespace edgemq::auth
