#include "support/mqtt_wire.hpp"

#include <cctype>
#include <cstdio>
#include <stdexcept>

namespace edgemq::test::wire {

namespace {

[[noreturn]] void malformed(const std::string& what) { throw std::runtime_error("malformed packet from broker: " + what); }

struct reader {
    std::span<const std::uint8_t> data;
    std::size_t pos = 0;

    void need(std::size_t n) const {
        if (data.size() - pos < n) malformed("truncated at byte " + std::to_string(pos));
    }
    std::uint8_t u8() {
        need(1);
        return data[pos++];
    }
    std::uint16_t u16() {
        need(2);
        std::uint16_t v = static_cast<std::uint16_t>(data[pos] << 8 | data[pos + 1]);
        pos += 2;
        return v;
    }
    std::uint32_t u32() {
        need(4);
        std::uint32_t v = std::uint32_t(data[pos]) << 24 | std::uint32_t(data[pos + 1]) << 16 |
                          std::uint32_t(data[pos + 2]) << 8 | data[pos + 3];
        pos += 4;
        return v;
    }
    std::uint32_t varint() {
        std::uint32_t v = 0;
        for (int i = 0; i < 4; ++i) {
            std::uint8_t b = u8();
            v |= std::uint32_t(b & 0x7F) << (7 * i);
            if (!(b & 0x80)) return v;
        }
        malformed("variable byte integer longer than 4 bytes");
    }
    std::string str() {
        std::uint16_t n = u16();
        need(n);
        std::string s(reinterpret_cast<const char*>(data.data() + pos), n);
        pos += n;
        return s;
    }
    bool done() const { return pos == data.size(); }
};

}  // namespace

std::string_view type_name(std::uint8_t type) {
    static constexpr std::string_view names[] = {"RESERVED0", "CONNECT", "CONNACK", "PUBLISH", "PUBACK",
                                                 "PUBREC", "PUBREL", "PUBCOMP", "SUBSCRIBE", "SUBACK",
                                                 "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP",
                                                 "DISCONNECT", "AUTH"};
    return type < 16 ? names[type] : "?";
}

bytes from_hex(std::string_view hex) {
    bytes out;
    int high = -1;
    for (char c : hex) {
        if (std::isspace(static_cast<unsigned char>(c)) || c == ':') {
            if (high >= 0) throw std::invalid_argument("odd hex digit count in '" + std::string(hex) + "'");
            continue;
        }
        int v;
        if (c >= '0' && c <= '9') v = c - '0';
        else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
        else throw std::invalid_argument("not hex: '" + std::string(1, c) + "' in '" + std::string(hex) + "'");
        if (high < 0) {
            high = v;
        } else {
            out.push_back(static_cast<std::uint8_t>(high << 4 | v));
            high = -1;
        }
    }
    if (high >= 0) throw std::invalid_argument("odd hex digit count in '" + std::string(hex) + "'");
    return out;
}

std::string to_hex(std::span<const std::uint8_t> data) {
    std::string out;
    char buf[4];
    for (std::size_t i = 0; i < data.size(); ++i) {
        std::snprintf(buf, sizeof buf, i ? " %02x" : "%02x", data[i]);
        out += buf;
    }
    return out;
}

// ---- writer ----

writer& writer::u8(std::uint8_t v) {
    out.push_back(v);
    return *this;
}
writer& writer::u16(std::uint16_t v) {
    out.push_back(static_cast<std::uint8_t>(v >> 8));
    out.push_back(static_cast<std::uint8_t>(v));
    return *this;
}
writer& writer::u32(std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(v >> s));
    return *this;
}
writer& writer::varint(std::uint32_t v) {
    do {
        std::uint8_t b = v & 0x7F;
        v >>= 7;
        out.push_back(v ? (b | 0x80) : b);
    } while (v);
    return *this;
}
writer& writer::str(std::string_view s) {
    u16(static_cast<std::uint16_t>(s.size()));
    out.insert(out.end(), s.begin(), s.end());
    return *this;
}
writer& writer::bin(std::span<const std::uint8_t> b) {
    u16(static_cast<std::uint16_t>(b.size()));
    return raw(b);
}
writer& writer::raw(std::span<const std::uint8_t> b) {
    out.insert(out.end(), b.begin(), b.end());
    return *this;
}

bytes props::encode() const {
    writer out;
    out.varint(static_cast<std::uint32_t>(w.out.size())).raw(w.out);
    return out.out;
}

// ---- properties ----

property_list parse_properties(std::span<const std::uint8_t> data, std::size_t& pos) {
    reader r{data, pos};
    std::uint32_t len = r.varint();
    r.need(len);
    std::size_t end = r.pos + len;
    property_list list;
    while (r.pos < end) {
        property p;
        p.id = static_cast<std::uint8_t>(r.varint());
        switch (p.id) {
        case 0x01: case 0x17: case 0x19: case 0x24: case 0x25: case 0x28: case 0x29: case 0x2A:
            p.value = r.u8();
            break;
        case 0x13: case 0x21: case 0x22: case 0x23:
            p.value = r.u16();
            break;
        case 0x02: case 0x11: case 0x18: case 0x27:
            p.value = r.u32();
            break;
        case 0x0B:
            p.value = r.varint();
            break;
        case 0x03: case 0x08: case 0x12: case 0x15: case 0x1A: case 0x1C: case 0x1F:
        case 0x09: case 0x16:
            p.str = r.str();
            break;
        case 0x26:
            p.str = r.str();
            p.str2 = r.str();
            break;
        default:
            malformed("unknown property id " + std::to_string(p.id));
        }
        list.push_back(std::move(p));
    }
    if (r.pos != end) malformed("property list overruns its length");
    pos = r.pos;
    return list;
}

const property* find(const property_list& list, std::uint8_t id) {
    for (auto& p : list)
        if (p.id == id) return &p;
    return nullptr;
}

std::vector<std::uint32_t> values(const property_list& list, std::uint8_t id) {
    std::vector<std::uint32_t> out;
    for (auto& p : list)
        if (p.id == id) out.push_back(p.value);
    return out;
}

// ---- packet ----

bytes frame(std::uint8_t header, std::span<const std::uint8_t> body) {
    writer w;
    w.u8(header).varint(static_cast<std::uint32_t>(body.size())).raw(body);
    return w.out;
}

bytes packet::encode() const { return frame(header, body); }

std::string packet::describe() const {
    char buf[32];
    std::snprintf(buf, sizeof buf, " flags=0x%x [", flags());
    return std::string(type_name(type())) + buf + to_hex(encode()) + "]";
}

// ---- builders ----

bytes connect(const connect_spec& c) {
    writer w;
    w.str("MQTT").u8(c.version);
    std::uint8_t flags = 0;
    if (c.clean) flags |= 0x02;
    if (c.will) flags |= static_cast<std::uint8_t>(0x04 | (c.will->qos << 3) | (c.will->retain ? 0x20 : 0));
    if (c.password) flags |= 0x40;
    if (c.username) flags |= 0x80;
    w.u8(flags).u16(c.keep_alive);
    if (c.version == v5) w.raw(c.properties.encode());
    w.str(c.client_id);
    if (c.will) {
        if (c.version == v5) w.raw(c.will->properties.encode());
        w.str(c.will->topic).str(c.will->payload);
    }
    if (c.username) w.str(*c.username);
    if (c.password) w.str(*c.password);
    return frame(0x10, w.out);
}

bytes publish(const publish_spec& p) {
    writer w;
    w.str(p.topic);
    if (p.qos > 0) w.u16(p.packet_id);
    if (p.version == v5) w.raw(p.properties.encode());
    w.out.insert(w.out.end(), p.payload.begin(), p.payload.end());
    auto header = static_cast<std::uint8_t>(0x30 | (p.dup ? 0x08 : 0) | (p.qos << 1) | (p.retain ? 1 : 0));
    return frame(header, w.out);
}

bytes ack(std::uint8_t type, std::uint16_t packet_id, std::uint8_t version, std::uint8_t reason) {
    writer w;
    w.u16(packet_id);
    if (version == v5 && reason != 0) w.u8(reason);
    std::uint8_t header = static_cast<std::uint8_t>(type << 4 | (type == PUBREL ? 0x02 : 0));
    return frame(header, w.out);
}

bytes subscribe(std::uint16_t packet_id, const std::vector<subscription>& subs, std::uint8_t version,
                const props& properties) {
    writer w;
    w.u16(packet_id);
    if (version == v5) w.raw(properties.encode());
    for (auto& s : subs) w.str(s.filter).u8(s.options);
    return frame(0x82, w.out);
}

bytes unsubscribe(std::uint16_t packet_id, const std::vector<std::string>& filters, std::uint8_t version) {
    writer w;
    w.u16(packet_id);
    if (version == v5) w.u8(0);
    for (auto& f : filters) w.str(f);
    return frame(0xA2, w.out);
}

bytes pingreq() { return {0xC0, 0x00}; }

bytes disconnect(std::uint8_t version, std::uint8_t reason, const props& properties) {
    if (version != v5 || (reason == 0 && properties.empty())) return {0xE0, 0x00};
    writer w;
    w.u8(reason).raw(properties.encode());
    return frame(0xE0, w.out);
}

// ---- parsers ----

connack_view parse_connack(const packet& p, std::uint8_t version) {
    if (p.type() != CONNACK) malformed("expected CONNACK, got " + p.describe());
    reader r{p.body};
    connack_view v;
    std::uint8_t ack_flags = r.u8();
    if (ack_flags & 0xFE) malformed("CONNACK reserved flags set: " + p.describe());
    v.session_present = ack_flags & 1;
    v.reason = r.u8();
    if (version == v5 && !r.done()) v.properties = parse_properties(p.body, r.pos);
    if (!r.done()) malformed("trailing bytes in " + p.describe());
    return v;
}

publish_view parse_publish(const packet& p, std::uint8_t version) {
    if (p.type() != PUBLISH) malformed("expected PUBLISH, got " + p.describe());
    reader r{p.body};
    publish_view v;
    v.dup = p.header & 0x08;
    v.qos = (p.header >> 1) & 3;
    v.retain = p.header & 1;
    if (v.qos == 3) malformed("QoS 3 in " + p.describe());
    v.topic = r.str();
    if (v.qos > 0) v.packet_id = r.u16();
    if (version == v5) v.properties = parse_properties(p.body, r.pos);
    v.payload.assign(reinterpret_cast<const char*>(p.body.data() + r.pos), p.body.size() - r.pos);
    return v;
}

ack_view parse_ack(const packet& p, std::uint8_t version) {
    ack_view v;
    reader r{p.body};
    v.packet_id = r.u16();
    switch (p.type()) {
    case PUBACK: case PUBREC: case PUBREL: case PUBCOMP:
        if (version == v5 && !r.done()) {
            v.reason = r.u8();
            if (!r.done()) v.properties = parse_properties(p.body, r.pos);
        }
        break;
    case SUBACK: case UNSUBACK:
        if (version == v5) v.properties = parse_properties(p.body, r.pos);
        v.reasons.assign(p.body.begin() + static_cast<std::ptrdiff_t>(r.pos), p.body.end());
        r.pos = p.body.size();
        if (!v.reasons.empty()) v.reason = v.reasons[0];
        break;
    default:
        malformed("expected an acknowledgement, got " + p.describe());
    }
    if (!r.done()) malformed("trailing bytes in " + p.describe());
    return v;
}

disconnect_view parse_disconnect(const packet& p) {
    if (p.type() != DISCONNECT) malformed("expected DISCONNECT, got " + p.describe());
    disconnect_view v;
    reader r{p.body};
    if (!r.done()) v.reason = r.u8();
    if (!r.done()) v.properties = parse_properties(p.body, r.pos);
    if (!r.done()) malformed("trailing bytes in " + p.describe());
    return v;
}

}  // namespace edgemq::test::wire
