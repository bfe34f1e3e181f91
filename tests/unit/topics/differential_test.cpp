// Randomized differential test: both trees against topic_matches() as the oracle, on
// filters and topics drawn from a small alphabet of levels so that collisions,
// wildcards, empty levels and '$' topics are frequent. Fixed seed, bounded work.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "broker/topics/topic_match.hpp"
#include "test_visitors.hpp"

using namespace edgemq::topics;
using namespace edgemq::topics::test;

namespace {

struct generator {
    std::mt19937 rng{20240611};

    int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); }

    std::string topic() {
        static const char* const levels[] = {"a", "b", "c", "", "A", "$x"};
        std::string s = pick(6) == 0 ? "$SYS" : levels[pick(6)];
        const int depth = pick(4);
        for (int i = 0; i < depth; ++i) s.append("/").append(levels[pick(6)]);
        if (s.empty()) s = "a";  // a topic name has at least one character
        return s;
    }

    std::string filter() {
        static const char* const levels[] = {"a", "b", "c", "", "+", "+", "$x"};
        std::string s;
        const int depth = 1 + pick(4);
        for (int i = 0; i < depth; ++i) {
            if (i) s += '/';
            if (i == 0 && pick(8) == 0) {
                s += "$SYS";
            } else {
                s += levels[pick(7)];
            }
        }
        if (pick(4) == 0) {
            if (depth == 1 && pick(2)) {
                s = "#";
            } else {
                s += "/#";
            }
        }
        if (s.empty()) s = "#";
        return s;
    }
};

// What the oracle says one topic should produce.
struct expected_match {
    std::multiset<std::pair<int, std::uint32_t>> subscribers;       // (handle, id)
    std::set<std::pair<std::string, std::string>> groups;            // (share, filter)
};

}  // namespace

TEST_CASE("subscription_tree agrees with topic_matches on random filters") {
    generator gen;
    tree t;
    // (share name or "", filter, handle) -> identifier; what the tree should hold.
    std::map<std::tuple<std::string, std::string, int>, std::uint32_t> model;
    std::uint32_t next_id = 1;
    std::size_t visits = 0, group_calls = 0;  // so the comparison is not vacuous

    auto check_topics = [&](int count) {
        for (int i = 0; i < count; ++i) {
            const auto topic = gen.topic();
            CAPTURE(topic);
            expected_match want;
            std::map<std::pair<std::string, std::string>, std::set<int>> members;
            for (const auto& [key, id] : model) {
                const auto& [share, filter, handle] = key;
                if (!topic_matches(filter, topic)) continue;
                if (share.empty()) {
                    want.subscribers.emplace(handle, id);
                } else {
                    want.groups.emplace(share, filter);
                    members[{share, filter}].insert(handle);
                }
            }
            auto c = match(t, topic);
            std::multiset<std::pair<int, std::uint32_t>> got;
            for (const auto& [h, s] : c.subscribers) got.emplace(h, s.identifier);
            CHECK(got == want.subscribers);
            visits += got.size();
            group_calls += c.groups.size();
            // A group is one call whose members are exactly the handles of that group.
            CHECK(c.groups.size() == want.groups.size());
            std::multiset<std::set<int>> got_groups, want_groups;
            for (const auto& g : c.groups) {
                CHECK(g.start < g.members.size());
                got_groups.insert(std::set<int>(g.members.begin(), g.members.end()));
            }
            for (const auto& [key, handles] : members) want_groups.insert(handles);
            CHECK(got_groups == want_groups);
        }
    };

    for (int round = 0; round < 4; ++round) {
        for (int i = 0; i < 150; ++i) {
            const auto filter = gen.filter();
            const std::string share = gen.pick(4) == 0 ? (gen.pick(2) ? "g1" : "g2") : "";
            const int handle = gen.pick(20);
            const auto full = share.empty() ? filter : "$share/" + share + "/" + filter;
            const std::uint32_t id = next_id++;
            const auto key = std::make_tuple(share, filter, handle);
            const bool existed = model.count(key) > 0;
            CHECK(t.subscribe(full, handle, sub(0, id)) == existed);
            model[key] = id;
        }
        CHECK(t.size() == model.size());
        check_topics(150);

        // Unsubscribe about half, plus some that were never there.
        for (auto it = model.begin(); it != model.end();) {
            const auto& [share, filter, handle] = it->first;
            const auto full = share.empty() ? filter : "$share/" + share + "/" + filter;
            if (gen.pick(2)) {
                CHECK(t.unsubscribe(full, handle));
                it = model.erase(it);
            } else {
                ++it;
            }
        }
        for (int i = 0; i < 50; ++i) {
            const auto filter = gen.filter();
            const int handle = 100 + gen.pick(5);  // never subscribed
            CHECK_FALSE(t.unsubscribe(filter, handle));
        }
        CHECK(t.size() == model.size());
        check_topics(150);
    }

    CHECK(visits > 1000);
    CHECK(group_calls > 100);

    for (const auto& [key, id] : model) {
        const auto& [share, filter, handle] = key;
        CHECK(t.unsubscribe(share.empty() ? filter : "$share/" + share + "/" + filter, handle));
    }
    CHECK(t.empty());
    CHECK(t.node_count() == 0);
}

TEST_CASE("retained_tree agrees with topic_matches on random filters") {
    generator gen;
    retained_tree<std::string> t;
    std::set<std::string> model;
    std::size_t found = 0;  // so the comparison is not vacuous

    auto check_filters = [&](int count) {
        for (int i = 0; i < count; ++i) {
            const auto filter = gen.filter();
            CAPTURE(filter);
            std::vector<std::string> want;
            for (const auto& topic : model) {
                if (topic_matches(filter, topic)) want.push_back(topic);
            }
            CHECK(retained(t, filter) == want);  // both sorted; each topic once
            found += want.size();
        }
    };

    for (int round = 0; round < 4; ++round) {
        for (int i = 0; i < 150; ++i) {
            const auto topic = gen.topic();
            t.set(topic, topic);
            model.insert(topic);
        }
        CHECK(t.size() == model.size());
        check_filters(200);

        for (int i = 0; i < 60; ++i) {
            const auto topic = gen.topic();
            CHECK(t.erase(topic) == (model.erase(topic) > 0));
        }
        // Expire the topics ending in 'b'.
        std::size_t want_removed = 0;
        for (auto it = model.begin(); it != model.end();) {
            if (it->back() == 'b') {
                it = model.erase(it);
                ++want_removed;
            } else {
                ++it;
            }
        }
        CHECK(t.erase_if([](const std::string& v) { return v.back() == 'b'; }) == want_removed);
        CHECK(t.size() == model.size());
        check_filters(200);
    }

    CHECK(found > 1000);
    CHECK(t.erase_if([](const std::string&) { return true; }) == model.size());
    CHECK(t.empty());
    CHECK(t.node_count() == 0);
}
