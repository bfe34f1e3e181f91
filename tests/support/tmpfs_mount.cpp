#include "support/tmpfs_mount.hpp"

#include <cerrno>
#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <stdexcept>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <vector>

namespace edgemq::test {

tmpfs_mount::tmpfs_mount(std::uint64_t size_bytes) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "edgemq-tmpfs-XXXXXX").string();
    if (!::mkdtemp(tmpl.data()))
        throw std::runtime_error("mkdtemp " + tmpl + ": " + std::strerror(errno));
    path_ = tmpl;
    const std::string options = "size=" + std::to_string(size_bytes) + ",mode=0700";
    if (::mount("tmpfs", path_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) == 0) {
        mounted_ = true;
    } else {
        why_not_ = std::string("mount -t tmpfs -o ") + options + " tmpfs " + path_.string() + ": " +
                   std::strerror(errno) + (errno == EPERM ? " (needs root / CAP_SYS_ADMIN)" : "");
    }
}

tmpfs_mount::~tmpfs_mount() {
    if (mounted_ && ::umount2(path_.c_str(), 0) != 0) {
        std::fprintf(stderr, "tmpfs_mount: umount %s: %s; detaching lazily\n", path_.c_str(), std::strerror(errno));
        ::umount2(path_.c_str(), MNT_DETACH);
    }
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

std::uint64_t tmpfs_mount::free_bytes() const {
    struct statvfs st{};
    if (::statvfs(path_.c_str(), &st) != 0) return 0;
    return static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
}

std::uint64_t write_filler(const std::filesystem::path& file, std::uint64_t bytes) {
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) throw std::runtime_error("open " + file.string() + ": " + std::strerror(errno));
    std::vector<char> block(4096, 'F');
    std::uint64_t done = 0;
    while (done < bytes) {
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(block.size(), bytes - done));
        ssize_t w = ::write(fd, block.data(), n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;  // ENOSPC: full
        done += static_cast<std::uint64_t>(w);
    }
    ::close(fd);
    return done;
}

}  // namespace edgemq::test
