#include "control/ctl/run.h"

#include <exception>
#include <thread>
#include <utility>

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

int run_daemon_command(const Invocation& invocation, const DaemonCommand& command, const Environment& environment,
                       std::ostream& out, std::ostream& err) {
    auto client = Client::connect(invocation.socket_path, environment.daemon_timeout);
    if (!client)
        return fail(err, client.error().message);
    auto response = client->call(command.request);
    if (!response)
        return fail(err, response.error().message);
    if (!response->at("ok").get<bool>()) {
        const std::string error = field_text(*response, "error");
        return fail(err, error != "-" ? error
                                      : "podfwd-control refused the request (" + field_text(*response, "code") + ")");
    }
    response->erase("ok");
    if (invocation.json)
        out << response->dump() << '\n';
    else
        out << format_result(command.view, *response);
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
