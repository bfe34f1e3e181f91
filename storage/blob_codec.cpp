#include "storage/blob_codec.hpp"

#include <optional>
#include <type_traits>
#include <utility>

namespace edgemq::storage {
namespace {

constexpr std::uint8_t properties_format = 1;

// Calls f(id, field) for every field of protocol::properties, in identifier order.
// Encoder and decoder both walk this one list, so they cannot disagree.
template <class P, class F>
void for_each_property(P& p, F&& f) {
    using id = protocol::property_id;
    f(id::payload_format_indicator, p.payload_format_indicator);
    f(id::message_expiry_interval, p.message_expiry_interval);
    f(id::content_type, p.content_type);
    f(id::response_topic, p.response_topic);
    f(id::correlation_data, p.correlation_data);
    f(id::subscription_identifier, p.subscription_identifiers);
    f(id::session_expiry_interval, p.session_expiry_interval);
    f(id::assigned_client_identifier, p.assigned_client_identifier);
    f(id::server_keep_alive, p.server_keep_alive);
    f(id::authentication_method, p.authentication_method);
    f(id::authentication_data, p.authentication_data);
    f(id::request_problem_information, p.request_problem_information);
    f(id::will_delay_interval, p.will_delay_interval);
    f(id::request_response_information, p.request_response_information);
    f(id::response_information, p.response_information);
    f(id::server_reference, p.server_reference);
    f(id::reason_string, p.reason_string);
    f(id::receive_maximum, p.receive_maximum);
    f(id::topic_alias_maximum, p.topic_alias_maximum);
    f(id::topic_alias, p.topic_alias);
    f(id::maximum_qos, p.maximum_qos);
    f(id::retain_available, p.retain_available);
    f(id::user_property, p.user_properties);
    f(id::maximum_packet_size, p.maximum_packet_size);
    f(id::wildcard_subscription_available, p.wildcard_subscription_available);
    f(id::subscription_identifier_available, p.subscription_identifier_available);
    f(id::shared_subscription_available, p.shared_subscription_available);
}

template <class T>
void put_int(std::string& out, T v) {
    for (int shift = (sizeof(T) - 1) * 8; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}
void put_string(std::string& out, const std::string& s) {
    put_int(out, static_cast<std::uint32_t>(s.size()));
    out.append(s);
}

void put_value(std::string& out, std::uint8_t v) { put_int(out, v); }
void put_value(std::string& out, std::uint16_t v) { put_int(out, v); }
void put_value(std::string& out, std::uint32_t v) { put_int(out, v); }
void put_value(std::string& out, const std::string& v) { put_string(out, v); }
void put_value(std::string& out, const protocol::user_property& v) {
    put_string(out, v.first);
    put_string(out, v.second);
}

class reader {
public:
    explicit reader(std::string_view in) : in_(in) {}
    bool empty() const { return in_.empty(); }

    template <class T>
    bool get_int(T& v) {
        if (in_.size() < sizeof(T)) return false;
        std::uint64_t x = 0;
        for (std::size_t i = 0; i < sizeof(T); ++i) x = (x << 8) | static_cast<unsigned char>(in_[i]);
        v = static_cast<T>(x);
        in_.remove_prefix(sizeof(T));
        return true;
    }
    bool get(std::uint8_t& v) { return get_int(v); }
    bool get(std::uint16_t& v) { return get_int(v); }
    bool get(std::uint32_t& v) { return get_int(v); }
    bool get(std::string& v) {
        std::uint32_t n = 0;
        if (!get_int(n) || in_.size() < n) return false;
        v.assign(in_.substr(0, n));
        in_.remove_prefix(n);
        return true;
    }
    bool get(protocol::user_property& v) { return get(v.first) && get(v.second); }

private:
    std::string_view in_;
};

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

}  // namespace

std::string encode_properties(const protocol::properties& props) {
    std::string out;
    for_each_property(props, [&out](protocol::property_id id, const auto& field) {
        using field_t = std::remove_cvref_t<decltype(field)>;
        auto record = [&](const auto& value) {
            if (out.empty()) out.push_back(static_cast<char>(properties_format));
            out.push_back(static_cast<char>(id));
            put_value(out, value);
        };
        if constexpr (is_optional<field_t>::value) {
            if (field) record(*field);
        } else {
            for (const auto& value : field) record(value);
        }
    });
    return out;
}

bool decode_properties(std::string_view blob, protocol::properties& out) {
    out = {};
    if (blob.empty()) return true;
    if (static_cast<std::uint8_t>(blob.front()) != properties_format) return false;
    reader in(blob.substr(1));
    while (!in.empty()) {
        std::uint8_t tag = 0;
        if (!in.get(tag)) return false;
        bool known = false, ok = false;
        for_each_property(out, [&](protocol::property_id id, auto& field) {
            if (known || static_cast<std::uint8_t>(id) != tag) return;
            known = true;
            using field_t = std::remove_cvref_t<decltype(field)>;
            typename field_t::value_type value{};
            ok = in.get(value);
            if (!ok) return;
            if constexpr (is_optional<field_t>::value) {
                ok = !field.has_value();  // each at most once, as encoded
                field = std::move(value);
            } else {
                field.push_back(std::move(value));
            }
        });
        if (!known || !ok) return false;
    }
    return true;
}

void encode_u32_list(const std::vector<std::uint32_t>& values, std::string& out) {
    out.clear();
    out.reserve(values.size() * 4);
    for (std::uint32_t v : values) put_int(out, v);
}

bool decode_u32_list(std::string_view blob, std::vector<std::uint32_t>& out) {
    out.clear();
    if (blob.size() % 4 != 0) return false;
    reader in(blob);
    out.reserve(blob.size() / 4);
    while (!in.empty()) {
        std::uint32_t v = 0;
        in.get(v);
        out.push_back(v);
    }
    return true;
}

}  // namespace edgemq::storage
