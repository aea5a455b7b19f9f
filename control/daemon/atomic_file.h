// Replacing a file the daemon owns (the CLI's saved state, the network
// sources' routes of the last run) so that whoever reads it finds the old
// content or the new one, never a mix, and so that nothing planted in the
// directory redirects the write.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace podfwd::control {

enum class Durability {
    // fsync of the file before the rename and of the directory after: the
    // new content survives a power loss once this returns.
    kSynced,
    // Atomic against the daemon dying at any point; reaching the disk is
    // left to a later sync_file_and_directory() (fsync costs milliseconds,
    // too many for a CLI request). A power loss before then may leave the
    // file empty on some file systems.
    kDeferred,
};

// Writes `text` into a new temporary beside `path` (a name of its own,
// O_EXCL|O_NOFOLLOW, mode 0600), then renames it over `path`. A symlink at
// `path` is replaced, never followed. The temporary is removed on every
// failure. `path`'s directory is created if missing.
Status replace_file(const std::string& path, std::string_view text, Durability durability);

// fsync of `path` and of its directory.
Status sync_file_and_directory(const std::string& path);

}  // namespace podfwd::control
