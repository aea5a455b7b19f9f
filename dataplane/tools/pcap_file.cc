#include "dataplane/tools/pcap_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

namespace podfwd::pcap {

namespace {

constexpr std::uint32_t kMagicMicro = 0xa1b2c3d4;
constexpr std::uint32_t kMagicNano = 0xa1b23c4d;
constexpr std::size_t kFileHeaderSize = 24;
constexpr std::size_t kRecordHeaderSize = 16;

std::uint32_t load32(const std::uint8_t* p, bool swapped) noexcept {
    std::uint32_t v;
    std::memcpy(&v, p, 4);
    return swapped ? __builtin_bswap32(v) : v;
}
std::uint16_t load16(const std::uint8_t* p, bool swapped) noexcept {
    std::uint16_t v;
    std::memcpy(&v, p, 2);
    return swapped ? static_cast<std::uint16_t>(v << 8 | v >> 8) : v;
}

Error invalid(const std::string& path, const std::string& what) {
    return Error{Errc::kInvalidArgument, path + ": " + what};
}

}  // namespace

Result<std::vector<Packet>> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return Error{Errc::kSystem, path + ": cannot open: " + std::strerror(errno)};
    const std::vector<std::uint8_t> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (in.bad())
        return Error{Errc::kSystem, path + ": read error"};

    if (bytes.size() < 4)
        return invalid(path, "not a pcap file (" + std::to_string(bytes.size()) + " bytes)");
    std::uint32_t magic;
    std::memcpy(&magic, bytes.data(), 4);
    bool swapped = false;
    bool nano = false;
    if (magic == kMagicMicro || magic == kMagicNano) {
        nano = magic == kMagicNano;
    } else if (__builtin_bswap32(magic) == kMagicMicro || __builtin_bswap32(magic) == kMagicNano) {
        swapped = true;
        nano = __builtin_bswap32(magic) == kMagicNano;
    } else if (magic == 0x0a0d0d0a) {
        return invalid(path, "pcapng is not supported (write classic pcap, e.g. editcap -F pcap)");
    } else {
        char buf[16];
        std::snprintf(buf, sizeof buf, "0x%08x", magic);
        return invalid(path, std::string("not a pcap file (magic ") + buf + ")");
    }
    if (bytes.size() < kFileHeaderSize)
        return invalid(path, "truncated pcap file header (" + std::to_string(bytes.size()) + " of 24 bytes)");
    const std::uint16_t major = load16(bytes.data() + 4, swapped);
    if (major != 2)
        return invalid(path, "unsupported pcap version " + std::to_string(major));
    const std::uint32_t linktype = load32(bytes.data() + 20, swapped) & 0x03ffffff;   // low bits: the type
    if (linktype != kLinktypeEthernet)
        return invalid(path, "link type " + std::to_string(linktype) + ", only Ethernet (1) is supported");

    std::vector<Packet> packets;
    std::size_t off = kFileHeaderSize;
    while (off < bytes.size()) {
        const std::string where = "packet " + std::to_string(packets.size() + 1) + " at offset " + std::to_string(off);
        if (bytes.size() - off < kRecordHeaderSize)
            return invalid(path, "truncated record header of " + where);
        const std::uint8_t* h = bytes.data() + off;
        Packet p;
        p.ts_sec = load32(h, swapped);
        const std::uint32_t frac = load32(h + 4, swapped);
        const std::uint32_t incl_len = load32(h + 8, swapped);
        p.orig_len = load32(h + 12, swapped);
        p.ts_usec = nano ? frac / 1000 : frac;
        if (incl_len > kMaxSnaplen)
            return invalid(path, where + ": captured length " + std::to_string(incl_len) + " is implausible");
        off += kRecordHeaderSize;
        if (bytes.size() - off < incl_len)
            return invalid(path, "truncated data of " + where + " (" + std::to_string(bytes.size() - off) + " of " +
                                     std::to_string(incl_len) + " bytes)");
        p.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(off),
                      bytes.begin() + static_cast<std::ptrdiff_t>(off + incl_len));
        if (p.orig_len < incl_len)
            p.orig_len = incl_len;
        off += incl_len;
        packets.push_back(std::move(p));
    }
    return packets;
}

Result<Writer> Writer::create(const std::string& path, std::uint32_t snaplen) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr)
        return Error{Errc::kSystem, path + ": cannot create: " + std::strerror(errno)};
    Writer w(path, f);
    std::uint8_t header[kFileHeaderSize];
    const std::uint32_t magic = kMagicMicro, zone = 0, sigfigs = 0, linktype = kLinktypeEthernet;
    const std::uint16_t major = 2, minor = 4;
    std::memcpy(header, &magic, 4);
    std::memcpy(header + 4, &major, 2);
    std::memcpy(header + 6, &minor, 2);
    std::memcpy(header + 8, &zone, 4);
    std::memcpy(header + 12, &sigfigs, 4);
    std::memcpy(header + 16, &snaplen, 4);
    std::memcpy(header + 20, &linktype, 4);
    if (std::fwrite(header, sizeof header, 1, f) != 1)
        return Error{Errc::kSystem, path + ": write error: " + std::strerror(errno)};
    return w;
}

Status Writer::write(std::uint32_t ts_sec, std::uint32_t ts_usec, const std::uint8_t* data, std::uint32_t len) {
    const std::uint32_t header[4] = {ts_sec, ts_usec, len, len};
    if (std::fwrite(header, sizeof header, 1, file_.get()) != 1 ||
        (len != 0 && std::fwrite(data, len, 1, file_.get()) != 1))
        return Error{Errc::kSystem, path_ + ": write error: " + std::strerror(errno)};
    return ok();
}

Status Writer::close() {
    std::FILE* f = file_.release();
    if (f == nullptr)
        return ok();
    const bool failed = std::ferror(f) != 0;
    if (std::fclose(f) != 0 || failed)
        return Error{Errc::kSystem, path_ + ": write error: " + std::strerror(errno)};
    return ok();
}

}  // namespace podfwd::pcap
