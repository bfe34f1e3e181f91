// Who is subscribed to what: the topic filters of all sessions as a tree of levels,
// answering "which subscriptions match this topic name" for each PUBLISH.
//
// Thread rules: no locks inside. The broker core keeps the tree behind a
// std::shared_mutex: match(), find(), for_each(), size() under the shared lock (any
// number of threads at once; match() mutates nothing but the relaxed round-robin
// counters of shared groups), subscribe()/unsubscribe()/clear() under the exclusive
// lock.
//
// Shape: one node per distinct filter prefix. A node finds its literal children by a
// hash map keyed by level (looked up with string_views into the topic, so matching
// does not allocate), and has dedicated '+' and '#' children. Subscribers of a filter
// sit in the node's subscriber_set; shared subscriptions ("$share/{group}/{filter}")
// sit in a group of the node of {filter}. Filters starting with '$' live under their
// own root, which is also the only root a '$' topic is matched against, so
// [MQTT-4.7.2-1] costs nothing at match time.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "broker/topics/subscriber_set.hpp"
#include "broker/topics/topic_levels.hpp"

namespace edgemq::topics {

// Handle: a small copyable, equality-comparable, std::hash-able value naming the
// subscriber (the core uses a 64-bit session key).
template <class Handle>
class subscription_tree {
public:
    using handle_type = Handle;
    using member = subscriber<Handle>;

    subscription_tree() = default;
    subscription_tree(const subscription_tree&) = delete;
    subscription_tree& operator=(const subscription_tree&) = delete;
    subscription_tree(subscription_tree&& other) noexcept
        : root_(std::move(other.root_)),
          dollar_root_(std::move(other.dollar_root_)),
          size_(other.size_),
          node_count_(other.node_count_) {
        other.clear();
    }
    subscription_tree& operator=(subscription_tree&& other) noexcept {
        if (this != &other) {
            clear();
            root_ = std::move(other.root_);
            dollar_root_ = std::move(other.dollar_root_);
            size_ = other.size_;
            node_count_ = other.node_count_;
            other.clear();
        }
        return *this;
    }
    ~subscription_tree() { clear(); }

    // Adds the subscription of `handle` to `filter`, or replaces its options when the
    // handle is already subscribed to that exact filter (for "$share/g/f": in the same
    // group g on f). Returns true when it replaced: the core needs that for Retain
    // Handling 1 [MQTT-3.3.1-10] and [MQTT-3.8.4-3]. The filter must have passed
    // protocol::validate_topic_filter; a "$share/" prefix always means shared (the
    // core decides whether a 3.1.1 client gets that). Allocates for new nodes; on
    // bad_alloc nothing is subscribed but empty nodes may be left behind.
    bool subscribe(std::string_view filter, const Handle& handle, const subscription& sub) {
        const auto parts = split_share(filter);
        node* n = &root_for(parts.filter);
        level_cursor levels(parts.filter);
        while (!levels.at_end()) n = &child_or_create(*n, levels.next());

        bool replaced = false;
        if (parts.share_name.empty()) {
            replaced = n->subscribers.upsert(handle, sub);
        } else {
            shared_group* g = find_group(*n, parts.share_name);
            if (!g) {
                n->groups.push_back(std::make_unique<shared_group>(parts.share_name));
                g = n->groups.back().get();
            }
            replaced = g->members.upsert(handle, sub);
        }
        if (!replaced) ++size_;
        return replaced;
    }

    // Removes the subscription of `handle` to `filter` (same form as subscribe) and
    // every node and group it leaves empty, so memory follows the live subscriptions
    // however much they churn. Returns whether it existed.
    bool unsubscribe(std::string_view filter, const Handle& handle) {
        const auto parts = split_share(filter);
        path_stack path;
        node* n = find_node(root_for(parts.filter), parts.filter, &path);
        if (!n) return false;

        if (parts.share_name.empty()) {
            if (!n->subscribers.erase(handle)) return false;
        } else {
            auto& groups = n->groups;
            std::size_t i = 0;
            while (i < groups.size() && groups[i]->name != parts.share_name) ++i;
            if (i == groups.size() || !groups[i]->members.erase(handle)) return false;
            if (groups[i]->members.empty()) {
                if (i + 1 != groups.size()) groups[i] = std::move(groups.back());
                groups.pop_back();
                if (groups.empty()) groups.shrink_to_fit();
            }
        }
        --size_;
        prune(path);
        return true;
    }

    // The subscription of `handle` to exactly `filter` (same form as subscribe), or
    // null.
    const subscription* find(std::string_view filter, const Handle& handle) const {
        const auto parts = split_share(filter);
        const node* n = &root_for(parts.filter);
        level_cursor levels(parts.filter);
        while (n && !levels.at_end()) {
            const auto level = levels.next();
            if (level == "+") {
                n = n->plus.get();
            } else if (level == "#") {
                n = n->hash.get();
            } else {
                const auto it = n->children.find(level);
                n = it == n->children.end() ? nullptr : it->second.get();
            }
        }
        if (!n) return nullptr;
        if (parts.share_name.empty()) return n->subscribers.find(handle);
        const shared_group* g = find_group(*n, parts.share_name);
        return g ? g->members.find(handle) : nullptr;
    }

    // Calls, for the topic name `topic` (no wildcards, at least one character):
    // - v.on_subscriber(const Handle&, const subscription&) once for every non-shared
    //   subscription whose filter matches. A handle with several matching filters is
    //   visited once per filter (the core merges them, [MQTT-3.3.4-2]);
    // - v.on_shared_group(std::span<const member> members, std::size_t start) once for
    //   every shared group (share name + filter) whose filter matches; members is never
    //   empty, start < members.size() advances round-robin per call for that group
    //   (relaxed atomic), and the core picks a member from there on, skipping offline
    //   ones as it likes.
    // Order is unspecified. Does not allocate (unless more than 32 '+' branches are
    // pending at once). The visitor must not modify the tree; the spans and references
    // are valid until the next exclusive operation.
    template <class Visitor>
    void match(std::string_view topic, Visitor&& v) const {
        // Each pending branch is a node reached by the levels consumed so far plus the
        // rest of the topic. A node is reached at most once: every step consumes one
        // level, and a node has one path from the root.
        struct frame {
            const node* n;
            level_cursor rest;
        };
        detail::small_stack<frame, 32> todo;
        todo.push({&root_for(topic), level_cursor(topic)});
        while (!todo.empty()) {
            frame f = todo.pop();
            for (;;) {
                // "x/#" matches x itself and anything below it (section 4.7.1.2).
                if (f.n->hash) visit(*f.n->hash, v);
                if (f.rest.at_end()) {
                    visit(*f.n, v);
                    break;
                }
                const auto level = f.rest.next();
                if (f.n->plus) todo.push({f.n->plus.get(), f.rest});
                const auto it = f.n->children.find(level);
                if (it == f.n->children.end()) break;
                f.n = it->second.get();
            }
        }
    }

    // Calls f(std::string_view filter, const Handle&, const subscription&) for every
    // subscription, the filter as subscribed (with "$share/{group}/" for shared ones);
    // for persistence and admin listings. Allocates (the filter strings).
    template <class F>
    void for_each(F&& f) const {
        struct frame {
            const node* n;
            std::size_t parent_len;
            std::string_view level;
            std::size_t depth;
        };
        std::string path;
        std::string shared;
        std::vector<frame> todo;
        for (const node* root : {&root_, &dollar_root_}) {
            todo.push_back({root, 0, {}, 0});
            while (!todo.empty()) {
                const frame fr = todo.back();
                todo.pop_back();
                path.resize(fr.parent_len);
                if (fr.depth > 1) path += '/';
                path += fr.level;
                const node& n = *fr.n;
                for (const auto& m : n.subscribers.items()) f(std::string_view(path), m.handle, m.sub);
                for (const auto& g : n.groups) {
                    shared.assign("$share/").append(g->name).append("/").append(path);
                    for (const auto& m : g->members.items()) f(std::string_view(shared), m.handle, m.sub);
                }
                const std::size_t len = path.size();
                for (const auto& [level, child] : n.children) todo.push_back({child.get(), len, level, fr.depth + 1});
                if (n.plus) todo.push_back({n.plus.get(), len, "+", fr.depth + 1});
                if (n.hash) todo.push_back({n.hash.get(), len, "#", fr.depth + 1});
            }
        }
    }

    // Number of subscriptions (each shared group member counts once).
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }

    // Number of nodes besides the two roots; for memory stats and pruning tests.
    std::size_t node_count() const noexcept { return node_count_; }

    // Removes everything. Deep trees are torn down without recursion.
    void clear() noexcept {
        teardown(root_);
        teardown(dollar_root_);
        size_ = 0;
        node_count_ = 0;
    }

private:
    struct shared_group {
        explicit shared_group(std::string_view n) : name(n) {}
        std::string name;
        subscriber_set<Handle> members;
        // Round-robin cursor; only ever incremented, read modulo the member count.
        // Mutated under the shared lock by concurrent match() calls, hence atomic.
        mutable std::atomic<std::size_t> next{0};
    };

    struct node;
    using child_map = std::unordered_map<std::string, std::unique_ptr<node>, detail::string_hash, std::equal_to<>>;

    struct node {
        child_map children;            // literal levels
        std::unique_ptr<node> plus;    // '+'
        std::unique_ptr<node> hash;    // '#', always a leaf
        subscriber_set<Handle> subscribers;                 // non-shared, of this filter
        std::vector<std::unique_ptr<shared_group>> groups;  // few per filter: linear scan

        bool unused() const noexcept {
            return children.empty() && !plus && !hash && subscribers.empty() && groups.empty();
        }
    };

    // How a node hangs from its parent; enough to unlink it when pruning.
    struct edge {
        node* parent = nullptr;
        char kind = 0;  // 'l' literal, '+', '#'
        typename child_map::iterator it{};
    };
    using path_stack = detail::small_stack<edge, 32>;

    node& root_for(std::string_view topic_or_filter) noexcept {
        return is_dollar(topic_or_filter) ? dollar_root_ : root_;
    }
    const node& root_for(std::string_view topic_or_filter) const noexcept {
        return is_dollar(topic_or_filter) ? dollar_root_ : root_;
    }

    node& child_or_create(node& n, std::string_view level) {
        std::unique_ptr<node>* slot = nullptr;
        if (level == "+") {
            slot = &n.plus;
        } else if (level == "#") {
            slot = &n.hash;
        } else {
            auto it = n.children.find(level);
            if (it == n.children.end()) it = n.children.emplace(std::string(level), nullptr).first;
            slot = &it->second;
        }
        if (!*slot) {
            *slot = std::make_unique<node>();
            ++node_count_;
        }
        return **slot;
    }

    // The node of a plain filter, recording the edges walked.
    static node* find_node(node& root, std::string_view filter, path_stack* path) {
        node* n = &root;
        level_cursor levels(filter);
        while (!levels.at_end()) {
            const auto level = levels.next();
            edge e{n, 'l', {}};
            node* next = nullptr;
            if (level == "+") {
                e.kind = '+';
                next = n->plus.get();
            } else if (level == "#") {
                e.kind = '#';
                next = n->hash.get();
            } else if (auto it = n->children.find(level); it != n->children.end()) {
                e.it = it;
                next = it->second.get();
            }
            if (!next) return nullptr;
            path->push(e);
            n = next;
        }
        return n;
    }

    static shared_group* find_group(const node& n, std::string_view name) noexcept {
        for (const auto& g : n.groups) {
            if (g->name == name) return g.get();
        }
        return nullptr;
    }

    // Unlinks the nodes at the end of `path` that hold nothing, deepest first.
    void prune(path_stack& path) noexcept {
        while (!path.empty()) {
            const edge e = path.pop();
            node* child = e.kind == '+' ? e.parent->plus.get()
                        : e.kind == '#' ? e.parent->hash.get()
                                        : e.it->second.get();
            if (!child->unused()) return;
            if (e.kind == '+') {
                e.parent->plus.reset();
            } else if (e.kind == '#') {
                e.parent->hash.reset();
            } else {
                e.parent->children.erase(e.it);
            }
            --node_count_;
        }
    }

    template <class Visitor>
    static void visit(const node& n, Visitor& v) {
        for (const auto& m : n.subscribers.items()) v.on_subscriber(m.handle, m.sub);
        for (const auto& g : n.groups) {
            const auto members = g->members.items();
            const auto start = g->next.fetch_add(1, std::memory_order_relaxed) % members.size();
            v.on_shared_group(members, start);
        }
    }

    // Destroying a unique_ptr chain recurses once per level; a topic filter can have
    // 32k levels, so unlink the children onto a heap list first.
    static void teardown(node& root) noexcept {
        std::vector<std::unique_ptr<node>> doomed;
        auto detach = [&doomed](node& n) {
            for (auto& [level, child] : n.children) doomed.push_back(std::move(child));
            n.children.clear();
            if (n.plus) doomed.push_back(std::move(n.plus));
            if (n.hash) doomed.push_back(std::move(n.hash));
        };
        detach(root);
        root = node{};
        while (!doomed.empty()) {
            std::unique_ptr<node> n = std::move(doomed.back());
            doomed.pop_back();
            detach(*n);
        }
    }

    node root_;
    node dollar_root_;
    std::size_t size_ = 0;
    std::size_t node_count_ = 0;
};

}  // namespace edgemq::topics
