#include "broker/protocol/packets.hpp"

namespace edgemq::protocol {

// The variant lists the alternatives in packet type order, CONNECT (1) first.
static_assert(std::variant_size_v<packet> == 15);
static_assert(std::is_same_v<std::variant_alternative_t<0, packet>, connect>);
static_assert(std::is_same_v<std::variant_alternative_t<14, packet>, auth>);

packet_type type_of(const packet& p) noexcept {
    return static_cast<packet_type>(p.index() + 1);
}

std::string_view to_string(packet_type type) noexcept {
    switch (type) {
        case packet_type::reserved: return "RESERVED";
        case packet_type::connect: return "CONNECT";
        case packet_type::connack: return "CONNACK";
        case packet_type::publish: return "PUBLISH";
        case packet_type::puback: return "PUBACK";
        case packet_type::pubrec: return "PUBREC";
        case packet_type::pubrel: return "PUBREL";
        case packet_type::pubcomp: return "PUBCOMP";
        case packet_type::subscribe: return "SUBSCRIBE";
        case packet_type::suback: return "SUBACK";
        case packet_type::unsubscribe: return "UNSUBSCRIBE";
        case packet_type::unsuback: return "UNSUBACK";
        case packet_type::pingreq: return "PINGREQ";
        case packet_type::pingresp: return "PINGRESP";
        case packet_type::disconnect: return "DISCONNECT";
        case packet_type::auth: return "AUTH";
    }
    return "unknown";
}

}  // namespace edgemq::protocol
