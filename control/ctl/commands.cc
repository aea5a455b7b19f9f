#include "control/ctl/commands.h"

#include <cmath>
#include <string_view>
#include <vector>

#include <boost/program_options.hpp>

#include "common/ipv4.h"
#include "common/mac.h"
#include "common/program_options.h"
#include "control/core/route.h"
#include "control/core/route_json.h"
#include "control/core/route_text.h"

namespace podfwd::ctl {

namespace {

namespace po = boost::program_options;
using nlohmann::json;

Error usage_error(std::string message) { return Error{Errc::kInvalidArgument, std::move(message)}; }

// Built by appending: g++ 12 misreports "'" + std::string(...) under
// -Wrestrict (GCC bug 105329).
std::string in_quotes(std::string_view word) {
    std::string text(1, '\'');
    text.append(word);
    text += '\'';
    return text;
}

// The positional words of one command, consumed left to right.
class Words {
public:
    Words(std::span<const std::string> words, std::string context) : rest_(words), context_(std::move(context)) {}

    void set_context(std::string context) { context_ = std::move(context); }

    Result<std::string> take(std::string_view what) {
        if (rest_.empty())
            return usage_error(context_ + ": missing " + std::string(what));
        std::string word = rest_.front();
        rest_ = rest_.subspan(1);
        return word;
    }

    // The remaining words, for a grammar that reads them all at once.
    std::vector<std::string_view> take_all() {
        std::vector<std::string_view> all(rest_.begin(), rest_.end());
        rest_ = {};
        return all;
    }

    Status finish() const {
        if (!rest_.empty())
            return usage_error(context_ + ": unexpected " + in_quotes(rest_.front()));
        return ok();
    }

private:
    std::span<const std::string> rest_;
    std::string context_;
};

Result<std::string> take_prefix(Words& words) {
    auto text = words.take("prefix");
    if (!text)
        return std::move(text).error();
    auto prefix = Prefix4::parse(*text);
    if (!prefix)
        return usage_error(prefix.error().message);
    return prefix->str();
}

Result<std::string> take_ip(Words& words) {
    auto text = words.take("IP address");
    if (!text)
        return std::move(text).error();
    auto ip = parse_ipv4(*text);
    if (!ip)
        return usage_error(ip.error().message);
    return format_ipv4(*ip);
}

// One positional argument, stored under `key` after parsing with `take`.
Result<DaemonCommand> single_argument(Words& words, const char* op, const char* key,
                                      Result<std::string> (*take)(Words&), View view) {
    auto value = take(words);
    if (!value)
        return std::move(value).error();
    return DaemonCommand{json{{"op", op}, {key, std::move(*value)}}, view};
}

json route_add_request(const control::RouteSpec& route) {
    json request = control::route_spec_to_json(route);
    request["op"] = "route.add";
    return request;
}

Result<DaemonCommand> parse_route(Words& words, const std::optional<std::string>& source) {
    const auto sub = words.take("subcommand: add, del, list or get");
    if (!sub)
        return sub.error();
    if (*sub != "list" && source)
        return usage_error("--source is only for 'route list'");
    words.set_context("route " + *sub);
    if (*sub == "add") {
        // The grammar of the static routes file (control/core/route_text.h),
        // so both say the same about the same mistake.
        const auto route = control::parse_route_words(words.take_all(), control::Source::kCli);
        if (!route)
            return usage_error(route.error().message);
        return DaemonCommand{route_add_request(*route), View::kRouteAdded};
    }
    if (*sub == "del")
        return single_argument(words, "route.del", "prefix", take_prefix, View::kRouteRemoved);
    if (*sub == "get")
        return single_argument(words, "route.get", "ip", take_ip, View::kRouteGet);
    if (*sub == "list") {
        json request = {{"op", "route.list"}};
        if (source) {
            if (!control::parse_route_source(*source))
                return usage_error("unknown source " + in_quotes(*source) + ": " + control::route_source_names());
            request["source"] = *source;
        }
        return DaemonCommand{std::move(request), View::kRouteList};
    }
    return usage_error("route: unknown subcommand " + in_quotes(*sub) + ": add, del, list or get");
}

Result<DaemonCommand> parse_neigh(Words& words) {
    const auto sub = words.take("subcommand: add, del or list");
    if (!sub)
        return sub.error();
    words.set_context("neigh " + *sub);
    if (*sub == "list")
        return DaemonCommand{json{{"op", "neigh.list"}}, View::kNeighbourList};
    if (*sub == "del")
        return single_argument(words, "neigh.del", "ip", take_ip, View::kNeighbourRemoved);
    if (*sub == "add") {
        const auto neighbour = control::parse_neighbour_words(words.take_all(), control::Source::kCli);
        if (!neighbour)
            return usage_error(neighbour.error().message);
        return DaemonCommand{
            json{{"op", "neigh.add"}, {"ip", format_ipv4(neighbour->ip)}, {"mac", format_mac(neighbour->mac)}},
            View::kNeighbourAdded};
    }
    return usage_error("neigh: unknown subcommand " + in_quotes(*sub) + ": add, del or list");
}

Result<DaemonCommand> parse_bgp(Words& words) {
    const auto sub = words.take("subcommand: peers");
    if (!sub)
        return sub.error();
    words.set_context("bgp " + *sub);
    if (*sub == "peers")
        return DaemonCommand{json{{"op", "bgp.peers"}}, View::kBgpPeers};
    return usage_error("bgp: unknown subcommand " + in_quotes(*sub) + ": peers");
}

struct RawOptions {
    std::string table = "podfwd";
    std::optional<std::string> socket;
    bool json = false;
    bool all = false;
    bool watch = false;
    std::optional<double> interval;
    std::optional<long long> count;
    std::optional<std::string> source;
    bool help = false;
    std::vector<std::string> words;
};

po::options_description option_descriptions() {
    po::options_description options;
    options.add_options()
        ("table", po::value<std::string>())
        ("socket", po::value<std::string>())
        ("json", po::bool_switch())
        ("all", po::bool_switch())
        ("watch", po::bool_switch())
        ("interval", po::value<double>())
        ("count", po::value<long long>())
        ("source", po::value<std::string>())
        ("help,h", po::bool_switch())
        ("words", po::value<std::vector<std::string>>());
    return options;
}

template <class T>
std::optional<T> optional_value(const po::variables_map& vm, const char* name) {
    if (!vm.count(name))
        return std::nullopt;
    return vm[name].as<T>();
}

Result<RawOptions> parse_options(std::span<const std::string> args) {
    po::positional_options_description positional;
    positional.add("words", -1);
    po::variables_map vm;
    try {
        // No guessing: "--int" is not silently "--interval".
        po::store(po::command_line_parser(std::vector<std::string>(args.begin(), args.end()))
                      .options(option_descriptions())
                      .positional(positional)
                      .style(po::command_line_style::default_style & ~po::command_line_style::allow_guessing)
                      .run(),
                  vm);
    } catch (const po::error& e) {
        return usage_error(e.what());
    }
    RawOptions raw;
    raw.table = optional_value<std::string>(vm, "table").value_or(raw.table);
    raw.socket = optional_value<std::string>(vm, "socket");
    raw.json = vm["json"].as<bool>();
    raw.all = vm["all"].as<bool>();
    raw.watch = vm["watch"].as<bool>();
    raw.interval = optional_value<double>(vm, "interval");
    raw.count = optional_value<long long>(vm, "count");
    raw.source = optional_value<std::string>(vm, "source");
    raw.help = vm["help"].as<bool>();
    raw.words = optional_value<std::vector<std::string>>(vm, "words").value_or(raw.words);
    return raw;
}

Result<StatsCommand> stats_command(const RawOptions& raw) {
    StatsCommand stats;
    stats.all = raw.all;
    stats.watch = raw.watch;
    if (!raw.watch && (raw.interval || raw.count))
        return usage_error("--interval and --count need --watch");
    if (raw.interval) {
        if (!std::isfinite(*raw.interval) || *raw.interval < 0.01 || *raw.interval > 3600)
            return usage_error("--interval must be between 0.01 and 3600 seconds");
        stats.interval = std::chrono::duration<double>(*raw.interval);
    }
    if (raw.count) {
        if (*raw.count < 1 || *raw.count > 1'000'000'000)
            return usage_error("--count must be a positive number of reports");
        stats.count = static_cast<unsigned>(*raw.count);
    }
    return stats;
}

Result<Command> parse_command(const RawOptions& raw) {
    if (raw.help)
        return Command(HelpCommand{});
    if (raw.words.empty())
        return usage_error("missing command (try --help)");
    const std::string& name = raw.words.front();
    Words words(std::span(raw.words).subspan(1), name);
    if (name != "stats" && (raw.all || raw.watch || raw.interval || raw.count))
        return usage_error("--all, --watch, --interval and --count are only for 'stats'");
    if (name != "route" && raw.source)
        return usage_error("--source is only for 'route list'");

    Result<DaemonCommand> command = usage_error("unknown command " + in_quotes(name) + " (try --help)");
    if (name == "stats") {
        if (auto status = words.finish(); !status)
            return std::move(status).error();
        auto stats = stats_command(raw);
        if (!stats)
            return std::move(stats).error();
        return Command(*stats);
    }
    if (name == "route")
        command = parse_route(words, raw.source);
    else if (name == "neigh")
        command = parse_neigh(words);
    else if (name == "bgp")
        command = parse_bgp(words);
    else if (name == "sources")
        command = DaemonCommand{json{{"op", "sources"}}, View::kSources};
    else if (name == "status")
        command = DaemonCommand{json{{"op", "status"}}, View::kStatus};
    if (!command)
        return std::move(command).error();
    if (auto status = words.finish(); !status)
        return std::move(status).error();
    return Command(std::move(*command));
}

}  // namespace

Result<Invocation> parse_command_line(std::span<const std::string> args, std::optional<std::string> socket_env) {
    auto raw = parse_options(args);
    if (!raw)
        return std::move(raw).error();
    Invocation invocation;
    invocation.table = raw->table;
    if (auto valid = check_table_name(invocation.table); !valid)
        return std::move(valid).error();
    invocation.json = raw->json;
    if (raw->socket)
        invocation.socket_path = *raw->socket;
    else if (socket_env && !socket_env->empty())
        invocation.socket_path = *socket_env;
    else
        invocation.socket_path = "/run/podfwd/" + invocation.table + ".sock";
    if (invocation.socket_path.empty())
        return usage_error("--socket needs a path");

    auto command = parse_command(*raw);
    if (!command)
        return std::move(command).error();
    invocation.command = std::move(*command);
    return invocation;
}

std::string usage_text() {
    return R"(usage: podfwdctl [options] <command>

commands:
  route add <prefix> via <node-ip> [mode host-gw|ipip|vxlan|cross-subnet]
            [vni N] [vtep-mac MAC]
  route add <prefix> local|blackhole
  route del <prefix>
  route list [--source local|cli|static|bgp|etcd|kernel|connected|gateway]
  route get <ip>
  neigh list
  neigh add <ip> <mac>
  neigh del <ip>
  sources
  status
  bgp peers
  stats [--all] [--watch [--interval S] [--count N]]

options:
  --table NAME    route table (default podfwd): socket /run/podfwd/NAME.sock,
                  counters /dev/shm/NAME.stats.<pid>
  --socket PATH   the daemon's socket (default: $PODFWD_SOCKET, else as --table)
  --json          machine-readable output (one JSON object per line)
  --all           stats: also drop reasons that are zero
  --watch         stats: rates per second, every --interval seconds (default 1),
                  --count reports (default: until interrupted)
  -h, --help      this text

exit status: 0 done, 1 failed (daemon error, daemon or dataplane not running),
2 usage error
)";
}

}  // namespace podfwd::ctl
