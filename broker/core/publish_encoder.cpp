#include "broker/core/publish_encoder.hpp"

#include "broker/protocol/varint.hpp"

namespace edgemq::core {

void publish_encoder::append_header(const session::message_ptr& msg, protocol::protocol_version version,
                                    const protocol::publish_header& h, std::size_t payload_size,
                                    std::string& out) {
    const bool per_subscriber = h.topic_alias != 0 || !h.subscription_identifiers.empty();
    if (per_subscriber) {
        protocol::encode_publish_header(version, h, payload_size, out);
        return;
    }
    if (current_ != msg) {
        current_ = msg;
        for (layout_slot& s : slots_) s.valid = false;
    }
    layout_slot& slot = slots_[slot_index(version, h)];
    if (!slot.valid || slot.expiry != h.message_expiry_interval) {
        slot.header.clear();
        protocol::encode_publish_header(version, h, payload_size, slot.header);
        // The packet id follows the fixed header (type byte, remaining length) and the
        // topic name (2-byte length + bytes) [MQTT-3.3.2].
        std::size_t pos = 1;
        while (static_cast<unsigned char>(slot.header[pos]) & 0x80) ++pos;
        slot.packet_id_offset = pos + 1 + 2 + h.topic.size();
        slot.expiry = h.message_expiry_interval;
        slot.valid = true;
    } else {
        ++hits_;
    }
    const std::size_t start = out.size();
    out.append(slot.header);
    if (h.qos > 0) {
        out[start + slot.packet_id_offset] = static_cast<char>(h.packet_id >> 8);
        out[start + slot.packet_id_offset + 1] = static_cast<char>(h.packet_id & 0xFF);
    }
}

}  // namespace edgemq::core
