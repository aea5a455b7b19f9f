// The static routes file, podfwd-control's embedded default source:
//
//   # pods of node-b, one L2 hop away
//   route 10.244.1.0/24 via 10.168.0.3 mode host-gw
//   route 10.244.2.0/24 via 10.169.0.4 mode ipip
//   route 10.244.3.0/24 via 10.168.0.5 mode vxlan vtep-mac 02:42:0a:f4:03:00
//   route 10.99.0.0/16 blackhole
//   neigh 10.168.0.3 02:00:00:00:00:03
//
// A file is taken whole or not at all: one bad line and the routes already
// learned stay as they were. Every line with words ends with a newline: one
// that does not is a file cut short (a writer caught half-way) and refused.
// A file with no routes and no neighbours parses; whether it is meant is the
// daemon's call (--allow-empty-static).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "control/core/route.h"

namespace podfwd::control {

struct StaticConfig {
    std::vector<RouteSpec> routes;
    std::vector<Neighbour> neighbours;
};

// Errors name the origin and line: "routes.conf:7: unknown mode 'ipipp' ...".
Result<StaticConfig> parse_static(std::string_view text, std::string_view origin);
Result<StaticConfig> load_static_file(const std::string& path);

}  // namespace podfwd::control
