// Write side of the route table: the only process that changes it (control).
//
// Route changes are staged and become visible to readers at commit(), each
// affected /18 slot rebuilt once per batch and switched in one store.
// Next-hop changes are visible at once (one record switch). A writer that restarts, also after kill -9,
// re-attaches to the existing segment: readers keep the table they had while
// the writer rebuilds its private state from the segment, and reconcile()
// then changes only the routes that differ from the desired set.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "lpm/types.h"

namespace podfwd::lpm {

class TableWriter {
public:
    struct Options {
        Capacity capacity;
        // How long an operation that needs reclaimed memory waits for readers
        // to pass a quiescent state. A reader that lets the wait time out is
        // stalled: no operation waits for it again until it moves; they use
        // the pools' reserve (a tenth of each), then fail with kCapacity
        // naming it (TableStats::stalled_reader_pid).
        std::chrono::milliseconds reclaim_timeout{2000};
    };

    // Creates the segment /dev/shm/<name>, or re-attaches to an existing one
    // (whose capacity must equal options.capacity). kBusy if another live
    // writer holds it; kIncompatible for another layout version or size.
    static Result<TableWriter> open(const std::string& name, const Options& options);
    static Result<TableWriter> open(const std::string& name) { return open(name, Options{}); }
    // Removes the segment name; mapped readers keep their mapping.
    static Status unlink(const std::string& name);

    TableWriter(TableWriter&&) noexcept;
    TableWriter& operator=(TableWriter&&) noexcept;
    ~TableWriter();

    // True when open() found an existing table and recovered it.
    bool recovered() const noexcept;

    // Next hops. kCapacity when full; kNotFound for an unknown id; kInUse
    // when deleting a next hop that routes still reference.
    Result<NextHopId> nexthop_add(const NextHop& nexthop);
    // The id of an identical existing record, or a new one.
    Result<NextHopId> nexthop_ensure(const NextHop& nexthop);
    Status nexthop_update(NextHopId id, const NextHop& nexthop);
    Status nexthop_del(NextHopId id);
    std::optional<NextHop> nexthop(NextHopId id) const;
    std::vector<std::pair<NextHopId, NextHop>> nexthops() const;
    std::uint32_t nexthop_refcount(NextHopId id) const;

    // Routes, staged until commit(). route_add replaces the next hop of an
    // existing prefix. kNotFound for an unknown next hop or (del) prefix;
    // kCapacity when the route table or the trie's pools are full (after
    // waiting up to reclaim_timeout for readers to release memory). A failed
    // call changes nothing.
    Status route_add(const Prefix4& prefix, NextHopId nexthop);
    Status route_del(const Prefix4& prefix);
    Status commit();

    // Makes the table equal `desired` (then commits), touching only routes
    // whose next hop differs; stops at the first error, leaving earlier
    // changes staged and committed.
    Status reconcile(std::span<const Route> desired);

    std::optional<NextHopId> route_get(const Prefix4& prefix) const;
    std::vector<Route> routes() const;
    std::size_t route_count() const noexcept;
    // What the readers would answer for addr after the last commit.
    NextHopId lookup(Ipv4Addr addr) const noexcept;

    TableStats stats() const noexcept;
    // Bytes of the segment resident in memory (pages touched), from mincore.
    std::size_t resident_bytes() const;
    // Bytes of the writer's private index (shadow trie, route map), estimated.
    std::size_t private_bytes() const noexcept;

    class Impl;

private:
    explicit TableWriter(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace podfwd::lpm
