// The "arp" neighbour source: the neighbours podfwd-dataplane's resolver
// learned, read from its neighbour segment (neigh_segment_reader.h) on a
// timer. Their MACs rank below the CLI's and the static file's, above the
// kernel's (control/core/neighbours.cc); a changed MAC rewrites the
// next-hop records that send to it, in one commit per poll.
#include <map>

#include <spdlog/spdlog.h>

#include "control/daemon/control.h"

namespace podfwd::control {

using nlohmann::json;

void Control::poll_neighbours() {
    if (arp_.poll() == NeighSegmentReader::Poll::kChanged) {
        std::vector<Neighbour> macs;
        for (const ArpEntry& e : arp_.snapshot()->entries)
            // Incomplete and failed entries have no MAC: listed, never fed.
            // Next hops are all on the uplink: nothing else is fed either.
            if (e.has_mac() && is_unicast(e.mac) && options_.node.uplink.contains(e.ip) && e.ip != options_.node.node_ip)
                macs.push_back({e.ip, e.mac, Source::kArp});
        const auto changed = neighbours_.replace_source(Source::kArp, macs);
        state(Source::kArp).changes += changed.size();
        if (!changed.empty()) {
            (void)push_neighbours(changed);
            if (reconciled_)
                (void)commit();
        }
    }
    refresh_arp_state();
}

void Control::refresh_arp_state() {
    SourceState& st = state(Source::kArp);
    st.enabled = true;
    st.last_error = arp_.last_error();
    st.refused = arp_.bad_segments();
    const auto& snapshot = arp_.snapshot();
    if (arp_.following()) {
        st.phase = SourcePhase::kUp;
        st.detail = snapshot ? snapshot->path : std::string();
    } else if (snapshot) {
        st.phase = SourcePhase::kDown;
        st.detail = "dataplane " + std::to_string(snapshot->pid) + " gone; its neighbours kept until another publishes";
    } else {
        st.phase = SourcePhase::kDown;
        st.detail = "no /dev/shm/" + options_.table + ".neigh.<pid> yet";
    }
}

// One row of neigh.list: the effective MAC and its source, and what the
// dataplane knows of the IP (null fields when it knows nothing).
json Control::neigh_list(const json&) {
    std::map<Ipv4Addr, json> rows;
    for (const Neighbour& n : neighbours_.list())
        rows[n.ip] = {{"ip", format_ipv4(n.ip)},
                      {"mac", format_mac(n.mac)},
                      {"source", source_name(n.source)},
                      {"nexthops", sync_.users_of(n.ip)},
                      {"state", nullptr},
                      {"probes", nullptr},
                      {"queued", nullptr},
                      {"arp_mac", nullptr},
                      {"confirmed_age_ms", nullptr},
                      {"used_age_ms", nullptr}};
    const auto& snapshot = arp_.snapshot();
    if (snapshot)
        for (const ArpEntry& e : snapshot->entries) {
            auto [it, fresh] = rows.try_emplace(e.ip);
            json& row = it->second;
            if (fresh)   // no source has a MAC for it: the dataplane is resolving it, or gave up
                row = {{"ip", format_ipv4(e.ip)}, {"mac", nullptr}, {"source", "arp"}, {"nexthops", sync_.users_of(e.ip)}};
            row["state"] = arp_state_name(e.state);
            row["probes"] = e.probes;
            row["queued"] = e.queued;
            row["arp_mac"] = e.has_mac() ? json(format_mac(e.mac)) : json(nullptr);
            row["confirmed_age_ms"] = e.confirmed_age_ms;
            row["used_age_ms"] = e.used_age_ms;
        }
    json list = json::array();
    for (auto& [ip, row] : rows)
        list.push_back(std::move(row));
    json dataplane = nullptr;
    if (snapshot)
        dataplane = {{"pid", snapshot->pid},
                     {"path", snapshot->path},
                     {"alive", arp_.following()},
                     {"published_unix_ns", snapshot->published_unix_ns}};
    return json{{"neighbours", std::move(list)}, {"dataplane", std::move(dataplane)}};
}

}  // namespace podfwd::control
