// Conformance case files: bytes in, bytes (or a close) out.
//
// The format is documented in tests/conformance/README.md. parse_case() reads a file
// into steps; play() runs them against one client connection through a
// case_transport, and reports the first mismatch with the case file and line. Two
// transports play every case:
//   - run_case() (case_runner.cpp): a fresh broker process (with the case's config)
//     and a raw_client over a real socket; waits are real time;
//   - run_case_inproc() (inproc_runner.cpp): the broker core in-process, no sockets,
//     no threads, a fake clock that waits advance instead of sleeping.
#pragma once

#include "support/broker_process.hpp"
#include "support/mqtt_wire.hpp"

#include <chrono>
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
    enum class kind { send, expect, wait };
    int line = 0;
    kind what = kind::send;
    wire::bytes data;                       // send
    std::vector<expectation> alternatives;  // expect: any one of them (strict: the first)
    int millis = 0;                         // wait
};

struct test_case {
    std::string path;
    broker_config config;
    std::vector<step> steps;
    std::string mosquitto_deviation;  // why Mosquitto 2.0.11 fails this case, if it does
};

// Throws std::runtime_error("FILE:LINE: why") on a syntax error.
test_case parse_case(const std::string& path);

// One client connection to a broker under test, as play() drives it.
class case_transport {
public:
    enum class status { packet, timeout, closed };
    struct result {
        status what = status::timeout;
        wire::packet pkt;
    };

    virtual ~case_transport() = default;
    // Sends bytes; false when the broker has already closed the connection.
    virtual bool send(const wire::bytes& data) = 0;
    // The next whole packet, or the close (EOF/reset: buffered partial bytes are
    // dropped), or timeout when neither comes within `timeout` (taken as given: the
    // runner has already applied EDGEMQ_TEST_TIME_SCALE where it should).
    virtual result read(std::chrono::milliseconds timeout) = 0;
    // Lets `d` pass with the client silent (the `wait` directive).
    virtual void wait(std::chrono::milliseconds d) = 0;
    // The protocol level of the session (4 or 5), for parsing v5 properties.
    virtual void set_version(std::uint8_t version) = 0;
    // Something to show after a mismatch (e.g. the tail of the broker's log).
    virtual std::string diagnostics() = 0;
};

// Plays the case's steps; returns a description of the first mismatch, or "" if all
// matched. With EDGEMQ_CONFORMANCE_STRICT=1 only the first alternative of a step is
// accepted; otherwise a later one is accepted and reported through doctest MESSAGE.
std::string play(const test_case& tc, case_transport& transport);

// Runs one case over a socket against a fresh broker process; reports through
// doctest (FAIL/MESSAGE), including known Mosquitto deviations.
void run_case(const std::string& path);

// Runs one case against the broker core in-process (inproc_runner.cpp); reports
// through doctest.
void run_case_inproc(const std::string& path);

}  // namespace edgemq::test::conformance
