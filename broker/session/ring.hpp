// A FIFO on a power-of-two circular buffer: O(1) push/pop at both ends and indexed
// access. Unlike std::deque (which allocates ~600 bytes on construction in libstdc++),
// an empty ring owns no memory, and a ring that drains gives its memory back, so idle
// sessions stay small.
#pragma once

#include <cassert>
#include <cstddef>
#include <memory>
#include <utility>

namespace edgemq::session {

template <class T>
class ring {
public:
    ring() = default;
    ring(ring&& other) noexcept { swap(other); }
    ring& operator=(ring&& other) noexcept {
        ring tmp(std::move(other));
        swap(tmp);
        return *this;
    }
    ring(const ring&) = delete;
    ring& operator=(const ring&) = delete;
    ~ring() { clear(); }

    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }

    T& operator[](std::size_t i) noexcept { assert(i < size_); return slots_[(head_ + i) & mask()]; }
    const T& operator[](std::size_t i) const noexcept { assert(i < size_); return slots_[(head_ + i) & mask()]; }
    T& front() noexcept { return (*this)[0]; }
    T& back() noexcept { return (*this)[size_ - 1]; }

    void push_back(T value) {
        if (size_ == capacity_) grow();
        slots_[(head_ + size_) & mask()] = std::move(value);
        ++size_;
    }
    void push_front(T value) {
        if (size_ == capacity_) grow();
        head_ = (head_ + capacity_ - 1) & mask();
        slots_[head_] = std::move(value);
        ++size_;
    }
    T pop_front() {
        assert(size_ > 0);
        T value = std::move(slots_[head_]);
        slots_[head_] = T{};
        head_ = (head_ + 1) & mask();
        if (--size_ == 0) release();
        return value;
    }
    T pop_back() {
        assert(size_ > 0);
        T& slot = slots_[(head_ + size_ - 1) & mask()];
        T value = std::move(slot);
        slot = T{};
        if (--size_ == 0) release();
        return value;
    }
    void clear() noexcept {
        size_ = 0;
        release();
    }

private:
    std::size_t mask() const noexcept { return capacity_ - 1; }
    void grow() {
        std::size_t capacity = capacity_ ? capacity_ * 2 : 4;
        auto slots = std::make_unique<T[]>(capacity);
        for (std::size_t i = 0; i < size_; ++i) slots[i] = std::move(slots_[(head_ + i) & mask()]);
        slots_ = std::move(slots);
        capacity_ = capacity;
        head_ = 0;
    }
    void release() noexcept {
        slots_.reset();
        capacity_ = 0;
        head_ = 0;
    }
    void swap(ring& other) noexcept {
        std::swap(slots_, other.slots_);
        std::swap(capacity_, other.capacity_);
        std::swap(head_, other.head_);
        std::swap(size_, other.size_);
    }

    std::unique_ptr<T[]> slots_;
    std::size_t capacity_ = 0;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

}  // namespace edgemq::session
