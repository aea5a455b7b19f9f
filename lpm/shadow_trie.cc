#include "lpm/shadow_trie.h"

#include <algorithm>

namespace podfwd::lpm {
namespace {

constexpr unsigned kSubBits = 6;   // directory slot -> /24 position
constexpr std::uint32_t pack(NextHopId nexthop, unsigned len) { return nexthop << 8 | len; }
constexpr unsigned length_of(std::uint32_t packed) { return packed & 0xff; }
constexpr NextHopId nexthop_of(std::uint32_t packed) { return packed >> 8; }
constexpr unsigned position_of(Ipv4Addr addr) { return (addr >> 8) & 63; }

struct NoLongerThan {
    unsigned len;
    bool operator()(unsigned depth) const { return depth <= len; }
};
struct ExactlyOf {
    unsigned len;
    bool operator()(unsigned depth) const { return depth == len; }
};

}  // namespace

ShadowTrie::ShadowTrie(TrieArrays arrays, GuardedPool& leaf_pool, GuardedPool& group_pool)
    : arrays_(arrays), leaf_pool_(leaf_pool), group_pool_(group_pool), fallback_(kDirEntries, 0),
      slot_of_(kDirEntries, 0), slot_dirty_(kDirEntries, 0), slots_(1) {}

void ShadowTrie::mark_dirty(std::uint32_t slot) {
    if (!slot_dirty_[slot]) {
        slot_dirty_[slot] = 1;
        dirty_slots_.push_back(slot);
    }
}

ShadowTrie::Slot& ShadowTrie::slot_for(std::uint32_t dir_slot) {
    if (slot_of_[dir_slot] == 0) {
        std::uint32_t index;
        if (!free_slots_.empty()) {
            index = free_slots_.back();
            free_slots_.pop_back();
            slots_[index] = Slot{};
        } else {
            index = static_cast<std::uint32_t>(slots_.size());
            slots_.emplace_back();
        }
        slot_of_[dir_slot] = index;
    }
    return slots_[slot_of_[dir_slot]];
}

std::optional<std::uint32_t> ShadowTrie::new_group() {
    auto group = group_pool_.alloc(1);
    if (!group)
        return std::nullopt;
    if (groups_.size() <= *group)
        groups_.resize(std::max<std::size_t>(*group + 1, groups_.size() * 2));
    return group;
}

Status ShadowTrie::make_writable(std::uint32_t dir_slot, const std::vector<unsigned>& positions) {
    Slot& slot = slots_[slot_of_[dir_slot]];
    std::vector<std::pair<unsigned, std::uint32_t>> drafts;
    for (unsigned pos : positions) {
        if (!groups_[slot.group(pos)].published)
            continue;
        auto draft = new_group();
        if (!draft) {
            for (const auto& [unused, group] : drafts)
                group_pool_.free(group, 1);   // never reachable: free at once
            return Error{Errc::kCapacity, "tbl8 groups are exhausted (every /24 holding longer prefixes needs one, "
                                          "and a changed one needs a copy until readers move on)"};
        }
        drafts.emplace_back(pos, *draft);
    }
    for (const auto& [pos, draft] : drafts) {
        const std::uint32_t old = slot.group(pos);
        groups_[draft] = groups_[old];
        groups_[draft].published = false;
        std::copy_n(group_entries(old), kGroupEntries, group_entries(draft));
        slot.set_group(pos, draft);
        slot_garbage_[dir_slot].push_back({PoolKind::kGroups, old, 1});
    }
    if (!drafts.empty()) {
        slot.leaves_dirty = true;
        mark_dirty(dir_slot);
    }
    return ok();
}

void ShadowTrie::set_group_entry(std::uint32_t group, unsigned i, std::uint32_t packed) {
    Group& g = groups_[group];
    g.own += length_of(packed) > 24;
    g.own -= g.depth[i] > 24;
    g.depth[i] = static_cast<std::uint8_t>(length_of(packed));
    group_entries(group)[i] = nexthop_of(packed);   // a draft: no reader can see it yet
}

void ShadowTrie::push_to_group(std::uint32_t group, std::uint32_t packed) {
    for (unsigned i = 0; i < kGroupEntries; ++i)
        if (groups_[group].depth[i] <= 24)
            set_group_entry(group, i, packed);
}

template <class Pred>
void ShadowTrie::update_fallback(Ipv4Addr addr, unsigned len, std::uint32_t packed, Pred pred) {
    const std::uint32_t first = addr >> kDirShift;
    const std::uint32_t last = first + (1u << (kDirBits - len));
    for (std::uint32_t slot = first; slot < last; ++slot) {
        if (pred(length_of(fallback_[slot])) && fallback_[slot] != packed) {
            fallback_[slot] = packed;
            mark_dirty(slot);
        }
    }
}

template <class Pred>
Status ShadowTrie::update_slot(std::uint32_t dir_slot, unsigned lo, unsigned count, std::uint32_t packed,
                               Pred pred) {
    Slot& slot = slots_[slot_of_[dir_slot]];
    std::vector<unsigned> changing_groups;
    for (unsigned pos = lo; pos < lo + count; ++pos)
        if (pred(length_of(slot.entry[pos])) && slot.entry[pos] != packed && slot.group(pos) != 0)
            changing_groups.push_back(pos);
    if (auto s = make_writable(dir_slot, changing_groups); !s)
        return s;
    for (unsigned pos = lo; pos < lo + count; ++pos) {
        if (!pred(length_of(slot.entry[pos])) || slot.entry[pos] == packed)
            continue;
        slot.entry[pos] = packed;
        if (slot.group(pos) != 0)
            push_to_group(slot.group(pos), packed);
        slot.leaves_dirty = true;
        mark_dirty(dir_slot);
    }
    return ok();
}

template <class Pred>
Status ShadowTrie::update_group(std::uint32_t dir_slot, unsigned pos, unsigned lo, unsigned count,
                                std::uint32_t packed, Pred pred) {
    if (auto s = make_writable(dir_slot, {pos}); !s)
        return s;
    const std::uint32_t group = slots_[slot_of_[dir_slot]].group(pos);
    for (unsigned i = lo; i < lo + count; ++i)
        if (pred(groups_[group].depth[i]))
            set_group_entry(group, i, packed);
    return ok();
}

Status ShadowTrie::insert(Ipv4Addr addr, unsigned len, NextHopId nexthop) {
    const std::uint32_t packed = pack(nexthop, len);
    if (len <= kDirBits) {
        update_fallback(addr, len, packed, NoLongerThan{len});
        return ok();
    }
    const std::uint32_t dir_slot = addr >> kDirShift;
    const unsigned pos = position_of(addr);
    if (len <= 24) {
        const bool fresh = slot_of_[dir_slot] == 0;
        slot_for(dir_slot);
        auto s = update_slot(dir_slot, pos, 1u << (24 - len), packed, NoLongerThan{len});
        if (!s && fresh)
            release_slot_if_empty(dir_slot);
        return s;
    }
    const bool has_group = slot_of_[dir_slot] != 0 && slots_[slot_of_[dir_slot]].group(pos) != 0;
    if (!has_group) {
        auto group = new_group();
        if (!group)
            return Error{Errc::kCapacity, "tbl8 groups are exhausted (every /24 holding longer prefixes needs one)"};
        Slot& slot = slot_for(dir_slot);
        // A fresh group starts as 256 copies of its /24's entry.
        groups_[*group] = Group{};
        std::fill_n(groups_[*group].depth.begin(), kGroupEntries, static_cast<std::uint8_t>(length_of(slot.entry[pos])));
        std::fill_n(group_entries(*group), kGroupEntries, nexthop_of(slot.entry[pos]));
        slot.set_group(pos, *group);
        ++slot.groups;
        slot.leaves_dirty = true;
        mark_dirty(dir_slot);
    }
    return update_group(dir_slot, pos, addr & 0xff, 1u << (32 - len), packed, NoLongerThan{len});
}

Status ShadowTrie::remove(Ipv4Addr addr, unsigned len, NextHopId replacement, unsigned replacement_len) {
    const std::uint32_t packed = replacement_len == 0 && replacement == kNoRoute ? 0 : pack(replacement, replacement_len);
    if (len <= kDirBits) {
        update_fallback(addr, len, packed, ExactlyOf{len});
        return ok();
    }
    const std::uint32_t dir_slot = addr >> kDirShift;
    if (slot_of_[dir_slot] == 0)
        return ok();
    const unsigned pos = position_of(addr);
    if (len <= 24) {
        if (auto s = update_slot(dir_slot, pos, 1u << (24 - len), packed, ExactlyOf{len}); !s)
            return s;
    } else {
        if (slots_[slot_of_[dir_slot]].group(pos) == 0)
            return ok();
        if (auto s = update_group(dir_slot, pos, addr & 0xff, 1u << (32 - len), packed, ExactlyOf{len}); !s)
            return s;
        Slot& slot = slots_[slot_of_[dir_slot]];
        const std::uint32_t group = slot.group(pos);
        if (groups_[group].own == 0) {
            slot.set_group(pos, 0);
            if (--slot.groups == 0)
                slot.group_ids.reset();
            slot.leaves_dirty = true;
            slot_garbage_[dir_slot].push_back({PoolKind::kGroups, group, 1});
            mark_dirty(dir_slot);
        }
    }
    release_slot_if_empty(dir_slot);
    return ok();
}

void ShadowTrie::release_slot_if_empty(std::uint32_t dir_slot) {
    Slot& slot = slots_[slot_of_[dir_slot]];
    if (slot.groups != 0 || std::any_of(slot.entry.begin(), slot.entry.end(), [](std::uint32_t e) { return e != 0; }))
        return;
    if (slot.leaf_count != 0)
        slot_garbage_[dir_slot].push_back({PoolKind::kLeaves, slot.leaf_base, slot.leaf_count});
    free_slots_.push_back(slot_of_[dir_slot]);
    slot_of_[dir_slot] = 0;
    mark_dirty(dir_slot);
}

void ShadowTrie::republish(std::uint32_t slot, std::vector<Retired> old) {
    auto& garbage = slot_garbage_[slot];
    garbage.insert(garbage.end(), old.begin(), old.end());
    if (slot_of_[slot] != 0)
        slots_[slot_of_[slot]].leaves_dirty = true;
    mark_dirty(slot);
}

void ShadowTrie::republish_window() {
    for (std::uint32_t slot = arrays_.window_base >> kDirShift; slot < kDirEntries; ++slot) {
        if (arrays_.window_part(slot).second == 0)
            break;
        republish(slot, {});
    }
}

// The slot's /24s inside the window, each switched in one store from its old
// value to its new one: never through kNoRoute, so that a batch replacing a
// /32 by a covering /16 never shows a shorter route in between. Release: the
// groups an entry names were written before it.
void ShadowTrie::store_window(std::uint32_t dir_slot) {
    const auto [first, count] = arrays_.window_part(dir_slot);
    if (count == 0)
        return;
    const Slot* slot = slot_of_[dir_slot] != 0 ? &slots_[slot_of_[dir_slot]] : nullptr;
    const NextHopId fallback = nexthop_of(fallback_[dir_slot]);
    const unsigned first_pos = position_of(arrays_.window_base + (first << 8));
    for (std::uint32_t k = 0; k < count; ++k) {
        const std::uint64_t value = window_entry(slot ? leaf_value(*slot, first_pos + k) : kNoRoute, fallback);
        std::atomic<std::uint64_t>& entry = arrays_.window[first + k];
        if (entry.load(std::memory_order_relaxed) != value)
            entry.store(value, std::memory_order_release);
    }
}

// Builds the slot's leaf array: leafvec, then the run-compressed leaves.
bool ShadowTrie::compile(Slot& slot, std::vector<Retired>& retired) {
    std::array<NextHopId, kLeafHeader + 64> array;
    NextHopId* runs = array.data() + kLeafHeader;
    std::uint64_t leafvec = 0;
    std::uint32_t count = 0;
    for (unsigned pos = 0; pos < (1u << kSubBits); ++pos) {
        const NextHopId value = leaf_value(slot, pos);
        if (count == 0 || runs[count - 1] != value) {
            leafvec |= std::uint64_t{1} << pos;
            runs[count++] = value;
        }
    }
    std::uint32_t base = kEmptyLeafArray;
    std::uint32_t size = 0;
    if (count > 1 || runs[0] != kNoRoute) {
        size = kLeafHeader + count;
        auto allocated = leaf_pool_.alloc(size);
        if (!allocated)
            return false;
        base = *allocated;
        std::memcpy(array.data(), &leafvec, sizeof leafvec);
        std::copy_n(array.begin(), size, arrays_.leaves + base);
    }
    if (slot.leaf_count != 0)
        retired.push_back({PoolKind::kLeaves, slot.leaf_base, slot.leaf_count});
    slot.leaf_base = base;
    slot.leaf_count = size;
    slot.leaves_dirty = false;
    return true;
}

Status ShadowTrie::publish(std::vector<Retired>& retired) {
    std::size_t done = 0;
    for (; done < dirty_slots_.size(); ++done) {
        const std::uint32_t dir_slot = dirty_slots_[done];
        std::uint32_t base = kEmptyLeafArray;
        if (slot_of_[dir_slot] != 0) {
            Slot& slot = slots_[slot_of_[dir_slot]];
            if (slot.leaves_dirty && !compile(slot, retired)) {
                dirty_slots_.erase(dirty_slots_.begin(), dirty_slots_.begin() + static_cast<std::ptrdiff_t>(done));
                return Error{Errc::kCapacity, "route table leaf memory is exhausted"};
            }
            base = slot.leaf_base;
            if (slot.group_ids)
                for (std::uint32_t group : *slot.group_ids)
                    if (group != 0)
                        groups_[group].published = true;
        }
        // Release: the leaf array it names was written first.
        arrays_.dir[dir_slot].store(dir_entry(base, nexthop_of(fallback_[dir_slot])), std::memory_order_release);
        store_window(dir_slot);
        slot_dirty_[dir_slot] = 0;
        if (auto it = slot_garbage_.find(dir_slot); it != slot_garbage_.end()) {
            retired.insert(retired.end(), it->second.begin(), it->second.end());
            slot_garbage_.erase(it);
        }
    }
    dirty_slots_.clear();
    return ok();
}

std::size_t ShadowTrie::group_arrays_bytes() const noexcept {
    std::size_t bytes = 0;
    for (const Slot& slot : slots_)
        bytes += slot.group_ids ? sizeof(*slot.group_ids) : 0;
    return bytes;
}

std::size_t ShadowTrie::private_bytes() const noexcept {
    return fallback_.capacity() * 4 + slot_of_.capacity() * 4 + slot_dirty_.capacity() +
           dirty_slots_.capacity() * 4 + slots_.size() * sizeof(Slot) + group_arrays_bytes() + free_slots_.capacity() * 4 +
           groups_.capacity() * sizeof(Group);
}

}  // namespace podfwd::lpm
