// Routes and neighbours as words, the one grammar shared by the static
// routes file and podfwdctl:
//
//   <prefix> via <node-ip> [mode host-gw|ipip|vxlan|cross-subnet] [vni N] [vtep-mac MAC]
//   <prefix> local
//   <prefix> blackhole
//   neighbour: <ip> <mac>
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "control/core/route.h"

namespace podfwd::control {

Result<RouteSpec> parse_route_words(std::span<const std::string_view> words, Source source);
Result<Neighbour> parse_neighbour_words(std::span<const std::string_view> words, Source source);

// Splits on blanks; a '#' starts a comment.
std::vector<std::string_view> split_words(std::string_view line);

}  // namespace podfwd::control
