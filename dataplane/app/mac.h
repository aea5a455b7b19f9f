// MAC text helpers live in common/mac.h; the dataplane's tools use them
// under their old names.
#pragma once

#include <type_traits>

#include "common/mac.h"
#include "dataplane/proto/ether.h"

namespace podfwd::dp::app {

static_assert(std::is_same_v<MacAddr, proto::MacAddr>);
using podfwd::format_mac;
using podfwd::is_unicast;
using podfwd::parse_mac;

}  // namespace podfwd::dp::app
