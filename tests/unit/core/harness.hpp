// An in-process broker for tests: the real core (broker, worker_core,
// client_connection) without sockets or threads. Workers' posts queue up and run when
// the test calls run(); time stands still until the test advances it.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "broker/core/broker.hpp"
#include "broker/core/client_connection.hpp"
#include "broker/core/worker_core.hpp"
#include "broker/protocol/codec.hpp"

namespace edgemq::test {

class manual_executor final : public core::worker_executor {
public:
    void post(std::function<void()> work) override { queue.push_back(std::move(work)); }
    // Runs queued work (including work queued meanwhile); returns how much ran.
    std::size_t run() {
        std::size_t n = 0;
        while (!queue.empty()) {
            auto work = std::move(queue.front());
            queue.pop_front();
            work();
            ++n;
        }
        return n;
    }
    std::deque<std::function<void()>> queue;
};

// A store whose commits happen when the test says so. It records what the core asked
// of it; the SQLite store itself is tested in tests/unit/storage and end to end in the
// integration tests.
class manual_store final : public core::store {
public:
    core::durability mode() const noexcept override { return core::durability::process; }
    core::stored_state load() override { return {}; }
    void submit(std::vector<core::store_op> ops, std::function<void(bool)> done) override {
        for (auto& op : ops) log.push_back(op);
        pending.push_back({std::move(ops), std::move(done)});
    }
    void close() override {}

    // Completes every submission so far (in order) with `ok`; returns how many.
    std::size_t commit(bool ok = true) {
        std::size_t n = 0;
        while (!pending.empty()) {
            auto next = std::move(pending.front());
            pending.pop_front();
            next.done(ok);
            ++n;
        }
        return n;
    }
    template <class Op>
    std::size_t count() const {
        return static_cast<std::size_t>(std::count_if(log.begin(), log.end(),
                                                      [](const core::store_op& op) { return std::holds_alternative<Op>(op); }));
    }

    struct batch {
        std::vector<core::store_op> ops;
        std::function<void(bool)> done;
    };
    std::deque<batch> pending;
    std::vector<core::store_op> log;
};

class fake_broker;

// A client socket as the core sees it. Output accumulates in the protocol's output
// buffer; the test reads packets from it.
class fake_connection final : public core::connection_io {
public:
    fake_connection(fake_broker& owner, unsigned worker, std::string peer);
    ~fake_connection() override;  // leaves the broker's list: advance() must not tick it

    // Sends raw bytes as if read from the socket, then runs the workers.
    void send_bytes(std::string_view bytes);
    void send(protocol::protocol_version v, const protocol::packet& p);
    // Next packet written to the client, if any (decoded with the connection's version).
    std::optional<protocol::packet> receive();
    // All packets written so far, removed from the buffer.
    std::vector<protocol::packet> receive_all();
    void drop();  // the socket dies

    bool closed() const { return closed_; }
    core::client_connection& protocol() { return *protocol_; }
    protocol::protocol_version version = protocol::protocol_version::v5;

    // core::connection_io
    void output_ready() override {}
    void close() override { closed_ = true; }
    void migrate(unsigned worker, std::string replay) override;

private:
    fake_broker& owner_;
    unsigned worker_;
    std::unique_ptr<core::client_connection> protocol_;
    std::vector<std::unique_ptr<core::client_connection>> parked_;  // replaced by migrate()
    std::string written_;  // taken from protocol output, not yet decoded
    bool closed_ = false;
};

class fake_broker {
public:
    explicit fake_broker(core::broker_settings settings = {}, unsigned workers = 2, core::store* store = nullptr)
        : broker_(std::move(settings)) {
        broker_.set_store(store);
        for (unsigned i = 0; i < workers; ++i) {
            executors_.push_back(std::make_unique<manual_executor>());
            cores_.push_back(std::make_unique<core::worker_core>(broker_, i));
            cores_.back()->set_clock([this] { return now_; });
            broker_.add_worker(*cores_.back(), *executors_.back());
        }
    }

    // A new client connection accepted by `worker` (default: round robin).
    std::unique_ptr<fake_connection> connect(std::optional<unsigned> worker = std::nullopt) {
        const unsigned w = worker.value_or(next_worker_++ % cores_.size());
        return std::make_unique<fake_connection>(*this, w, "test:" + std::to_string(++peers_));
    }

    // Runs all posted work on every worker until none is left.
    void run() {
        for (bool any = true; any;) {
            any = false;
            for (auto& e : executors_) any = e->run() > 0 || any;
        }
    }
    // Moves the clock and runs every worker's and connection's timers.
    void advance(std::chrono::milliseconds d) {
        now_ += d;
        for (auto* c : live_) c->protocol().tick();
        for (auto& w : cores_) w->tick();
        run();
    }

    core::broker& shared() { return broker_; }
    manual_executor& executor(unsigned i) { return *executors_[i]; }
    core::worker_core& worker(unsigned i) { return *cores_[i]; }
    session::time_point now() const { return now_; }

    std::vector<fake_connection*> live_;
    // Set by fake_connection::migrate: the connection that now serves the socket.
    std::vector<std::unique_ptr<fake_connection>> migrated_;

private:
    core::broker broker_;
    std::vector<std::unique_ptr<manual_executor>> executors_;
    std::vector<std::unique_ptr<core::worker_core>> cores_;
    session::time_point now_ = session::clock::now();
    unsigned next_worker_ = 0;
    unsigned peers_ = 0;
};

inline fake_connection::fake_connection(fake_broker& owner, unsigned worker, std::string peer)
    : owner_(owner), worker_(worker),
      protocol_(std::make_unique<core::client_connection>(owner.worker(worker), *this, std::move(peer),
                                                          owner.shared().settings().listeners.front())) {
    owner_.live_.push_back(this);
}

inline fake_connection::~fake_connection() { std::erase(owner_.live_, this); }

inline void fake_connection::send_bytes(std::string_view bytes) {
    protocol_->on_input(bytes);
    owner_.run();
}

inline void fake_connection::send(protocol::protocol_version v, const protocol::packet& p) {
    std::string bytes;
    protocol::encode(v, p, bytes);
    send_bytes(bytes);
}

inline std::optional<protocol::packet> fake_connection::receive() {
    owner_.run();
    written_.append(protocol_->output().flatten());
    protocol_->output().clear();
    protocol_->on_output_written();
    owner_.run();
    written_.append(protocol_->output().flatten());
    protocol_->output().clear();
    protocol::fixed_header h;
    if (protocol::parse_fixed_header(written_, h) != protocol::frame_status::ready ||
        written_.size() < h.packet_size())
        return std::nullopt;
    auto decoded = protocol::decode(version, h, std::string_view(written_).substr(h.header_size, h.remaining_length));
    written_.erase(0, h.packet_size());
    if (!decoded) throw std::runtime_error(std::string("broker wrote an undecodable packet: ") + decoded.err().what);
    return std::move(decoded.value());
}

inline std::vector<protocol::packet> fake_connection::receive_all() {
    std::vector<protocol::packet> all;
    while (auto p = receive()) all.push_back(std::move(*p));
    return all;
}

inline void fake_connection::drop() {
    protocol_->on_transport_closed("test dropped the socket");
    closed_ = true;
    owner_.run();
}

inline void fake_connection::migrate(unsigned worker, std::string replay) {
    // Like the network layer: the same socket continues on the other worker. The test
    // keeps using this object, so swap the protocol object in place.
    // Like the network layer: the socket continues on the other worker, where a new
    // protocol object starts with the replayed input. The old one is parked, not
    // destroyed: we are inside its on_input().
    owner_.executor(worker).post([this, worker, replay = std::move(replay)] {
        worker_ = worker;
        parked_.push_back(std::move(protocol_));
        protocol_ = std::make_unique<core::client_connection>(owner_.worker(worker), *this, "migrated",
                                                              owner_.shared().settings().listeners.front());
        protocol_->on_input(replay);
    });
}

// The next packet the connection received, which must be a T.
template <class T>
T expect(fake_connection& c) {
    auto p = c.receive();
    REQUIRE_MESSAGE(p.has_value(), "expected a packet, got none");
    REQUIRE_MESSAGE(std::holds_alternative<T>(*p), "got ", protocol::to_string(protocol::type_of(*p)));
    return std::get<T>(*p);
}

}  // namespace edgemq::test
