// Randomized differential test of each layout: ~20,000 random operations
// (puts of good and bad values, deletes, config/pool/node changes, unrelated
// keys, resyncs of random snapshots). After each, the layout's routes and
// rejected keys must equal a naive model's, which recomputes everything
// from the current keys, and Checker checks the update is the exact change.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <iterator>
#include <memory>
#include <random>
#include <set>

#include "tests/etcd/layouts_check.h"

namespace podfwd::control::etcd {
namespace {

using namespace test;   // NOLINT: the helpers of layouts_check.h

struct Rng {
    std::mt19937_64 engine;
    unsigned below(std::size_t n) { return std::uniform_int_distribution<unsigned>(0, unsigned(n) - 1)(engine); }
    bool chance(unsigned percent) { return below(100) < percent; }
};

template <class T>
T pick(Rng& rng, const std::vector<T>& v) { return v[rng.below(v.size())]; }

std::string node_ip(unsigned n) { return "10.168.0." + std::to_string(2 + n); }   // node 0: this node
std::string node_mac(unsigned n) { return "02:00:00:00:00:1" + std::to_string(n); }

// ---- Flannel ----

struct FlannelModel {
    struct LeaseKey { std::string text; std::optional<Prefix4> subnet; bool ipv6_only = false; };
    struct Config { std::string json; std::optional<Prefix4> network; std::uint32_t vni = 1; bool direct = false; };
    enum class Kind { kHostGw, kVxlan, kVxlanNoMac, kUdp, kBadJson, kBadIp };
    struct Entry { int config = -1; int key = -1; Kind kind = Kind::kHostGw; unsigned node = 0; std::uint32_t vni = 0; };

    // nullopt subnet: a refused key.
    const std::vector<LeaseKey> keys = {
        {"10.244.0.0-24", pfx("10.244.0.0/24")},   // this node's
        {"10.244.1.0-24", pfx("10.244.1.0/24")}, {"10.244.2.0-24", pfx("10.244.2.0/24")},
        {"10.244.3.0-24", pfx("10.244.3.0/24")}, {"10.244.4.0-24", pfx("10.244.4.0/24")},
        {"10.244.5.0-24", pfx("10.244.5.0/24")}, {"10.244.128.0-17", pfx("10.244.128.0/17")},
        {"10.245.1.0-24", pfx("10.245.1.0/24")}, {"10.245.2.0-24", pfx("10.245.2.0/24")},
        {"10.244.3.0-24&fd00:3::-64", pfx("10.244.3.0/24")}, {"10.244.4.0-24&fd00:4::-64", pfx("10.244.4.0/24")},
        {"0.0.0.0-0&fd00:9::-64", pfx("0.0.0.0/0"), true},
        {"10.244.1.1-24", std::nullopt}, {"10.244.01.0-24", std::nullopt}, {"junk", std::nullopt},
    };
    const std::vector<Config> configs = {
        {R"({"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}})", pfx("10.244.0.0/16")},
        {R"({"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":7,"DirectRouting":true}})",
         pfx("10.244.0.0/16"), 7, true},
        {R"({"Network":"10.0.0.0/8","SubnetLen":24,"Backend":{"Type":"host-gw"}})", pfx("10.0.0.0/8")},
        {R"({"Network":"10.244.0.0/16"})", std::nullopt},
        {R"({"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":99999999}})", std::nullopt},
        {"{", std::nullopt},
    };
    std::map<std::string, Entry> entries;

    std::pair<std::string, Entry> random_entry(Rng& rng) const {
        if (rng.chance(8)) {
            Entry e;
            e.config = static_cast<int>(rng.below(configs.size()));
            return {kConfig, e};
        }
        Entry e;
        e.key = static_cast<int>(rng.below(keys.size()));
        e.kind = static_cast<Kind>(rng.below(6) % 6);
        if (rng.chance(50))
            e.kind = rng.chance(50) ? Kind::kHostGw : Kind::kVxlan;
        e.node = rng.below(5);
        e.vni = rng.chance(70) ? 0 : 5;
        return {kSubnets + keys[static_cast<std::size_t>(e.key)].text, e};
    }
    std::string random_key(Rng& rng) const { return random_entry(rng).first; }
    std::string ignored_key(Rng& rng) const {
        return pick<std::string>(rng, {"/coreos.com/network/other", kSubnets, "/coreos.com/x", "/calico/x"});
    }

    std::string render(const Entry& e) const {
        if (e.config >= 0)
            return configs[static_cast<std::size_t>(e.config)].json;
        const std::string address = node_ip(e.node);
        switch (e.kind) {
        case Kind::kHostGw: return lease(address, "host-gw", 0, nullptr);
        case Kind::kVxlan: return lease(address, "vxlan", e.vni, node_mac(e.node).c_str());
        case Kind::kVxlanNoMac: return lease(address, "vxlan", e.vni, nullptr);
        case Kind::kUdp: return lease(address, "udp", 0, nullptr);
        case Kind::kBadJson: return R"({"PublicIP":)";
        case Kind::kBadIp: return R"({"PublicIP":"10.168.0.999","BackendType":"host-gw"})";
        }
        return {};
    }

    void compute(std::map<Prefix4, EtcdRoute>& routes, std::set<std::string>& rejected) const {
        const Config* config = nullptr;
        if (auto c = entries.find(kConfig); c != entries.end()) {
            config = &configs[static_cast<std::size_t>(c->second.config)];
            if (!config->network) {
                rejected.insert(kConfig);
                config = nullptr;
            }
        }
        for (const auto& [key, e] : entries) {   // in key order: the lowest key's route wins
            if (e.config >= 0)
                continue;
            const LeaseKey& k = keys[static_cast<std::size_t>(e.key)];
            if (!k.subnet) {
                rejected.insert(key);
                continue;
            }
            if (k.ipv6_only || *k.subnet == pfx("10.244.0.0/24"))
                continue;
            if (e.kind == Kind::kBadJson || e.kind == Kind::kBadIp) {
                rejected.insert(key);
                continue;
            }
            if (e.node == 0)   // this node's PublicIP
                continue;
            const Prefix4 s = *k.subnet;
            if (config && !(config->network->len <= s.len && config->network->contains(s.addr))) {
                rejected.insert(key);
                continue;
            }
            EtcdRoute route{s, ip(node_ip(e.node)), Encap::kHostGw, false, 0, std::nullopt, key};
            if (e.kind == Kind::kVxlan) {
                route.encap = Encap::kVxlan;
                route.vni = e.vni != 0 ? e.vni : config ? config->vni : 1;
                route.vtep_mac = mac(node_mac(e.node));
                route.direct_on_subnet = config && config->direct;
            } else if (e.kind != Kind::kHostGw) {
                rejected.insert(key);
                continue;
            }
            routes.emplace(s, route);
        }
    }
};

// ---- Calico ----

struct CalicoModel {
    enum class Type { kPool, kNode, kBlock };
    enum Mode { kUnset, kNever, kAlways, kCross, kBadMode };
    struct Entry {
        Type type = Type::kBlock;
        int index = 0;            // pool cidr, node name, block key
        Mode ipip = kUnset, vxlan = kUnset;
        bool has_ip = true, with_len = false, has_mac = true;
        int node = -1;            // a block's affinity (-1: none)
        bool bad = false;         // a value that does not parse (or a block whose cidr differs)
    };
    const std::vector<std::string> names = {"me", "n1", "n2", "n3", "ghost"};   // ghost never has a node key
    const std::vector<std::string> pool_cidrs = {"10.244.0.0/16", "10.244.0.0/18", "10.244.64.0/18", "10.0.0.0/8",
                                                 "10.244.1.0/26", "fd00:10:244::/48"};
    const std::vector<std::pair<std::string, std::optional<Prefix4>>> block_keys = {
        {"10.244.0.0-26", pfx("10.244.0.0/26")}, {"10.244.1.0-26", pfx("10.244.1.0/26")},
        {"10.244.2.0-26", pfx("10.244.2.0/26")}, {"10.244.64.0-26", pfx("10.244.64.0/26")},
        {"10.244.64.64-26", pfx("10.244.64.64/26")}, {"10.244.128.0-26", pfx("10.244.128.0/26")},
        {"10.245.0.0-26", pfx("10.245.0.0/26")}, {"10.244.1.1-26", std::nullopt}, {"10.244.001.0-26", std::nullopt},
    };
    std::map<std::string, Entry> entries;

    std::pair<std::string, Entry> random_entry(Rng& rng) const {
        Entry e;
        const unsigned r = rng.below(100);
        e.bad = rng.chance(8);
        if (r < 12) {
            e.type = Type::kPool;
            e.index = static_cast<int>(rng.below(pool_cidrs.size()));
            e.ipip = static_cast<Mode>(rng.below(4));
            e.vxlan = static_cast<Mode>(rng.below(4));
            return {kPools + "p" + std::to_string(rng.below(4)), e};
        }
        if (r < 30) {
            e.type = Type::kNode;
            e.index = static_cast<int>(rng.below(names.size() - 1));
            e.has_ip = rng.chance(85);
            e.with_len = rng.chance(50);
            e.has_mac = rng.chance(70);
            return {kNodes + names[static_cast<std::size_t>(e.index)], e};
        }
        e.index = static_cast<int>(rng.below(block_keys.size()));
        e.node = rng.chance(10) ? -1 : static_cast<int>(rng.below(names.size()));
        return {kBlocks + block_keys[static_cast<std::size_t>(e.index)].first, e};
    }
    std::string random_key(Rng& rng) const { return random_entry(rng).first; }
    std::string ignored_key(Rng& rng) const {
        return pick<std::string>(rng, {"/calico/ipam/v2/handle/k8s-pod-network.1", kBlocks, kNodes,
                                       "/calico/resources/v3/projectcalico.org/workloadendpoints/default/x",
                                       "/calico/ipam/v2/assignment/ipv6/block/fd00::-122"});
    }

    std::string render(const Entry& e) const {
        const auto mode = [](Mode m) -> const char* {
            constexpr const char* kNames[] = {nullptr, "Never", "Always", "CrossSubnet", "Sometimes"};
            return kNames[m];
        };
        switch (e.type) {
        case Type::kPool:
            return pool(pool_cidrs[static_cast<std::size_t>(e.index)], e.bad ? "Sometimes" : mode(e.ipip),
                        mode(e.vxlan));
        case Type::kNode: {
            const std::string address = node_ip(static_cast<unsigned>(e.index)) + (e.with_len ? "/24" : "");
            if (e.bad)
                return node("10.168.0.300/24");
            const std::string vtep = node_mac(static_cast<unsigned>(e.index));
            return node(e.has_ip ? address.c_str() : nullptr, e.has_mac ? vtep.c_str() : nullptr);
        }
        case Type::kBlock: {
            const auto& key = block_keys[static_cast<std::size_t>(e.index)];
            std::string cidr = key.second ? key.second->str() : "10.244.1.0/26";
            if (e.bad)   // a cidr other than the key's
                cidr = key.second && key.second->addr == ip("10.244.2.0") ? "10.244.3.0/26" : "10.244.2.0/26";
            return block(cidr, e.node < 0 ? nullptr : names[static_cast<std::size_t>(e.node)].c_str());
        }
        }
        return {};
    }

    void compute(std::map<Prefix4, EtcdRoute>& routes, std::set<std::string>& rejected) const {
        struct Pool { Prefix4 cidr; Encap encap; bool cross; };
        std::vector<Pool> pools;   // in key order
        std::map<std::string, const Entry*> nodes;
        for (const auto& [key, e] : entries) {
            if (e.type == Type::kPool && e.bad) {
                rejected.insert(key);
            } else if (e.type == Type::kPool && pool_cidrs[static_cast<std::size_t>(e.index)].find(':') == std::string::npos) {
                Pool p{pfx(pool_cidrs[static_cast<std::size_t>(e.index)]), Encap::kHostGw, false};
                if (e.ipip == kAlways || e.ipip == kCross)
                    p = {p.cidr, Encap::kIpip, e.ipip == kCross};
                else if (e.vxlan == kAlways || e.vxlan == kCross)
                    p = {p.cidr, Encap::kVxlan, e.vxlan == kCross};
                pools.push_back(p);
            } else if (e.type == Type::kNode && e.bad) {
                rejected.insert(key);
            } else if (e.type == Type::kNode) {
                nodes[names[static_cast<std::size_t>(e.index)]] = &e;
            }
        }
        for (const auto& [key, e] : entries) {
            if (e.type != Type::kBlock)
                continue;
            const auto& cidr = block_keys[static_cast<std::size_t>(e.index)].second;
            if (!cidr || e.bad) {
                rejected.insert(key);
                continue;
            }
            if (e.node < 0)
                continue;
            const std::string& name = names[static_cast<std::size_t>(e.node)];
            EtcdRoute route{*cidr, 0, Encap::kLocal, false, 0, std::nullopt, key};
            if (name != "me") {
                auto n = nodes.find(name);
                if (n == nodes.end() || !n->second->has_ip) {
                    rejected.insert(key);
                    continue;
                }
                route.via = ip(node_ip(static_cast<unsigned>(n->second->index)));
                route.encap = Encap::kHostGw;
                const Pool* best = nullptr;
                for (const auto& p : pools)
                    if (p.cidr.len <= cidr->len && p.cidr.contains(cidr->addr) && (!best || p.cidr.len > best->cidr.len))
                        best = &p;
                if (best) {
                    route.encap = best->encap;
                    route.direct_on_subnet = best->cross;
                }
                if (route.encap == Encap::kVxlan) {
                    if (!n->second->has_mac) {
                        rejected.insert(key);
                        continue;
                    }
                    route.vni = 4096;
                    route.vtep_mac = mac(node_mac(static_cast<unsigned>(n->second->index)));
                }
            }
            routes.emplace(*cidr, route);
        }
    }
};

template <class Model>
void differential(Layout& layout, Model& model, std::uint64_t seed, int steps, const std::function<std::unique_ptr<Layout>()>& fresh) {
    Rng rng{std::mt19937_64(seed)};
    Checker checker(layout);
    unsigned resyncs = 0;
    std::size_t max_routes = 0;
    for (int step = 0; step < steps; ++step) {
        const unsigned op = rng.below(100);
        if (op < 55) {
            auto [key, entry] = model.random_entry(rng);
            model.entries.insert_or_assign(key, entry);
            checker.put(key, model.render(entry));
        } else if (op < 75) {
            const std::string key = model.random_key(rng);
            model.entries.erase(key);
            checker.del(key);
        } else if (op < 80) {
            auto u = checker.put(model.ignored_key(rng), "{\"cidr\":\"10.1.0.0/26\"}");
            EXPECT_TRUE(u.changes.empty() && u.rejected.empty());
        } else if (op < 90 && !model.entries.empty()) {   // the same value again: no change
            auto it = std::next(model.entries.begin(), rng.below(model.entries.size()));
            auto u = checker.put(it->first, model.render(it->second));
            EXPECT_TRUE(u.changes.empty() && u.rejected.empty());
        } else if (op < 94) {   // a resync: most keys kept, some changed, some gone, some new
            ++resyncs;
            std::vector<std::pair<std::string, typename Model::Entry>> next;
            for (const auto& [key, entry] : model.entries) {
                if (rng.chance(15))
                    continue;
                next.emplace_back(key, entry);
                for (int tries = rng.chance(15) ? 1000 : 0; tries > 0; --tries) {   // another value
                    auto [other_key, other] = model.random_entry(rng);
                    if (other_key == key) {
                        next.back().second = other;
                        break;
                    }
                }
            }
            for (unsigned n = rng.below(6); n > 0; --n)
                next.push_back(model.random_entry(rng));
            std::shuffle(next.begin(), next.end(), rng.engine);
            std::vector<KeyValue> snapshot;
            model.entries.clear();
            for (const auto& [key, entry] : next) {
                snapshot.push_back({key, model.render(entry)});
                model.entries.insert_or_assign(key, entry);
            }
            snapshot.push_back({model.ignored_key(rng), "x"});
            checker.resync(snapshot);
        }

        std::map<Prefix4, EtcdRoute> routes;
        std::set<std::string> rejected;
        model.compute(routes, rejected);
        std::set<std::string> layout_rejected;
        for (const auto& r : layout.rejections())
            layout_rejected.insert(r.key);
        const bool same = routes == layout.routes() && rejected == layout_rejected &&
                          layout.counters().keys == model.entries.size();
        EXPECT_TRUE(same) << "step " << step << " (seed " << seed << "): " << routes.size() << " routes modelled, "
                          << layout.routes().size() << " in the layout; " << rejected.size() << " vs "
                          << layout_rejected.size() << " rejected";
        if (!same || ::testing::Test::HasFailure())
            return;
        max_routes = std::max(max_routes, routes.size());
    }
    EXPECT_GT(resyncs, 100u);
    EXPECT_GT(max_routes, 4u);

    // The state depends on the keys only, not on the path: a fresh layout
    // given the final keys at once agrees, reasons included.
    std::vector<KeyValue> snapshot;
    for (const auto& [key, entry] : model.entries)
        snapshot.push_back({key, model.render(entry)});
    auto other = fresh();
    other->resync(snapshot);
    EXPECT_TRUE(other->routes() == layout.routes());
    const auto a = other->rejections();
    const auto b = layout.rejections();
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i)
        EXPECT_EQ(a[i].reason, b[i].reason);
}

FlannelLayout::Options flannel_options() { return {"/coreos.com/network", pfx("10.244.0.0/24"), ip(node_ip(0))}; }

TEST(LayoutRandom, FlannelAgainstNaiveModel) {
    FlannelLayout layout(flannel_options());
    FlannelModel model;
    differential(layout, model, 1, 20000, [] { return std::make_unique<FlannelLayout>(flannel_options()); });
}

TEST(LayoutRandom, CalicoAgainstNaiveModel) {
    CalicoLayout layout({"/calico", "me", 4096});
    CalicoModel model;
    differential(layout, model, 2, 20000,
                 [] { return std::make_unique<CalicoLayout>(CalicoLayout::Options{"/calico", "me", 4096}); });
}

}  // namespace
}  // namespace podfwd::control::etcd
