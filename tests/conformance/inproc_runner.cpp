// The conformance cases against the broker core in-process: the real broker,
// worker_core and client_connection (edgemq_core), configured through the real
// configuration loader (edgemq_config), with no sockets, no threads and a fake clock.
//
// The adapter here plays the network layer's part (broker/net): a worker_executor
// per worker whose posts queue up and run when the client waits, and a
// connection_io that takes the connection's output the way tcp_connection does
// (all of it, then on_output_written() so the session sends what waited). What the
// broker wrote is cut into packets by the test suite's own codec (mqtt_wire), not
// the broker's, as over the socket.
//
// Time: waiting for an expectation advances the fake clock in 250 ms steps (the
// network layer's tick) until something arrives or the expectation's time is up,
// so Keep Alive and CONNECT timeouts take no real time. The `wait` directive
// advances it too.
#include "case_runner.hpp"

#include "broker/config/config_file.hpp"
#include "broker/core/broker.hpp"
#include "broker/core/client_connection.hpp"
#include "broker/core/log.hpp"
#include "broker/core/worker_core.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <deque>
#include <functional>
#include <memory>
#include <stdexcept>

namespace edgemq::test::conformance {

namespace {

using namespace std::chrono_literals;

constexpr auto tick_period = 250ms;  // as broker/net/worker.cpp

class queued_executor final : public core::worker_executor {
public:
    void post(std::function<void()> work) override { queue_.push_back(std::move(work)); }
    bool run_one() {
        if (queue_.empty()) return false;
        auto work = std::move(queue_.front());
        queue_.pop_front();
        work();
        return true;
    }

private:
    std::deque<std::function<void()>> queue_;
};

core::broker_settings settings_for(const test_case& tc) {
    // The same JSON the broker process gets, through the broker's own loader.
    config::app_settings app;
    config::load_text(tc.config.to_edgemq_json(), tc.path + " (config)", app);
    const char* verbose = std::getenv("EDGEMQ_TEST_VERBOSE");
    // The core logs every connect and disconnect at info: quiet unless asked for.
    log::set_level(verbose && *verbose && std::string_view(verbose) != "0" ? app.log_level : log::level::warn);
    return app.broker;
}

class inproc_transport final : public case_transport, private core::connection_io {
public:
    explicit inproc_transport(const test_case& tc) : broker_(settings_for(tc)) {
        const unsigned workers = broker_.settings().workers ? broker_.settings().workers : 2;
        for (unsigned i = 0; i < workers; ++i) {
            executors_.push_back(std::make_unique<queued_executor>());
            cores_.push_back(std::make_unique<core::worker_core>(broker_, i));
            cores_.back()->set_clock([this] { return now_; });
            broker_.add_worker(*cores_.back(), *executors_.back());
        }
        connection_ = std::make_unique<core::client_connection>(*cores_[0], io(), "inproc:1",
                                                                broker_.settings().listeners.front());
    }

    ~inproc_transport() override {
        // The connection first (it leaves its session), then the workers.
        connection_.reset();
        retired_.clear();
        cores_.clear();
    }

    bool send(const wire::bytes& data) override {
        if (closed_) return false;
        if (moving_) {
            held_.append(reinterpret_cast<const char*>(data.data()), data.size());
        } else {
            connection_->on_input(std::string_view(reinterpret_cast<const char*>(data.data()), data.size()));
        }
        settle();
        return true;
    }

    result read(std::chrono::milliseconds timeout) override {
        std::chrono::milliseconds waited{0};
        for (;;) {
            settle();
            if (auto p = next_packet()) return {status::packet, std::move(*p)};
            if (closed_) {
                written_.clear();  // a partial packet dies with the connection
                return {status::closed, {}};
            }
            if (waited >= timeout) return {status::timeout, {}};
            const auto step = std::min(tick_period, timeout - waited);
            advance(step);
            waited += step;
        }
    }

    void wait(std::chrono::milliseconds d) override {
        while (d > 0ms) {
            const auto step = std::min(tick_period, d);
            advance(step);
            d -= step;
        }
    }

    void set_version(std::uint8_t) override {}

    std::string diagnostics() override {
        return "  (in-process broker core, fake clock at +" +
               std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(now_ - start_).count()) +
               " ms; EDGEMQ_TEST_VERBOSE=1 shows its log)";
    }

private:
    core::connection_io& io() { return *this; }

    // core::connection_io
    void output_ready() override {}  // taken in settle(), after the handler
    void close() override {
        // "Write what output() holds, then close the socket."
        take_output();
        closing_ = true;
    }
    void migrate(unsigned worker, std::string replay) override {
        // As the network layer: the socket moves to the owning worker, whose new
        // connection starts with the replayed input. The old object is kept: we are
        // inside its on_input().
        moving_ = true;
        executors_[worker]->post([this, worker, replay = std::move(replay)] {
            moving_ = false;
            retired_.push_back(std::move(connection_));
            connection_ = std::make_unique<core::client_connection>(*cores_[worker], io(), "inproc:1",
                                                                    broker_.settings().listeners.front());
            connection_->on_input(replay);
            if (!held_.empty()) {
                std::string more;
                more.swap(held_);
                connection_->on_input(more);
            }
        });
    }

    void take_output() {
        core::output_queue& out = connection_->output();
        if (out.empty()) return;
        const std::string bytes = out.flatten();
        written_.insert(written_.end(), bytes.begin(), bytes.end());
        out.clear();
    }

    // Runs posted work and writes output until nothing is left to do.
    void settle() {
        for (int round = 0; round < 100'000; ++round) {
            bool ran = false;
            for (auto& e : executors_) ran = e->run_one() || ran;
            bool wrote = false;
            if (!moving_ && !closed_) {
                if (!connection_->output().empty()) {
                    take_output();
                    wrote = true;
                    // The write completed: room for what the session holds back.
                    if (!closing_) connection_->on_output_written();
                }
                if (closing_ && connection_->output().empty()) closed_ = true;
            }
            if (!ran && !wrote) return;
        }
        throw std::runtime_error("in-process broker never settles (posted work keeps coming)");
    }

    void advance(std::chrono::milliseconds d) {
        now_ += d;
        if (!closed_ && !moving_) connection_->tick();
        for (auto& c : cores_) c->tick();
        settle();
    }

    // Cuts one whole packet off what the broker wrote (fixed header + remaining length).
    std::optional<wire::packet> next_packet() {
        if (written_.size() < 2) return std::nullopt;
        std::uint32_t length = 0;
        std::size_t i = 1;
        for (int shift = 0;; shift += 7) {
            if (i >= written_.size()) return std::nullopt;
            if (shift > 21) throw std::runtime_error("broker wrote a remaining length of more than 4 bytes");
            const std::uint8_t b = written_[i++];
            length |= std::uint32_t(b & 0x7F) << shift;
            if (!(b & 0x80)) break;
        }
        if (written_.size() - i < length) return std::nullopt;
        wire::packet p;
        p.header = written_[0];
        p.body.assign(written_.begin() + static_cast<std::ptrdiff_t>(i),
                      written_.begin() + static_cast<std::ptrdiff_t>(i + length));
        written_.erase(written_.begin(), written_.begin() + static_cast<std::ptrdiff_t>(i + length));
        return p;
    }

    core::broker broker_;
    std::vector<std::unique_ptr<queued_executor>> executors_;
    std::vector<std::unique_ptr<core::worker_core>> cores_;
    std::unique_ptr<core::client_connection> connection_;
    std::vector<std::unique_ptr<core::client_connection>> retired_;  // migrated away
    session::time_point now_ = session::clock::now();
    const session::time_point start_ = now_;
    wire::bytes written_;   // from the broker, not yet read
    std::string held_;      // sent while the connection moves between workers
    bool moving_ = false;   // migrate() posted, not yet run
    bool closing_ = false;  // close() called: the rest of the output, then EOF
    bool closed_ = false;   // all written; reads see EOF
};

}  // namespace

void run_case_inproc(const std::string& path) {
    test_case tc = parse_case(path);
    std::string failure;
    {
        inproc_transport transport(tc);
        failure = play(tc, transport);
    }
    if (!failure.empty()) FAIL(failure);
}

}  // namespace edgemq::test::conformance
