// Building blocks shared by the topic trees: walking the '/'-separated levels of a
// topic name or filter without allocating, splitting off a "$share/{group}/" prefix,
// and two small containers.
//
// Everything here is a pure function or a value type; no locks, no I/O.
#pragma once

#include <array>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace edgemq::topics {

// Yields the levels of a topic name or filter as views into it, left to right.
// "a//b" has the levels "a", "", "b"; "/a" has "", "a"; "a/" has "a", "" (section 4.7.1):
// the separator always has a level on each side, so even "" has one (empty) level.
// The cursor is 24 bytes and trivially copyable: the matchers keep one per pending
// branch instead of splitting the topic into strings.
class level_cursor {
public:
    level_cursor() noexcept = default;
    explicit level_cursor(std::string_view s) noexcept : rest_(s), end_(false) {}

    bool at_end() const noexcept { return end_; }

    // The next level. Precondition: !at_end().
    std::string_view next() noexcept {
        const auto slash = rest_.find('/');
        if (slash == std::string_view::npos) {
            end_ = true;
            return std::exchange(rest_, std::string_view{});
        }
        const auto level = rest_.substr(0, slash);
        rest_.remove_prefix(slash + 1);
        return level;
    }

private:
    std::string_view rest_;
    bool end_ = true;
};

// A filter as the trees store it: the share name ("" when not shared) and the filter
// the subscription matches topics against.
struct filter_parts {
    std::string_view share_name;
    std::string_view filter;
};

// Splits "$share/{ShareName}/{filter}" (section 4.8.2); any other filter comes back
// whole with an empty share name. The filter is expected to have passed
// protocol::validate_topic_filter (a non-empty share name and filter); this does not
// check it again. Our own copy so the trees stay header-only with respect to the
// protocol library.
constexpr filter_parts split_share(std::string_view filter) noexcept {
    constexpr std::string_view prefix = "$share/";
    if (!filter.starts_with(prefix)) return {{}, filter};
    const auto rest = filter.substr(prefix.size());
    const auto slash = rest.find('/');
    if (slash == std::string_view::npos) return {rest, {}};  // invalid; kept total
    return {rest.substr(0, slash), rest.substr(slash + 1)};
}

// Topics starting with '$' are not matched by filters starting with a wildcard
// [MQTT-4.7.2-1]; both trees keep them under a separate root so the rule costs one
// byte compare per operation.
constexpr bool is_dollar(std::string_view topic_or_filter) noexcept {
    return !topic_or_filter.empty() && topic_or_filter.front() == '$';
}

namespace detail {

// Lets unordered_map<std::string, ...>::find take a string_view without building a
// std::string (C++20 heterogeneous lookup).
struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
        return std::hash<std::string_view>{}(s);
    }
};

// A LIFO stack that holds its first N entries inline and spills to the heap only
// beyond that, so matching a topic does not allocate unless the tree has more than N
// pending branches (a pathological filter like "+/+/+/.../+"), and deep trees never
// recurse on the call stack.
template <class T, std::size_t N>
class small_stack {
public:
    bool empty() const noexcept { return size_ == 0; }
    std::size_t size() const noexcept { return size_; }

    void push(const T& v) {
        if (size_ < N) {
            inline_[size_] = v;
        } else {
            overflow_.push_back(v);
        }
        ++size_;
    }

    // Precondition: !empty().
    T pop() {
        --size_;
        if (size_ < N) return inline_[size_];
        T v = overflow_.back();
        overflow_.pop_back();
        return v;
    }

    // Precondition: !empty().
    T& top() noexcept { return size_ <= N ? inline_[size_ - 1] : overflow_.back(); }

private:
    std::array<T, N> inline_{};
    std::vector<T> overflow_;
    std::size_t size_ = 0;
};

}  // namespace detail
}  // namespace edgemq::topics
