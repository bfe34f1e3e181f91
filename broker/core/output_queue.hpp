// Bytes waiting to be written to one connection: encoded packets in one contiguous
// buffer, with large payloads referenced from the shared message instead of copied,
// so fanning a big message out to many subscribers copies it into no buffer at all.
// The transport writes it as a gather list (see for_each_segment).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "broker/session/message.hpp"

namespace edgemq::core {

class output_queue {
public:
    // Payloads at least this large are referenced rather than copied. Below it a copy
    // is cheaper than an extra iovec entry.
    static constexpr std::size_t reference_threshold = 1024;

    // Encoded bytes are appended here directly.
    std::string& bytes() noexcept { return bytes_; }

    // Appends the payload of `msg`: copied if small, referenced if large.
    void append_payload(const session::message_ptr& msg) {
        const std::string& payload = msg->payload;
        if (payload.size() < reference_threshold) {
            bytes_.append(payload);
        } else {
            refs_.push_back(shared_ref{bytes_.size(), msg});
            referenced_bytes_ += payload.size();
        }
    }

    std::size_t size() const noexcept { return bytes_.size() + referenced_bytes_; }
    bool empty() const noexcept { return bytes_.empty() && refs_.empty(); }

    void clear() noexcept {
        bytes_.clear();
        refs_.clear();
        referenced_bytes_ = 0;
    }
    // Gives back memory after a burst, so idle connections stay small.
    void release_if_larger_than(std::size_t capacity) {
        if (bytes_.capacity() > capacity) std::string().swap(bytes_);
        if (refs_.capacity() > 16) std::vector<shared_ref>().swap(refs_);
    }
    void swap(output_queue& other) noexcept {
        bytes_.swap(other.bytes_);
        refs_.swap(other.refs_);
        std::swap(referenced_bytes_, other.referenced_bytes_);
    }

    // Calls f(std::string_view) for each contiguous piece, in wire order.
    template <class F>
    void for_each_segment(F&& f) const {
        std::size_t from = 0;
        for (const shared_ref& r : refs_) {
            if (r.offset > from) f(std::string_view(bytes_).substr(from, r.offset - from));
            f(std::string_view(r.msg->payload));
            from = r.offset;
        }
        if (from < bytes_.size()) f(std::string_view(bytes_).substr(from));
    }

    // Everything as one string (tests).
    std::string flatten() const {
        std::string all;
        all.reserve(size());
        for_each_segment([&](std::string_view s) { all.append(s); });
        return all;
    }

private:
    struct shared_ref {
        std::size_t offset;  // position in bytes_ where the payload goes
        session::message_ptr msg;
    };
    std::string bytes_;
    std::vector<shared_ref> refs_;
    std::size_t referenced_bytes_ = 0;
};

}  // namespace edgemq::core
