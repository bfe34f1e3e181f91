#include "broker/protocol/codec.hpp"

#include <cassert>

#include "broker/protocol/validate.hpp"
#include "broker/protocol/varint.hpp"
#include "broker/protocol/wire.hpp"

namespace edgemq::protocol {

using wire::property_context;
using wire::reader;

namespace {

constexpr std::string_view share_prefix = "$share/";

bool is_v5(protocol_version v) noexcept { return v == protocol_version::v5; }

// --- decoding --------------------------------------------------------------------

// Fails the reader unless every byte of the body was consumed.
bool expect_end(reader& r, const char* what) {
    if (r.failed()) return false;
    if (!r.empty()) return r.fail(reason_code::malformed_packet, what);
    return true;
}

bool read_packet_id(reader& r, std::uint16_t& id) {
    if (!r.u16(id)) return false;
    if (id == 0)
        return r.fail(reason_code::malformed_packet, "[MQTT-2.2.1-3] Packet Identifier 0");
    return true;
}

result<packet> decode_connect(std::string_view body) {
    reader r(body);
    connect c;
    std::string_view name;
    std::uint8_t level = 0;
    if (!r.prefixed(name) || !r.u8(level)) return r.err();
    if (name == "MQTT") {
        if (level == 4) c.version = protocol_version::v311;
        else if (level == 5) c.version = protocol_version::v5;
        else return error{reason_code::unsupported_protocol_version, "[MQTT-3.1.2-2] unsupported protocol level"};
    } else if (name == "MQIsdp") {
        if (level != 3)
            return error{reason_code::unsupported_protocol_version, "[MQTT-3.1.2-2] MQIsdp with a level other than 3"};
        c.version = protocol_version::v31;
    } else {
        return malformed("[MQTT-3.1.2-1] protocol name is neither MQTT nor MQIsdp");
    }
    const bool v5 = is_v5(c.version);

    std::uint8_t flags = 0;
    if (!r.u8(flags) || !r.u16(c.keep_alive)) return r.err();
    const bool has_will = (flags & 0x04) != 0;
    const std::uint8_t will_qos = (flags >> 3) & 0x03;
    const bool will_retain = (flags & 0x20) != 0;
    const bool has_password = (flags & 0x40) != 0;
    const bool has_username = (flags & 0x80) != 0;
    if (flags & 0x01) return malformed("[MQTT-3.1.2-3] reserved CONNECT flag set");
    if (!has_will && will_qos != 0) return malformed("[MQTT-3.1.2-11] Will QoS set without the Will Flag");
    if (!has_will && will_retain) return malformed("[MQTT-3.1.2-13] Will Retain set without the Will Flag");
    if (will_qos == 3) return malformed("[MQTT-3.1.2-12] Will QoS 3");
    // 3.1.1 forbids a password without a user name; MQTT 5 allows it (3.1.2.9).
    if (!v5 && has_password && !has_username)
        return malformed("[MQTT-3.1.2-22] Password Flag set without the User Name Flag");
    c.clean_start = (flags & 0x02) != 0;

    if (v5) {
        if (!wire::read_properties(r, property_context::connect, c.props)) return r.err();
        if (c.props.authentication_data && !c.props.authentication_method)
            return protocol_violation("[MQTT-3.1.2.11.10] Authentication Data without Authentication Method");
    }

    std::string_view client_id;
    if (!r.utf8(client_id, "[MQTT-3.1.3-4] Client Identifier is not valid UTF-8")) return r.err();
    c.client_id.assign(client_id);

    if (has_will) {
        will_message& will = c.will.emplace();
        will.qos = will_qos;
        will.retain = will_retain;
        if (v5 && !wire::read_properties(r, property_context::will, will.props)) return r.err();
        std::string_view topic, payload;
        if (!r.prefixed(topic)) return r.err();
        // The Will Topic is a Topic Name [MQTT-3.1.3-11]: UTF-8, no wildcards.
        if (auto checked = validate_topic_name(topic); !checked) return checked.err();
        if (!r.prefixed(payload)) return r.err();
        will.topic.assign(topic);
        will.payload.assign(payload);
    }
    if (has_username) {
        std::string_view username;
        if (!r.utf8(username, "[MQTT-3.1.3-12] User Name is not valid UTF-8")) return r.err();
        c.username.emplace(username);
    }
    if (has_password) {
        std::string_view password;
        if (!r.prefixed(password)) return r.err();
        c.password.emplace(password);
    }
    if (!expect_end(r, "[MQTT-3.1.3] bytes after the last CONNECT field")) return r.err();
    return packet{std::move(c)};
}

result<packet> decode_connack(protocol_version version, std::string_view body) {
    reader r(body);
    connack c;
    std::uint8_t ack_flags = 0, code = 0;
    if (!r.u8(ack_flags) || !r.u8(code)) return r.err();
    if (ack_flags & 0xFE) return malformed("[MQTT-3.2.2-1] reserved Connect Acknowledge Flags set");
    c.session_present = (ack_flags & 0x01) != 0;
    if (is_v5(version)) {
        c.code = static_cast<reason_code>(code);
        if (!is_valid_for(reason_context::connack, c.code))
            return malformed("[MQTT-3.2.2.2] reason code not allowed in CONNACK");
        if (!wire::read_properties(r, property_context::connack, c.props)) return r.err();
        if (c.session_present && is_failure(c.code))
            return protocol_violation("[MQTT-3.2.2-6] Session Present with a failure reason code");
    } else {
        if (code > 5) return malformed("[MQTT-3.2.2-4] reserved CONNACK return code");
        c.code = from_v311_connack_code(code);
        if (c.session_present && code != 0)
            return malformed("[MQTT-3.2.2-4] Session Present with a non-zero return code");
    }
    if (!expect_end(r, "[MQTT-3.2] bytes after the last CONNACK field")) return r.err();
    return packet{std::move(c)};
}

// The hot path: one pass over the body, one copy each of topic and payload.
result<packet> decode_publish(protocol_version version, std::uint8_t flags, std::string_view body) {
    publish p;
    p.retain = (flags & 0x01) != 0;
    p.qos = (flags >> 1) & 0x03;
    p.dup = (flags & 0x08) != 0;
    if (p.qos == 3) return malformed("[MQTT-3.3.1-4] PUBLISH with QoS 3");
    if (p.dup && p.qos == 0) return malformed("[MQTT-3.3.1-2] DUP set on a QoS 0 PUBLISH");

    reader r(body);
    std::string_view topic;
    if (!r.prefixed(topic)) return r.err();
    bool wildcard = false;
    if (!wire::scan_utf8(topic, wildcard))
        return malformed("[MQTT-3.3.2-1] Topic Name is not valid UTF-8");
    if (wildcard)
        return error{reason_code::topic_name_invalid, "[MQTT-3.3.2-2] Topic Name contains a wildcard"};
    if (p.qos > 0 && !read_packet_id(r, p.packet_id)) return r.err();
    if (is_v5(version)) {
        if (!wire::read_properties(r, property_context::publish, p.props)) return r.err();
        if (topic.empty() && !p.props.topic_alias)
            return protocol_violation("[MQTT-3.3.2.3.4] empty Topic Name without a Topic Alias");
    } else if (topic.empty()) {
        return error{reason_code::topic_name_invalid, "[MQTT-4.7.3-1] empty Topic Name"};
    }
    p.topic.assign(topic);
    p.payload.assign(r.rest());
    return packet{std::move(p)};
}

// PUBACK, PUBREC, PUBREL and PUBCOMP.
template <class Ack>
result<packet> decode_ack(protocol_version version, std::string_view body, reason_context context) {
    reader r(body);
    Ack a;
    if (!read_packet_id(r, a.packet_id)) return r.err();
    // v5: Remaining Length 2 means Success without properties; below 4 there is no
    // Property Length [MQTT-3.4.2-1], 3.4.2.2.
    if (is_v5(version) && !r.empty()) {
        std::uint8_t code = 0;
        r.u8(code);
        a.code = static_cast<reason_code>(code);
        if (!is_valid_for(context, a.code))
            return malformed("[MQTT-3.4.2.1] reason code not allowed in this acknowledgement");
        if (!r.empty() && !wire::read_properties(r, property_context::ack, a.props)) return r.err();
    }
    if (!expect_end(r, "[MQTT-3.4] bytes after the last acknowledgement field")) return r.err();
    return packet{std::move(a)};
}

result<packet> decode_subscribe(protocol_version version, std::string_view body) {
    const bool v5 = is_v5(version);
    reader r(body);
    subscribe s;
    if (!read_packet_id(r, s.packet_id)) return r.err();
    if (v5 && !wire::read_properties(r, property_context::subscribe, s.props)) return r.err();
    if (r.empty()) {
        if (v5) return protocol_violation("[MQTT-3.8.3-2] SUBSCRIBE without a Topic Filter");
        return malformed("[MQTT-3.8.3-3] SUBSCRIBE without a Topic Filter");
    }
    while (!r.empty()) {
        std::string_view filter;
        std::uint8_t options = 0;
        if (!r.utf8(filter, "[MQTT-3.8.3-1] Topic Filter is not valid UTF-8") || !r.u8(options))
            return r.err();
        subscription_request& entry = s.entries.emplace_back();
        entry.filter.assign(filter);
        entry.options.qos = options & 0x03;
        if (v5) {
            if (options & 0xC0) return malformed("[MQTT-3.8.3-5] reserved Subscription Options bits set");
            if (entry.options.qos == 3) return protocol_violation("[MQTT-3.8.3.1] Maximum QoS 3");
            entry.options.no_local = (options & 0x04) != 0;
            entry.options.retain_as_published = (options & 0x08) != 0;
            entry.options.retain_handling = (options >> 4) & 0x03;
            if (entry.options.retain_handling == 3)
                return protocol_violation("[MQTT-3.8.3.1] Retain Handling 3");
            if (entry.options.no_local && filter.starts_with(share_prefix))
                return protocol_violation("[MQTT-3.8.3-4] No Local on a Shared Subscription");
        } else {
            // 3.1.1: upper six bits reserved, QoS 3 not allowed [MQTT-3-8.3-4].
            if ((options & 0xFC) || entry.options.qos == 3)
                return malformed("[MQTT-3-8.3-4] reserved bits or QoS 3 in a SUBSCRIBE request");
        }
    }
    return packet{std::move(s)};
}

result<packet> decode_suback(protocol_version version, std::string_view body) {
    const bool v5 = is_v5(version);
    reader r(body);
    suback s;
    if (!read_packet_id(r, s.packet_id)) return r.err();
    if (v5 && !wire::read_properties(r, property_context::suback, s.props)) return r.err();
    if (r.empty()) {
        if (v5) return protocol_violation("[MQTT-3.9.3] SUBACK without a reason code");
        return malformed("[MQTT-3.9.3] SUBACK without a return code");
    }
    const std::string_view codes = r.rest();
    s.codes.reserve(codes.size());
    for (char byte : codes) {
        const auto code = static_cast<reason_code>(static_cast<std::uint8_t>(byte));
        if (v5) {
            if (!is_valid_for(reason_context::suback, code))
                return malformed("[MQTT-3.9.3] reason code not allowed in SUBACK");
        } else if (static_cast<std::uint8_t>(code) > 2 && code != reason_code::unspecified_error) {
            return malformed("[MQTT-3.9.3-2] SUBACK return code other than 0x00-0x02, 0x80");
        }
        s.codes.push_back(code);
    }
    return packet{std::move(s)};
}

result<packet> decode_unsubscribe(protocol_version version, std::string_view body) {
    const bool v5 = is_v5(version);
    reader r(body);
    unsubscribe u;
    if (!read_packet_id(r, u.packet_id)) return r.err();
    if (v5 && !wire::read_properties(r, property_context::unsubscribe, u.props)) return r.err();
    if (r.empty()) {
        if (v5) return protocol_violation("[MQTT-3.10.3-2] UNSUBSCRIBE without a Topic Filter");
        return malformed("[MQTT-3.10.3-2] UNSUBSCRIBE without a Topic Filter");
    }
    while (!r.empty()) {
        std::string_view filter;
        if (!r.utf8(filter, "[MQTT-3.10.3-1] Topic Filter is not valid UTF-8")) return r.err();
        u.filters.emplace_back(filter);
    }
    return packet{std::move(u)};
}

result<packet> decode_unsuback(protocol_version version, std::string_view body) {
    reader r(body);
    unsuback u;
    if (!read_packet_id(r, u.packet_id)) return r.err();
    if (is_v5(version)) {
        if (!wire::read_properties(r, property_context::unsuback, u.props)) return r.err();
        if (r.empty()) return protocol_violation("[MQTT-3.11.3] UNSUBACK without a reason code");
        const std::string_view codes = r.rest();
        u.codes.reserve(codes.size());
        for (char byte : codes) {
            const auto code = static_cast<reason_code>(static_cast<std::uint8_t>(byte));
            if (!is_valid_for(reason_context::unsuback, code))
                return malformed("[MQTT-3.11.3] reason code not allowed in UNSUBACK");
            u.codes.push_back(code);
        }
        return packet{std::move(u)};
    }
    if (!expect_end(r, "[MQTT-3.11] bytes after the UNSUBACK Packet Identifier")) return r.err();
    return packet{std::move(u)};
}

// DISCONNECT and AUTH: in v5 Remaining Length 0 means Success without properties,
// and below 2 there is no Property Length (3.14.2.1, 3.15.2.1).
template <class Packet>
result<packet> decode_reason_and_properties(std::string_view body, reason_context context,
                                            property_context props_context) {
    reader r(body);
    Packet p;
    if (!r.empty()) {
        std::uint8_t code = 0;
        r.u8(code);
        p.code = static_cast<reason_code>(code);
        if (!is_valid_for(context, p.code))
            return malformed(context == reason_context::auth
                                 ? "[MQTT-3.15.2.1] reason code not allowed in AUTH"
                                 : "[MQTT-3.14.2.1] reason code not allowed in DISCONNECT");
        if (!r.empty() && !wire::read_properties(r, props_context, p.props)) return r.err();
    }
    if (!expect_end(r, "[MQTT-3.14] bytes after the last field")) return r.err();
    return packet{std::move(p)};
}

// --- encoding --------------------------------------------------------------------

bool properties_empty(const properties& props) { return encoded_size(props) == 0; }

template <class Sink>
void put_body(protocol_version, const connect& c, Sink& s) {
    const protocol_version v = c.version;
    s.prefixed(v == protocol_version::v31 ? "MQIsdp" : "MQTT");
    s.u8(static_cast<std::uint8_t>(v));
    std::uint8_t flags = 0;
    if (c.clean_start) flags |= 0x02;
    if (c.will) {
        flags |= 0x04;
        flags |= static_cast<std::uint8_t>((c.will->qos & 0x03) << 3);
        if (c.will->retain) flags |= 0x20;
    }
    if (c.password) flags |= 0x40;
    if (c.username) flags |= 0x80;
    s.u8(flags);
    s.u16(c.keep_alive);
    if (is_v5(v)) wire::put_properties(c.props, s);
    s.prefixed(c.client_id);
    if (c.will) {
        if (is_v5(v)) wire::put_properties(c.will->props, s);
        s.prefixed(c.will->topic);
        s.prefixed(c.will->payload);
    }
    if (c.username) s.prefixed(*c.username);
    if (c.password) s.prefixed(*c.password);
}

template <class Sink>
void put_body(protocol_version v, const connack& c, Sink& s) {
    s.u8(c.session_present ? 1 : 0);
    if (is_v5(v)) {
        s.u8(static_cast<std::uint8_t>(c.code));
        wire::put_properties(c.props, s);
    } else {
        s.u8(to_v311_connack_code(c.code));
    }
}

template <class Sink>
void put_body(protocol_version v, const publish& p, Sink& s) {
    s.prefixed(p.topic);
    if (p.qos > 0) s.u16(p.packet_id);
    if (is_v5(v)) wire::put_properties(p.props, s);
    s.bytes(p.payload);
}

template <class Sink>
void put_ack_body(protocol_version v, const puback& a, Sink& s) {
    s.u16(a.packet_id);
    if (!is_v5(v)) return;
    // The shortest form the spec allows [MQTT-3.4.2-1 ff.].
    const bool has_props = !properties_empty(a.props);
    if (a.code == reason_code::success && !has_props) return;
    s.u8(static_cast<std::uint8_t>(a.code));
    if (has_props) wire::put_properties(a.props, s);
}
template <class Sink>
void put_body(protocol_version v, const puback& a, Sink& s) { put_ack_body(v, a, s); }
template <class Sink>
void put_body(protocol_version v, const pubrec& a, Sink& s) { put_ack_body(v, a, s); }
template <class Sink>
void put_body(protocol_version v, const pubrel& a, Sink& s) { put_ack_body(v, a, s); }
template <class Sink>
void put_body(protocol_version v, const pubcomp& a, Sink& s) { put_ack_body(v, a, s); }

template <class Sink>
void put_body(protocol_version v, const subscribe& p, Sink& s) {
    s.u16(p.packet_id);
    if (is_v5(v)) wire::put_properties(p.props, s);
    for (const subscription_request& e : p.entries) {
        s.prefixed(e.filter);
        std::uint8_t options = e.options.qos & 0x03;
        if (is_v5(v)) {
            if (e.options.no_local) options |= 0x04;
            if (e.options.retain_as_published) options |= 0x08;
            options |= static_cast<std::uint8_t>((e.options.retain_handling & 0x03) << 4);
        }
        s.u8(options);
    }
}

template <class Sink>
void put_body(protocol_version v, const suback& p, Sink& s) {
    s.u16(p.packet_id);
    if (is_v5(v)) wire::put_properties(p.props, s);
    for (reason_code code : p.codes) {
        auto byte = static_cast<std::uint8_t>(code);
        // 3.1.1 knows only granted QoS 0..2 and Failure 0x80 [MQTT-3.9.3-2].
        if (!is_v5(v) && byte > 2) byte = 0x80;
        s.u8(byte);
    }
}

template <class Sink>
void put_body(protocol_version v, const unsubscribe& p, Sink& s) {
    s.u16(p.packet_id);
    if (is_v5(v)) wire::put_properties(p.props, s);
    for (const std::string& filter : p.filters) s.prefixed(filter);
}

template <class Sink>
void put_body(protocol_version v, const unsuback& p, Sink& s) {
    s.u16(p.packet_id);
    if (!is_v5(v)) return;
    wire::put_properties(p.props, s);
    for (reason_code code : p.codes) s.u8(static_cast<std::uint8_t>(code));
}

template <class Sink>
void put_body(protocol_version, const pingreq&, Sink&) {}
template <class Sink>
void put_body(protocol_version, const pingresp&, Sink&) {}

template <class Packet, class Sink>
void put_reason_and_properties(protocol_version v, const Packet& p, Sink& s) {
    if (!is_v5(v)) return;
    const bool has_props = !properties_empty(p.props);
    if (p.code == reason_code::success && !has_props) return;
    s.u8(static_cast<std::uint8_t>(p.code));
    if (has_props) wire::put_properties(p.props, s);
}
template <class Sink>
void put_body(protocol_version v, const disconnect& p, Sink& s) { put_reason_and_properties(v, p, s); }
template <class Sink>
void put_body(protocol_version v, const auth& p, Sink& s) { put_reason_and_properties(v, p, s); }

std::uint8_t first_byte(const packet& p) {
    const auto type = static_cast<std::uint8_t>(type_of(p));
    std::uint8_t flags = 0;
    if (const auto* pub = std::get_if<publish>(&p)) {
        flags = static_cast<std::uint8_t>((pub->dup ? 0x08 : 0) | ((pub->qos & 0x03) << 1) |
                                          (pub->retain ? 0x01 : 0));
    } else if (std::holds_alternative<pubrel>(p) || std::holds_alternative<subscribe>(p) ||
               std::holds_alternative<unsubscribe>(p)) {
        flags = 0x02;  // [MQTT-2.1.3-1]
    }
    return static_cast<std::uint8_t>(type << 4 | flags);
}

// CONNECT carries its own version; every other packet uses the connection's.
protocol_version effective_version(protocol_version v, const packet& p) {
    if (const auto* c = std::get_if<connect>(&p)) return c->version;
    return v;
}

std::size_t body_size(protocol_version v, const packet& p) {
    wire::size_sink sink;
    std::visit([&](const auto& body) { put_body(v, body, sink); }, p);
    return sink.n;
}

}  // namespace

frame_status parse_fixed_header(std::string_view buf, fixed_header& out) noexcept {
    if (buf.size() < 2) return frame_status::need_more;
    std::uint32_t length = 0;
    std::size_t used = 0;
    switch (read_varint(buf.substr(1), length, used)) {
        case varint_status::need_more: return frame_status::need_more;
        case varint_status::malformed: return frame_status::malformed;
        case varint_status::ok: break;
    }
    const auto first = static_cast<std::uint8_t>(buf[0]);
    out.type = static_cast<packet_type>(first >> 4);
    out.flags = first & 0x0F;
    out.remaining_length = length;
    out.header_size = static_cast<std::uint8_t>(1 + used);
    return frame_status::ready;
}

result<packet> decode(protocol_version version, const fixed_header& header, std::string_view body) {
    if (body.size() != header.remaining_length)
        return malformed("[MQTT-2.1.4] body size differs from the Remaining Length");
    const packet_type type = header.type;
    if (type == packet_type::reserved) return malformed("[MQTT-2.1.2] reserved packet type 0");
    if (type == packet_type::auth && !is_v5(version))
        return malformed("[MQTT-2.1.2] AUTH does not exist in MQTT 3.1.1");
    if (type == packet_type::publish) return decode_publish(version, header.flags, body);
    const bool needs_0010 = type == packet_type::pubrel || type == packet_type::subscribe ||
                            type == packet_type::unsubscribe;
    if (header.flags != (needs_0010 ? 0x02 : 0x00))
        return malformed("[MQTT-2.1.3-1] reserved fixed header flags");

    switch (type) {
        case packet_type::connect: return decode_connect(body);
        case packet_type::connack: return decode_connack(version, body);
        case packet_type::puback: return decode_ack<puback>(version, body, reason_context::puback);
        case packet_type::pubrec: return decode_ack<pubrec>(version, body, reason_context::puback);
        case packet_type::pubrel: return decode_ack<pubrel>(version, body, reason_context::pubrel);
        case packet_type::pubcomp: return decode_ack<pubcomp>(version, body, reason_context::pubrel);
        case packet_type::subscribe: return decode_subscribe(version, body);
        case packet_type::suback: return decode_suback(version, body);
        case packet_type::unsubscribe: return decode_unsubscribe(version, body);
        case packet_type::unsuback: return decode_unsuback(version, body);
        case packet_type::pingreq:
            if (!body.empty()) return malformed("[MQTT-3.12] PINGREQ with a body");
            return packet{pingreq{}};
        case packet_type::pingresp:
            if (!body.empty()) return malformed("[MQTT-3.13] PINGRESP with a body");
            return packet{pingresp{}};
        case packet_type::disconnect:
            if (!is_v5(version)) {
                if (!body.empty()) return malformed("[MQTT-3.14] 3.1.1 DISCONNECT with a body");
                return packet{disconnect{}};
            }
            return decode_reason_and_properties<disconnect>(body, reason_context::disconnect,
                                                            property_context::disconnect);
        case packet_type::auth:
            return decode_reason_and_properties<auth>(body, reason_context::auth, property_context::auth);
        case packet_type::reserved:
        case packet_type::publish:
            break;
    }
    return malformed("[MQTT-2.1.2] unknown packet type");
}

std::optional<connect_preamble> peek_connect_preamble(std::string_view body) noexcept {
    reader r(body);
    connect_preamble out;
    if (!r.prefixed(out.protocol_name) || !r.u8(out.level)) return std::nullopt;
    return out;
}

void encode(protocol_version version, const packet& p, std::string& out) {
    const protocol_version v = effective_version(version, p);
    // AUTH exists only in MQTT 5; there is nothing to write for 3.1.1.
    assert(is_v5(v) || !std::holds_alternative<auth>(p));
    if (!is_v5(v) && std::holds_alternative<auth>(p)) return;
    const std::size_t body = body_size(v, p);
    assert(body <= max_varint);
    out.reserve(out.size() + 1 + varint_size(static_cast<std::uint32_t>(body)) + body);
    out.push_back(static_cast<char>(first_byte(p)));
    write_varint(static_cast<std::uint32_t>(body), out);
    wire::string_sink sink{out};
    std::visit([&](const auto& b) { put_body(v, b, sink); }, p);
}

std::size_t encoded_size(protocol_version version, const packet& p) {
    const protocol_version v = effective_version(version, p);
    if (!is_v5(v) && std::holds_alternative<auth>(p)) return 0;
    const std::size_t body = body_size(v, p);
    return 1 + varint_size(static_cast<std::uint32_t>(body)) + body;
}

void encode_forwarded_properties(const properties& props, std::string& out) {
    wire::string_sink s{out};
    using id = property_id;
    auto tag = [&s](id i) { s.u8(static_cast<std::uint8_t>(i)); };
    if (props.payload_format_indicator) { tag(id::payload_format_indicator); s.u8(*props.payload_format_indicator); }
    if (props.content_type) { tag(id::content_type); s.prefixed(*props.content_type); }
    if (props.response_topic) { tag(id::response_topic); s.prefixed(*props.response_topic); }
    if (props.correlation_data) { tag(id::correlation_data); s.prefixed(*props.correlation_data); }
    for (const auto& [key, value] : props.user_properties) {
        tag(id::user_property);
        s.prefixed(key);
        s.prefixed(value);
    }
}

namespace {

std::size_t publish_property_length(const publish_header& h) noexcept {
    std::size_t n = h.forwarded_properties.size();
    if (h.message_expiry_interval) n += 1 + 4;
    if (h.topic_alias != 0) n += 1 + 2;
    for (std::uint32_t id : h.subscription_identifiers) n += 1 + varint_size(id);
    return n;
}

std::size_t publish_remaining_length(protocol_version version, const publish_header& h,
                                     std::size_t payload_size, std::size_t property_length) noexcept {
    std::size_t n = 2 + h.topic.size() + (h.qos > 0 ? 2 : 0) + payload_size;
    if (is_v5(version))
        n += varint_size(static_cast<std::uint32_t>(property_length)) + property_length;
    return n;
}

}  // namespace

std::size_t publish_packet_size(protocol_version version, const publish_header& h,
                                std::size_t payload_size) noexcept {
    const std::size_t remaining =
        publish_remaining_length(version, h, payload_size, publish_property_length(h));
    return 1 + varint_size(static_cast<std::uint32_t>(remaining)) + remaining;
}

std::size_t encode_publish_header(protocol_version version, const publish_header& h,
                                  std::size_t payload_size, std::string& out) {
    const std::size_t start = out.size();
    const std::size_t property_length = publish_property_length(h);
    const std::size_t remaining = publish_remaining_length(version, h, payload_size, property_length);
    assert(remaining <= max_varint);
    assert(h.qos <= 2 && (h.qos > 0) == (h.packet_id != 0));
    out.reserve(start + 1 + 4 + remaining - payload_size);
    wire::string_sink s{out};
    s.u8(static_cast<std::uint8_t>(0x30 | (h.dup ? 0x08 : 0) | ((h.qos & 0x03) << 1) | (h.retain ? 0x01 : 0)));
    s.varint(static_cast<std::uint32_t>(remaining));
    s.prefixed(h.topic);
    if (h.qos > 0) s.u16(h.packet_id);
    if (is_v5(version)) {
        s.varint(static_cast<std::uint32_t>(property_length));
        if (h.message_expiry_interval) {
            s.u8(static_cast<std::uint8_t>(property_id::message_expiry_interval));
            s.u32(*h.message_expiry_interval);
        }
        for (std::uint32_t id : h.subscription_identifiers) {
            s.u8(static_cast<std::uint8_t>(property_id::subscription_identifier));
            s.varint(id);
        }
        if (h.topic_alias != 0) {
            s.u8(static_cast<std::uint8_t>(property_id::topic_alias));
            s.u16(h.topic_alias);
        }
        s.bytes(h.forwarded_properties);
    }
    return out.size() - start;
}

}  // namespace edgemq::protocol
