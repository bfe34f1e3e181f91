// Command-line options of edgemq-bench. parse_options() throws std::invalid_argument
// with a one-line reason; main prints it with the usage text and exits 2.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "transport.hpp"

namespace edgemq::bench {

struct options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 1883;
    transport_kind transport = transport_kind::tcp;
    std::string cafile;                  // tls/wss: CA certificates to verify the broker with
    bool insecure = false;               // tls/wss: no certificate verification at all
    std::string ws_path = "/mqtt";       // ws/wss: the HTTP path of the upgrade request
    unsigned threads = 0;  // 0 = one per core
    unsigned publishers = 1;
    unsigned subscribers = 1;
    std::string topic_prefix = "bench";  // publisher i publishes to <prefix>/<i>/data
    std::string sub_filter;              // default <prefix>/#
    std::uint8_t qos = 0;
    unsigned inflight = 64;              // unacked QoS 1/2 PUBLISHes per publisher
    std::size_t payload = 64;
    double duration_s = 10;
    double warmup_s = 2;
    double rate = 0;                     // msgs/s per publisher, 0 = unthrottled
    std::uint8_t mqtt_version = 4;       // 4 = 3.1.1, 5 = 5.0
    bool clean = true;
    std::uint32_t session_expiry_s = 300;  // v5 --persistent only
    bool json = false;
    unsigned qos0_window = 0;            // 0 = only TCP back-pressure bounds QoS 0
    std::size_t batch_bytes = 64 * 1024; // most PUBLISH bytes put into one write
    double connect_timeout_s = 10;
    double drain_timeout_s = 5;          // give up after this long without progress
    double drain_max_s = 60;             // and after this long in any case
    unsigned sndbuf = 0;                 // publishers' SO_SNDBUF, 0 = the OS default
    std::uint16_t keep_alive_s = 60;
    double max_time_s = 0;               // 0 = derived from the phases above
    std::string label;                   // copied into the JSON line, for scripts
};

options parse_options(int argc, char** argv);
std::string usage();

}  // namespace edgemq::bench
