// Result<T>: a value or an Error, for every fallible call outside the fast path.
// (std::expected is C++23; this is the small subset podfwd needs.)
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace podfwd {

enum class Errc {
    kInvalidArgument,   // malformed prefix, address, option
    kNotFound,          // no such route / next hop / segment
    kAlreadyExists,
    kInUse,             // next hop still referenced by routes
    kCapacity,          // a table or pool is full
    kIncompatible,      // segment of another layout version or size
    kBusy,              // another writer owns the segment
    kNotReady,          // segment exists but is not initialised yet
    kSystem,            // a system call failed (message carries errno text)
};

const char* errc_name(Errc) noexcept;

struct Error {
    Errc code;
    std::string message;
};

template <class T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::move(value)) {}           // NOLINT: implicit by design
    Result(Error error) : v_(std::move(error)) {}       // NOLINT
    Result(Errc code, std::string message) : v_(Error{code, std::move(message)}) {}

    bool has_value() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return has_value(); }

    T& value() & { assert(has_value()); return std::get<0>(v_); }
    const T& value() const& { assert(has_value()); return std::get<0>(v_); }
    T&& value() && { assert(has_value()); return std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const Error& error() const& { assert(!has_value()); return std::get<1>(v_); }
    Error&& error() && { assert(!has_value()); return std::get<1>(std::move(v_)); }

private:
    std::variant<T, Error> v_;
};

// Result<void>: success or an Error.
template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error error) : error_(std::move(error)), failed_(true) {}   // NOLINT
    Result(Errc code, std::string message) : error_{code, std::move(message)}, failed_(true) {}

    bool has_value() const noexcept { return !failed_; }
    explicit operator bool() const noexcept { return !failed_; }
    const Error& error() const& { assert(failed_); return error_; }
    Error&& error() && { assert(failed_); return std::move(error_); }

private:
    Error error_{Errc::kInvalidArgument, {}};
    bool failed_ = false;
};

using Status = Result<void>;

inline Status ok() { return {}; }

}  // namespace podfwd
