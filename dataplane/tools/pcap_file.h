// Classic libpcap files (not pcapng), Ethernet only: enough for the pcap tool
// and the tests. Reads microsecond and nanosecond files in either byte order;
// writes microsecond files in host byte order, as libpcap does.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace podfwd::pcap {

inline constexpr std::uint32_t kLinktypeEthernet = 1;
inline constexpr std::uint32_t kMaxSnaplen = 262144;   // libpcap's MAXIMUM_SNAPLEN

struct Packet {
    std::uint32_t ts_sec = 0;
    std::uint32_t ts_usec = 0;      // microseconds, also when the file has nanoseconds
    std::uint32_t orig_len = 0;     // length on the wire (>= data.size())
    std::vector<std::uint8_t> data;
};

// Reads a whole file. kInvalidArgument (with the file name and what is wrong)
// for a file that is not a classic pcap, another link type, or truncated;
// kSystem when it cannot be opened or read.
Result<std::vector<Packet>> read_file(const std::string& path);

class Writer {
public:
    // Creates (truncates) `path` and writes the file header.
    static Result<Writer> create(const std::string& path, std::uint32_t snaplen = kMaxSnaplen);

    Writer(Writer&&) noexcept = default;
    Writer& operator=(Writer&&) noexcept = default;
    ~Writer() = default;

    Status write(std::uint32_t ts_sec, std::uint32_t ts_usec, const std::uint8_t* data, std::uint32_t len);
    // Flushes and closes; reports a write error the buffered writes hid.
    Status close();

private:
    struct FileCloser {
        void operator()(std::FILE* f) const noexcept { std::fclose(f); }
    };
    Writer(std::string path, std::FILE* file) : path_(std::move(path)), file_(file) {}

    std::string path_;
    std::unique_ptr<std::FILE, FileCloser> file_;
};

}  // namespace podfwd::pcap
