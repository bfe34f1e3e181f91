// Internal to broker/protocol (not part of the public API): the byte-level reader and
// writers shared by codec.cpp, properties.cpp and validate.cpp.
//
// Encoding runs every packet body through one template twice: once with a size_sink
// to learn the Remaining Length, once with a string_sink to append the bytes, so the
// size and the bytes can never disagree.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include "broker/protocol/properties.hpp"
#include "broker/protocol/result.hpp"
#include "broker/protocol/varint.hpp"

namespace edgemq::protocol::wire {

// Well-formed UTF-8 per [MQTT-1.5.4-1..2]; also reports whether '+' or '#' occurs.
bool scan_utf8(std::string_view s, bool& has_wildcard) noexcept;

// Reads big-endian fields from a packet body and never past its end. The first
// failure is kept; every read after it fails too, so callers may check once.
class reader {
public:
    explicit reader(std::string_view in) noexcept
        : p_(reinterpret_cast<const unsigned char*>(in.data())), end_(p_ + in.size()) {}

    std::size_t remaining() const noexcept { return static_cast<std::size_t>(end_ - p_); }
    bool empty() const noexcept { return p_ == end_; }
    std::string_view rest() const noexcept {
        return {reinterpret_cast<const char*>(p_), remaining()};
    }

    bool u8(std::uint8_t& v) noexcept {
        if (remaining() < 1) return short_read();
        v = *p_++;
        return true;
    }
    bool u16(std::uint16_t& v) noexcept {
        if (remaining() < 2) return short_read();
        v = static_cast<std::uint16_t>((p_[0] << 8) | p_[1]);
        p_ += 2;
        return true;
    }
    bool u32(std::uint32_t& v) noexcept {
        if (remaining() < 4) return short_read();
        v = (std::uint32_t{p_[0]} << 24) | (std::uint32_t{p_[1]} << 16) |
            (std::uint32_t{p_[2]} << 8) | std::uint32_t{p_[3]};
        p_ += 4;
        return true;
    }
    bool varint(std::uint32_t& v) noexcept {
        std::size_t used = 0;
        switch (read_varint(rest(), v, used)) {
            case varint_status::ok: p_ += used; return true;
            case varint_status::need_more: return short_read();
            case varint_status::malformed:
                return fail(reason_code::malformed_packet,
                            "[MQTT-1.5.5-1] Variable Byte Integer longer than 4 bytes or not in its shortest form");
        }
        return short_read();
    }
    bool take(std::size_t n, std::string_view& out) noexcept {
        if (remaining() < n) return short_read();
        out = {reinterpret_cast<const char*>(p_), n};
        p_ += n;
        return true;
    }
    // Two-byte length then that many bytes: Binary Data and the raw bytes of a UTF-8
    // Encoded String (section 1.5.4, 1.5.6).
    bool prefixed(std::string_view& out) noexcept {
        std::uint16_t n;
        return u16(n) && take(n, out);
    }
    // A UTF-8 Encoded String, checked [MQTT-1.5.4-1], [MQTT-1.5.4-2].
    bool utf8(std::string_view& out, const char* what_if_invalid) noexcept {
        if (!prefixed(out)) return false;
        bool wildcard;
        if (!scan_utf8(out, wildcard)) return fail(reason_code::malformed_packet, what_if_invalid);
        return true;
    }

    bool fail(reason_code code, const char* what) noexcept {
        if (!failed_) {
            failed_ = true;
            err_ = {code, what};
        }
        p_ = end_;
        return false;
    }
    bool fail(const error& e) noexcept { return fail(e.code, e.what); }
    bool failed() const noexcept { return failed_; }
    const error& err() const noexcept { return err_; }

private:
    bool short_read() noexcept {
        return fail(reason_code::malformed_packet,
                    "[MQTT-1.5] a field runs past the end of the packet");
    }

    const unsigned char* p_;
    const unsigned char* end_;
    bool failed_ = false;
    error err_{};
};

// Counts bytes.
struct size_sink {
    std::size_t n = 0;
    void u8(std::uint8_t) noexcept { n += 1; }
    void u16(std::uint16_t) noexcept { n += 2; }
    void u32(std::uint32_t) noexcept { n += 4; }
    void varint(std::uint32_t v) noexcept { n += varint_size(v); }
    void bytes(std::string_view s) noexcept { n += s.size(); }
    void prefixed(std::string_view s) noexcept { n += 2 + s.size(); }
};

// Appends bytes to a string the caller has reserved.
struct string_sink {
    std::string& out;
    void u8(std::uint8_t v) { out.push_back(static_cast<char>(v)); }
    void u16(std::uint16_t v) {
        const char b[2] = {static_cast<char>(v >> 8), static_cast<char>(v)};
        out.append(b, 2);
    }
    void u32(std::uint32_t v) {
        const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                           static_cast<char>(v >> 8), static_cast<char>(v)};
        out.append(b, 4);
    }
    void varint(std::uint32_t v) { write_varint(v, out); }
    void bytes(std::string_view s) { out.append(s); }
    void prefixed(std::string_view s) {
        assert(s.size() <= 65535);
        u16(static_cast<std::uint16_t>(s.size()));
        out.append(s);
    }
};

// Which packet a property block belongs to; decides the allowed property ids
// (MQTT 5.0 section 2.2.2.2, table 2-4).
enum class property_context : std::uint8_t {
    connect,
    will,
    connack,
    publish,
    ack,  // PUBACK, PUBREC, PUBREL, PUBCOMP
    subscribe,
    suback,
    unsubscribe,
    unsuback,
    disconnect,
    auth,
};

// Reads a Property Length and the property block it announces into `out` (which must
// be empty), applying every single-packet rule: unknown or not-allowed ids and
// truncated values are malformed, duplicates and out-of-range values protocol errors.
bool read_properties(reader& r, property_context context, properties& out);

// Writes the properties in identifier order, without the length prefix.
template <class Sink>
void put_property_values(const properties& p, Sink& s) {
    using id = property_id;
    auto tag = [&s](id i) { s.u8(static_cast<std::uint8_t>(i)); };
    if (p.payload_format_indicator) { tag(id::payload_format_indicator); s.u8(*p.payload_format_indicator); }
    if (p.message_expiry_interval) { tag(id::message_expiry_interval); s.u32(*p.message_expiry_interval); }
    if (p.content_type) { tag(id::content_type); s.prefixed(*p.content_type); }
    if (p.response_topic) { tag(id::response_topic); s.prefixed(*p.response_topic); }
    if (p.correlation_data) { tag(id::correlation_data); s.prefixed(*p.correlation_data); }
    for (std::uint32_t sub_id : p.subscription_identifiers) { tag(id::subscription_identifier); s.varint(sub_id); }
    if (p.session_expiry_interval) { tag(id::session_expiry_interval); s.u32(*p.session_expiry_interval); }
    if (p.assigned_client_identifier) { tag(id::assigned_client_identifier); s.prefixed(*p.assigned_client_identifier); }
    if (p.server_keep_alive) { tag(id::server_keep_alive); s.u16(*p.server_keep_alive); }
    if (p.authentication_method) { tag(id::authentication_method); s.prefixed(*p.authentication_method); }
    if (p.authentication_data) { tag(id::authentication_data); s.prefixed(*p.authentication_data); }
    if (p.request_problem_information) { tag(id::request_problem_information); s.u8(*p.request_problem_information); }
    if (p.will_delay_interval) { tag(id::will_delay_interval); s.u32(*p.will_delay_interval); }
    if (p.request_response_information) { tag(id::request_response_information); s.u8(*p.request_response_information); }
    if (p.response_information) { tag(id::response_information); s.prefixed(*p.response_information); }
    if (p.server_reference) { tag(id::server_reference); s.prefixed(*p.server_reference); }
    if (p.reason_string) { tag(id::reason_string); s.prefixed(*p.reason_string); }
    if (p.receive_maximum) { tag(id::receive_maximum); s.u16(*p.receive_maximum); }
    if (p.topic_alias_maximum) { tag(id::topic_alias_maximum); s.u16(*p.topic_alias_maximum); }
    if (p.topic_alias) { tag(id::topic_alias); s.u16(*p.topic_alias); }
    if (p.maximum_qos) { tag(id::maximum_qos); s.u8(*p.maximum_qos); }
    if (p.retain_available) { tag(id::retain_available); s.u8(*p.retain_available); }
    for (const auto& [key, value] : p.user_properties) {
        tag(id::user_property);
        s.prefixed(key);
        s.prefixed(value);
    }
    if (p.maximum_packet_size) { tag(id::maximum_packet_size); s.u32(*p.maximum_packet_size); }
    if (p.wildcard_subscription_available) { tag(id::wildcard_subscription_available); s.u8(*p.wildcard_subscription_available); }
    if (p.subscription_identifier_available) { tag(id::subscription_identifier_available); s.u8(*p.subscription_identifier_available); }
    if (p.shared_subscription_available) { tag(id::shared_subscription_available); s.u8(*p.shared_subscription_available); }
}

// Property Length followed by the properties.
template <class Sink>
void put_properties(const properties& p, Sink& s) {
    const std::size_t n = encoded_size(p);
    assert(n <= max_varint);
    s.varint(static_cast<std::uint32_t>(n));
    if constexpr (std::is_same_v<Sink, size_sink>) {
        s.n += n;
    } else {
        put_property_values(p, s);
    }
}

}  // namespace edgemq::protocol::wire
