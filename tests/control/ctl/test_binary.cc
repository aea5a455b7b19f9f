// The built podfwdctl (path in $PODFWDCTL) as an operator runs it: exit
// status and the one line on stderr.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace {

namespace fs = std::filesystem;

struct Outcome {
    int status = -1;
    std::string out;
    std::string err;
};

class BinaryTest : public testing::Test {
protected:
    void SetUp() override {
        const char* binary = std::getenv("PODFWDCTL");
        ASSERT_NE(binary, nullptr) << "run through meson test: PODFWDCTL names the binary";
        binary_ = binary;
        std::string pattern = (fs::temp_directory_path() / "podfwdctl-bin.XXXXXX").string();
        dir_ = mkdtemp(pattern.data());
    }
    void TearDown() override { fs::remove_all(dir_); }

    Outcome run(std::vector<std::string> args, std::vector<std::string> env = {}) {
        const std::string out_path = (dir_ / "out").string(), err_path = (dir_ / "err").string();
        posix_spawn_file_actions_t files;
        posix_spawn_file_actions_init(&files);
        posix_spawn_file_actions_addopen(&files, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        posix_spawn_file_actions_addopen(&files, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        args.insert(args.begin(), binary_);
        std::vector<char*> argv;
        for (auto& arg : args)
            argv.push_back(arg.data());
        argv.push_back(nullptr);
        for (char** e = environ; *e != nullptr; ++e)
            if (!std::string_view(*e).starts_with("PODFWD_SOCKET="))
                env.emplace_back(*e);
        std::vector<char*> envp;
        for (auto& var : env)
            envp.push_back(var.data());
        envp.push_back(nullptr);

        Outcome outcome;
        pid_t pid = 0;
        EXPECT_EQ(posix_spawn(&pid, binary_.c_str(), &files, nullptr, argv.data(), envp.data()), 0);
        posix_spawn_file_actions_destroy(&files);
        int status = 0;
        waitpid(pid, &status, 0);
        outcome.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        outcome.out = slurp(out_path);
        outcome.err = slurp(err_path);
        return outcome;
    }

    std::string socket_path() const { return (dir_ / "podfwd.sock").string(); }

private:
    static std::string slurp(const std::string& path) {
        std::ifstream in(path);
        std::stringstream text;
        text << in.rdbuf();
        return text.str();
    }

    std::string binary_;
    fs::path dir_;
};

TEST_F(BinaryTest, RouteListWithoutDaemon) {
    const Outcome outcome = run({"--socket", socket_path(), "route", "list"});
    EXPECT_EQ(outcome.status, 1);
    EXPECT_EQ(outcome.err, "podfwdctl: cannot reach podfwd-control at " + socket_path() +
                               ": No such file or directory (is it running?)\n");
    EXPECT_EQ(outcome.out, "");
}

TEST_F(BinaryTest, SocketFromEnvironment) {
    const Outcome outcome = run({"route", "list"}, {"PODFWD_SOCKET=" + socket_path()});
    EXPECT_EQ(outcome.status, 1);
    EXPECT_EQ(outcome.err, "podfwdctl: cannot reach podfwd-control at " + socket_path() +
                               ": No such file or directory (is it running?)\n");
}

TEST_F(BinaryTest, UsageErrorExitsTwo) {
    const Outcome outcome = run({"--socket", socket_path(), "route", "add", "10.244.1.1/24", "via", "192.168.1.2"});
    EXPECT_EQ(outcome.status, 2);
    EXPECT_EQ(outcome.err, "podfwdctl: 10.244.1.1/24 has host bits set (did you mean 10.244.1.0/24?)\n");
}

TEST_F(BinaryTest, StatsWithoutDataplane) {
    const Outcome outcome = run({"stats", "--table", "podfwdctl-bin-test-none"});
    EXPECT_EQ(outcome.status, 1);
    EXPECT_EQ(outcome.err, "podfwdctl: no podfwd-dataplane is running for table 'podfwdctl-bin-test-none' (no live "
                           "/dev/shm/podfwdctl-bin-test-none.stats.<pid>)\n");
}

TEST_F(BinaryTest, Help) {
    const Outcome outcome = run({"--help"});
    EXPECT_EQ(outcome.status, 0);
    EXPECT_TRUE(outcome.out.starts_with("usage: podfwdctl")) << outcome.out;
}

}  // namespace
