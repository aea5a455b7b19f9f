// The BGP source in a build without gRPC (-Dbgp=disabled: the sanitizer and
// fuzz test trees): podfwd-control refuses --bgp-as with this error.
#include "control/bgp/bgp_source.h"

namespace podfwd::control::bgp {

class BgpSource::Impl {};

Result<std::unique_ptr<BgpSource>> BgpSource::start(BgpOptions, Handlers, std::vector<BgpRoute>) {
    return Error{Errc::kInvalidArgument, "this podfwd-control was built without BGP (meson -Dbgp=disabled)"};
}

BgpSource::BgpSource(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BgpSource::~BgpSource() = default;
int BgpSource::fd() const noexcept { return -1; }
void BgpSource::dispatch() {}
void BgpSource::tick() {}
bool BgpSource::synced() const noexcept { return false; }
void BgpSource::run_until_synced(std::chrono::milliseconds) {}
BgpStatus BgpSource::status() const { return {}; }
std::vector<PeerStatus> BgpSource::peers() const { return {}; }

}  // namespace podfwd::control::bgp
