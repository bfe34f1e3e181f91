// Helpers for the storage tests: a fresh temporary directory per test (removed
// after), building messages, submitting and waiting for `done`, reading files.
#pragma once

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "broker/core/store.hpp"
#include "storage/sqlite_store.hpp"

namespace edgemq::storage::test {

namespace fs = std::filesystem;
namespace ops = core::store_ops;

// mkdtemp under $TMPDIR (or /tmp); removed with everything in it at scope exit.
class temp_dir {
public:
    temp_dir() {
        const char* base = std::getenv("TMPDIR");
        std::string tmpl = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/edgemq-storage-XXXXXX";
        if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
    }
    ~temp_dir() {
        std::error_code ec;
        fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
        fs::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    const fs::path& path() const { return path_; }
    std::string file(const std::string& name) const { return (path_ / name).string(); }

private:
    fs::path path_;
};

inline session::message_ptr make_message(std::string topic, std::string payload, std::uint8_t qos = 1,
                                         bool retain = false, std::string forwarded = {}) {
    auto m = std::make_shared<session::message>();
    m->topic = std::move(topic);
    m->payload = std::move(payload);
    m->forwarded_properties = std::move(forwarded);
    m->qos = qos;
    m->retain = retain;
    return m;
}

inline ops::put_message put_msg(std::uint64_t id, std::string payload = "payload", std::string topic = "a/b",
                                core::wall_ms expires_at = 0) {
    return ops::put_message{id, make_message(std::move(topic), std::move(payload)), expires_at};
}

inline core::stored_delivery delivery(std::uint64_t session_id, std::uint64_t row, std::uint64_t message_id,
                                      std::uint8_t qos = 1) {
    core::stored_delivery d;
    d.session_id = session_id;
    d.row = row;
    d.message_id = message_id;
    d.qos = qos;
    return d;
}

// Submits and blocks until `done`; returns what done reported. Fails the test after
// 30 s (a hung writer) instead of hanging the suite.
inline bool submit_wait(core::store& store, std::vector<core::store_op> ops) {
    auto promise = std::make_shared<std::promise<bool>>();
    auto result = promise->get_future();
    store.submit(std::move(ops), [promise](bool ok) { promise->set_value(ok); });
    if (result.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
        FAIL("store did not call done within 30 s");
    }
    return result.get();
}

inline std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_file(const std::string& path, const std::string& data) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

inline std::int64_t file_size(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? static_cast<std::int64_t>(st.st_size) : 0;
}

// The database file plus its WAL: what the store occupies on disk.
inline std::int64_t store_bytes(const std::string& path) { return file_size(path) + file_size(path + "-wal"); }

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace edgemq::storage::test
