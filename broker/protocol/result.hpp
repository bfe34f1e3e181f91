// result<T>: the outcome of decoding wire input. Wire input never throws; a decoder
// returns either a value or the reason code the spec asks for plus a short diagnostic
// for the log. (g++ 12 in C++20 mode has no std::expected.)
#pragma once

#include <cassert>
#include <utility>
#include <variant>

#include "broker/protocol/reason_code.hpp"

namespace edgemq::protocol {

struct error {
    reason_code code = reason_code::malformed_packet;
    // Static string naming the rule that was broken, ideally with its spec id,
    // e.g. "[MQTT-3.3.1-4] PUBLISH with QoS 3". Never owned, never null.
    const char* what = "";
};

template <class T>
class [[nodiscard]] result {
public:
    result(T value) : v_(std::move(value)) {}          // NOLINT: implicit by design
    result(error err) : v_(err) {}                     // NOLINT: implicit by design

    bool ok() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    T& value() & { assert(ok()); return std::get<0>(v_); }
    const T& value() const& { assert(ok()); return std::get<0>(v_); }
    T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

    const error& err() const { assert(!ok()); return std::get<1>(v_); }

private:
    std::variant<T, error> v_;
};

// For operations that produce no value.
struct ok_t {};
using status = result<ok_t>;
inline status ok_status() { return ok_t{}; }

inline error malformed(const char* what) { return {reason_code::malformed_packet, what}; }
inline error protocol_violation(const char* what) { return {reason_code::protocol_error, what}; }

}  // namespace edgemq::protocol
