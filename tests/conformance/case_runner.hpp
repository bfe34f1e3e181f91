// Conformance case files: bytes in, bytes (or a close) out, over a real socket.
//
// The format is documented in tests/conformance/README.md. parse_case() reads a file
// into steps; run_case() starts a fresh broker (with the case's config), connects a
// raw_client and plays the steps. Failures are reported with the case file and line.
#pragma once

#include "support/broker_process.hpp"
#include "support/mqtt_wire.hpp"

#include <string>
#include <vector>

namespace edgemq::test::conformance {

struct expectation {
    enum class kind {
        bytes,       // the next packet equals `data` exactly
        close,       // the connection closes (EOF or reset) with nothing before it
        disconnect,  // a DISCONNECT with reason `codes[0]`, then the connection closes
        connack,     // a CONNACK with return/reason code `codes[0]` (properties ignored)
        suback,      // a SUBACK with exactly the reason codes `codes` (id, properties ignored)
        unsuback,    // same for UNSUBACK
        ack,         // PUBACK/PUBREC/PUBREL/PUBCOMP (`packet_type`) with reason `codes[0]`
        pingresp,    // a PINGRESP
        silence,     // nothing at all for `millis` ms (neither a packet nor a close)
        any,         // any one packet
    };
    kind what = kind::bytes;
    wire::bytes data;
    wire::bytes codes;
    std::uint8_t packet_type = 0;
    int millis = 0;
    std::string text;  // as written, for messages
};

struct step {
    int line = 0;
    bool send = false;
    wire::bytes data;                       // send
    std::vector<expectation> alternatives;  // expect: any one of them (strict: the first)
};

struct test_case {
    std::string path;
    broker_config config;
    std::vector<step> steps;
    std::string mosquitto_deviation;  // why Mosquitto 2.0.11 fails this case, if it does
};

// Throws std::runtime_error("FILE:LINE: why") on a syntax error.
test_case parse_case(const std::string& path);

// Runs one case; reports through doctest (FAIL/CHECK) with the file and line.
void run_case(const std::string& path);

}  // namespace edgemq::test::conformance
