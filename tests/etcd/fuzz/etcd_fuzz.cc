// libFuzzer target: the etcd source's decoders of what the datastore holds
// (Flannel's config, leases and subnet keys; Calico's pools, nodes and
// blocks, through the layouts) and of what etcd answers (protowire.h).
// Byte 0 picks the decoder; the rest is its input.
// Oracle: no exception escapes; errors and rejections have reasons; what
// decodes round-trips (a lease, a subnet key, a protobuf message); a layout
// fed keys one by one (apply) ends as one given their final values at once
// (resync): the same routes, the same rejected keys.
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/etcd/layouts.h"
#include "control/etcd/protowire.h"

using namespace podfwd;
using namespace podfwd::control::etcd;

namespace {

void check_error_text(const Error& error) {
    if (error.message.empty())
        std::abort();
}

void check_lease(std::string_view text) {
    const auto lease = parse_flannel_lease(text);
    if (!lease)
        return check_error_text(lease.error());
    // The writer keeps BackendData for vxlan only (as flanneld does): the
    // address and type must survive, and the written form must be stable.
    const std::string written = flannel_lease_json(*lease);
    const auto again = parse_flannel_lease(written);
    if (!again || again->public_ip != lease->public_ip || again->backend_type != lease->backend_type ||
        flannel_lease_json(*again) != written)
        std::abort();
    if (lease->backend_type == "vxlan" && (again->vni != lease->vni || again->vtep_mac != lease->vtep_mac))
        std::abort();
}

void check_subnet_key(std::string_view text) {
    const auto prefix = parse_flannel_subnet_key(text);
    if (!prefix)
        return check_error_text(prefix.error());
    // Only one spelling is accepted: flannel_subnet_key()'s (a dual-stack
    // key's IPv6 part aside).
    if (text.substr(0, text.find('&')) != flannel_subnet_key(*prefix))
        std::abort();
}

void check_protobuf(std::string_view message) {
    protowire::Reader reader(message);
    std::vector<protowire::Field> fields;
    bool plain = true;   // only varints and bytes: what put_uint/put_bytes write
    while (const auto field = reader.next()) {
        if (field->bytes.data() != nullptr &&
            (field->bytes.data() < message.data() || field->bytes.end() > message.end()))
            std::abort();   // a field outside the message
        plain = plain && (field->type == protowire::kVarint || field->type == protowire::kBytes);
        fields.push_back(*field);
    }
    if (reader.error() || !plain)
        return;
    std::string encoded;
    for (const auto& f : fields)
        f.type == protowire::kBytes ? protowire::put_bytes(encoded, f.number, f.bytes)
                                    : protowire::put_uint(encoded, f.number, f.value);
    protowire::Reader again(encoded);
    for (const auto& f : fields) {
        const auto g = again.next();
        if (!g || g->number != f.number || g->type != f.type || g->value != f.value || g->bytes != f.bytes)
            std::abort();
    }
    if (again.next() || again.error())
        std::abort();
    const std::string framed = protowire::grpc_frame(message);
    const auto unframed = protowire::grpc_unframe(framed);
    if (!unframed || *unframed != message)
        std::abort();
}

std::unique_ptr<Layout> make_layout(bool calico) {
    if (calico)
        return std::make_unique<CalicoLayout>(CalicoLayout::Options{.node_name = "node-a"});
    return std::make_unique<FlannelLayout>(FlannelLayout::Options{
        .own_subnet = *Prefix4::parse("10.244.0.0/24"), .own_ip = *parse_ipv4("10.168.0.2")});
}

// Lines "<key suffix> <value>" (a value-less line deletes the key), keys
// under the layout's prefixes so that the fuzzer reaches the decoders.
void check_layout(bool calico, std::string_view text) {
    static constexpr std::string_view kFlannel[] = {"/coreos.com/network/config", "/coreos.com/network/subnets/"};
    static constexpr std::string_view kCalico[] = {"/calico/resources/v3/projectcalico.org/ippools/",
                                                   "/calico/resources/v3/projectcalico.org/nodes/",
                                                   "/calico/ipam/v2/assignment/ipv4/block/"};
    const auto layout = make_layout(calico);
    std::map<std::string, std::string> final_values;
    for (std::size_t start = 0, n = 0; start < text.size() && n < 64; ++n) {
        const std::size_t end = std::min(text.find('\n', start), text.size());
        const std::string_view line = text.substr(start, end - start);
        start = end + 1;
        if (line.empty())
            continue;
        const std::size_t blank = line.find(' ');
        const std::string_view suffix = line.substr(1, blank == std::string_view::npos ? line.npos : blank - 1);
        const auto which = static_cast<unsigned char>(line[0]) % (calico ? 3 : 2);
        const std::string key = std::string(calico ? kCalico[which] : kFlannel[which]) +
                                std::string(calico || which == 1 ? suffix : std::string_view{});
        std::optional<std::string_view> value;
        if (blank != std::string_view::npos)
            value = line.substr(blank + 1);
        const LayoutUpdate update = layout->apply(key, value);
        for (const Rejection& r : update.rejected)
            if (r.reason.empty())
                std::abort();
        if (value)
            final_values[key] = std::string(*value);
        else
            final_values.erase(key);
    }
    std::vector<KeyValue> snapshot;
    for (const auto& [key, value] : final_values)
        snapshot.push_back({key, value});
    const auto fresh = make_layout(calico);
    fresh->resync(snapshot);
    if (fresh->routes() != layout->routes())
        std::abort();   // the result depends on the order the keys came in
    const auto rejected = layout->rejections(), fresh_rejected = fresh->rejections();
    if (rejected.size() != fresh_rejected.size())
        std::abort();
    for (std::size_t i = 0; i < rejected.size(); ++i)
        if (rejected[i].key != fresh_rejected[i].key)
            std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1)
        return 0;
    // The input in an exactly-sized buffer: a read one past it is reported.
    const auto copy = std::make_unique<char[]>(size - 1);
    std::copy(data + 1, data + size, copy.get());
    const std::string_view text(copy.get(), size - 1);
    switch (data[0] % 6) {
    case 0:
        if (const auto config = parse_flannel_config(text); !config)
            check_error_text(config.error());
        break;
    case 1: check_lease(text); break;
    case 2: check_subnet_key(text); break;
    case 3: check_protobuf(text); break;
    case 4: check_layout(false, text); break;
    case 5: check_layout(true, text); break;
    }
    return 0;
}
