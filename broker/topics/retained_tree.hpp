// Retained messages: at most one Value per topic name, kept as a tree of levels so a
// new subscription finds the retained messages its filter matches by walking the
// filter, not by scanning every topic [MQTT-3.3.1-9].
//
// Thread rules: no locks inside, nothing mutable. The broker core keeps it behind a
// std::shared_mutex: find(), match(), for_each(), size() under the shared lock; set(),
// erase(), erase_if(), clear() under the exclusive lock.
//
// Topics starting with '$' live under their own root, which filters starting with '+'
// or '#' never enter [MQTT-4.7.2-1].
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "broker/topics/topic_levels.hpp"

namespace edgemq::topics {

// Value: what is retained per topic (the core: std::shared_ptr<const message>).
template <class Value>
class retained_tree {
public:
    using value_type = Value;

    retained_tree() = default;
    retained_tree(const retained_tree&) = delete;
    retained_tree& operator=(const retained_tree&) = delete;
    retained_tree(retained_tree&& other) noexcept
        : root_(std::move(other.root_)),
          dollar_root_(std::move(other.dollar_root_)),
          size_(other.size_),
          node_count_(other.node_count_) {
        other.clear();
    }
    retained_tree& operator=(retained_tree&& other) noexcept {
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
    ~retained_tree() { clear(); }

    // Stores `value` as the retained message of the topic name `topic` (validated, no
    // wildcards), replacing any earlier one [MQTT-3.3.1-5]. Deleting on an empty
    // payload [MQTT-3.3.1-6, MQTT-3.3.1-7] is the caller's business: it calls erase().
    void set(std::string_view topic, Value value) {
        node* n = &root_for(topic);
        level_cursor levels(topic);
        while (!levels.at_end()) {
            const auto level = levels.next();
            auto it = n->children.find(level);
            if (it == n->children.end()) {
                it = n->children.emplace(std::string(level), std::make_unique<node>()).first;
                ++node_count_;
            }
            n = it->second.get();
        }
        if (!n->value) ++size_;
        n->value = std::move(value);
    }

    // Removes the retained message of `topic` and the nodes that leaves empty.
    // Returns whether there was one. Does not allocate for topics up to 32 levels.
    bool erase(std::string_view topic) {
        path_stack path;
        node* n = &root_for(topic);
        level_cursor levels(topic);
        while (!levels.at_end()) {
            const auto it = n->children.find(levels.next());
            if (it == n->children.end()) return false;
            path.push({n, it});
            n = it->second.get();
        }
        if (!n->value) return false;
        n->value.reset();
        --size_;
        while (!path.empty()) {
            const edge e = path.pop();
            if (!e.it->second->unused()) break;
            e.parent->children.erase(e.it);
            --node_count_;
        }
        return true;
    }

    // The retained message of exactly `topic`, or null. Valid until the next
    // exclusive operation.
    const Value* find(std::string_view topic) const {
        const node* n = &root_for(topic);
        level_cursor levels(topic);
        while (!levels.at_end()) {
            const auto it = n->children.find(levels.next());
            if (it == n->children.end()) return nullptr;
            n = it->second.get();
        }
        return n->value ? &*n->value : nullptr;
    }

    // Calls v(const Value&) for every retained message whose topic the plain
    // (non-shared, validated) filter matches, under the rules of topic_matches().
    // Walks only the branches the filter allows: a literal filter costs one lookup per
    // level, '+' visits the children of one node, '#' the subtree below it. Order is
    // unspecified. The visitor must not modify the tree. Allocates only for
    // wide or deep results (more than 32 pending branches).
    template <class Visitor>
    void match(std::string_view filter, Visitor&& v) const {
        struct frame {
            const node* n;
            level_cursor rest;
        };
        detail::small_stack<frame, 32> todo;
        // A filter starting with '$' is literal in its first level, so it only ever
        // matches '$' topics; one starting with '+' or '#' must not see them.
        todo.push({&root_for(filter), level_cursor(filter)});
        while (!todo.empty()) {
            frame f = todo.pop();
            for (;;) {
                if (f.rest.at_end()) {
                    if (f.n->value) v(*f.n->value);
                    break;
                }
                const auto level = f.rest.next();
                if (level == "#") {
                    // The parent level and everything below it (section 4.7.1.2).
                    visit_subtree(*f.n, v);
                    break;
                }
                if (level == "+") {
                    for (const auto& [name, child] : f.n->children) todo.push({child.get(), f.rest});
                    break;
                }
                const auto it = f.n->children.find(level);
                if (it == f.n->children.end()) break;
                f.n = it->second.get();
            }
        }
    }

    // Removes every retained message for which pred(const Value&) is true (message
    // expiry sweeps) and the nodes that leaves empty. Returns how many it removed.
    // Visits the whole tree; its own memory is O(depth).
    template <class Pred>
    std::size_t erase_if(Pred pred) {
        std::size_t removed = 0;
        for (node* root : {&root_, &dollar_root_}) {
            // Post-order walk, so a node is judged after its children were pruned.
            // `next` points past the child being visited, so erasing that child from
            // the parent's map leaves it valid.
            struct frame {
                node* n;
                node* parent;  // null for the root
                typename child_map::iterator in_parent;
                typename child_map::iterator next;
            };
            detail::small_stack<frame, 32> todo;
            todo.push({root, nullptr, {}, root->children.begin()});
            while (!todo.empty()) {
                frame& top = todo.top();
                if (top.next != top.n->children.end()) {
                    const auto child = top.next++;
                    node* c = child->second.get();
                    todo.push({c, top.n, child, c->children.begin()});
                    continue;
                }
                const frame f = todo.pop();
                if (f.n->value && pred(std::as_const(*f.n->value))) {
                    f.n->value.reset();
                    --size_;
                    ++removed;
                }
                if (f.parent && f.n->unused()) {
                    f.parent->children.erase(f.in_parent);
                    --node_count_;
                }
            }
        }
        return removed;
    }

    // Calls f(std::string_view topic, const Value&) for every retained message; for
    // persistence and admin listings. Allocates (the topic strings).
    template <class F>
    void for_each(F&& f) const {
        struct frame {
            const node* n;
            std::size_t parent_len;
            std::string_view level;
            std::size_t depth;
        };
        std::string path;
        std::vector<frame> todo;
        for (const node* root : {&root_, &dollar_root_}) {
            todo.push_back({root, 0, {}, 0});
            while (!todo.empty()) {
                const frame fr = todo.back();
                todo.pop_back();
                path.resize(fr.parent_len);
                if (fr.depth > 1) path += '/';
                path += fr.level;
                if (fr.n->value) f(std::string_view(path), std::as_const(*fr.n->value));
                const std::size_t len = path.size();
                for (const auto& [level, child] : fr.n->children) {
                    todo.push_back({child.get(), len, level, fr.depth + 1});
                }
            }
        }
    }

    // Number of retained messages.
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
    struct node;
    using child_map = std::unordered_map<std::string, std::unique_ptr<node>, detail::string_hash, std::equal_to<>>;

    struct node {
        child_map children;
        std::optional<Value> value;

        bool unused() const noexcept { return children.empty() && !value; }
    };

    struct edge {
        node* parent = nullptr;
        typename child_map::iterator it{};
    };
    using path_stack = detail::small_stack<edge, 32>;

    node& root_for(std::string_view topic_or_filter) noexcept {
        return is_dollar(topic_or_filter) ? dollar_root_ : root_;
    }
    const node& root_for(std::string_view topic_or_filter) const noexcept {
        return is_dollar(topic_or_filter) ? dollar_root_ : root_;
    }

    template <class Visitor>
    static void visit_subtree(const node& top, Visitor& v) {
        detail::small_stack<const node*, 32> todo;
        todo.push(&top);
        while (!todo.empty()) {
            const node* n = todo.pop();
            if (n->value) v(*n->value);
            for (const auto& [level, child] : n->children) todo.push(child.get());
        }
    }

    // Destroying a unique_ptr chain recurses once per level; a topic can have 64k
    // levels, so unlink the children onto a heap list first.
    static void teardown(node& root) noexcept {
        std::vector<std::unique_ptr<node>> doomed;
        auto detach = [&doomed](node& n) {
            for (auto& [level, child] : n.children) doomed.push_back(std::move(child));
            n.children.clear();
        };
        detach(root);
        root.value.reset();
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
