#include "control/ctl/run.h"

#include <exception>
#include <thread>
#include <utility>

#include "common/ipv4.h"
#include "control/ctl/commands.h"
#include "control/ctl/format.h"
#include "control/ctl/stats.h"
#include "control/ctl/stats_format.h"

namespace podfwd::ctl {

namespace {

int fail(std::ostream& err, const std::string& message, int status = kExitFailed) {
    err << "podfwdctl: " << message << '\n';
    return status;
}

// The daemon's result without "ok"; a refusal is an error of one line.
Result<nlohmann::json> call_ok(Client& client, const nlohmann::json& request) {
    auto response = client.call(request);
    if (!response)
        return std::move(response).error();
    if (!response->at("ok").get<bool>()) {
        const std::string error = field_text(*response, "error");
        return Error{Errc::kSystem, error != "-" ? error
                                                : "podfwd-control refused the request (" +
                                                      field_text(*response, "code") + ")"};
    }
    response->erase("ok");
    return response;
}

// route list: the daemon answers a page at a time (control/PROTOCOL.md);
// every page is fetched on the one connection, following "next", and the
// result is {"routes": [all of them]}, as one unpaged answer was. Collected
// before anything is printed: a failure on a later page prints no table.
Result<nlohmann::json> list_all_routes(Client& client, nlohmann::json request, const std::string& socket_path) {
    nlohmann::json routes = nlohmann::json::array();
    std::optional<Prefix4> after;
    for (;;) {
        auto page = call_ok(client, request);
        if (!page)
            return std::move(page).error();
        if (auto it = page->find("routes"); it != page->end() && it->is_array())
            for (auto& route : *it)
                routes.push_back(std::move(route));
        const auto next = page->find("next");
        if (next == page->end() || next->is_null())
            return nlohmann::json{{"routes", std::move(routes)}};   // the last page (or a daemon that does not page)
        // Each page must start past the last: a daemon going round in circles is an error, not a hang.
        auto prefix = next->is_string() ? Prefix4::parse(next->get<std::string>())
                                        : Result<Prefix4>(Error{Errc::kInvalidArgument, "not a string"});
        if (!prefix || (after && !(*after < *prefix)))
            return Error{Errc::kSystem, "podfwd-control at " + socket_path +
                                            " sent a malformed response: 'next' is " + next->dump() +
                                            (prefix ? ", not past the previous page" : "")};
        after = *prefix;
        request["after"] = prefix->str();
    }
}

int run_daemon_command(const Invocation& invocation, const DaemonCommand& command, const Environment& environment,
                       std::ostream& out, std::ostream& err) {
    auto client = Client::connect(invocation.socket_path, environment.daemon_timeout);
    if (!client)
        return fail(err, client.error().message);
    auto result = command.view == View::kRouteList ? list_all_routes(*client, command.request, invocation.socket_path)
                                                   : call_ok(*client, command.request);
    if (!result)
        return fail(err, result.error().message);
    if (invocation.json)
        out << result->dump() << '\n';
    else
        out << format_result(command.view, *result);
    return kExitOk;
}

int run_stats(const Invocation& invocation, const StatsCommand& command, const Environment& environment,
              std::ostream& out, std::ostream& err) {
    auto earlier = read_stats(invocation.table, environment.shm_dir);
    if (!earlier)
        return fail(err, earlier.error().message);
    if (!invocation.json)
        out << format_segments_text(*earlier) << '\n';
    if (!command.watch) {
        if (invocation.json)
            out << stats_json(invocation.table, *earlier).dump() << '\n';
        else
            out << format_counts_text(*earlier, command.all);
        return kExitOk;
    }
    for (unsigned reports = 0; !command.count || reports < *command.count; ++reports) {
        std::this_thread::sleep_for(command.interval);
        auto later = read_stats(invocation.table, environment.shm_dir);
        if (!later)
            return fail(err, later.error().message);
        const RateReport rates = compute_rates(*earlier, *later);
        if (invocation.json)
            out << stats_json(invocation.table, *later, &rates).dump() << '\n';
        else
            out << (reports > 0 ? "\n" : "") << format_rates_text(*later, rates, command.all);
        out.flush();
        earlier = std::move(later);
    }
    return kExitOk;
}

}  // namespace

int run(std::span<const std::string> args, const Environment& environment, std::ostream& out, std::ostream& err) {
    // The boundary: nothing below throws on purpose, but the libraries may
    // (allocation, a JSON type mismatch we did not foresee).
    try {
        auto invocation = parse_command_line(args, environment.socket_env);
        if (!invocation)
            return fail(err, invocation.error().message, kExitUsage);
        if (std::holds_alternative<HelpCommand>(invocation->command)) {
            out << usage_text();
            return kExitOk;
        }
        if (const auto* command = std::get_if<DaemonCommand>(&invocation->command))
            return run_daemon_command(*invocation, *command, environment, out, err);
        return run_stats(*invocation, std::get<StatsCommand>(invocation->command), environment, out, err);
    } catch (const std::exception& e) {
        return fail(err, std::string("internal error: ") + e.what());
    }
}

}  // namespace podfwd::ctl
