// proc_io: a process's I/O counters from /proc/PID/io, to report what the broker
// writes to disk (flash wear) per message.
//
// write_bytes counts bytes the process caused to be sent to the block layer (page
// granular, charged when a page of a disk-backed file first becomes dirty; tmpfs does
// not count); cancelled_write_bytes those dirty pages that were truncated or deleted
// before write-back (e.g. a WAL file reset). wchar counts bytes passed to write(2) and
// friends, whatever the file system.
#pragma once

#include <cstdint>
#include <fstream>
#include <optional>
#include <string>
#include <sys/types.h>

namespace edgemq::test {

struct proc_io {
    std::uint64_t rchar = 0, wchar = 0, syscr = 0, syscw = 0;
    std::uint64_t read_bytes = 0, write_bytes = 0, cancelled_write_bytes = 0;
};

// nullopt if the process is gone or /proc/PID/io is not readable.
inline std::optional<proc_io> read_proc_io(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/io");
    if (!in) return std::nullopt;
    proc_io io;
    std::string key;
    std::uint64_t value = 0;
    bool any = false;
    while (in >> key >> value) {
        any = true;
        if (key == "rchar:") io.rchar = value;
        else if (key == "wchar:") io.wchar = value;
        else if (key == "syscr:") io.syscr = value;
        else if (key == "syscw:") io.syscw = value;
        else if (key == "read_bytes:") io.read_bytes = value;
        else if (key == "write_bytes:") io.write_bytes = value;
        else if (key == "cancelled_write_bytes:") io.cancelled_write_bytes = value;
    }
    if (!any) return std::nullopt;
    return io;
}

}  // namespace edgemq::test
