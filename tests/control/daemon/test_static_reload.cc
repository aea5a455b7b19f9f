// Issue 17: a static file that is empty or cut short never withdraws the
// static routes already learned; an empty CLI state never starts the daemon
// silently without the CLI's routes. The oracle is the text of the last good
// file: its routes, read back with route.list, must be exactly the table's
// static routes after every refused reload.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "control/daemon/control.h"

namespace podfwd::control {
namespace {

using nlohmann::json;

constexpr const char* kGoodFile =
    "# two nodes' pods\n"
    "route 10.244.1.0/24 via 10.168.0.3 mode host-gw\n"
    "route 10.244.2.0/24 via 10.168.0.31 mode host-gw\n"
    "neigh 10.168.0.3 02:00:00:00:00:03\n";
// kGoodFile's routes, written out by hand: prefix -> via.
const std::map<std::string, std::string> kGoodRoutes = {{"10.244.1.0/24", "10.168.0.3"},
                                                        {"10.244.2.0/24", "10.168.0.31"}};

class StaticReload : public ::testing::Test {
protected:
    void SetUp() override {
        const std::string name = "podfwd-test-static-" + std::to_string(::getpid());
        dir_ = std::filesystem::temp_directory_path() / name;
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_);
        (void)lpm::TableWriter::unlink(name);
        options_.table = name;
        options_.state_dir = dir_.string();
        options_.static_routes = (dir_ / "routes.conf").string();
        options_.node.node_ip = *parse_ipv4("10.168.0.2");
        options_.node.uplink = *Prefix4::parse("10.168.0.0/24");
        options_.node.gateway = *parse_ipv4("10.168.0.1");
        options_.node.pod_cidrs = {*Prefix4::parse("10.244.0.0/24")};
        options_.capacity.max_routes = 64;
    }
    void TearDown() override {
        control_.reset();
        (void)lpm::TableWriter::unlink(options_.table);
        std::filesystem::remove_all(dir_);
    }
    void write_static(std::string_view text) {
        std::ofstream out(options_.static_routes, std::ios::binary | std::ios::trunc);
        out << text;
    }
    Result<std::unique_ptr<Control>> start() { return Control::start(options_); }
    void start_with(std::string_view text) {
        write_static(text);
        auto c = start();
        ASSERT_TRUE(c) << c.error().message;
        control_ = std::move(*c);
    }
    json ask(const json& request) { return json::parse(control_->handle_line(request.dump())); }
    std::map<std::string, std::string> static_routes() {
        std::map<std::string, std::string> routes;
        const json list = ask({{"op", "route.list"}, {"source", "static"}});
        for (const json& r : list["routes"])
            routes[r["prefix"].get<std::string>()] = r["via"].get<std::string>();
        return routes;
    }
    json static_source() {
        const json sources = ask({{"op", "sources"}});   // kept: the loop below refers into it
        for (const json& s : sources["sources"])
            if (s["name"] == "static")
                return s;
        return nullptr;
    }
    // A reload of `text` is refused, the routes of kGoodFile stay, and
    // `sources` shows the error.
    void expect_refused(std::string_view text, std::string_view error_names) {
        write_static(text);
        control_->reload_static();
        EXPECT_EQ(static_routes(), kGoodRoutes) << "refused whole: the routes already learned stay";
        const json s = static_source();
        EXPECT_EQ(s["state"], "error") << s.dump();
        ASSERT_TRUE(s["last_error"].is_string()) << s.dump();
        EXPECT_NE(s["last_error"].get<std::string>().find(error_names), std::string::npos) << s.dump();
        EXPECT_NE(s["last_error"].get<std::string>().find("kept"), std::string::npos) << s.dump();
    }

    std::filesystem::path dir_;
    DaemonOptions options_;
    std::unique_ptr<Control> control_;
};

TEST_F(StaticReload, AnEmptyFileKeepsTheRoutes) {
    ASSERT_NO_FATAL_FAILURE(start_with(kGoodFile));
    ASSERT_EQ(static_routes(), kGoodRoutes);
    expect_refused("", "--allow-empty-static");
    expect_refused("# nothing yet\n\n   \n", "--allow-empty-static");
    // A good file afterwards is taken, and the error clears.
    write_static("route 10.244.3.0/24 via 10.168.0.4\n");
    control_->reload_static();
    EXPECT_EQ(static_routes(), (std::map<std::string, std::string>{{"10.244.3.0/24", "10.168.0.4"}}));
    EXPECT_EQ(static_source()["state"], "up");
}

TEST_F(StaticReload, AFileCutShortMidLineKeepsTheRoutes) {
    ASSERT_NO_FATAL_FAILURE(start_with(kGoodFile));
    const std::string good = kGoodFile;
    // Cut inside the second route's next hop: ".31" becomes ".3", which parses.
    const std::string cut = good.substr(0, good.find("10.168.0.31") + std::string("10.168.0.3").size());
    expect_refused(cut, "no end of line");
    // Cut anywhere inside a line: never taken.
    for (std::size_t at = 1; at < good.size(); ++at) {
        if (good[at - 1] == '\n')
            continue;   // a cut at a line's end leaves whole lines
        write_static(good.substr(0, at));
        control_->reload_static();
        ASSERT_EQ(static_routes(), kGoodRoutes) << "cut at " << at << ": " << good.substr(0, at);
    }
}

TEST_F(StaticReload, AnEmptyFileMeantAsSuchWithdrawsTheRoutes) {
    options_.allow_empty_static = true;
    ASSERT_NO_FATAL_FAILURE(start_with(kGoodFile));
    write_static("# no static routes on this node any more\n");
    control_->reload_static();
    EXPECT_TRUE(static_routes().empty());
    EXPECT_EQ(static_source()["state"], "up");
}

TEST_F(StaticReload, AnEmptyFileAtStartIsRefusedNamingTheWayOut) {
    write_static("");
    auto c = start();
    ASSERT_FALSE(c) << "an empty file would withdraw a running dataplane's static routes";
    EXPECT_NE(c.error().message.find(options_.static_routes), std::string::npos) << c.error().message;
    EXPECT_NE(c.error().message.find("--allow-empty-static"), std::string::npos) << c.error().message;
    options_.allow_empty_static = true;
    c = start();
    ASSERT_TRUE(c) << c.error().message;
}

// A power loss may leave the CLI's state file empty: the start is refused
// (naming the file and the option), and goes on without them only when told.
TEST_F(StaticReload, AnEmptyCliStateStopsTheStartUnlessAccepted) {
    ASSERT_NO_FATAL_FAILURE(start_with(kGoodFile));
    ASSERT_EQ(ask({{"op", "route.add"}, {"prefix", "10.244.9.0/24"}, {"via", "10.168.0.9"}})["ok"], true);
    control_.reset();
    { std::ofstream truncate(options_.cli_state_path(), std::ios::trunc); }
    auto c = start();
    ASSERT_FALSE(c) << "never a silent start without the CLI's routes";
    EXPECT_NE(c.error().message.find(options_.cli_state_path()), std::string::npos) << c.error().message;
    EXPECT_NE(c.error().message.find("--allow-empty-cli-state"), std::string::npos) << c.error().message;
    options_.allow_empty_cli_state = true;
    c = start();
    ASSERT_TRUE(c) << c.error().message;
    control_ = std::move(*c);
    EXPECT_TRUE(ask({{"op", "route.list"}, {"source", "cli"}})["routes"].empty());
    EXPECT_EQ(static_routes(), kGoodRoutes);
}

}  // namespace
}  // namespace podfwd::control
