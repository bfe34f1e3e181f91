// A minimal MQTT 3.1.1 / 5.0 client-side codec for the load generator: just the
// packets a benchmark client sends and receives, nothing else.
//
// Why not the broker's codec: the bench tool must keep building and measuring while
// the broker (and its codec) is being written, and a load tool that shares the code
// under test cannot catch that code's encoding bugs. So this file is self-contained and
// deliberately small.
//
// Contract: encoders append to a caller-owned byte vector (whose capacity is reused, so
// the hot path does not allocate once warm). Decoders take exactly one packet body and
// never read past it; they return false on malformed input and never throw.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace edgemq::bench::wire {

using bytes = std::vector<std::uint8_t>;
using body_view = std::span<const std::uint8_t>;

enum class packet_type : std::uint8_t {
    connect = 1, connack = 2, publish = 3, puback = 4, pubrec = 5, pubrel = 6, pubcomp = 7,
    subscribe = 8, suback = 9, unsubscribe = 10, unsuback = 11, pingreq = 12, pingresp = 13,
    disconnect = 14, auth = 15,
};

// Protocol level byte of CONNECT: 4 = 3.1.1, 5 = 5.0.
constexpr std::uint8_t v311 = 4;
constexpr std::uint8_t v5 = 5;

// ---- encoding helpers ------------------------------------------------------------

inline void put_u8(bytes& b, std::uint8_t v) { b.push_back(v); }
inline void put_u16(bytes& b, std::uint16_t v) {
    b.push_back(static_cast<std::uint8_t>(v >> 8));
    b.push_back(static_cast<std::uint8_t>(v));
}
inline void put_u32(bytes& b, std::uint32_t v) {
    put_u16(b, static_cast<std::uint16_t>(v >> 16));
    put_u16(b, static_cast<std::uint16_t>(v));
}
inline void put_varint(bytes& b, std::uint32_t v) {
    do {
        std::uint8_t byte = v & 0x7f;
        v >>= 7;
        if (v != 0) byte |= 0x80;
        b.push_back(byte);
    } while (v != 0);
}
inline std::size_t varint_size(std::uint32_t v) {
    return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4;
}
inline void put_str(bytes& b, std::string_view s) {
    put_u16(b, static_cast<std::uint16_t>(s.size()));
    b.insert(b.end(), s.begin(), s.end());
}

// Largest remaining length a fixed header can express [MQTT-1.5.5].
constexpr std::uint32_t max_remaining_length = 268'435'455;

// ---- packets the client sends ------------------------------------------------------

struct connect_options {
    std::uint8_t version = v311;
    std::string_view client_id;
    bool clean_start = true;
    std::uint16_t keep_alive_s = 60;
    // v5 only: 0 = session ends with the connection; used for --persistent.
    std::uint32_t session_expiry_s = 0;
};

inline void encode_connect(bytes& b, const connect_options& o) {
    bytes props;
    if (o.version == v5 && o.session_expiry_s != 0) {
        put_u8(props, 0x11);  // Session Expiry Interval
        put_u32(props, o.session_expiry_s);
    }
    std::size_t body = 2 + 4 + 1 + 1 + 2 + 2 + o.client_id.size();
    if (o.version == v5) body += varint_size(static_cast<std::uint32_t>(props.size())) + props.size();
    put_u8(b, 0x10);
    put_varint(b, static_cast<std::uint32_t>(body));
    put_str(b, "MQTT");
    put_u8(b, o.version);
    put_u8(b, o.clean_start ? 0x02 : 0x00);
    put_u16(b, o.keep_alive_s);
    if (o.version == v5) {
        put_varint(b, static_cast<std::uint32_t>(props.size()));
        b.insert(b.end(), props.begin(), props.end());
    }
    put_str(b, o.client_id);
}

inline void encode_subscribe(bytes& b, std::uint8_t version, std::uint16_t packet_id,
                             std::string_view filter, std::uint8_t max_qos) {
    std::size_t body = 2 + 2 + filter.size() + 1 + (version == v5 ? 1 : 0);
    put_u8(b, 0x82);  // reserved flags 0010 [MQTT-3.8.1-1]
    put_varint(b, static_cast<std::uint32_t>(body));
    put_u16(b, packet_id);
    if (version == v5) put_u8(b, 0);  // no properties
    put_str(b, filter);
    put_u8(b, max_qos);  // v5: No Local 0, Retain As Published 0, Retain Handling 0
}

// PUBACK, PUBREC, PUBREL, PUBCOMP. Remaining length 2 means "success" in v5 too
// [MQTT-3.4.2.1], so one 4-byte form serves both versions.
inline void encode_ack(bytes& b, packet_type type, std::uint16_t packet_id) {
    const std::uint8_t first = static_cast<std::uint8_t>(static_cast<std::uint8_t>(type) << 4) |
                               (type == packet_type::pubrel ? 0x02 : 0x00);
    b.push_back(first);
    b.push_back(2);
    put_u16(b, packet_id);
}

inline void encode_pingreq(bytes& b) {
    b.push_back(0xc0);
    b.push_back(0);
}

// Remaining length 0 = Normal disconnection in v5 as well [MQTT-3.14.2.1].
// `end_v5_session` adds Session Expiry Interval 0, so a v5 session the client had asked
// to keep (--persistent) does not linger on the broker after the run.
inline void encode_disconnect(bytes& b, bool end_v5_session = false) {
    b.push_back(0xe0);
    if (!end_v5_session) {
        b.push_back(0);
        return;
    }
    b.push_back(7);
    b.push_back(0);     // Normal disconnection
    b.push_back(5);     // properties length
    b.push_back(0x11);  // Session Expiry Interval
    put_u32(b, 0);
}

// A PUBLISH encoded once per publisher; each message is a memcpy of `bytes` with the
// packet id and the payload header patched in place, so the hot path does no encoding
// work proportional to the topic or properties.
struct publish_template {
    bytes bytes_;
    std::size_t packet_id_offset = 0;  // meaningful for QoS > 0 only
    std::size_t payload_offset = 0;
};

inline publish_template make_publish_template(std::uint8_t version, std::string_view topic,
                                              std::uint8_t qos, std::size_t payload_size) {
    publish_template t;
    std::size_t body = 2 + topic.size() + (qos > 0 ? 2 : 0) + (version == v5 ? 1 : 0) + payload_size;
    bytes& b = t.bytes_;
    b.reserve(body + 5);
    put_u8(b, static_cast<std::uint8_t>(0x30 | (qos << 1)));
    put_varint(b, static_cast<std::uint32_t>(body));
    put_str(b, topic);
    if (qos > 0) {
        t.packet_id_offset = b.size();
        put_u16(b, 0);
    }
    if (version == v5) put_u8(b, 0);  // no properties
    t.payload_offset = b.size();
    // Filler is a printable pattern so a captured trace is readable; the header bytes
    // at the front are overwritten per message.
    for (std::size_t i = 0; i < payload_size; ++i) b.push_back(static_cast<std::uint8_t>('a' + i % 26));
    return t;
}

// ---- framing -----------------------------------------------------------------------

enum class frame_status : std::uint8_t { ok, need_more, malformed };

struct frame {
    std::uint8_t first = 0;  // type << 4 | flags
    body_view body;
    std::size_t size = 0;    // whole packet: fixed header + body

    packet_type type() const noexcept { return static_cast<packet_type>(first >> 4); }
};

// Splits the first whole packet off `in`. need_more also reports, through
// `needed`, how many bytes the whole packet takes once the header is readable, so the
// caller can grow its buffer for a packet larger than the buffer.
inline frame_status next_frame(body_view in, frame& out, std::size_t& needed) noexcept {
    needed = 0;
    if (in.size() < 2) return frame_status::need_more;
    std::uint32_t len = 0;
    std::size_t i = 1;
    for (int shift = 0;; shift += 7) {
        if (i >= in.size()) return frame_status::need_more;
        if (i > 4) return frame_status::malformed;  // more than 4 length bytes [MQTT-1.5.5-1]
        const std::uint8_t byte = in[i++];
        len |= static_cast<std::uint32_t>(byte & 0x7f) << shift;
        if ((byte & 0x80) == 0) break;
    }
    needed = i + len;
    if (in.size() < needed) return frame_status::need_more;
    out.first = in[0];
    out.body = in.subspan(i, len);
    out.size = needed;
    return frame_status::ok;
}

// ---- decoding of the packets a client receives --------------------------------------

class reader {
public:
    explicit reader(body_view b) noexcept : b_(b) {}
    bool u8(std::uint8_t& v) noexcept {
        if (pos_ + 1 > b_.size()) return false;
        v = b_[pos_++];
        return true;
    }
    bool u16(std::uint16_t& v) noexcept {
        if (pos_ + 2 > b_.size()) return false;
        v = static_cast<std::uint16_t>(b_[pos_] << 8 | b_[pos_ + 1]);
        pos_ += 2;
        return true;
    }
    bool u32(std::uint32_t& v) noexcept {
        std::uint16_t hi = 0, lo = 0;
        if (!u16(hi) || !u16(lo)) return false;
        v = std::uint32_t{hi} << 16 | lo;
        return true;
    }
    bool varint(std::uint32_t& v) noexcept {
        v = 0;
        for (int shift = 0; shift < 28; shift += 7) {
            std::uint8_t byte = 0;
            if (!u8(byte)) return false;
            v |= static_cast<std::uint32_t>(byte & 0x7f) << shift;
            if ((byte & 0x80) == 0) return true;
        }
        return false;
    }
    bool skip(std::size_t n) noexcept {
        if (pos_ + n > b_.size()) return false;
        pos_ += n;
        return true;
    }
    bool sized(body_view& out) noexcept {  // 2-byte length prefixed string or binary
        std::uint16_t n = 0;
        if (!u16(n) || pos_ + n > b_.size()) return false;
        out = b_.subspan(pos_, n);
        pos_ += n;
        return true;
    }
    std::size_t remaining() const noexcept { return b_.size() - pos_; }
    body_view rest() const noexcept { return b_.subspan(pos_); }

private:
    body_view b_;
    std::size_t pos_ = 0;
};

// What a v5 CONNACK may tell the client that changes how the bench behaves.
struct connack_info {
    bool session_present = false;
    std::uint8_t code = 0;               // 3.1.1 return code or v5 reason code
    std::uint16_t receive_maximum = 65535;
    std::uint32_t maximum_packet_size = 0;  // 0 = no limit stated
    std::uint16_t server_keep_alive = 0;    // 0 = not stated
    bool has_server_keep_alive = false;
};

// Walks a v5 property block, keeping the few values we act on and skipping the rest by
// their type. Unknown ids make the block malformed [MQTT-2.2.2-1].
inline bool read_properties(reader& r, connack_info* info) noexcept {
    std::uint32_t len = 0;
    if (!r.varint(len) || len > r.remaining()) return false;
    reader p(r.rest().subspan(0, len));
    r.skip(len);
    while (p.remaining() > 0) {
        std::uint32_t id = 0;
        if (!p.varint(id)) return false;
        std::uint8_t u8v = 0;
        std::uint16_t u16v = 0;
        std::uint32_t u32v = 0;
        body_view s;
        switch (id) {
        case 0x01: case 0x17: case 0x19: case 0x24: case 0x25: case 0x28: case 0x29: case 0x2a:
            if (!p.u8(u8v)) return false;
            break;
        case 0x13: case 0x21: case 0x22: case 0x23:
            if (!p.u16(u16v)) return false;
            if (info && id == 0x21) info->receive_maximum = u16v;
            if (info && id == 0x13) {
                info->server_keep_alive = u16v;
                info->has_server_keep_alive = true;
            }
            break;
        case 0x02: case 0x11: case 0x18: case 0x27:
            if (!p.u32(u32v)) return false;
            if (info && id == 0x27) info->maximum_packet_size = u32v;
            break;
        case 0x0b:
            if (!p.varint(u32v)) return false;
            break;
        case 0x03: case 0x08: case 0x09: case 0x12: case 0x15: case 0x16: case 0x1a: case 0x1c: case 0x1f:
            if (!p.sized(s)) return false;
            break;
        case 0x26:
            if (!p.sized(s) || !p.sized(s)) return false;
            break;
        default:
            return false;
        }
    }
    return true;
}

inline bool decode_connack(body_view body, std::uint8_t version, connack_info& out) noexcept {
    reader r(body);
    std::uint8_t flags = 0;
    if (!r.u8(flags) || !r.u8(out.code)) return false;
    out.session_present = (flags & 1) != 0;
    if (version == v5 && r.remaining() > 0 && !read_properties(r, &out)) return false;
    return true;
}

inline bool connack_accepted(const connack_info& c) noexcept { return c.code == 0; }

// PUBACK / PUBREC / PUBREL / PUBCOMP: packet id and (v5) reason code, 0 when omitted.
struct ack_info {
    std::uint16_t packet_id = 0;
    std::uint8_t reason = 0;
};

inline bool decode_ack(body_view body, std::uint8_t version, ack_info& out) noexcept {
    reader r(body);
    if (!r.u16(out.packet_id)) return false;
    out.reason = 0;
    if (version == v5 && r.remaining() > 0) {
        if (!r.u8(out.reason)) return false;
        if (r.remaining() > 0 && !read_properties(r, nullptr)) return false;
    }
    return version == v5 || r.remaining() == 0;
}

// SUBACK for a single-filter SUBSCRIBE: the packet id and the one return/reason code.
inline bool decode_suback(body_view body, std::uint8_t version, std::uint16_t& packet_id,
                          std::uint8_t& code) noexcept {
    reader r(body);
    if (!r.u16(packet_id)) return false;
    if (version == v5 && !read_properties(r, nullptr)) return false;
    return r.u8(code);
}

// Failure is 0x80 in 3.1.1 and any code >= 0x80 in v5.
inline bool suback_granted(std::uint8_t code) noexcept { return code < 0x80; }

struct publish_info {
    std::uint8_t qos = 0;
    std::uint16_t packet_id = 0;
    body_view topic;
    body_view payload;
};

inline bool decode_publish(std::uint8_t first, body_view body, std::uint8_t version,
                           publish_info& out) noexcept {
    out.qos = (first >> 1) & 3;
    if (out.qos == 3) return false;  // [MQTT-3.3.1-4]
    reader r(body);
    if (!r.sized(out.topic)) return false;
    out.packet_id = 0;
    if (out.qos > 0 && (!r.u16(out.packet_id) || out.packet_id == 0)) return false;
    if (version == v5) {
        // Skipping without interpreting is enough: we never use aliases or user props.
        std::uint32_t len = 0;
        if (!r.varint(len) || !r.skip(len)) return false;
    }
    out.payload = r.rest();
    return true;
}

// v5 DISCONNECT from the server carries why; 3.1.1 servers just close.
inline std::uint8_t decode_disconnect_reason(body_view body) noexcept {
    return body.empty() ? 0 : body[0];
}

}  // namespace edgemq::bench::wire
