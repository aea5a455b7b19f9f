// Reads the dataplane's neighbour segment, /dev/shm/<table>.neigh.<pid>
// (layout and seqlock protocol: dataplane/neigh_layout.h), for the "arp"
// neighbour source. No DPDK: only the layout header.
//
// Nothing in a segment is trusted: the header is checked against the file
// (magic, version, entry size, capacity against the file's size; owned by
// root or us, as anyone may write /dev/shm), the count is clamped to the
// capacity, and the copy under the seqlock gives up after a bounded number
// of tries (a writer that died mid-update leaves `seq` odd for ever). A bad
// segment is reported once per file and skipped, never fatal. (Only a file
// shrunk under the reader's mapping could fault it: the dataplane never
// does, and only root or the daemon's own uid could.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/ipv4.h"
#include "common/mac.h"
#include "common/result.h"

namespace podfwd::control {

// One neighbour as the dataplane's resolver sees it.
struct ArpEntry {
    Ipv4Addr ip = 0;
    std::uint8_t state = 0;   // dp::NeighbourState: 0 incomplete, 1 reachable, 2 stale, 3 probe, 4 failed
    MacAddr mac{};            // zero while incomplete or failed
    std::uint32_t probes = 0;
    std::uint32_t queued = 0;
    std::uint32_t confirmed_age_ms = 0;
    std::uint32_t used_age_ms = 0;

    // Reachable, stale and probe entries have a MAC the dataplane uses.
    bool has_mac() const noexcept;
    friend bool operator==(const ArpEntry&, const ArpEntry&) = default;
};
// "incomplete", "reachable", "stale", "probe", "failed"; "unknown" past them.
const char* arp_state_name(std::uint8_t state) noexcept;

// The entries of one segment, copied out consistently.
struct ArpSnapshot {
    std::string path;
    std::uint32_t pid = 0;
    std::uint64_t published_unix_ns = 0;
    std::vector<ArpEntry> entries;
};

class NeighSegmentReader {
public:
    // Retries of the seqlock copy before a poll gives up (and keeps the last copy).
    static constexpr int kMaxReadTries = 64;
    // While a segment is followed, the directory is scanned again every this
    // many polls (a newer dataplane of the table); every poll while none is.
    static constexpr unsigned kRescanEvery = 10;
    // Entries mapped at most: 32 MiB of them.
    static constexpr std::uint32_t kMaxCapacity = 1u << 20;

    explicit NeighSegmentReader(std::string table, std::string directory = "/dev/shm");
    NeighSegmentReader(const NeighSegmentReader&) = delete;
    NeighSegmentReader& operator=(const NeighSegmentReader&) = delete;
    ~NeighSegmentReader();

    enum class Poll : std::uint8_t {
        kUnchanged,   // nothing new (also: no segment, or the one followed is gone)
        kChanged,     // snapshot() holds new entries (or a newer segment's)
    };
    // Cheap when the segment's sequence is unchanged: one load, no system
    // call (but the periodic directory scan).
    Poll poll();

    // The last consistent copy; kept when its dataplane goes away (its MACs
    // are still right) until another segment replaces it.
    const std::optional<ArpSnapshot>& snapshot() const noexcept { return snapshot_; }
    // A live segment is being followed (false: none yet, or its dataplane died).
    bool following() const noexcept { return map_ != nullptr; }
    // Bad segments seen (each file counted once while it stays bad).
    std::uint64_t bad_segments() const noexcept { return bad_total_; }
    const std::optional<std::string>& last_error() const noexcept { return last_error_; }
    // Polls whose copy gave up because the writer held the sequence odd.
    std::uint64_t busy_polls() const noexcept { return busy_polls_; }

private:
    struct Candidate {
        std::string path;
        std::uint32_t pid = 0;
        std::uint64_t published_unix_ns = 0;
    };
    // The newest live, valid segment of the table, if any.
    std::optional<Candidate> scan();
    // Opens and checks one file; on success maps it into *map/*size.
    Result<Candidate> open_segment(const std::string& path, std::uint32_t file_pid, const void** map,
                                   std::size_t* size);
    void note_bad(const std::string& path, const std::string& why);
    void unmap();
    // The seqlock copy of the mapped segment; false when the writer kept it busy.
    bool copy(ArpSnapshot& out);

    std::string table_;
    std::string directory_;
    const void* map_ = nullptr;
    std::size_t map_size_ = 0;
    std::uint32_t capacity_ = 0;
    Candidate current_;
    std::uint64_t last_seq_ = 0;
    bool have_seq_ = false;
    unsigned polls_since_scan_ = 0;
    std::optional<ArpSnapshot> snapshot_;
    std::map<std::string, std::string> bad_;   // path -> why, while it stays bad
    std::uint64_t bad_total_ = 0;
    std::uint64_t busy_polls_ = 0;
    std::optional<std::string> last_error_;
};

}  // namespace podfwd::control
