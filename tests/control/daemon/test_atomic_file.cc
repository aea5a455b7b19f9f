// Issue 17: the daemon's files are replaced whole, through a temporary of
// their own that nothing planted can redirect, and no temporary is left
// behind. The oracle is the file system itself (lstat, readlink, contents).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "control/daemon/json_codec.h"

namespace podfwd::control {
namespace {

namespace fs = std::filesystem;

std::string read(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class AtomicFile : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("podfwd-test-atomic-" + std::to_string(::getpid()));
        fs::remove_all(dir_);
        fs::create_directories(dir_);
        target_ = (dir_ / "podfwd.cli.json").string();
    }
    void TearDown() override { fs::remove_all(dir_); }
    // Every entry of the directory but the ones named.
    std::vector<std::string> others(std::initializer_list<std::string> known) const {
        std::vector<std::string> names;
        for (const auto& e : fs::directory_iterator(dir_)) {
            const std::string name = e.path().filename().string();
            if (std::find(known.begin(), known.end(), name) == known.end())
                names.push_back(name);
        }
        return names;
    }
    fs::path dir_;
    std::string target_;
};

TEST_F(AtomicFile, ReplacesWholeWithMode0600AndNoTemporaryLeft) {
    for (Durability d : {Durability::kDeferred, Durability::kSynced}) {
        ASSERT_TRUE(replace_file(target_, "first\n", d));
        ASSERT_TRUE(replace_file(target_, "second\n", d));
        EXPECT_EQ(read(target_), "second\n");
        struct stat st{};
        ASSERT_EQ(::lstat(target_.c_str(), &st), 0);
        EXPECT_TRUE(S_ISREG(st.st_mode));
        EXPECT_EQ(st.st_mode & 0777, 0600u);
        EXPECT_TRUE(others({"podfwd.cli.json"}).empty());
    }
    EXPECT_TRUE(sync_file_and_directory(target_));
}

// A symlink at the target's path (to a file the daemon must not write) is
// replaced by the new file; what it pointed at is untouched.
TEST_F(AtomicFile, ASymlinkAtTheTargetIsReplacedNotFollowed) {
    const fs::path victim = dir_ / "victim";
    { std::ofstream(victim) << "precious\n"; }
    fs::create_symlink(victim, target_);
    ASSERT_TRUE(replace_file(target_, "state\n", Durability::kDeferred));
    EXPECT_EQ(read(victim), "precious\n");
    EXPECT_FALSE(fs::is_symlink(target_));
    EXPECT_EQ(read(target_), "state\n");
}

// The old scheme wrote "<path>.tmp" with O_TRUNC: a symlink planted there
// redirected the write. No name the daemon uses can be planted in advance
// (unpredictable, O_EXCL|O_NOFOLLOW): symlinks at every old-style name stay
// symlinks and their targets stay as they were.
TEST_F(AtomicFile, SymlinksPlantedAtTemporaryNamesRedirectNothing) {
    const fs::path victim = dir_ / "victim";
    { std::ofstream(victim) << "precious\n"; }
    for (const std::string& suffix : {std::string(".tmp"), std::string(".tmp.0"), ".tmp." + std::to_string(::getpid())})
        fs::create_symlink(victim, target_ + suffix);
    CliState state;
    state.routes.push_back({*Prefix4::parse("10.244.1.0/24"), Source::kCli, *parse_ipv4("10.168.0.3"),
                            ModeRequest::kHostGw, 0, std::nullopt});
    ASSERT_TRUE(save_cli_state(target_, state));
    EXPECT_EQ(read(victim), "precious\n");
    auto loaded = load_cli_state(target_);
    ASSERT_TRUE(loaded) << loaded.error().message;
    EXPECT_EQ(loaded->routes, state.routes);
    EXPECT_EQ(others({"podfwd.cli.json", "victim", "podfwd.cli.json.tmp", "podfwd.cli.json.tmp.0",
                      "podfwd.cli.json.tmp." + std::to_string(::getpid())}),
              std::vector<std::string>{});
}

// A rename that fails (a directory where the file goes) leaves the
// directory as it was: no temporary.
TEST_F(AtomicFile, AFailedReplaceRemovesItsTemporary) {
    fs::create_directory(target_);
    fs::create_directory(fs::path(target_) / "occupied");   // a non-empty directory: rename must fail
    EXPECT_FALSE(replace_file(target_, "state\n", Durability::kSynced));
    EXPECT_FALSE(save_cli_state(target_, CliState{}));
    EXPECT_TRUE(others({"podfwd.cli.json"}).empty());
    EXPECT_TRUE(fs::is_directory(target_));
}

}  // namespace
}  // namespace podfwd::control
