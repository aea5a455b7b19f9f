// Shared by the layout tests: values as Flannel and Calico write them, and
// Checker, which runs one apply()/resync() and checks its update against the
// layout's state before and after.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "control/etcd/layouts.h"

namespace podfwd::control::etcd::test {

inline Prefix4 pfx(std::string_view text) { return *Prefix4::parse(text); }
inline Ipv4Addr ip(std::string_view text) { return *parse_ipv4(text); }
inline MacAddr mac(std::string_view text) { return *parse_mac(text); }

inline const char* const kMac1 = "02:00:00:00:00:01";

// ---- Flannel ----
inline const std::string kConfig = "/coreos.com/network/config";
inline const std::string kSubnets = "/coreos.com/network/subnets/";

inline std::string lease(std::string_view public_ip, const char* type, std::uint32_t vni = 1,
                         const char* vtep = kMac1) {
    return flannel_lease_json(FlannelLease{ip(public_ip), type, vni, vtep ? parse_mac(vtep) : std::nullopt});
}

// ---- Calico ----
inline const std::string kPools = "/calico/resources/v3/projectcalico.org/ippools/";
inline const std::string kNodes = "/calico/resources/v3/projectcalico.org/nodes/";
inline const std::string kBlocks = "/calico/ipam/v2/assignment/ipv4/block/";

// An IPAM block; node nullptr: no affinity (unclaimed).
inline std::string block(std::string_view cidr, const char* node) {
    return R"({"cidr":")" + std::string(cidr) + R"(","affinity":)" +
           (node ? "\"host:" + std::string(node) + "\"" : std::string("null")) +
           R"(,"allocations":[null],"unallocated":[0],"attributes":[],"deleted":false})";
}
// A node; address "10.168.0.3/24" or bare, nullptr: no spec.bgp.
inline std::string node(const char* address, const char* vtep = nullptr) {
    std::string spec = address ? R"("bgp":{"ipv4Address":")" + std::string(address) + "\"}" : "";
    if (vtep)
        spec += std::string(address ? "," : "") + R"("vxlanTunnelMACAddr":")" + vtep + "\"";
    return R"({"kind":"Node","apiVersion":"projectcalico.org/v3","spec":{)" + spec + "}}";
}
// A pool; a mode nullptr: not stated.
inline std::string pool(std::string_view cidr, const char* ipip, const char* vxlan) {
    std::string spec = R"("cidr":")" + std::string(cidr) + "\"";
    if (ipip)
        spec += R"(,"ipipMode":")" + std::string(ipip) + "\"";
    if (vxlan)
        spec += R"(,"vxlanMode":")" + std::string(vxlan) + "\"";
    return R"({"kind":"IPPool","apiVersion":"projectcalico.org/v3","spec":{)" + spec +
           R"(,"blockSize":26,"natOutgoing":true}})";
}

// Every update must be exactly the difference between the states before
// and after: its changes, applied to the routes before, give the routes
// after (each a real change, in prefix order, no prefix twice), and its
// rejections are the keys whose reason is new or changed.
class Checker {
public:
    explicit Checker(Layout& layout) : layout_(layout) {}

    LayoutUpdate put(std::string_view key, std::string_view value) {
        return run([&] { return layout_.apply(key, value); });
    }
    LayoutUpdate del(std::string_view key) {
        return run([&] { return layout_.apply(key, std::nullopt); });
    }
    LayoutUpdate resync(std::span<const KeyValue> snapshot) {
        return run([&] { return layout_.resync(snapshot); });
    }

    template <class F>
    LayoutUpdate run(F&& step) {
        const std::map<Prefix4, EtcdRoute> before = layout_.routes();
        const std::map<std::string, std::string> rejected_before = rejected();
        LayoutUpdate update = step();

        std::map<Prefix4, EtcdRoute> applied = before;
        const Prefix4* last = nullptr;
        for (const auto& change : update.changes) {
            if (last != nullptr) {
                EXPECT_LT(*last, change.prefix) << "changes out of order or repeated";
            }
            last = &change.prefix;
            auto was = before.find(change.prefix);
            const auto old = was == before.end() ? std::nullopt : std::optional<EtcdRoute>(was->second);
            EXPECT_NE(old, change.route) << change.prefix.str() << " reported unchanged";
            if (change.route) {
                EXPECT_EQ(change.route->prefix, change.prefix);
                applied.insert_or_assign(change.prefix, *change.route);
            } else {
                applied.erase(change.prefix);
            }
        }
        EXPECT_TRUE(applied == layout_.routes()) << "the changes do not give the routes";

        const std::map<std::string, std::string> after = rejected();
        std::vector<std::pair<std::string, std::string>> expected;
        for (const auto& [key, reason] : after) {
            auto was = rejected_before.find(key);
            if (was == rejected_before.end() || was->second != reason)
                expected.emplace_back(key, reason);
            EXPECT_EQ(reason.rfind(printable(key) + ": ", 0), 0u) << reason;
            EXPECT_EQ(reason.find('\n'), std::string::npos) << reason;
        }
        std::vector<std::pair<std::string, std::string>> reported;
        for (const auto& r : update.rejected)
            reported.emplace_back(r.key, r.reason);
        EXPECT_EQ(reported, expected);
        EXPECT_EQ(layout_.counters().rejected, after.size());
        return update;
    }

private:
    std::map<std::string, std::string> rejected() const {
        std::map<std::string, std::string> out;
        for (auto& r : layout_.rejections())
            EXPECT_TRUE(out.emplace(r.key, r.reason).second) << "rejected twice: " << r.key;
        return out;
    }

    Layout& layout_;
};

}  // namespace podfwd::control::etcd::test
