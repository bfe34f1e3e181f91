// The subscribers of one filter (or of one shared group on a filter): a contiguous
// array for fast fan-out, with O(1) average insert/replace/erase by handle.
//
// Not thread-safe by itself: the owner (subscription_tree) is behind the broker's
// shared_mutex; const members only read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "broker/protocol/packets.hpp"

namespace edgemq::topics {

// What one SUBSCRIBE entry asked for.
struct subscription {
    protocol::subscription_options options;
    std::uint32_t identifier = 0;  // Subscription Identifier (v5); 0 = none
    bool operator==(const subscription&) const = default;
};

template <class Handle>
struct subscriber {
    Handle handle;
    subscription sub;
};

// Handles are unique within a set. Order is unspecified and changes on erase
// (swap-remove), which is fine for fan-out and round-robin alike.
template <class Handle>
class subscriber_set {
public:
    using value_type = subscriber<Handle>;

    // Below this many entries a linear scan of the array beats hashing and saves the
    // map; most filters have one or two subscribers.
    static constexpr std::size_t index_threshold = 8;

    subscriber_set() = default;
    subscriber_set(subscriber_set&&) noexcept = default;
    subscriber_set& operator=(subscriber_set&&) noexcept = default;

    bool empty() const noexcept { return items_.empty(); }
    std::size_t size() const noexcept { return items_.size(); }
    std::span<const value_type> items() const noexcept { return items_; }

    // Adds the handle, or replaces its subscription when present. Returns true on
    // replace.
    bool upsert(const Handle& h, const subscription& s) {
        if (const auto i = index_of(h); i != npos) {
            items_[i].sub = s;
            return true;
        }
        items_.push_back(value_type{h, s});
        if (index_) {
            index_->emplace(h, static_cast<std::uint32_t>(items_.size() - 1));
        } else if (items_.size() > index_threshold) {
            build_index();
        }
        return false;
    }

    // Removes the handle; false when absent.
    bool erase(const Handle& h) {
        const auto i = index_of(h);
        if (i == npos) return false;
        const auto last = items_.size() - 1;
        if (i != last) {
            items_[i] = std::move(items_[last]);
            if (index_) (*index_)[items_[i].handle] = static_cast<std::uint32_t>(i);
        }
        items_.pop_back();
        if (index_) {
            index_->erase(h);
            shrink_index();
        }
        // Churn must not leave a filter that once had 100k subscribers holding their
        // memory: give back storage once three quarters are unused (amortised O(1),
        // the next shrink needs another 4x fewer entries).
        if (items_.capacity() > 16 && items_.size() < items_.capacity() / 4) {
            items_.shrink_to_fit();
        }
        return true;
    }

    const subscription* find(const Handle& h) const noexcept {
        const auto i = index_of(h);
        return i == npos ? nullptr : &items_[i].sub;
    }

private:
    static constexpr std::size_t npos = static_cast<std::size_t>(-1);
    using index_map = std::unordered_map<Handle, std::uint32_t>;

    std::size_t index_of(const Handle& h) const noexcept {
        if (index_) {
            const auto it = index_->find(h);
            return it == index_->end() ? npos : it->second;
        }
        for (std::size_t i = 0; i < items_.size(); ++i) {
            if (items_[i].handle == h) return i;
        }
        return npos;
    }

    void build_index() {
        auto index = std::make_unique<index_map>();
        index->reserve(items_.size() * 2);
        for (std::size_t i = 0; i < items_.size(); ++i) {
            index->emplace(items_[i].handle, static_cast<std::uint32_t>(i));
        }
        index_ = std::move(index);
    }

    void shrink_index() {
        // Hysteresis (build above 8, drop below 4) so one handle going back and forth
        // does not rebuild the map each time.
        if (items_.size() < index_threshold / 2) {
            index_.reset();
        } else if (index_->bucket_count() > 64 && items_.size() < index_->bucket_count() / 8) {
            index_->rehash(0);  // fit the buckets to what is left
        }
    }

    std::vector<value_type> items_;
    std::unique_ptr<index_map> index_;  // null while small
};

}  // namespace edgemq::topics
