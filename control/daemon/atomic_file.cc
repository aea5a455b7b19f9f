#include "control/daemon/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>

namespace podfwd::control {

namespace {

Error system_error(const std::string& what, int error) {
    return Error{Errc::kSystem, "cannot " + what + ": " + std::strerror(error)};
}

class Fd {
public:
    explicit Fd(int fd) noexcept : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() {
        if (fd_ >= 0)
            ::close(fd_);
    }
    int get() const noexcept { return fd_; }
    // close() reports what a failed write-back of NFS and others only tells then.
    int close() noexcept {
        const int rc = ::close(fd_);
        fd_ = -1;
        return rc;
    }

private:
    int fd_;
};

// Removes the temporary unless the rename took it.
class Temporary {
public:
    explicit Temporary(std::string path) : path_(std::move(path)) {}
    Temporary(const Temporary&) = delete;
    Temporary& operator=(const Temporary&) = delete;
    ~Temporary() {
        if (!path_.empty())
            ::unlink(path_.c_str());
    }
    const std::string& path() const noexcept { return path_; }
    void release() noexcept { path_.clear(); }

private:
    std::string path_;
};

// Unpredictable, so that another local user cannot plant the name first
// (O_EXCL would refuse it, but the save would fail).
std::string temporary_name(const std::string& path) {
    static std::atomic<std::uint64_t> counter{0};
    thread_local std::mt19937_64 random{std::random_device{}()};
    char suffix[48];
    std::snprintf(suffix, sizeof suffix, ".tmp.%d.%llu.%016llx", static_cast<int>(::getpid()),
                  static_cast<unsigned long long>(counter.fetch_add(1)), static_cast<unsigned long long>(random()));
    return path + suffix;
}

Status write_all(int fd, std::string_view text, const std::string& name) {
    while (!text.empty()) {
        const ssize_t n = ::write(fd, text.data(), text.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return system_error("write " + name, n < 0 ? errno : EIO);
        text.remove_prefix(static_cast<std::size_t>(n));
    }
    return ok();
}

Status sync_path(const std::string& path, int flags) {
    Fd fd(::open(path.c_str(), flags | O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0 || ::fsync(fd.get()) != 0)
        return system_error("flush " + path, errno);
    return ok();
}

std::string directory_of(const std::string& path) {
    const auto dir = std::filesystem::path(path).parent_path();
    return dir.empty() ? "." : dir.string();
}

}  // namespace

Status replace_file(const std::string& path, std::string_view text, Durability durability) {
    std::error_code ec;
    std::filesystem::create_directories(directory_of(path), ec);   // its failure shows in the open below
    constexpr int kAttempts = 8;   // only a planted name takes a second one
    int error = EEXIST;
    for (int attempt = 0; attempt < kAttempts && error == EEXIST; ++attempt) {
        Temporary tmp(temporary_name(path));
        Fd fd(::open(tmp.path().c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (fd.get() < 0) {
            error = errno;
            tmp.release();   // not ours: never unlinked
            if (error != EEXIST)
                return system_error("create " + tmp.path(), error);
            continue;
        }
        if (auto s = write_all(fd.get(), text, tmp.path()); !s)
            return s;
        if (durability == Durability::kSynced && ::fsync(fd.get()) != 0)
            return system_error("flush " + tmp.path(), errno);
        if (fd.close() != 0)
            return system_error("write " + tmp.path(), errno);
        if (::rename(tmp.path().c_str(), path.c_str()) != 0)
            return system_error("rename " + tmp.path() + " to " + path, errno);
        tmp.release();
        if (durability == Durability::kSynced)
            return sync_path(directory_of(path), O_DIRECTORY);
        return ok();
    }
    return system_error("create a temporary beside " + path, error);
}

Status sync_file_and_directory(const std::string& path) {
    if (auto s = sync_path(path, O_NOFOLLOW); !s)
        return s;
    return sync_path(directory_of(path), O_DIRECTORY);
}

}  // namespace podfwd::control
