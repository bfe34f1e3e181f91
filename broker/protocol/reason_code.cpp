#include "broker/protocol/reason_code.hpp"

namespace edgemq::protocol {

std::string_view to_string(reason_code code) noexcept {
    switch (code) {
        case reason_code::success: return "Success";
        case reason_code::granted_qos_1: return "Granted QoS 1";
        case reason_code::granted_qos_2: return "Granted QoS 2";
        case reason_code::disconnect_with_will_message: return "Disconnect with Will Message";
        case reason_code::no_matching_subscribers: return "No matching subscribers";
        case reason_code::no_subscription_existed: return "No subscription existed";
        case reason_code::continue_authentication: return "Continue authentication";
        case reason_code::re_authenticate: return "Re-authenticate";
        case reason_code::unspecified_error: return "Unspecified error";
        case reason_code::malformed_packet: return "Malformed Packet";
        case reason_code::protocol_error: return "Protocol Error";
        case reason_code::implementation_specific_error: return "Implementation specific error";
        case reason_code::unsupported_protocol_version: return "Unsupported Protocol Version";
        case reason_code::client_identifier_not_valid: return "Client Identifier not valid";
        case reason_code::bad_user_name_or_password: return "Bad User Name or Password";
        case reason_code::not_authorized: return "Not authorized";
        case reason_code::server_unavailable: return "Server unavailable";
        case reason_code::server_busy: return "Server busy";
        case reason_code::banned: return "Banned";
        case reason_code::server_shutting_down: return "Server shutting down";
        case reason_code::bad_authentication_method: return "Bad authentication method";
        case reason_code::keep_alive_timeout: return "Keep Alive timeout";
        case reason_code::session_taken_over: return "Session taken over";
        case reason_code::topic_filter_invalid: return "Topic Filter invalid";
        case reason_code::topic_name_invalid: return "Topic Name invalid";
        case reason_code::packet_identifier_in_use: return "Packet Identifier in use";
        case reason_code::packet_identifier_not_found: return "Packet Identifier not found";
        case reason_code::receive_maximum_exceeded: return "Receive Maximum exceeded";
        case reason_code::topic_alias_invalid: return "Topic Alias invalid";
        case reason_code::packet_too_large: return "Packet too large";
        case reason_code::message_rate_too_high: return "Message rate too high";
        case reason_code::quota_exceeded: return "Quota exceeded";
        case reason_code::administrative_action: return "Administrative action";
        case reason_code::payload_format_invalid: return "Payload format invalid";
        case reason_code::retain_not_supported: return "Retain not supported";
        case reason_code::qos_not_supported: return "QoS not supported";
        case reason_code::use_another_server: return "Use another server";
        case reason_code::server_moved: return "Server moved";
        case reason_code::shared_subscriptions_not_supported: return "Shared Subscriptions not supported";
        case reason_code::connection_rate_exceeded: return "Connection rate exceeded";
        case reason_code::maximum_connect_time: return "Maximum connect time";
        case reason_code::subscription_identifiers_not_supported: return "Subscription Identifiers not supported";
        case reason_code::wildcard_subscriptions_not_supported: return "Wildcard Subscriptions not supported";
    }
    return "unknown";
}

namespace {

// The lists of MQTT 5.0 section 2.4 table 2-6, repeated in each packet's section
// (3.2.2.2, 3.4.2.1, 3.5.2.1, 3.6.2.1, 3.7.2.1, 3.9.3, 3.11.3, 3.14.2.1, 3.15.2.1).
bool valid_for_connack(reason_code c) noexcept {
    switch (c) {
        case reason_code::success:
        case reason_code::unspecified_error:
        case reason_code::malformed_packet:
        case reason_code::protocol_error:
        case reason_code::implementation_specific_error:
        case reason_code::unsupported_protocol_version:
        case reason_code::client_identifier_not_valid:
        case reason_code::bad_user_name_or_password:
        case reason_code::not_authorized:
        case reason_code::server_unavailable:
        case reason_code::server_busy:
        case reason_code::banned:
        case reason_code::bad_authentication_method:
        case reason_code::topic_name_invalid:
        case reason_code::packet_too_large:
        case reason_code::quota_exceeded:
        case reason_code::payload_format_invalid:
        case reason_code::retain_not_supported:
        case reason_code::qos_not_supported:
        case reason_code::use_another_server:
        case reason_code::server_moved:
        case reason_code::connection_rate_exceeded:
            return true;
        default:
            return false;
    }
}

bool valid_for_puback(reason_code c) noexcept {
    switch (c) {
        case reason_code::success:
        case reason_code::no_matching_subscribers:
        case reason_code::unspecified_error:
        case reason_code::implementation_specific_error:
        case reason_code::not_authorized:
        case reason_code::topic_name_invalid:
        case reason_code::packet_identifier_in_use:
        case reason_code::quota_exceeded:
        case reason_code::payload_format_invalid:
            return true;
        default:
            return false;
    }
}

bool valid_for_pubrel(reason_code c) noexcept {
    return c == reason_code::success || c == reason_code::packet_identifier_not_found;
}

bool valid_for_suback(reason_code c) noexcept {
    switch (c) {
        case reason_code::success:
        case reason_code::granted_qos_1:
        case reason_code::granted_qos_2:
        case reason_code::unspecified_error:
        case reason_code::implementation_specific_error:
        case reason_code::not_authorized:
        case reason_code::topic_filter_invalid:
        case reason_code::packet_identifier_in_use:
        case reason_code::quota_exceeded:
        case reason_code::shared_subscriptions_not_supported:
        case reason_code::subscription_identifiers_not_supported:
        case reason_code::wildcard_subscriptions_not_supported:
            return true;
        default:
            return false;
    }
}

bool valid_for_unsuback(reason_code c) noexcept {
    switch (c) {
        case reason_code::success:
        case reason_code::no_subscription_existed:
        case reason_code::unspecified_error:
        case reason_code::implementation_specific_error:
        case reason_code::not_authorized:
        case reason_code::topic_filter_invalid:
        case reason_code::packet_identifier_in_use:
            return true;
        default:
            return false;
    }
}

bool valid_for_disconnect(reason_code c) noexcept {
    switch (c) {
        case reason_code::success:
        case reason_code::disconnect_with_will_message:
        case reason_code::unspecified_error:
        case reason_code::malformed_packet:
        case reason_code::protocol_error:
        case reason_code::implementation_specific_error:
        case reason_code::not_authorized:
        case reason_code::server_busy:
        case reason_code::server_shutting_down:
        case reason_code::keep_alive_timeout:
        case reason_code::session_taken_over:
        case reason_code::topic_filter_invalid:
        case reason_code::topic_name_invalid:
        case reason_code::receive_maximum_exceeded:
        case reason_code::topic_alias_invalid:
        case reason_code::packet_too_large:
        case reason_code::message_rate_too_high:
        case reason_code::quota_exceeded:
        case reason_code::administrative_action:
        case reason_code::payload_format_invalid:
        case reason_code::retain_not_supported:
        case reason_code::qos_not_supported:
        case reason_code::use_another_server:
        case reason_code::server_moved:
        case reason_code::shared_subscriptions_not_supported:
        case reason_code::connection_rate_exceeded:
        case reason_code::maximum_connect_time:
        case reason_code::subscription_identifiers_not_supported:
        case reason_code::wildcard_subscriptions_not_supported:
            return true;
        default:
            return false;
    }
}

bool valid_for_auth(reason_code c) noexcept {
    return c == reason_code::success || c == reason_code::continue_authentication ||
           c == reason_code::re_authenticate;
}

}  // namespace

bool is_valid_for(reason_context context, reason_code code) noexcept {
    switch (context) {
        case reason_context::connack: return valid_for_connack(code);
        case reason_context::puback: return valid_for_puback(code);
        case reason_context::pubrel: return valid_for_pubrel(code);
        case reason_context::suback: return valid_for_suback(code);
        case reason_context::unsuback: return valid_for_unsuback(code);
        case reason_context::disconnect: return valid_for_disconnect(code);
        case reason_context::auth: return valid_for_auth(code);
    }
    return false;
}

std::uint8_t to_v311_connack_code(reason_code code) noexcept {
    // MQTT 3.1.1 section 3.2.2.3, table 3.1. 3.1.1 has no finer codes, so every other
    // refusal becomes "Server unavailable", which tells the client to retry later.
    switch (code) {
        case reason_code::success: return 0;
        case reason_code::unsupported_protocol_version: return 1;
        case reason_code::client_identifier_not_valid: return 2;
        case reason_code::bad_user_name_or_password: return 4;
        case reason_code::not_authorized: return 5;
        default: return 3;
    }
}

reason_code from_v311_connack_code(std::uint8_t code) noexcept {
    switch (code) {
        case 0: return reason_code::success;
        case 1: return reason_code::unsupported_protocol_version;
        case 2: return reason_code::client_identifier_not_valid;
        case 3: return reason_code::server_unavailable;
        case 4: return reason_code::bad_user_name_or_password;
        case 5: return reason_code::not_authorized;
        default: return reason_code::unspecified_error;
    }
}

}  // namespace edgemq::protocol
