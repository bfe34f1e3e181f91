// Mosquitto's command line clients (mosquitto_pub / mosquitto_sub 2.0.11) against the
// broker: independent client implementations, both protocol versions.
#include "helpers.hpp"
#include "support/run_process.hpp"

using namespace edgemq::test;

TEST_SUITE_BEGIN("integration");

namespace {

const std::vector<std::string> cli_versions = {"mqttv311", "mqttv5"};

std::vector<std::string> cli(const std::string& tool, const broker_process& b, const std::string& version,
                             std::vector<std::string> args) {
    std::vector<std::string> argv = {tool, "-h", b.host(), "-p", std::to_string(b.port()), "-V", version};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
}

process_result run(const std::vector<std::string>& argv) {
    auto r = run_process(argv, 10s);
    if (r.exit_code != 0) {
        std::string cmd;
        for (auto& a : argv) cmd += a + " ";
        MESSAGE("command failed (exit " << r.exit_code << (r.timed_out ? ", timed out" : "") << "): " << cmd
                                         << "\n" << r.output);
    }
    return r;
}

}  // namespace

TEST_CASE("[MQTT-3.3.1-6] mosquitto_pub -r then mosquitto_sub -C 1 receives the retained message") {
    broker_process broker;
    for (auto& pv : cli_versions) {
        for (auto& sv : cli_versions) {
            INFO(pv << " -> " << sv);
            std::string topic = "cli/ret/" + pv + "/" + sv;
            CHECK(run(cli("mosquitto_pub", broker, pv, {"-t", topic, "-m", "hello " + pv, "-r", "-q", "1"})).exit_code == 0);
            auto r = run(cli("mosquitto_sub", broker, sv, {"-t", topic, "-C", "1", "-W", "5", "-v"}));
            CHECK(r.exit_code == 0);
            CHECK(r.output == topic + " hello " + pv + "\n");
        }
    }
}

TEST_CASE("[MQTT-3.1.2-5] [MQTT-4.3.3] mosquitto_pub QoS 1/2 into a persistent mosquitto_sub session arrives in order after reconnect") {
    broker_process broker;
    for (auto& pv : cli_versions) {
        for (auto& sv : cli_versions) {
            INFO(pv << " -> " << sv);
            std::string id = "cli-sub-" + pv + "-" + sv;
            std::string topic = "cli/q/" + pv + "/" + sv;
            std::vector<std::string> session = {"-i", id, "-c", "-q", "2", "-t", topic};
            if (sv == "mqttv5") session.insert(session.end(), {"-x", "300"});
            // -E: subscribe, wait for the SUBACK, exit (the session stays).
            auto create = session;
            create.push_back("-E");
            REQUIRE(run(cli("mosquitto_sub", broker, sv, create)).exit_code == 0);
            // Order is only guaranteed per topic and QoS [MQTT-4.6.0-5]: one QoS per pair.
            std::string qos = pv == sv ? "2" : "1";
            for (int i = 1; i <= 3; ++i)
                CHECK(run(cli("mosquitto_pub", broker, pv, {"-t", topic, "-m", "msg" + std::to_string(i), "-q", qos}))
                          .exit_code == 0);
            auto resume = session;
            resume.insert(resume.end(), {"-C", "3", "-W", "5"});
            auto r = run(cli("mosquitto_sub", broker, sv, resume));
            CHECK(r.exit_code == 0);
            CHECK(r.output == "msg1\nmsg2\nmsg3\n");
        }
    }
}

TEST_CASE("[MQTT-3.3.1-10] mosquitto_pub -r -n clears the retained message") {
    broker_process broker;
    CHECK(run(cli("mosquitto_pub", broker, "mqttv5", {"-t", "cli/clear", "-m", "x", "-r"})).exit_code == 0);
    CHECK(run(cli("mosquitto_pub", broker, "mqttv311", {"-t", "cli/clear", "-n", "-r"})).exit_code == 0);
    // Nothing retained: mosquitto_sub -W 1 times out (exit 27, "Timed out" on stderr).
    auto r = run_process(cli("mosquitto_sub", broker, "mqttv5", {"-t", "cli/clear", "-C", "1", "-W", "1", "-v"}), 5s);
    CHECK(r.output.find("cli/clear") == std::string::npos);
    CHECK(r.exit_code != 0);
}

TEST_CASE("[MQTT-3.3.2-6] mosquitto_pub v5 properties reach a mosquitto_sub v5 subscriber") {
    broker_process broker;
    // Retained so that the subscriber, started second, cannot miss it.
    CHECK(run(cli("mosquitto_pub", broker, "mqttv5",
                  {"-t", "cli/props", "-m", "p", "-r", "-D", "publish", "content-type", "text/plain", "-D", "publish",
                   "user-property", "k", "v"}))
              .exit_code == 0);
    auto r = run(cli("mosquitto_sub", broker, "mqttv5", {"-t", "cli/props", "-C", "1", "-W", "5", "-F", "%t %C %P %p"}));
    CHECK(r.exit_code == 0);
    CHECK(r.output == "cli/props text/plain k:v p\n");
}

TEST_SUITE_END();
