#include "broker/config/config_file.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "broker/protocol/validate.hpp"
#include <sstream>
#include <vector>

namespace edgemq::config {

using json = nlohmann::json;

namespace {

class reader {
public:
    reader(const std::string& source, const json& object, std::string prefix = {})
        : source_(source), object_(object), prefix_(std::move(prefix)) {}

    [[noreturn]] void fail(std::string_view key, std::string_view why) const {
        throw config_error(source_ + ": key '" + prefix_ + std::string(key) + "': " + std::string(why));
    }

    const json* find(std::string_view key) const {
        auto it = object_.find(std::string(key));
        return it == object_.end() ? nullptr : &*it;
    }

    template <class T>
    void integer(std::string_view key, T& out, std::uint64_t min, std::uint64_t max) const {
        const json* v = find(key);
        if (!v) return;
        if (!v->is_number_integer() || (v->is_number_integer() && !v->is_number_unsigned() && v->get<std::int64_t>() < 0))
            fail(key, "must be a whole number from " + std::to_string(min) + " to " + std::to_string(max));
        const auto value = v->get<std::uint64_t>();
        if (value < min || value > max)
            fail(key, std::to_string(value) + " is out of range " + std::to_string(min) + ".." + std::to_string(max));
        out = static_cast<T>(value);
    }

    void boolean(std::string_view key, bool& out) const {
        const json* v = find(key);
        if (!v) return;
        if (!v->is_boolean()) fail(key, "must be true or false");
        out = v->get<bool>();
    }

    void text(std::string_view key, std::string& out) const {
        const json* v = find(key);
        if (!v) return;
        if (!v->is_string()) fail(key, "must be a string");
        out = v->get<std::string>();
    }

    // Seconds, fractions allowed (e.g. 0.5).
    void seconds(std::string_view key, std::chrono::milliseconds& out, double max) const {
        const json* v = find(key);
        if (!v) return;
        if (!v->is_number()) fail(key, "must be a number of seconds");
        const double s = v->get<double>();
        if (!(s > 0) || s > max) fail(key, "must be more than 0 and at most " + std::to_string(static_cast<long>(max)) + " seconds");
        out = std::chrono::milliseconds(static_cast<long long>(s * 1000));
    }

    void reject_unknown(const std::vector<std::string_view>& known) const {
        for (auto it = object_.begin(); it != object_.end(); ++it) {
            bool ok = false;
            for (std::string_view k : known) ok = ok || it.key() == k;
            if (!ok) fail(it.key(), "unknown key");
        }
    }

    const std::string& source() const { return source_; }
    const std::string& prefix() const { return prefix_; }

private:
    const std::string& source_;
    const json& object_;
    std::string prefix_;
};

const std::vector<std::string_view> limit_keys = {
    "connect_timeout", "max_packet_size", "receive_maximum", "max_inflight", "max_subscriptions",
    "max_queued_messages", "max_queued_bytes", "queue_full_policy", "max_publish_rate", "max_publish_bytes_rate"};

void read_limits(const reader& r, core::connection_limits& l) {
    r.seconds("connect_timeout", l.connect_timeout, 3600);
    r.integer("max_packet_size", l.max_packet_size, 64, 268'435'455);
    r.integer("receive_maximum", l.receive_maximum, 1, 65535);
    r.integer("max_inflight", l.max_inflight, 1, 65535);
    r.integer("max_subscriptions", l.max_subscriptions, 0, std::numeric_limits<std::uint32_t>::max());
    r.integer("max_queued_messages", l.queue.max_messages, 0, std::numeric_limits<std::uint32_t>::max());
    r.integer("max_queued_bytes", l.queue.max_bytes, 0, std::numeric_limits<std::int64_t>::max());
    if (const json* v = r.find("queue_full_policy")) {
        const std::string policy = v->is_string() ? v->get<std::string>() : std::string();
        if (policy == "drop_oldest") l.queue.when_full = session::queue_full_policy::drop_oldest;
        else if (policy == "drop_newest") l.queue.when_full = session::queue_full_policy::drop_newest;
        else r.fail("queue_full_policy", "must be \"drop_oldest\" or \"drop_newest\"");
    }
    r.integer("max_publish_rate", l.max_publish_rate, 0, std::numeric_limits<std::uint32_t>::max());
    r.integer("max_publish_bytes_rate", l.max_publish_bytes_rate, 0, std::numeric_limits<std::int64_t>::max());
}

void read_listeners(const reader& top, const json& value, const core::connection_limits& defaults,
                    std::vector<core::listener_settings>& out) {
    if (!value.is_array() || value.empty()) top.fail("listeners", "must be a non-empty array of listener objects");
    out.clear();
    for (std::size_t i = 0; i < value.size(); ++i) {
        const std::string prefix = "listeners[" + std::to_string(i) + "].";
        if (!value[i].is_object()) top.fail("listeners[" + std::to_string(i) + "]", "must be an object");
        reader r(top.source(), value[i], prefix);
        std::vector<std::string_view> known = {"type", "bind", "port", "path", "cert_file", "key_file", "ca_file",
                                               "require_certificate", "use_identity_as_username", "max_connections"};
        known.insert(known.end(), limit_keys.begin(), limit_keys.end());
        r.reject_unknown(known);
        core::listener_settings ls;
        ls.limits = defaults;
        r.text("type", ls.type);
        if (ls.type != "mqtt" && ls.type != "mqtts" && ls.type != "ws" && ls.type != "wss")
            r.fail("type", "'" + ls.type + "' is not one of mqtt, mqtts, ws, wss");
        ls.port = ls.type == "mqtt" ? 1883 : ls.type == "mqtts" ? 8883 : ls.type == "ws" ? 8080 : 8443;
        r.text("bind", ls.bind);
        r.integer("port", ls.port, 0, 65535);
        r.text("path", ls.path);
        if (ls.path.empty() || ls.path.front() != '/') r.fail("path", "must start with '/'");
        r.text("cert_file", ls.cert_file);
        r.text("key_file", ls.key_file);
        r.text("ca_file", ls.ca_file);
        r.boolean("require_certificate", ls.require_certificate);
        if (const json* v = r.find("use_identity_as_username")) {
            const std::string field = v->is_string() ? v->get<std::string>() : v->is_boolean() && v->get<bool>() ? "cn" : "";
            if (!parse_certificate_identity(field.empty() && v->is_boolean() ? "none" : field, ls.identity_as_username))
                r.fail("use_identity_as_username", "must be \"cn\", \"subject\", \"san\", true (= \"cn\") or false");
        }
        r.integer("max_connections", ls.max_connections, 0, std::numeric_limits<std::uint32_t>::max());
        read_limits(r, ls.limits);
        if (ls.tls()) {
            if (ls.cert_file.empty()) r.fail("cert_file", "a " + ls.type + " listener needs a certificate (PEM file)");
            if (ls.key_file.empty()) r.fail("key_file", "a " + ls.type + " listener needs the certificate's private key (PEM file)");
            if ((ls.require_certificate || ls.identity_as_username != core::certificate_identity::none) && ls.ca_file.empty())
                r.fail("ca_file", "client certificates are checked against this CA file: it is required here");
        } else {
            for (const char* key : {"cert_file", "key_file", "ca_file", "require_certificate", "use_identity_as_username"})
                if (r.find(key)) r.fail(key, "only mqtts and wss listeners use TLS");
        }
        out.push_back(ls);
    }
}

}  // namespace

bool parse_durability(std::string_view text, core::durability& out) noexcept {
    if (text == "none") out = core::durability::none;
    else if (text == "process") out = core::durability::process;
    else if (text == "power") out = core::durability::power;
    else return false;
    return true;
}

bool parse_certificate_identity(std::string_view text, core::certificate_identity& out) noexcept {
    if (text == "none") out = core::certificate_identity::none;
    else if (text == "cn") out = core::certificate_identity::common_name;
    else if (text == "subject") out = core::certificate_identity::subject;
    else if (text == "san") out = core::certificate_identity::subject_alt_name;
    else return false;
    return true;
}

std::string_view to_string(core::durability mode) noexcept {
    switch (mode) {
        case core::durability::none: return "none";
        case core::durability::process: return "process";
        case core::durability::power: return "power";
    }
    return "?";
}

void load_text(std::string_view text, const std::string& source, app_settings& settings) {
    json doc;
    try {
        doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/true, /*ignore_comments=*/true);
    } catch (const json::parse_error& e) {
        // e.what() reads "[json.exception.parse_error.101] parse error at line 3, column 5: ..."
        std::string what = e.what();
        if (auto pos = what.find("] "); pos != std::string::npos) what = what.substr(pos + 2);
        throw config_error(source + ": not valid JSON: " + what);
    }
    if (!doc.is_object()) throw config_error(source + ": must hold a JSON object { ... }");

    reader r(source, doc);
    std::vector<std::string_view> known = {
        "listeners", "workers", "log_level", "data_dir", "max_keep_alive", "topic_alias_maximum",
        "send_topic_aliases", "max_session_expiry", "retain_available", "maximum_qos", "queue_qos0_offline",
        "max_output_buffer", "publisher_backpressure", "sys_interval", "response_information", "durability",
        "commit_delay_ms", "password_file", "acl_file", "allow_anonymous"};
    known.insert(known.end(), limit_keys.begin(), limit_keys.end());
    r.reject_unknown(known);
    core::broker_settings& b = settings.broker;
    // Top-level limits are every listener's defaults (a listener may set its own).
    read_limits(r, settings.default_limits);
    if (const json* listeners = r.find("listeners")) {
        read_listeners(r, *listeners, settings.default_limits, b.listeners);
    } else {
        for (auto& ls : b.listeners) ls.limits = settings.default_limits;
    }
    r.text("password_file", b.auth.password_file);
    r.text("acl_file", b.auth.acl_file);
    if (r.find("allow_anonymous")) {
        bool allow = false;
        r.boolean("allow_anonymous", allow);
        b.auth.allow_anonymous = allow;
    }
    r.integer("workers", b.workers, 0, 1024);
    if (const json* v = r.find("log_level")) {
        if (!v->is_string() || !log::parse_level(v->get<std::string>(), settings.log_level))
            r.fail("log_level", "must be one of error, warn, info, debug, trace");
    }
    r.text("data_dir", b.data_dir);
    if (const json* v = r.find("durability")) {
        const std::string mode = v->is_string() ? v->get<std::string>() : std::string();
        if (!parse_durability(mode, b.durability_mode))
            r.fail("durability", "must be \"none\", \"process\" or \"power\"");
    }
    r.integer("commit_delay_ms", b.commit_delay_ms, 0, 1000);
    r.integer("max_keep_alive", b.max_keep_alive, 0, 65535);
    r.integer("topic_alias_maximum", b.topic_alias_maximum, 0, 65535);
    r.boolean("send_topic_aliases", b.send_topic_aliases);
    r.integer("max_session_expiry", b.max_session_expiry, 0, 0xFFFF'FFFF);
    r.boolean("retain_available", b.retain_available);
    r.integer("maximum_qos", b.maximum_qos, 0, 2);
    r.boolean("queue_qos0_offline", b.queue_qos0_offline);
    r.boolean("publisher_backpressure", b.publisher_backpressure);
    r.integer("sys_interval", b.sys_interval, 0, 86'400);
    r.text("response_information", b.response_information);
    if (!protocol::is_valid_utf8(b.response_information))
        r.fail("response_information", "must be valid UTF-8 without U+0000");
    r.integer("max_output_buffer", b.max_output_buffer, 4096, std::numeric_limits<std::uint32_t>::max());
}

void load_file(const std::string& path, app_settings& settings) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw config_error(path + ": cannot open the configuration file: " + std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) throw config_error(path + ": cannot read the configuration file");
    load_text(text.str(), path, settings);
}

}  // namespace edgemq::config
