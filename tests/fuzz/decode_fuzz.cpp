// libFuzzer target for the codec. The first byte picks the connection's protocol
// version; the rest is a byte stream cut into packets with parse_fixed_header() and
// decoded one by one, as a connection does.
//
// Oracle: anything that decodes must encode to exactly encoded_size() bytes and decode
// back to an equal packet (decode -> encode -> decode is the identity); a decoded
// PUBLISH must also survive the delivery path (encode_forwarded_properties +
// encode_publish_header + payload). Any mismatch aborts, which libFuzzer reports.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "broker/protocol/codec.hpp"

using namespace edgemq::protocol;

namespace {

[[noreturn]] void oracle_failed(const char* what) {
    std::fprintf(stderr, "round-trip oracle failed: %s\n", what);
    std::abort();
}

result<packet> decode_all(protocol_version version, std::string_view bytes) {
    fixed_header h;
    if (parse_fixed_header(bytes, h) != frame_status::ready) oracle_failed("re-encoded header unreadable");
    if (h.packet_size() != bytes.size()) oracle_failed("re-encoded packet size differs from its header");
    return decode(version, h, bytes.substr(h.header_size));
}

void check_round_trip(protocol_version version, const packet& p) {
    // CONNECT is written in its own version, like decode() reads it.
    const protocol_version v =
        std::holds_alternative<connect>(p) ? std::get<connect>(p).version : version;
    std::string bytes;
    encode(v, p, bytes);
    if (bytes.size() != encoded_size(v, p)) oracle_failed("encoded_size() differs from encode()");
    const result<packet> again = decode_all(v, bytes);
    if (!again.ok()) {
        std::fprintf(stderr, "re-decode error: %s\n", again.err().what);
        oracle_failed("re-encoded packet does not decode");
    }
    if (!(*again == p)) oracle_failed("re-decoded packet differs");

    if (const auto* pub = std::get_if<publish>(&p)) {
        std::string forwarded;
        encode_forwarded_properties(pub->props, forwarded);
        publish_header h;
        h.topic = pub->topic;
        h.qos = pub->qos;
        h.retain = pub->retain;
        h.dup = pub->dup;
        h.packet_id = pub->packet_id;
        h.message_expiry_interval = pub->props.message_expiry_interval;
        h.topic_alias = pub->props.topic_alias.value_or(0);
        h.subscription_identifiers = pub->props.subscription_identifiers;
        h.forwarded_properties = forwarded;
        std::string wire;
        const std::size_t written = encode_publish_header(v, h, pub->payload.size(), wire);
        if (written != wire.size()) oracle_failed("encode_publish_header() return value");
        wire += pub->payload;
        if (wire.size() != publish_packet_size(v, h, pub->payload.size()))
            oracle_failed("publish_packet_size() differs from encode_publish_header()");
        const result<packet> delivered = decode_all(v, wire);
        if (!delivered.ok()) oracle_failed("delivery-path PUBLISH does not decode");
        // Property order differs (the header writes its own fields first), values do not.
        if (!(*delivered == p)) oracle_failed("delivery-path PUBLISH differs");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    static constexpr protocol_version versions[] = {protocol_version::v5, protocol_version::v311,
                                                    protocol_version::v31};
    const protocol_version version = versions[data[0] % 3];
    std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);

    while (!rest.empty()) {
        fixed_header h;
        if (parse_fixed_header(rest, h) != frame_status::ready) break;
        if (rest.size() < h.packet_size()) break;
        const std::string_view body = rest.substr(h.header_size, h.remaining_length);
        if (h.type == packet_type::connect) (void)peek_connect_preamble(body);
        const result<packet> r = decode(version, h, body);
        if (r.ok()) {
            check_round_trip(version, *r);
        } else if (r.err().what == nullptr) {
            oracle_failed("error without a diagnostic");
        }
        rest.remove_prefix(h.packet_size());
    }
    return 0;
}
