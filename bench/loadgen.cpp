// edgemq-bench: an MQTT load generator. Main drives the phases of a run (subscribe,
// connect publishers, warm up, measure, drain, disconnect) and owns every deadline;
// the workers run the clients. See bench/README.md for what each number means.
#include <sys/resource.h>
#include <unistd.h>

#include <bit>
#include <boost/asio/post.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <functional>
#include <iostream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "client.hpp"
#include "options.hpp"
#include "stats.hpp"

namespace edgemq::bench {
namespace {

std::atomic<bool> stop_requested{false};

void on_signal(int) { stop_requested.store(true); }

// MQTT topic matching for the loss accounting: which publishers' topics does the
// subscription filter cover? A shared subscription's "$share/<group>/" is stripped.
bool topic_matches(std::string_view filter, std::string_view topic) {
    if (filter.starts_with("$share/")) {
        const auto slash = filter.find('/', 7);
        if (slash == std::string_view::npos) return false;
        filter = filter.substr(slash + 1);
    }
    // A wildcard first level does not match a $ topic [MQTT-4.7.2-1]; ours never are.
    for (;;) {
        const auto fs = filter.find('/');
        const auto ts = topic.find('/');
        const auto flevel = filter.substr(0, fs);
        const auto tlevel = topic.substr(0, ts);
        if (flevel == "#") return true;
        if (flevel != "+" && flevel != tlevel) return false;
        if (fs == std::string_view::npos || ts == std::string_view::npos) {
            // "a/#" also matches "a" [MQTT-4.7.1-2].
            if (fs != std::string_view::npos && ts == std::string_view::npos) return filter.substr(fs + 1) == "#";
            return fs == std::string_view::npos && ts == std::string_view::npos;
        }
        filter = filter.substr(fs + 1);
        topic = topic.substr(ts + 1);
    }
}

std::string json_escape(std::string_view s) {
    std::string out;
    for (char c : s) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        default:
            if (static_cast<unsigned char>(c) < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", c);
                out += buf;
            } else {
                out += c;
            }
        }
    }
    return out;
}

double us(std::uint64_t ns) { return static_cast<double>(ns) / 1000.0; }

struct results {
    double measured_s = 0;
    worker_stats totals;
    std::uint64_t published = 0;      // all messages the publishers sent, whole run
    std::uint64_t expected = 0;       // deliveries owed to the subscribers for those
    std::uint64_t received = 0;       // distinct deliveries (deduplicated)
    std::uint64_t lost = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t reordered = 0;
    bool drained = false;             // every flow and delivery finished in the drain
    std::string drain_end;            // complete, idle (nothing came for --drain-timeout), max, cut
    std::string error;
};

class run {
public:
    explicit run(const options& o) : opt_(o), ctl_(o, std::random_device{}()) {}

    // Returns the exit status.
    int execute() {
        start_ = std::chrono::steady_clock::now();
        hard_deadline_ = start_ + seconds(opt_.max_time_s);

        tcp::endpoint endpoint;
        {
            asio::io_context io;
            tcp::resolver resolver(io);
            boost::system::error_code ec;
            auto found = resolver.resolve(opt_.host, std::to_string(opt_.port), ec);
            if (ec || found.empty()) {
                std::cerr << "edgemq-bench: cannot resolve " << opt_.host << ": " << ec.message() << "\n";
                return 2;
            }
            endpoint = found.begin()->endpoint();
        }

        try {
            setup_ = make_transport_setup(opt_);
        } catch (const std::exception& e) {
            std::cerr << "edgemq-bench: " << e.what() << "\n";
            return 2;
        }
        for (unsigned t = 0; t < opt_.threads; ++t)
            workers_.push_back(std::make_unique<worker>(opt_, ctl_, endpoint, setup_));
        // Round-robin, subscribers first and publishers continuing where they ended, so
        // with 1 subscriber the first publisher lands on another thread.
        for (unsigned s = 0; s < opt_.subscribers; ++s) {
            auto& w = *workers_[s % opt_.threads];
            w.subscribers.push_back(std::make_unique<subscriber>(w, s, opt_.publishers));
        }
        for (unsigned p = 0; p < opt_.publishers; ++p) {
            auto& w = *workers_[(opt_.subscribers + p) % opt_.threads];
            w.publishers.push_back(std::make_unique<publisher>(
                w, p, opt_.topic_prefix + "/" + std::to_string(p) + "/data"));
        }
        for (auto& w : workers_) w->run();

        const int status = drive(endpoint);

        for (auto& w : workers_) w->stop();
        for (auto& w : workers_) w->join();
        if (status == 2) return status;
        report(status);
        return status;
    }

private:
    using clock = std::chrono::steady_clock;
    static clock::duration seconds(double s) {
        return std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(s));
    }

    // Polls `done` until it holds, a connection fails, the user interrupts, or
    // `limit` (capped by the hard deadline) passes. Polling keeps main simple and costs
    // nothing measurable at 5 ms.
    enum class wait_result { ok, error, timeout, interrupted, deadline };
    wait_result wait_for(const std::function<bool()>& done, clock::time_point limit, bool stop_on_error = true) {
        for (;;) {
            if (done()) return wait_result::ok;
            if (stop_on_error && ctl_.errors.load(std::memory_order_acquire) != 0) return wait_result::error;
            if (stop_requested.load()) return wait_result::interrupted;
            const auto now = clock::now();
            if (now >= hard_deadline_) return wait_result::deadline;
            if (now >= limit) return wait_result::timeout;
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }

    std::uint64_t received_sum() const {
        std::uint64_t got = 0;
        for (unsigned s = 0; s < opt_.subscribers; ++s) got += ctl_.received[s].value.load(std::memory_order_relaxed);
        return got;
    }

    // wait_for() that gives up after --drain-timeout seconds in which neither a
    // publisher finished nor a subscriber received anything, or at --drain-max.
    wait_result drain_wait(const std::function<bool()>& done) {
        auto signature = [&] { return ctl_.publishers_done.load() + received_sum(); };
        std::uint64_t last = signature();
        auto idle_limit = clock::now() + seconds(opt_.drain_timeout_s);
        for (;;) {
            const auto r = wait_for(done, std::min(idle_limit, clock::now() + std::chrono::milliseconds(100)), false);
            if (r != wait_result::timeout) return r;
            if (clock::now() >= drain_limit_) {
                drain_end_ = "max";
                return wait_result::timeout;
            }
            if (const auto now_sig = signature(); now_sig != last) {
                last = now_sig;
                idle_limit = clock::now() + seconds(opt_.drain_timeout_s);
            } else if (clock::now() >= idle_limit) {
                drain_end_ = "idle";
                return wait_result::timeout;
            }
        }
    }

    template <typename F>
    void post_all(F f) {
        for (auto& w : workers_) asio::post(w->io(), [w = w.get(), f] { f(*w); });
    }

    int setup_failure(const std::string& what) {
        std::cerr << "edgemq-bench: " << what << "\n";
        disconnect_all();
        return 2;
    }

    int drive(const tcp::endpoint& endpoint) {
        const std::string where = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());

        // 1. Subscribers first, and all SUBACKs in, so no message is published before
        //    someone listens.
        post_all([](worker& w) { for (auto& s : w.subscribers) s->start(); });
        auto r = wait_for([&] { return ctl_.subscribers_ready.load() == opt_.subscribers; },
                          clock::now() + seconds(opt_.connect_timeout_s));
        if (r != wait_result::ok) return setup_failure(phase_failure("subscribers to connect and subscribe", r, where));

        // 2. Publishers connect.
        post_all([](worker& w) { for (auto& p : w.publishers) p->start(); });
        r = wait_for([&] { return ctl_.publishers_ready.load() == opt_.publishers; },
                     clock::now() + seconds(opt_.connect_timeout_s));
        if (r != wait_result::ok) return setup_failure(phase_failure("publishers to connect", r, where));

        // 3. Load: warm-up, then the measured window. The window is published before
        //    the publishers start so every thread sees it from the first message.
        const std::uint64_t t0 = now_ns();
        const auto begin = t0 + static_cast<std::uint64_t>(opt_.warmup_s * 1e9);
        const auto end = begin + static_cast<std::uint64_t>(opt_.duration_s * 1e9);
        ctl_.measure_begin_ns.store(begin);
        ctl_.measure_end_ns.store(end);
        post_all([](worker& w) { for (auto& p : w.publishers) p->start_publishing(); });
        const auto load_end = clock::now() + seconds(opt_.warmup_s + opt_.duration_s);
        const bool progress = !opt_.json && isatty(STDERR_FILENO);
        auto next_progress = clock::now() + std::chrono::seconds(1);
        for (;;) {
            r = wait_for([] { return false; }, std::min(load_end, next_progress));
            if (r == wait_result::timeout && clock::now() < load_end) {
                if (progress) print_progress(t0);
                next_progress += std::chrono::seconds(1);
                continue;
            }
            break;
        }
        int status = 0;
        const std::uint64_t stopped = now_ns();
        if (r != wait_result::timeout) {
            // Stopped early: close the window now so rates divide by the time measured.
            if (stopped < end) ctl_.measure_end_ns.store(std::max(stopped, begin));
            if (r == wait_result::error) { error_ = ctl_.first_error(); status = 1; }
            if (r == wait_result::interrupted) error_ = "interrupted";
            if (r == wait_result::deadline) { error_ = "hard deadline (--max-time) reached"; status = 3; }
        }
        const std::uint64_t measured_end = std::min(stopped, ctl_.measure_end_ns.load());
        measured_s_ = measured_end > begin ? static_cast<double>(measured_end - begin) * 1e-9 : 0.0;

        // 4. Stop publishing; wait for every QoS flow and then every delivery owed, for
        //    as long as they keep coming: a saturated QoS 0 run can have seconds of
        //    messages queued in socket buffers, which are late, not lost.
        post_all([](worker& w) { for (auto& p : w.publishers) p->stop_publishing(); });
        drain_limit_ = clock::now() + seconds(opt_.drain_max_s);
        r = drain_wait([&] { return ctl_.publishers_done.load() == opt_.publishers; });
        bool drained = r == wait_result::ok;
        if (drained) {
            std::vector<std::uint64_t> owed(opt_.subscribers, 0);
            std::uint64_t owed_total = 0;
            for (unsigned p = 0; p < opt_.publishers; ++p) {
                if (!topic_matches(opt_.sub_filter, topic_of(p))) continue;
                const auto sent = ctl_.published[p].value.load(std::memory_order_acquire);
                for (auto& o : owed) o += sent;
                owed_total += sent;
            }
            r = drain_wait([&] {
                if (ctl_.shared_subscription) return opt_.subscribers == 0 || received_sum() >= owed_total;
                for (unsigned s = 0; s < opt_.subscribers; ++s)
                    if (ctl_.received[s].value.load() < owed[s]) return false;
                return true;
            });
            drained = r == wait_result::ok;
        }
        if (r == wait_result::deadline && status == 0) {
            error_ = "hard deadline (--max-time) reached while draining";
            status = 3;
        }
        drained_ = drained;
        if (drained) drain_end_ = "complete";
        else if (r != wait_result::timeout) drain_end_ = "cut";

        // 5. DISCONNECT everyone and wait (briefly) for the broker to close.
        disconnect_all();
        if (status == 0 && ctl_.errors.load() != 0) {
            error_ = ctl_.first_error();
            status = 1;
        }
        return status;
    }

    void disconnect_all() {
        post_all([](worker& w) {
            for (auto& p : w.publishers) p->disconnect();
            for (auto& s : w.subscribers) s->disconnect();
        });
        const unsigned total = opt_.publishers + opt_.subscribers;
        wait_for([&] { return ctl_.closed.load() == total; }, clock::now() + std::chrono::seconds(3), false);
    }

    std::string phase_failure(const char* what, wait_result r, const std::string& where) {
        switch (r) {
        case wait_result::error: return ctl_.first_error();
        case wait_result::interrupted: return "interrupted";
        case wait_result::deadline: return "hard deadline (--max-time) reached";
        default: break;
        }
        const unsigned ready = std::string_view(what).starts_with("sub") ? ctl_.subscribers_ready.load()
                                                                        : ctl_.publishers_ready.load();
        const unsigned want = std::string_view(what).starts_with("sub") ? opt_.subscribers : opt_.publishers;
        std::ostringstream os;
        os << "timed out after " << opt_.connect_timeout_s << " s waiting for " << what << " at " << where
           << " (" << ready << "/" << want << " ready)";
        return os.str();
    }

    std::string topic_of(unsigned p) const { return opt_.topic_prefix + "/" + std::to_string(p) + "/data"; }

    void print_progress(std::uint64_t t0) {
        const std::uint64_t got = received_sum();
        const double t = static_cast<double>(now_ns() - t0) * 1e-9;
        std::fprintf(stderr, "  t=%5.1fs  delivered so far %llu (avg %.0f msgs/s)\n", t,
                     static_cast<unsigned long long>(got), t > 0 ? static_cast<double>(got) / t : 0.0);
    }

    results collect() {
        results res;
        res.measured_s = measured_s_;
        res.drained = drained_;
        res.drain_end = drain_end_;
        res.error = error_;
        auto& t = res.totals;
        std::vector<std::uint64_t> sent(opt_.publishers, 0);
        std::vector<const subscriber*> subs(opt_.subscribers, nullptr);
        for (auto& w : workers_) {
            const auto& s = w->stats;
            t.latency.merge(s.latency);
            t.published_window += s.published_window;
            t.delivered_window += s.delivered_window;
            t.acked_window += s.acked_window;
            t.published_total += s.published_total;
            t.delivered_total += s.delivered_total;
            t.acked_total += s.acked_total;
            t.rejected += s.rejected;
            t.foreign += s.foreign;
            t.window_stalls += s.window_stalls;
        }
        for (auto& w : workers_)
            for (auto& p : w->publishers) sent[p->index()] = p->accepted();
        res.published = t.published_total;

        // Loss: every message a matching publisher sent is owed to each subscriber (one
        // member of a shared group). Counted over the whole run, warm-up included, once
        // the drain has had its chance.
        std::vector<std::vector<const sequence_tracker*>> by_pub(opt_.publishers);
        for (auto& w : workers_)
            for (auto& s : w->subscribers)
                for (unsigned p = 0; p < opt_.publishers; ++p) by_pub[p].push_back(&s->trackers()[p]);
        for (unsigned p = 0; p < opt_.publishers; ++p) {
            const bool matches = topic_matches(opt_.sub_filter, topic_of(p));
            std::uint64_t distinct_sum = 0;
            for (auto* tr : by_pub[p]) {
                res.duplicates += tr->duplicates();
                res.reordered += tr->reordered();
                distinct_sum += tr->distinct();
            }
            if (!ctl_.shared_subscription) {
                res.received += distinct_sum;
                if (!matches) continue;
                res.expected += sent[p] * opt_.subscribers;
                for (auto* tr : by_pub[p]) res.lost += sent[p] > tr->distinct() ? sent[p] - tr->distinct() : 0;
            } else {
                // A shared group owes each message once to the group: union the bitmaps;
                // one message delivered to two members is a duplicate.
                std::vector<std::uint64_t> all;
                for (auto* tr : by_pub[p]) {
                    const auto& bm = tr->bitmap();
                    if (all.size() < bm.size()) all.resize(bm.size(), 0);
                    for (std::size_t i = 0; i < bm.size(); ++i) all[i] |= bm[i];
                }
                std::uint64_t unique = 0;
                for (auto wbits : all) unique += static_cast<std::uint64_t>(std::popcount(wbits));
                res.duplicates += distinct_sum - unique;
                res.received += unique;
                if (!matches) continue;
                res.expected += sent[p];
                res.lost += sent[p] > unique ? sent[p] - unique : 0;
            }
        }
        return res;
    }

    void report(int status) {
        const results res = collect();
        const auto& t = res.totals;
        const double secs = res.measured_s > 0 ? res.measured_s : 1e-9;
        const double pub_rate = static_cast<double>(t.published_window) / secs;
        const double del_rate = static_cast<double>(t.delivered_window) / secs;
        const double ack_rate = static_cast<double>(t.acked_window) / secs;
        const auto& h = t.latency;
        const char* version = opt_.mqtt_version == 5 ? "5" : "3.1.1";

        std::ostringstream human;
        human.setf(std::ios::fixed);
        human.precision(0);
        human << "edgemq-bench: " << opt_.publishers << " pub -> " << opt_.subscribers << " sub ('" << opt_.sub_filter
              << "'), QoS " << int{opt_.qos} << ", MQTT " << version << ", payload " << opt_.payload << " B";
        if (opt_.qos > 0) human << ", inflight " << opt_.inflight;
        if (opt_.rate > 0) human << ", rate " << opt_.rate << "/s per pub";
        if (opt_.qos0_window > 0 && opt_.qos == 0) human << ", qos0 window " << opt_.qos0_window;
        human << ", " << opt_.threads << " threads, " << to_string(opt_.transport) << " " << opt_.host << ":" << opt_.port;
        if (opt_.transport == transport_kind::ws || opt_.transport == transport_kind::wss) human << opt_.ws_path;
        human << "\n";
        human.precision(2);
        human << "  measured      " << res.measured_s << " s after " << opt_.warmup_s << " s warm-up\n";
        human.precision(0);
        human << "  published     " << pub_rate << " msgs/s\n";
        human << "  delivered     " << del_rate << " msgs/s (at the subscribers)\n";
        if (opt_.qos > 0) human << "  acks          " << ack_rate << " /s (" << (opt_.qos == 1 ? "PUBACK" : "PUBCOMP") << ")\n";
        human.precision(1);
        human << "  latency (us)  p50 " << us(h.quantile(0.5)) << "  p90 " << us(h.quantile(0.9)) << "  p99 "
              << us(h.quantile(0.99)) << "  p99.9 " << us(h.quantile(0.999)) << "  max " << us(h.max()) << "  ("
              << h.count() << " samples)\n";
        human << "  whole run     published " << res.published << ", owed " << res.expected << ", received "
              << res.received << ", lost " << res.lost << ", duplicates " << res.duplicates << ", out of order "
              << res.reordered;
        if (t.rejected) human << ", rejected by broker " << t.rejected;
        if (t.foreign) human << ", foreign " << t.foreign;
        if (t.window_stalls) human << ", window stalls " << t.window_stalls;
        human << "\n";
        if (res.drain_end == "idle")
            human << "  note: nothing arrived for --drain-timeout s after the load: what is missing is lost\n";
        else if (!res.drained)
            human << "  note: the drain did not finish (" << (res.drain_end == "max" ? "--drain-max passed" : "run cut short")
                  << "): 'lost' may include messages still queued\n";
        if (!res.error.empty()) human << "  ERROR: " << res.error << "\n";
        (opt_.json ? std::cerr : std::cout) << human.str() << std::flush;

        if (!opt_.json) return;
        std::ostringstream js;
        js.setf(std::ios::fixed);
        js.precision(1);
        js << "{\"tool\":\"edgemq-bench\",\"label\":\"" << json_escape(opt_.label) << "\",\"host\":\""
           << json_escape(opt_.host) << "\",\"port\":" << opt_.port << ",\"transport\":\"" << to_string(opt_.transport) << "\""
           << ",\"mqtt_version\":" << int{opt_.mqtt_version}
           << ",\"qos\":" << int{opt_.qos} << ",\"publishers\":" << opt_.publishers
           << ",\"subscribers\":" << opt_.subscribers << ",\"sub_filter\":\"" << json_escape(opt_.sub_filter)
           << "\",\"payload\":" << opt_.payload << ",\"inflight\":" << opt_.inflight << ",\"rate\":" << opt_.rate
           << ",\"qos0_window\":" << opt_.qos0_window << ",\"threads\":" << opt_.threads
           << ",\"clean\":" << (opt_.clean ? "true" : "false") << ",\"warmup_s\":" << opt_.warmup_s;
        js.precision(3);
        js << ",\"measured_s\":" << res.measured_s;
        js.precision(1);
        js << ",\"published_per_s\":" << pub_rate << ",\"delivered_per_s\":" << del_rate
           << ",\"acks_per_s\":" << ack_rate << ",\"latency_samples\":" << h.count()
           << ",\"latency_p50_us\":" << us(h.quantile(0.5)) << ",\"latency_p90_us\":" << us(h.quantile(0.9))
           << ",\"latency_p99_us\":" << us(h.quantile(0.99)) << ",\"latency_p999_us\":" << us(h.quantile(0.999))
           << ",\"latency_max_us\":" << us(h.max()) << ",\"published\":" << res.published
           << ",\"owed\":" << res.expected << ",\"received\":" << res.received << ",\"lost\":" << res.lost
           << ",\"duplicates\":" << res.duplicates << ",\"out_of_order\":" << res.reordered
           << ",\"rejected\":" << t.rejected << ",\"foreign\":" << t.foreign
           << ",\"window_stalls\":" << t.window_stalls << ",\"drained\":" << (res.drained ? "true" : "false") << ",\"drain_end\":\"" << res.drain_end << "\""
           << ",\"status\":" << status << ",\"error\":\"" << json_escape(res.error) << "\"}";
        std::cout << js.str() << "\n" << std::flush;
    }

    const options& opt_;
    run_control ctl_;
    transport_setup setup_;  // before workers_: their connections refer to it
    std::vector<std::unique_ptr<worker>> workers_;
    clock::time_point start_;
    clock::time_point hard_deadline_;
    clock::time_point drain_limit_;
    double measured_s_ = 0;
    bool drained_ = false;
    std::string drain_end_;
    std::string error_;
};

}  // namespace
}  // namespace edgemq::bench

int main(int argc, char** argv) {
    using namespace edgemq::bench;
    options opt;
    try {
        opt = parse_options(argc, argv);
    } catch (const std::invalid_argument& e) {
        if (*e.what() == '\0') {
            std::cout << usage();
            return 0;
        }
        std::cerr << "edgemq-bench: " << e.what() << " (see --help)\n";
        return 2;
    }
    // One descriptor per client: lift the soft limit (often 1024) to the hard one, so
    // thousands of clients fail on the broker's limits, not ours.
    if (rlimit rl{}; getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);

    // Last line of defence for the bounded run time: if main itself is stuck (a worker
    // that never returns from join), leave anyway a few seconds past the deadline.
    std::thread([limit = opt.max_time_s + 5] {
        std::this_thread::sleep_for(std::chrono::duration<double>(limit));
        std::fprintf(stderr, "edgemq-bench: hard deadline exceeded, exiting\n");
        std::_Exit(3);
    }).detach();

    run r(opt);
    return r.execute();
}
