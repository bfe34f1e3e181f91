// run_process: run a command line tool (mosquitto_pub, mosquitto_sub) to completion
// with a deadline, capturing its output.
//
// The child gets stdin from /dev/null and stdout+stderr into one pipe (or, with
// output_mode::separate, one pipe each). After `timeout` it is sent SIGKILL (by PID)
// and `timed_out` is set. Never throws for a non-zero exit; throws std::runtime_error
// if the program cannot be started.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace edgemq::test {

struct process_result {
    int exit_code = -1;  // -1 if killed or signalled
    bool timed_out = false;
    std::string output;        // stdout and stderr interleaved; stdout only with output_mode::separate
    std::string error_output;  // stderr, with output_mode::separate
};

enum class output_mode { merged, separate };

process_result run_process(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                           output_mode mode = output_mode::merged);

}  // namespace edgemq::test
