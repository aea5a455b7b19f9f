#include "control/ctl/stats_format.h"

#include <cstdio>
#include <ctime>
#include <vector>

#include "control/ctl/text_table.h"

namespace podfwd::ctl {

namespace {

using nlohmann::json;

std::string row_label(const CounterName& counter) {
    if (counter.group.empty())
        return counter.name;
    if (counter.group == "actions")
        return "action " + counter.name;
    if (counter.group == "drops")
        return "drop " + counter.name;
    return counter.group + " " + counter.name;
}

bool is_drop(std::size_t counter) { return counter_names()[counter].group == "drops"; }

std::string rate_text(double per_second) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f", per_second);
    return text;
}

// "LCORE 3", or "LCORE 4242/3" when several dataplanes share the table.
std::vector<TextTable::Column> lcore_columns(const StatsSnapshot& snapshot, const char* suffix) {
    std::vector<TextTable::Column> columns;
    for (const LcoreReading& lcore : snapshot.lcores) {
        std::string header = "LCORE ";
        if (snapshot.segments.size() > 1)
            header += std::to_string(lcore.pid) + "/";
        columns.push_back({header + std::to_string(lcore.lcore_id) + suffix, Align::kRight});
    }
    return columns;
}

template <class T>
json counters_json(const CounterValues<T>& values) {
    json object = json::object();
    const auto& names = counter_names();
    for (std::size_t i = 0; i < kCounterCount; ++i) {
        if (names[i].group.empty())
            object[names[i].name] = values[i];
        else
            object[names[i].group][names[i].name] = values[i];
    }
    return object;
}

}  // namespace

std::string utc_time_text(std::uint64_t unix_ns) {
    const auto seconds = static_cast<std::time_t>(unix_ns / 1'000'000'000);
    std::tm parts{};
    gmtime_r(&seconds, &parts);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &parts);
    return text;
}

std::string format_segments_text(const StatsSnapshot& snapshot) {
    std::string text;
    for (const LiveSegment& segment : snapshot.segments)
        text += "podfwd-dataplane pid " + std::to_string(segment.pid) + ": " + run_state_name(segment.state) +
                " since " + utc_time_text(segment.start_unix_ns) + ", " + std::to_string(segment.lcores) +
                (segment.lcores == 1 ? " lcore\n" : " lcores\n");
    for (const SkippedSegment& skipped : snapshot.skipped)
        text += "ignored " + skipped.path + ": " + skipped.reason + "\n";
    return text;
}

std::string format_counts_text(const StatsSnapshot& snapshot, bool all) {
    std::vector<TextTable::Column> columns = {{"COUNTER"}, {"TOTAL", Align::kRight}};
    const auto per_lcore = lcore_columns(snapshot, "");
    columns.insert(columns.end(), per_lcore.begin(), per_lcore.end());
    TextTable table(std::move(columns));

    const Counts totals = snapshot.totals();
    for (std::size_t i = 0; i < kCounterCount; ++i) {
        if (is_drop(i) && totals[i] == 0 && !all)
            continue;
        std::vector<std::string> row = {row_label(counter_names()[i]), std::to_string(totals[i])};
        for (const LcoreReading& lcore : snapshot.lcores)
            row.push_back(std::to_string(lcore.counts[i]));
        table.add_row(std::move(row));
    }
    return table.render();
}

std::string format_rates_text(const StatsSnapshot& later, const RateReport& rates, bool all) {
    std::vector<TextTable::Column> columns = {{"COUNTER"}, {"TOTAL", Align::kRight}, {"PER-SEC", Align::kRight}};
    const auto per_lcore = lcore_columns(later, "/S");
    columns.insert(columns.end(), per_lcore.begin(), per_lcore.end());
    TextTable table(std::move(columns));

    const Counts totals = later.totals();
    for (std::size_t i = 0; i < kCounterCount; ++i) {
        if (is_drop(i) && totals[i] == 0 && rates.totals[i] == 0 && !all)
            continue;
        std::vector<std::string> row = {row_label(counter_names()[i]), std::to_string(totals[i]),
                                        rate_text(rates.totals[i])};
        for (const auto& lcore : rates.lcores)
            row.push_back(lcore ? rate_text((*lcore)[i]) : "-");
        table.add_row(std::move(row));
    }
    char heading[96];
    std::snprintf(heading, sizeof heading, "%s, per second over %.2f s\n", utc_time_text(later.taken_unix_ns).c_str(),
                  rates.seconds);
    return heading + table.render();
}

json stats_json(const std::string& table, const StatsSnapshot& snapshot, const RateReport* rates) {
    json dataplanes = json::array();
    for (const LiveSegment& segment : snapshot.segments)
        dataplanes.push_back({{"pid", segment.pid},
                              {"path", segment.path},
                              {"state", run_state_name(segment.state)},
                              {"start_unix_ns", segment.start_unix_ns},
                              {"lcores", segment.lcores}});
    json skipped = json::array();
    for (const SkippedSegment& segment : snapshot.skipped)
        skipped.push_back({{"pid", segment.pid}, {"path", segment.path}, {"reason", segment.reason}});
    json lcores = json::array();
    for (std::size_t i = 0; i < snapshot.lcores.size(); ++i) {
        const LcoreReading& lcore = snapshot.lcores[i];
        json entry = {{"pid", lcore.pid},
                      {"lcore", lcore.lcore_id},
                      {"queue", lcore.queue},
                      {"counters", counters_json(lcore.counts)}};
        if (rates != nullptr)
            entry["rates"] = rates->lcores[i] ? counters_json(*rates->lcores[i]) : json();
        lcores.push_back(std::move(entry));
    }
    json object = {{"table", table},
                   {"time_unix_ns", snapshot.taken_unix_ns},
                   {"dataplanes", std::move(dataplanes)},
                   {"skipped", std::move(skipped)},
                   {"totals", counters_json(snapshot.totals())},
                   {"lcores", std::move(lcores)}};
    if (rates != nullptr) {
        object["interval_s"] = rates->seconds;
        object["rates"] = counters_json(rates->totals);
    }
    return object;
}

}  // namespace podfwd::ctl
