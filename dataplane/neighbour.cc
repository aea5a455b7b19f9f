#include "dataplane/neighbour.h"

#include <stdexcept>

namespace podfwd::dp {

namespace {

constexpr MacAddr kBroadcast{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

// Times come from the caller; one that went back must not make an age wrap
// around to centuries.
std::uint64_t elapsed(std::uint64_t now_ns, std::uint64_t since_ns) noexcept {
    return now_ns > since_ns ? now_ns - since_ns : 0;
}
std::uint64_t later(std::uint64_t now_ns, std::uint64_t delay_ns) noexcept {
    return delay_ns > UINT64_MAX - now_ns ? UINT64_MAX : now_ns + delay_ns;
}

bool has_mac(NeighbourState s) noexcept {
    return s == NeighbourState::kReachable || s == NeighbourState::kStale || s == NeighbourState::kProbe;
}

}  // namespace

const char* neighbour_state_name(NeighbourState s) noexcept {
    switch (s) {
    case NeighbourState::kIncomplete: return "incomplete";
    case NeighbourState::kReachable: return "reachable";
    case NeighbourState::kStale: return "stale";
    case NeighbourState::kProbe: return "probe";
    case NeighbourState::kFailed: return "failed";
    }
    return "?";
}

const char* hold_outcome_name(HoldOutcome o) noexcept {
    switch (o) {
    case HoldOutcome::kHeld: return "held";
    case HoldOutcome::kQueueFull: return "queue_full";
    case HoldOutcome::kTableFull: return "table_full";
    case HoldOutcome::kFailed: return "failed";
    case HoldOutcome::kResolved: return "resolved";
    case HoldOutcome::kInvalid: return "invalid";
    }
    return "?";
}

NeighbourCache::NeighbourCache(const Config& config) : config_(config) {
    if (config_.entries == 0 || config_.entries > (1u << 30))
        throw std::invalid_argument("neighbour cache: entries must be in [1, 2^30]");
    unsigned bits = 1;
    while ((std::uint64_t{1} << bits) < 2 * std::uint64_t{config_.entries})
        ++bits;
    slots_.assign(std::size_t{1} << bits, kNone);
    slot_mask_ = static_cast<std::uint32_t>(slots_.size() - 1);
    slot_shift_ = 32 - bits;
    entries_.resize(config_.entries);
    hold_handles_.assign(config_.hold_total, 0);
    hold_next_.resize(config_.hold_total);
    for (std::uint32_t i = 0; i < config_.hold_total; ++i)
        hold_next_[i] = i + 1 < config_.hold_total ? i + 1 : kNone;
    hold_free_ = config_.hold_total > 0 ? 0 : kNone;
}

// ---- the table ----

std::uint32_t NeighbourCache::home_slot(Ipv4Addr ip) const noexcept {
    // Fibonacci hashing: the high bits of the product mix every bit of the
    // address, where the low bits of neighbours on one subnet barely differ.
    return static_cast<std::uint32_t>(ip * 0x9e3779b1u) >> slot_shift_;
}

std::uint32_t NeighbourCache::find_slot(Ipv4Addr ip) const noexcept {
    for (std::uint32_t s = home_slot(ip);; s = (s + 1) & slot_mask_) {
        const std::uint32_t index = slots_[s];
        if (index == kNone)
            return kNone;
        if (entries_[index].ip == ip)
            return s;
    }
}

std::uint32_t NeighbourCache::find_index(Ipv4Addr ip) const noexcept {
    if (ip == 0)
        return kNone;
    const std::uint32_t s = find_slot(ip);
    return s == kNone ? kNone : slots_[s];
}

std::uint32_t NeighbourCache::insert(Ipv4Addr ip) noexcept {
    const std::uint32_t index = size_++;
    entries_[index] = Entry{};
    entries_[index].ip = ip;
    std::uint32_t s = home_slot(ip);
    while (slots_[s] != kNone)
        s = (s + 1) & slot_mask_;
    slots_[s] = index;
    return index;
}

void NeighbourCache::remove(std::uint32_t index) noexcept {
    // Backward-shift deletion: later members of the probe run move up into
    // the hole unless their home lies after it, so lookups never need
    // tombstones and never slow down with churn.
    std::uint32_t hole = find_slot(entries_[index].ip);
    for (std::uint32_t s = (hole + 1) & slot_mask_; slots_[s] != kNone; s = (s + 1) & slot_mask_) {
        const std::uint32_t home = home_slot(entries_[slots_[s]].ip);
        const bool stays = hole <= s ? (hole < home && home <= s) : (hole < home || home <= s);
        if (!stays) {
            slots_[hole] = slots_[s];
            hole = s;
        }
    }
    slots_[hole] = kNone;

    const std::uint32_t last = --size_;
    if (index != last) {
        slots_[find_slot(entries_[last].ip)] = index;
        entries_[index] = entries_[last];
    }
}

// ---- hold queues ----

bool NeighbourCache::enqueue(Entry& e, std::uintptr_t handle) noexcept {
    if (e.queued >= config_.hold_per_neighbour || hold_free_ == kNone)
        return false;
    const std::uint32_t node = hold_free_;
    hold_free_ = hold_next_[node];
    hold_handles_[node] = handle;
    hold_next_[node] = kNone;
    if (e.queue_tail == kNone)
        e.queue_head = node;
    else
        hold_next_[e.queue_tail] = node;
    e.queue_tail = node;
    ++e.queued;
    ++held_total_;
    return true;
}

std::size_t NeighbourCache::drain(Entry& e, std::span<std::uintptr_t> out) noexcept {
    std::size_t n = 0;
    while (e.queue_head != kNone) {
        const std::uint32_t node = e.queue_head;
        out[n++] = hold_handles_[node];
        e.queue_head = hold_next_[node];
        hold_next_[node] = hold_free_;
        hold_free_ = node;
    }
    e.queue_tail = kNone;
    held_total_ -= e.queued;
    e.queued = 0;
    return n;
}

// ---- states ----

NeighbourState NeighbourCache::effective_state(const Entry& e, std::uint64_t now_ns) const noexcept {
    if (e.state == NeighbourState::kReachable && elapsed(now_ns, e.confirmed_ns) >= config_.reachable_ns)
        return NeighbourState::kStale;
    return e.state;
}

std::optional<ArpRequest> NeighbourCache::next_request(Entry& e, std::uint64_t now_ns) noexcept {
    const bool unicast = e.state == NeighbourState::kProbe;
    const std::uint32_t max = unicast ? config_.max_unicast_probes : config_.max_multicast_probes;
    if (e.probes >= max) {
        // Out of requests: the last one gets its retrans_ns to be answered;
        // with none configured the entry fails on the next tick.
        if (e.probes == 0)
            e.next_ns = now_ns;
        return std::nullopt;
    }
    ++e.probes;
    e.next_ns = later(now_ns, config_.retrans_ns);
    ++counters_.requests_sent;
    return ArpRequest{e.ip, unicast ? e.mac : kBroadcast, unicast};
}

std::optional<ArpRequest> NeighbourCache::start_incomplete(Entry& e, std::uint64_t now_ns) noexcept {
    e.state = NeighbourState::kIncomplete;
    e.mac = MacAddr{};
    e.probes = 0;
    e.confirmed_ns = now_ns;
    e.used_ns = now_ns;
    return next_request(e, now_ns);
}

// ---- operations ----

ResolveResult NeighbourCache::resolve(Ipv4Addr ip, std::uint64_t now_ns) noexcept {
    const std::uint32_t index = find_index(ip);
    if (index == kNone)
        return {};
    Entry& e = entries_[index];
    const NeighbourState state = effective_state(e, now_ns);
    if (!has_mac(state))
        return {};
    e.used_ns = now_ns;
    ResolveResult result{e.mac, std::nullopt};
    if (state == NeighbourState::kStale) {
        e.state = NeighbourState::kProbe;
        e.probes = 0;
        result.request = next_request(e, now_ns);
    }
    return result;
}

HoldResult NeighbourCache::hold(Ipv4Addr ip, std::uintptr_t handle, std::uint64_t now_ns) noexcept {
    HoldResult result;
    if (ip == 0) {
        ++counters_.hold_dropped;
        return result;
    }
    std::uint32_t index = find_index(ip);
    if (index == kNone) {
        if (size_ == config_.entries) {
            ++counters_.hold_dropped;
            result.outcome = HoldOutcome::kTableFull;
            return result;
        }
        index = insert(ip);
        result.request = start_incomplete(entries_[index], now_ns);
    }
    Entry& e = entries_[index];
    switch (effective_state(e, now_ns)) {
    case NeighbourState::kReachable:
    case NeighbourState::kStale:
    case NeighbourState::kProbe:
        result.outcome = HoldOutcome::kResolved;
        return result;
    case NeighbourState::kFailed:
        if (elapsed(now_ns, e.failed_ns) < config_.failed_hold_ns) {
            ++counters_.hold_dropped;
            result.outcome = HoldOutcome::kFailed;
            return result;
        }
        result.request = start_incomplete(e, now_ns);
        break;
    case NeighbourState::kIncomplete:
        break;
    }
    e.used_ns = now_ns;
    if (!enqueue(e, handle)) {
        ++counters_.hold_dropped;
        result.outcome = HoldOutcome::kQueueFull;
        return result;
    }
    ++counters_.held;
    result.outcome = HoldOutcome::kHeld;
    return result;
}

std::optional<ArpRequest> NeighbourCache::want(Ipv4Addr ip, std::uint64_t now_ns) noexcept {
    if (ip == 0)
        return std::nullopt;
    const std::uint32_t index = find_index(ip);
    if (index == kNone) {
        if (size_ == config_.entries)
            return std::nullopt;
        return start_incomplete(entries_[insert(ip)], now_ns);
    }
    Entry& e = entries_[index];
    if (e.state == NeighbourState::kFailed && elapsed(now_ns, e.failed_ns) >= config_.failed_hold_ns)
        return start_incomplete(e, now_ns);
    return std::nullopt;
}

ArpUpdate NeighbourCache::on_arp(Ipv4Addr sender_ip, const MacAddr& sender_mac, std::uint64_t now_ns,
                                 bool is_reply_to_us, std::span<std::uintptr_t> released) noexcept {
    if (is_reply_to_us)
        ++counters_.replies_seen;
    const std::uint32_t index = find_index(sender_ip);
    if (index == kNone || !is_unicast(sender_mac))
        return {};
    Entry& e = entries_[index];
    if (released.size() < e.queued)
        return {};

    ArpUpdate update;
    update.updated = true;
    if (!has_mac(e.state)) {
        // Incomplete or failed: whatever told us the MAC resolves it. Linux
        // also sends the queue on a MAC learned from a request (STALE is a
        // valid state); the entry is probed when next used.
        e.mac = sender_mac;
        e.state = is_reply_to_us ? NeighbourState::kReachable : NeighbourState::kStale;
        e.probes = 0;
        if (is_reply_to_us)
            e.confirmed_ns = now_ns;
        ++counters_.resolved;
        update.mac_changed = true;
        update.released = drain(e, released);
        counters_.released += update.released;
        return update;
    }
    update.mac_changed = !same_mac(e.mac, sender_mac);
    if (is_reply_to_us) {
        e.mac = sender_mac;
        e.state = NeighbourState::kReachable;
        e.confirmed_ns = now_ns;
        e.probes = 0;
    } else if (update.mac_changed) {
        e.mac = sender_mac;
        e.state = NeighbourState::kStale;
        e.probes = 0;
    }
    // An unsolicited ARP repeating the MAC we have changes nothing (Linux
    // keeps the state too): it proves the sender is up, not that it hears us.
    return update;
}

TickResult NeighbourCache::tick(std::uint64_t now_ns, const TickSpans& out) noexcept {
    TickResult result;
    const std::uint32_t limit = config_.tick_visit_limit == 0 ? UINT32_MAX : config_.tick_visit_limit;
    std::uint32_t visits = 0;
    std::uint32_t i = tick_cursor_;
    while (i < size_) {
        if (visits == limit) {
            result.complete = false;
            break;
        }
        Entry& e = entries_[i];
        bool remove_it = false;
        bool stop = false;
        switch (effective_state(e, now_ns)) {
        case NeighbourState::kIncomplete:
        case NeighbourState::kProbe: {
            if (now_ns < e.next_ns)
                break;
            const std::uint32_t max = e.state == NeighbourState::kProbe ? config_.max_unicast_probes
                                                                        : config_.max_multicast_probes;
            if (e.probes < max) {
                if (result.requests == out.requests.size()) {
                    stop = true;
                    break;
                }
                out.requests[result.requests++] = *next_request(e, now_ns);
                break;
            }
            if (result.failed == out.failed.size() || out.freed.size() - result.freed < e.queued) {
                stop = true;
                break;
            }
            out.failed[result.failed++] = e.ip;
            const std::size_t n = drain(e, out.freed.subspan(result.freed));
            result.freed += n;
            counters_.freed += n;
            ++counters_.failed;
            e.state = NeighbourState::kFailed;
            e.mac = MacAddr{};
            e.probes = 0;
            e.failed_ns = now_ns;
            break;
        }
        case NeighbourState::kReachable:
            break;
        case NeighbourState::kStale:   // or reachable until now: the same to everyone who looks
            remove_it = elapsed(now_ns, e.used_ns) >= config_.gc_stale_ns;
            break;
        case NeighbourState::kFailed:
            remove_it = elapsed(now_ns, e.failed_ns) >= config_.failed_hold_ns;
            break;
        }
        if (stop) {
            result.complete = false;
            break;
        }
        ++visits;
        if (remove_it) {
            // Only stale and failed entries go, and neither holds handles.
            remove(i);
            ++result.removed;
            ++counters_.removed;
            continue;   // the last entry moved into i: look at it next
        }
        ++i;
    }
    // An entry removed by erase() since the last call may have moved one not
    // yet looked at below the cursor: it waits for the next round.
    tick_cursor_ = result.complete ? 0 : i;
    return result;
}

EraseResult NeighbourCache::erase(Ipv4Addr ip, std::span<std::uintptr_t> freed) noexcept {
    const std::uint32_t index = find_index(ip);
    if (index == kNone || freed.size() < entries_[index].queued)
        return {};
    EraseResult result;
    result.erased = true;
    result.freed = drain(entries_[index], freed);
    counters_.freed += result.freed;
    remove(index);
    if (tick_cursor_ > size_)
        tick_cursor_ = size_;
    return result;
}

// ---- listing ----

NeighbourInfo NeighbourCache::info_of(const Entry& e, std::uint64_t now_ns) const noexcept {
    NeighbourInfo info;
    info.ip = e.ip;
    info.mac = e.mac;
    info.state = effective_state(e, now_ns);
    info.confirmed_age_ns = elapsed(now_ns, e.confirmed_ns);
    info.used_age_ns = elapsed(now_ns, e.used_ns);
    info.probes = e.probes;
    info.queued = e.queued;
    return info;
}

std::optional<NeighbourInfo> NeighbourCache::find(Ipv4Addr ip, std::uint64_t now_ns) const noexcept {
    const std::uint32_t index = find_index(ip);
    if (index == kNone)
        return std::nullopt;
    return info_of(entries_[index], now_ns);
}

std::size_t NeighbourCache::snapshot(std::uint64_t now_ns, std::span<NeighbourInfo> out) const noexcept {
    std::size_t n = 0;
    for (std::uint32_t i = 0; i < size_ && n < out.size(); ++i)
        out[n++] = info_of(entries_[i], now_ns);
    return n;
}

}  // namespace podfwd::dp
