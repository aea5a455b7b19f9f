// libFuzzer target: podfwdctl stats' decoder of a counter segment's bytes
// (decode_segment), fed whatever a hostile or half-written file may hold.
// Oracle: no read outside the input (ASan, the input in an exactly-sized
// buffer), no exception, an error that names the path, and for a segment it
// accepts, every lcore's counters equal to those read independently from the
// offsets the header states.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string>

#include "control/ctl/stats.h"
#include "dataplane/stats_layout.h"

namespace dp = podfwd::dp;
using podfwd::ctl::decode_segment;

namespace {

std::uint32_t u32_at(std::span<const std::byte> bytes, std::size_t offset) {
    std::uint32_t value;
    std::memcpy(&value, bytes.data() + offset, sizeof value);
    return value;
}

std::uint64_t u64_at(std::span<const std::byte> bytes, std::size_t offset) {
    std::uint64_t value;
    std::memcpy(&value, bytes.data() + offset, sizeof value);
    return value;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // The segment's bytes, exactly sized: a read one past them is reported.
    const auto copy = std::make_unique<std::byte[]>(size);
    if (size != 0)
        std::memcpy(copy.get(), data, size);
    const std::span<const std::byte> bytes(copy.get(), size);

    const std::string path = "/dev/shm/fuzz.stats.1";
    const auto decoded = decode_segment(bytes, path, 1);
    if (!decoded) {
        if (decoded.error().message.rfind(path + ": ", 0) != 0)
            std::abort();   // an error that does not say which file
        return 0;
    }
    if (decoded->being_created) {
        if (size >= sizeof(dp::StatsHeader) && u64_at(bytes, 0) != 0)
            std::abort();   // a whole, published header taken for a segment being created
        if (!decoded->lcores.empty())
            std::abort();
        return 0;
    }
    if (size < sizeof(dp::StatsHeader) || u64_at(bytes, 0) != dp::kStatsMagic)
        std::abort();
    const std::uint32_t lcore_count = u32_at(bytes, offsetof(dp::StatsHeader, lcore_count));
    const std::uint32_t entry_size = u32_at(bytes, offsetof(dp::StatsHeader, entry_size));
    const std::uint32_t counters_offset = u32_at(bytes, offsetof(dp::StatsHeader, counters_offset));
    if (decoded->lcores.size() != lcore_count ||
        sizeof(dp::StatsHeader) + std::uint64_t{lcore_count} * entry_size > size)
        std::abort();   // accepted entries the file does not hold
    const std::size_t rx_uplink = podfwd::ctl::counter_index("rx", "uplink");
    for (std::size_t i = 0; i < lcore_count; ++i) {
        const std::size_t entry = sizeof(dp::StatsHeader) + i * entry_size;
        const auto& reading = decoded->lcores[i];
        if (reading.pid != 1 || reading.lcore_id != u32_at(bytes, entry + offsetof(dp::LcoreStats, lcore_id)) ||
            reading.counts[rx_uplink] !=
                u64_at(bytes, entry + counters_offset + offsetof(dp::LcoreCounters, rx_packets)))
            std::abort();
    }
    return 0;
}
