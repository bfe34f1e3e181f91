// Measurement pieces of the load generator: the payload stamp, a latency histogram
// and a per-publisher sequence tracker. Each instance is owned by one worker thread
// and merged by the main thread only after the workers have joined, so none of them
// needs atomics or locks.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <vector>

namespace edgemq::bench {

// The first bytes of every payload. Written in host byte order: sender and receiver
// are the same process, and the steady clock is only comparable within one machine
// anyway. `run_id` keeps messages of another bench run (or another tool) on the same
// broker from being mistaken for ours.
struct payload_stamp {
    std::uint32_t run_id;
    std::uint32_t publisher;
    std::uint64_t seq;
    std::uint64_t sent_ns;  // steady_clock, nanoseconds since its epoch
};
static_assert(sizeof(payload_stamp) == 24);
constexpr std::size_t min_payload = sizeof(payload_stamp);

// Log-linear histogram of nanosecond values (the layout of HdrHistogram with 5
// sub-bucket bits): exact below 32 ns, then 32 buckets per power of two, so any
// percentile is within ~3% of the true value while recording costs a few instructions
// and the whole thing is a fixed 15 KiB array (no allocation while recording).
class latency_histogram {
public:
    static constexpr int sub_bits = 5;
    static constexpr std::size_t sub_count = 1u << sub_bits;
    static constexpr std::size_t bucket_count = (64 - sub_bits + 1) * sub_count;

    void record(std::uint64_t ns) noexcept {
        ++counts_[index_of(ns)];
        ++total_;
        max_ = std::max(max_, ns);
        min_ = std::min(min_, ns);
    }

    void merge(const latency_histogram& o) noexcept {
        for (std::size_t i = 0; i < bucket_count; ++i) counts_[i] += o.counts_[i];
        total_ += o.total_;
        max_ = std::max(max_, o.max_);
        min_ = std::min(min_, o.min_);
    }

    std::uint64_t count() const noexcept { return total_; }
    std::uint64_t max() const noexcept { return total_ ? max_ : 0; }
    std::uint64_t min() const noexcept { return total_ ? min_ : 0; }

    // Value at quantile q (0..1): the midpoint of the bucket holding that rank, clamped
    // to the observed max so p100 is exact.
    std::uint64_t quantile(double q) const noexcept {
        if (total_ == 0) return 0;
        auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_));
        if (rank >= total_) rank = total_ - 1;
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < bucket_count; ++i) {
            seen += counts_[i];
            if (seen > rank) return std::min(midpoint_of(i), max_);
        }
        return max_;
    }

private:
    static std::size_t index_of(std::uint64_t v) noexcept {
        if (v < sub_count) return static_cast<std::size_t>(v);
        const int msb = std::bit_width(v) - 1;  // >= sub_bits
        const int shift = msb - sub_bits;
        return static_cast<std::size_t>(shift + 1) * sub_count + static_cast<std::size_t>((v >> shift) - sub_count);
    }
    static std::uint64_t midpoint_of(std::size_t i) noexcept {
        if (i < sub_count) return i;
        const int shift = static_cast<int>(i / sub_count) - 1;
        const std::uint64_t low = (i % sub_count + sub_count) << shift;
        return low + ((std::uint64_t{1} << shift) >> 1);
    }

    std::array<std::uint64_t, bucket_count> counts_{};
    std::uint64_t total_ = 0;
    std::uint64_t max_ = 0;
    std::uint64_t min_ = UINT64_MAX;
};

// What one subscriber saw from one publisher. A bitmap of received sequence numbers
// tells a duplicate from a late (reordered) message exactly; it costs one bit per
// message published (1.25 MB per 10 M messages), grown by doubling so growth is rare.
class sequence_tracker {
public:
    // Returns false for a duplicate.
    bool on_seq(std::uint64_t seq) {
        const std::size_t word = static_cast<std::size_t>(seq >> 6);
        if (word >= seen_.size()) seen_.resize(std::max<std::size_t>({word + 1, seen_.size() * 2, 1024}));
        const std::uint64_t bit = std::uint64_t{1} << (seq & 63);
        if (seen_[word] & bit) {
            ++duplicates_;
            return false;
        }
        seen_[word] |= bit;
        ++distinct_;
        // A new message below the highest seen arrived after a later one: MQTT promises
        // per-publisher order on a topic at one QoS [MQTT-4.6.0-6], so count it.
        if (seq < next_) ++reordered_;
        else next_ = seq + 1;
        return true;
    }

    std::uint64_t distinct() const noexcept { return distinct_; }
    std::uint64_t duplicates() const noexcept { return duplicates_; }
    std::uint64_t reordered() const noexcept { return reordered_; }
    std::uint64_t next() const noexcept { return next_; }  // highest seen + 1
    const std::vector<std::uint64_t>& bitmap() const noexcept { return seen_; }

private:
    std::vector<std::uint64_t> seen_;
    std::uint64_t next_ = 0;
    std::uint64_t distinct_ = 0;
    std::uint64_t duplicates_ = 0;
    std::uint64_t reordered_ = 0;
};

}  // namespace edgemq::bench
