// tmpfs_mount: a small tmpfs made by a test (disk-full tests), unmounted when it goes.
//
// Contract
// - The constructor makes a temporary directory and mounts a tmpfs of `size_bytes` on
//   it (mount(2), needs root / CAP_SYS_ADMIN). It never throws for a refused mount:
//   mounted() is then false and why_not() says why, so the test can skip with that
//   message. It throws std::runtime_error only if the directory cannot be made.
// - The destructor unmounts (lazily, MNT_DETACH, if something still holds it busy) and
//   removes the directory, always; so declare it before any broker_process using it,
//   which then stops first.
// - free_bytes() is what statvfs reports as available to us.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace edgemq::test {

class tmpfs_mount {
public:
    explicit tmpfs_mount(std::uint64_t size_bytes);
    ~tmpfs_mount();
    tmpfs_mount(const tmpfs_mount&) = delete;
    tmpfs_mount& operator=(const tmpfs_mount&) = delete;

    bool mounted() const { return mounted_; }
    const std::string& why_not() const { return why_not_; }
    const std::filesystem::path& path() const { return path_; }
    std::uint64_t free_bytes() const;

private:
    std::filesystem::path path_;
    bool mounted_ = false;
    std::string why_not_;
};

// Writes `bytes` of filler into `file` (created or extended), stopping early at ENOSPC.
// Returns how many bytes were written.
std::uint64_t write_filler(const std::filesystem::path& file, std::uint64_t bytes);

}  // namespace edgemq::test
