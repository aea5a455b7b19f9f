// The protobuf wire format, as far as etcd's gRPC Range needs it: varints
// and length-delimited fields, and gRPC's 5-byte message framing. Written
// once here; the client and the benchmark share it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace podfwd::control::etcd::protowire {

enum WireType : std::uint8_t { kVarint = 0, kFixed64 = 1, kBytes = 2, kFixed32 = 5 };

inline void put_varint(std::string& out, std::uint64_t v) {
    while (v >= 0x80) {
        out += static_cast<char>(v | 0x80);
        v >>= 7;
    }
    out += static_cast<char>(v);
}

inline void put_bytes(std::string& out, unsigned field, std::string_view bytes) {
    put_varint(out, std::uint64_t{field} << 3 | kBytes);
    put_varint(out, bytes.size());
    out.append(bytes);
}

inline void put_uint(std::string& out, unsigned field, std::uint64_t v) {
    put_varint(out, std::uint64_t{field} << 3 | kVarint);
    put_varint(out, v);
}

// One field of a message: its number and either an integer (varint, fixed)
// or the bytes of a length-delimited field (a string or a sub-message).
struct Field {
    unsigned number = 0;
    WireType type = kVarint;
    std::uint64_t value = 0;
    std::string_view bytes;
};

// Reads a message field by field; next() is nullopt at the end and sets
// error() on a truncated or malformed message (groups are malformed here).
class Reader {
public:
    explicit Reader(std::string_view message) : rest_(message) {}

    std::optional<Field> next() {
        if (rest_.empty() || failed_)
            return std::nullopt;
        const auto tag = varint();
        if (!tag)
            return fail();
        Field f;
        f.number = static_cast<unsigned>(*tag >> 3);
        f.type = static_cast<WireType>(*tag & 7);
        switch (f.type) {
        case kVarint: {
            const auto v = varint();
            if (!v)
                return fail();
            f.value = *v;
            return f;
        }
        case kFixed64:
        case kFixed32: {
            const std::size_t n = f.type == kFixed64 ? 8 : 4;
            if (rest_.size() < n)
                return fail();
            for (std::size_t i = 0; i < n; ++i)
                f.value |= std::uint64_t{static_cast<unsigned char>(rest_[i])} << (8 * i);
            rest_.remove_prefix(n);
            return f;
        }
        case kBytes: {
            const auto len = varint();
            if (!len || *len > rest_.size())
                return fail();
            f.bytes = rest_.substr(0, *len);
            rest_.remove_prefix(*len);
            return f;
        }
        }
        return fail();
    }
    bool error() const noexcept { return failed_; }

private:
    std::optional<std::uint64_t> varint() {
        std::uint64_t v = 0;
        for (unsigned shift = 0; shift < 64 && !rest_.empty(); shift += 7) {
            const auto b = static_cast<unsigned char>(rest_.front());
            rest_.remove_prefix(1);
            v |= std::uint64_t{b & 0x7fu} << shift;
            if ((b & 0x80) == 0)
                return v;
        }
        return std::nullopt;
    }
    std::optional<Field> fail() {
        failed_ = true;
        return std::nullopt;
    }

    std::string_view rest_;
    bool failed_ = false;
};

// gRPC's length-prefixed message: a compression flag (0) and a 4-byte
// big-endian length before the message.
inline std::string grpc_frame(std::string_view message) {
    std::string framed(5, '\0');
    for (int i = 0; i < 4; ++i)
        framed[static_cast<std::size_t>(1 + i)] = static_cast<char>(message.size() >> (24 - 8 * i));
    framed.append(message);
    return framed;
}

// The one uncompressed message of a unary answer; nullopt when the body is
// anything else.
inline std::optional<std::string_view> grpc_unframe(std::string_view body) {
    if (body.size() < 5 || body[0] != '\0')
        return std::nullopt;
    std::size_t len = 0;
    for (std::size_t i = 1; i <= 4; ++i)
        len = len << 8 | static_cast<unsigned char>(body[i]);
    if (body.size() != 5 + len)
        return std::nullopt;
    return body.substr(5);
}

}  // namespace podfwd::control::etcd::protowire
