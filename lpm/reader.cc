#include "lpm/reader.h"

#include <unistd.h>

#include "lpm/mapping.h"
#include "lpm/pools.h"

namespace podfwd::lpm {

// ---- ReaderSlot ----

ReaderSlot::ReaderSlot(std::shared_ptr<const Mapping> mapping, ReaderSlotData* slot,
                       const std::atomic<std::uint64_t>* epoch, unsigned index) noexcept
    : mapping_(std::move(mapping)), slot_(slot), epoch_(epoch), index_(index) {}

ReaderSlot::ReaderSlot(ReaderSlot&& other) noexcept
    : mapping_(std::move(other.mapping_)), slot_(std::exchange(other.slot_, nullptr)), epoch_(other.epoch_),
      index_(other.index_) {}

ReaderSlot& ReaderSlot::operator=(ReaderSlot&& other) noexcept {
    if (this != &other) {
        release();
        mapping_ = std::move(other.mapping_);
        slot_ = std::exchange(other.slot_, nullptr);
        epoch_ = other.epoch_;
        index_ = other.index_;
    }
    return *this;
}

ReaderSlot::~ReaderSlot() { release(); }

void ReaderSlot::release() noexcept {
    if (slot_ == nullptr)
        return;
    // Free before unlocking: a used slot whose lock is free means a dead owner.
    slot_->pid.store(0, std::memory_order_relaxed);
    slot_->state.store(kReaderFree, std::memory_order_release);
    mapping_->release_slot_lock(index_);
    slot_ = nullptr;
}

void ReaderSlot::offline() noexcept { slot_->state.store(kReaderOffline, std::memory_order_release); }

void ReaderSlot::online() noexcept {
    // Dekker-style pairing with the writer's "unpublish; bump epoch; scan
    // slots": either the writer's scan sees us online, or our next lookups
    // see what it published.
    slot_->state.store(kReaderOnline, std::memory_order_seq_cst);
    slot_->seen_epoch.store(epoch_->load(std::memory_order_seq_cst), std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
}

// ---- TableView ----

TableView::TableView(std::shared_ptr<Mapping> mapping) : mapping_(std::move(mapping)) {
    // Regions and limits as validated at open (Mapping::geometry), not
    // reread from the header: later writes to it cannot move or widen them.
    const Geometry& g = mapping_->geometry();
    trie_ = TrieView{mapping_->region<const std::atomic<std::uint64_t>>(g.dir_offset), mapping_->leaf_window(),
                     mapping_->group_window(), mapping_->region<const std::atomic<std::uint64_t>>(g.window_offset),
                     g.window_base, g.window_span};
    nexthops_ = NextHopTable{mapping_->region<const std::atomic<std::uint32_t>>(g.nh_map_offset),
                             mapping_->region<const NextHop>(g.nh_records_offset), g.capacity.max_nexthops,
                             g.nh_record_capacity};
    const SegmentHeader& h = mapping_->header();
    generation_ = &h.generation;
    nexthop_generation_ = &h.nexthop_generation;
}

Result<TableView> TableView::open(const std::string& name) {
    auto mapping = Mapping::open_reader(name);
    if (!mapping)
        return std::move(mapping).error();
    return TableView(std::move(*mapping));
}

Result<ReaderSlot> TableView::register_reader() const {
    SegmentHeader& h = mapping_->header();
    ReaderSlotData* slots = mapping_->reader_slots();
    const std::uint32_t slot_count = mapping_->geometry().capacity.reader_slots;
    for (unsigned i = 0; i < slot_count; ++i) {
        // The lock comes first: it makes the slot ours against every other
        // reader and against the writer's reaping, before anything in it
        // changes, and it is what tells the writer we are alive.
        if (!mapping_->claim_slot_lock(i))
            continue;
        if (free_dead_slot(slots[i]))   // its owner died before anyone noticed
            slots[i].dead_owners_freed.fetch_add(1, std::memory_order_relaxed);
        slots[i].state.store(kReaderRegistering, std::memory_order_seq_cst);
        slots[i].pid.store(static_cast<std::uint32_t>(::getpid()), std::memory_order_relaxed);
        slots[i].seen_epoch.store(h.epoch.load(std::memory_order_seq_cst), std::memory_order_seq_cst);
        ReaderSlot slot(mapping_, &slots[i], &h.epoch, i);
        slot.online();
        return slot;
    }
    return Error{Errc::kCapacity, "all " + std::to_string(slot_count) +
                                      " reader slots of the route table are in use"};
}

TableStats TableView::stats() const noexcept { return mapping_->stats(); }

bool TableView::truncated() const noexcept { return mapping_->truncated(); }

Capacity TableView::capacity() const noexcept { return mapping_->geometry().capacity; }

const char* mode_name(ForwardMode mode) noexcept {
    switch (mode) {
    case ForwardMode::kDrop: return "drop";
    case ForwardMode::kLocal: return "local";
    case ForwardMode::kHostGw: return "host-gw";
    case ForwardMode::kIpip: return "ipip";
    case ForwardMode::kVxlan: return "vxlan";
    }
    return "unknown";
}

}  // namespace podfwd::lpm
