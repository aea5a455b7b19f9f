// Read side of the route table: maps the segment (table read-only, reader
// slots writable) and looks destinations up without ever blocking.
//
//   auto view = TableView::open("podfwd");           // once per process
//   auto slot = view->register_reader();             // once per thread/lcore
//   loop { nh = view->lookup(dst); ...; slot->quiescent(); }
//
// A next hop or pointer obtained from the view stays valid until the calling
// thread's next quiescent() or offline(). Threads that look up must hold an
// online ReaderSlot.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"
#include "lpm/layout.h"

namespace podfwd::lpm {

class Mapping;

// The id -> record map of next hops, as raw pointers: copied into locals by a
// burst loop, it resolves ids without reloading the view's members after
// each acquire load (which is a compiler barrier).
// This is where an id read from the segment becomes an index, so where it is
// bounded: lookups answer ids as stored (layout.h, TrieView), and an id above
// max_id or a record index past the records region reads as "no record".
struct NextHopTable {
    const std::atomic<std::uint32_t>* map = nullptr;
    const NextHop* records = nullptr;
    std::uint32_t max_id = 0;
    std::uint32_t record_capacity = 0;

    // nullptr for kNoRoute or an id without a record (deleted under us).
    const NextHop* get(NextHopId id) const noexcept {
        if (id == kNoRoute || id > max_id)
            return nullptr;
        const std::uint32_t record = map[id].load(std::memory_order_acquire);
        return record != 0 && record < record_capacity ? &records[record] : nullptr;
    }
};

class ReaderSlot {
public:
    ReaderSlot(ReaderSlot&&) noexcept;
    ReaderSlot& operator=(ReaderSlot&&) noexcept;
    ReaderSlot(const ReaderSlot&) = delete;
    ReaderSlot& operator=(const ReaderSlot&) = delete;
    ~ReaderSlot();

    // Declares that this thread holds no reference into the table.
    void quiescent() noexcept {
        slot_->seen_epoch.store(epoch_->load(std::memory_order_acquire), std::memory_order_release);
    }
    // While offline (idle, sleeping) the writer does not wait for this thread.
    void offline() noexcept;
    void online() noexcept;
    unsigned index() const noexcept { return index_; }

private:
    friend class TableView;
    ReaderSlot(std::shared_ptr<const Mapping> mapping, ReaderSlotData* slot,
               const std::atomic<std::uint64_t>* epoch, unsigned index) noexcept;
    void release() noexcept;

    std::shared_ptr<const Mapping> mapping_;   // keeps the segment mapped
    ReaderSlotData* slot_ = nullptr;
    const std::atomic<std::uint64_t>* epoch_ = nullptr;
    unsigned index_ = 0;
};

class TableView {
public:
    // Errors: kNotFound (no segment: writer not started yet), kNotReady (being
    // created), kIncompatible (another layout version, or a truncated file).
    static Result<TableView> open(const std::string& name);

    NextHopId lookup(Ipv4Addr addr) const noexcept { return trie_.lookup(addr); }
    void lookup_bulk(const Ipv4Addr* addrs, NextHopId* out, std::size_t n) const noexcept {
        trie_.lookup_bulk(addrs, out, n);
    }
    // nullptr for kNoRoute or an id without a record.
    const NextHop* nexthop(NextHopId id) const noexcept { return nexthops_.get(id); }
    const NextHopTable& nexthops() const noexcept { return nexthops_; }

    // Cheap change detectors for caches derived from the table: `generation`
    // moves with every commit and next-hop change, `nexthop_generation` with
    // next-hop changes only.
    std::uint64_t generation() const noexcept { return generation_->load(std::memory_order_acquire); }
    std::uint64_t nexthop_generation() const noexcept { return nexthop_generation_->load(std::memory_order_acquire); }

    Result<ReaderSlot> register_reader() const;
    // The segment file was truncated under this view (a bug or a hostile
    // process): lookups are safe but may be wrong from then on (the part of
    // the mapping that faulted reads zeros, the rest the shortened file);
    // reopen the table. One fstat(): poll it from a timer, not per packet.
    bool truncated() const noexcept;
    TableStats stats() const noexcept;
    Capacity capacity() const noexcept;
    const TrieView& trie() const noexcept { return trie_; }

private:
    explicit TableView(std::shared_ptr<Mapping> mapping);

    std::shared_ptr<Mapping> mapping_;
    TrieView trie_;
    NextHopTable nexthops_;
    const std::atomic<std::uint64_t>* generation_ = nullptr;
    const std::atomic<std::uint64_t>* nexthop_generation_ = nullptr;
};

}  // namespace podfwd::lpm
