// When is a watch stalled? A watch stream can go silent with its connection
// up (etcd or its HTTP gateway stops sending to a watcher far behind: seen
// under load in CI, the watch stuck 250 revisions back with no compaction
// notice). Silence alone proves nothing (a quiet range is silent too), so
// after `interval` without a message the source reads its range's newest
// key: a key newer than the watch's revision, with still nothing received,
// twice a second apart, means stalled. Pure logic, times passed in.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace podfwd::control::etcd {

class WatchLiveness {
public:
    using Clock = std::chrono::steady_clock;
    static constexpr std::chrono::milliseconds kConfirmAfter{1000};

    explicit WatchLiveness(std::chrono::milliseconds interval) : interval_(interval) {}

    // A new watch (or none): forget what was suspected.
    void reset(Clock::time_point now) {
        last_message_at_ = now;
        suspected_ = false;
    }
    void on_message(Clock::time_point now) {
        last_message_at_ = now;
        ++messages_;
    }

    // When to look next: `interval` after the last message, or a second
    // after a suspicion.
    Clock::time_point next_check() const {
        return suspected_ ? suspected_at_ + kConfirmAfter : last_message_at_ + interval_;
    }
    // Whether a probe is worth sending at `now`.
    bool due(Clock::time_point now) const { return now >= next_check(); }
    std::uint64_t messages() const { return messages_; }

    enum class Verdict : std::uint8_t { kAlive, kLookAgain, kStalled };
    // The probe sent when `messages_at_probe` messages had arrived found the
    // range's newest key at `newest_revision` (nullopt: empty range, or the
    // probe failed) while the watch had applied up to `applied_revision`.
    Verdict on_probe(std::uint64_t messages_at_probe, std::optional<std::int64_t> newest_revision,
                     std::int64_t applied_revision, Clock::time_point now) {
        const bool silent = messages_ == messages_at_probe;
        const bool behind = newest_revision && *newest_revision > applied_revision;
        if (!(silent && behind)) {
            suspected_ = false;
            if (silent)
                last_message_at_ = now;   // nothing to catch up with: wait a whole interval again
            return Verdict::kAlive;
        }
        if (suspected_ && suspect_at_messages_ == messages_) {
            suspected_ = false;
            return Verdict::kStalled;
        }
        // An event may be on its way: look again. (A bool beside the count
        // rather than std::optional: g++ 12 with ASan at -O2 takes the
        // optional's value for uninitialised.)
        suspected_ = true;
        suspect_at_messages_ = messages_;
        suspected_at_ = now;
        return Verdict::kLookAgain;
    }

private:
    std::chrono::milliseconds interval_;
    Clock::time_point last_message_at_{};
    std::uint64_t messages_ = 0;
    bool suspected_ = false;                 // silent and behind at the last probe
    std::uint64_t suspect_at_messages_ = 0;  // the message count then
    Clock::time_point suspected_at_{};
};

}  // namespace podfwd::control::etcd
