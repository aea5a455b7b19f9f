// The base of the layouts: held values, routes claimed per key, rejections,
// and the net change of one apply() or resync().
#include <algorithm>
#include <cassert>
#include <exception>
#include <unordered_set>
#include <utility>

#include <nlohmann/json.hpp>

#include "control/etcd/layouts.h"

namespace podfwd::control::etcd {

LayoutUpdate Layout::apply(std::string_view key, std::optional<std::string_view> value) {
    apply_one(key, value);
    return take_update();
}

LayoutUpdate Layout::resync(std::span<const KeyValue> snapshot) {
    std::unordered_set<std::string_view> keys;
    keys.reserve(snapshot.size());
    for (const auto& kv : snapshot)
        keys.insert(kv.key);
    std::vector<std::pair<int, const std::string*>> gone;
    for (const auto& [key, value] : values_)
        if (!keys.contains(key))
            gone.emplace_back(-resync_pass(key), &key);
    std::stable_sort(gone.begin(), gone.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [pass, key] : gone)
        apply_one(*key, std::nullopt);   // it copies the key before erasing it

    // In snapshot order within a pass: of a key given twice, the last value stays.
    std::vector<std::pair<int, const KeyValue*>> puts;
    puts.reserve(snapshot.size());
    for (const auto& kv : snapshot)
        puts.emplace_back(resync_pass(kv.key), &kv);
    std::stable_sort(puts.begin(), puts.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [pass, kv] : puts)
        apply_one(kv->key, kv->value);
    return take_update();
}

std::vector<Rejection> Layout::rejections() const {
    std::vector<Rejection> out;
    out.reserve(rejected_.size());
    for (const auto& [key, reason] : rejected_)
        out.push_back(Rejection{key, reason});
    return out;
}

LayoutCounters Layout::counters() const { return LayoutCounters{values_.size(), rejected_.size()}; }

void Layout::apply_one(std::string_view key, std::optional<std::string_view> value) {
    if (!wants(key))
        return;
    auto it = values_.lower_bound(key);
    const bool held = it != values_.end() && it->first == key;
    if (!value) {
        if (!held)
            return;
        const std::string gone = it->first;
        values_.erase(it);
        changed(gone, nullptr);
        return;
    }
    if (held) {
        if (it->second == *value)
            return;
        it->second.assign(*value);
    } else {
        it = values_.emplace_hint(it, std::string(key), std::string(*value));
    }
    changed(it->first, &it->second);
}

void Layout::state_route(std::string_view key, const Prefix4& prefix, std::optional<EtcdRoute> route) {
    assert(!route || route->key == key);
    auto current = routes_.find(prefix);
    auto hidden = hidden_.find(prefix);   // only where `current` is
    if (current != routes_.end() && current->second.key == key) {
        if (route) {
            set_best(prefix, current, std::move(route));
        } else if (hidden == hidden_.end()) {
            set_best(prefix, current, std::nullopt);
        } else {   // the next lowest key's route shows
            auto next = hidden->second.begin();
            set_best(prefix, current, std::move(next->second));
            hidden->second.erase(next);
            if (hidden->second.empty())
                hidden_.erase(hidden);
        }
    } else if (!route) {
        if (hidden == hidden_.end())
            return;
        if (auto it = hidden->second.find(key); it != hidden->second.end())
            hidden->second.erase(it);
        if (hidden->second.empty())
            hidden_.erase(hidden);
    } else if (current == routes_.end()) {
        set_best(prefix, current, std::move(route));
    } else if (key < current->second.key) {   // it hides the current one
        if (hidden == hidden_.end())
            hidden = hidden_.try_emplace(prefix).first;
        hidden->second.insert_or_assign(current->second.key, current->second);
        set_best(prefix, current, std::move(route));
    } else {
        if (hidden == hidden_.end())
            hidden = hidden_.try_emplace(prefix).first;
        hidden->second.insert_or_assign(std::string(key), std::move(*route));
    }
}

void Layout::set_best(const Prefix4& prefix, std::map<Prefix4, EtcdRoute>::iterator current,
                      std::optional<EtcdRoute> route) {
    const bool present = current != routes_.end();
    if (route ? present && current->second == *route : !present)
        return;
    if (!routes_before_.contains(prefix))
        routes_before_.emplace(prefix, present ? std::optional<EtcdRoute>(current->second) : std::nullopt);
    if (!route)
        routes_.erase(current);
    else if (present)
        current->second = std::move(*route);
    else
        routes_.emplace(prefix, std::move(*route));
}

void Layout::set_rejection(std::string_view key, std::optional<std::string> reason) {
    auto current = rejected_.find(key);
    if (reason ? current != rejected_.end() && current->second == *reason : current == rejected_.end())
        return;
    if (!rejected_before_.contains(key))
        rejected_before_.emplace(std::string(key), current == rejected_.end()
                                                       ? std::nullopt
                                                       : std::optional<std::string>(current->second));
    if (!reason)
        rejected_.erase(current);
    else if (current == rejected_.end())
        rejected_.emplace(std::string(key), std::move(*reason));
    else
        current->second = std::move(*reason);
}

LayoutUpdate Layout::take_update() {
    LayoutUpdate update;
    for (auto& [prefix, before] : routes_before_) {
        auto now = routes_.find(prefix);
        if (now == routes_.end()) {
            if (before)
                update.changes.push_back(RouteChange{prefix, std::nullopt});
        } else if (!before || *before != now->second) {
            update.changes.push_back(RouteChange{prefix, now->second});
        }
    }
    for (auto& [key, before] : rejected_before_) {
        auto now = rejected_.find(key);
        if (now != rejected_.end() && (!before || *before != now->second))
            update.rejected.push_back(Rejection{key, now->second});
    }
    routes_before_.clear();
    rejected_before_.clear();
    return update;
}

std::string prefix_range_end(std::string_view prefix) {
    std::string end(prefix);
    while (!end.empty()) {
        auto last = static_cast<unsigned char>(end.back());
        if (last < 0xff) {
            end.back() = static_cast<char>(last + 1);
            return end;
        }
        end.pop_back();
    }
    return std::string(1, '\0');
}

std::string printable(std::string_view text, std::size_t max) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(std::min(text.size(), max) + 3);
    for (std::size_t i = 0; i < text.size() && i < max; ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x20 || c >= 0x7f) {
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 0xf];
        } else {
            out += static_cast<char>(c);
        }
    }
    if (text.size() > max)
        out += "...";
    return out;
}

namespace json_fields {

using nlohmann::json;

namespace {

Error invalid(std::string_view path, std::string_view problem) {
    return Error{Errc::kInvalidArgument, std::string(path) + ": " + std::string(problem)};
}

}  // namespace

namespace {

// Keeps the top-level members named in `only` (scalars whole, objects and
// arrays empty); the rest is checked by the parser and dropped.
class TopLevelMembers final : public nlohmann::json_sax<json> {
public:
    explicit TopLevelMembers(std::initializer_list<std::string_view> only) : only_(only) {}

    json members = json::object();
    const char* document_type = "object";   // what the document is

    bool null() override { return scalar([] { return json(nullptr); }, "null"); }
    bool boolean(bool v) override { return scalar([v] { return json(v); }, "boolean"); }
    bool number_integer(number_integer_t v) override { return scalar([v] { return json(v); }, "number"); }
    bool number_unsigned(number_unsigned_t v) override { return scalar([v] { return json(v); }, "number"); }
    bool number_float(number_float_t v, const string_t&) override {
        return scalar([v] { return json(v); }, "number");
    }
    bool string(string_t& v) override { return scalar([&v] { return json(std::move(v)); }, "string"); }
    bool binary(binary_t&) override { return scalar([] { return json::binary({}); }, "binary"); }
    bool start_object(std::size_t) override { return open(json::object()); }
    bool start_array(std::size_t) override {
        if (depth_ == 0)
            document_type = "array";
        return open(json::array());
    }
    bool end_object() override { return close(); }
    bool end_array() override { return close(); }
    bool key(string_t& name) override {
        if (depth_ == 1) {
            kept_ = std::find(only_.begin(), only_.end(), std::string_view(name)) != only_.end();
            if (kept_)
                key_ = std::move(name);
        }
        return true;
    }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

private:
    template <class Make>
    bool scalar(Make make, const char* type) {
        if (depth_ == 0)
            document_type = type;
        else if (depth_ == 1 && kept_)
            members[key_] = make();
        return true;
    }
    bool open(json empty) {
        if (depth_ == 1 && kept_)
            members[key_] = std::move(empty);
        ++depth_;
        return true;
    }
    bool close() {
        --depth_;
        return true;
    }

    std::initializer_list<std::string_view> only_;
    std::size_t depth_ = 0;
    bool kept_ = false;
    std::string key_;
};

}  // namespace

Result<json> parse_object(std::string_view text, std::initializer_list<std::string_view> only) {
    try {
        if (only.size() != 0) {
            TopLevelMembers sax(only);
            if (!json::sax_parse(text.begin(), text.end(), &sax))
                return Error{Errc::kInvalidArgument, "not JSON (or not UTF-8)"};
            if (std::string_view(sax.document_type) != "object")
                return Error{Errc::kInvalidArgument, std::string("not a JSON object (") + sax.document_type + ")"};
            return std::move(sax.members);
        }
        json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
        if (j.is_discarded())
            return Error{Errc::kInvalidArgument, "not JSON (or not UTF-8)"};
        if (!j.is_object())
            return Error{Errc::kInvalidArgument, std::string("not a JSON object (") + j.type_name() + ")"};
        return j;
    } catch (const std::exception& e) {   // allocation; parse errors are `discarded`
        return Error{Errc::kInvalidArgument, std::string("not JSON: ") + e.what()};
    }
}

const json* find(const json& obj, std::string_view name) {
    if (!obj.is_object())
        return nullptr;
    auto it = obj.find(name);
    if (it == obj.end() || it->is_null())
        return nullptr;
    return &*it;
}

Result<std::optional<std::string>> string_field(const json& obj, std::string_view name, std::string_view path) {
    const json* j = find(obj, name);
    if (j == nullptr)
        return std::optional<std::string>();
    if (!j->is_string())
        return invalid(path, std::string("not a string (") + j->type_name() + ")");
    return std::optional<std::string>(j->get_ref<const std::string&>());
}

Result<std::optional<std::uint64_t>> uint_field(const json& obj, std::string_view name, std::string_view path,
                                                std::uint64_t max) {
    const json* j = find(obj, name);
    if (j == nullptr)
        return std::optional<std::uint64_t>();
    if (!j->is_number())
        return invalid(path, std::string("not a number (") + j->type_name() + ")");
    // Floats (1.5, and integers beyond 64 bits) and negative numbers are out.
    std::uint64_t v = 0;
    if (j->is_number_unsigned())
        v = j->get<json::number_unsigned_t>();
    if (!j->is_number_unsigned() || v > max)
        return invalid(path, j->dump() + " is not an integer in 0.." + std::to_string(max));
    return std::optional<std::uint64_t>(v);
}

Result<std::optional<bool>> bool_field(const json& obj, std::string_view name, std::string_view path) {
    const json* j = find(obj, name);
    if (j == nullptr)
        return std::optional<bool>();
    if (!j->is_boolean())
        return invalid(path, std::string("not a boolean (") + j->type_name() + ")");
    return std::optional<bool>(j->get<bool>());
}

Result<const json*> object_field(const json& obj, std::string_view name, std::string_view path) {
    const json* j = find(obj, name);
    if (j != nullptr && !j->is_object())
        return invalid(path, std::string("not an object (") + j->type_name() + ")");
    return j;
}

}  // namespace json_fields

}  // namespace podfwd::control::etcd
