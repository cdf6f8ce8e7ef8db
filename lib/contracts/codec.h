#pragma once
// One codec for every bus payload. A contract type lists its fields once, in
//   template <class V> void VisitFields(V& v) { v.Required("name", name); ... }
// and the same list encodes it (server and client) and decodes it: a missing
// required field, a value of the wrong type or a field the contract does not
// know is a kBadPayload error naming the message type and the field's path
// (`multipass.launch: field 'cpus': expected an integer, got "two"`).
//
// Field kinds: Required (present and not null), Optional (may be absent or
// null; written only when set) and Nullable (a std::optional written as null
// when empty, so the key is always there: the `int|null` of a documented
// reply; read like Optional).
//
// Supported field types: std::string, bool, integers (range-checked), finite
// doubles (an integer is read as one too), enums
// with a names table (ADL `EnumNames(T)` returning pairs of {value, name}),
// std::optional<T>, std::vector<T>, std::map<std::string, T>, nested
// contract structs, and for messages inside one process also
// std::chrono durations and time points (integer counts of their period) and
// std::variant (`{"index": i, "value": ...}`).
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "bus/error.h"

namespace mps::contracts {

using json = nlohmann::json;

// A payload that does not match its contract. `field` is the path of the
// offending field ("results[2].outcome"), empty for the payload itself.
class ContractError : public bus::BusError {
 public:
  ContractError(std::string_view type, std::string field, const std::string& problem);
  const std::string& field() const { return field_; }

 private:
  std::string field_;
};

namespace detail {

std::string TypeOf(const json& value);  // "a string", "null", ...
std::string Join(std::string_view path, std::string_view key);
std::string Index(std::string_view path, std::size_t i);

template <class T>
struct IsOptional : std::false_type {};
template <class T>
struct IsOptional<std::optional<T>> : std::true_type {};
template <class T>
struct IsVector : std::false_type {};
template <class T>
struct IsVector<std::vector<T>> : std::true_type {};
template <class T>
struct IsStringMap : std::false_type {};
template <class T>
struct IsStringMap<std::map<std::string, T>> : std::true_type {};

struct FieldProbe {
  template <class T>
  void Required(const char*, T&) {}
  template <class T>
  void Optional(const char*, T&) {}
  template <class T>
  void Nullable(const char*, std::optional<T>&) {}
};

template <class T>
struct IsDuration : std::false_type {};
template <class R, class P>
struct IsDuration<std::chrono::duration<R, P>> : std::true_type {};
template <class T>
struct IsTimePoint : std::false_type {};
template <class C, class D>
struct IsTimePoint<std::chrono::time_point<C, D>> : std::true_type {};
template <class T>
struct IsVariant : std::false_type {};
template <class... Ts>
struct IsVariant<std::variant<Ts...>> : std::true_type {};

template <class T, class = void>
struct HasFields : std::false_type {};
template <class T>
struct HasFields<T,
                 std::void_t<decltype(std::declval<T&>().VisitFields(std::declval<FieldProbe&>()))>>
    : std::true_type {};

template <class T>
json Write(const T& value);
template <class T>
void Read(const json& in, T& out, std::string_view type, const std::string& path);

class ObjectWriter {
 public:
  template <class T>
  void Required(const char* key, T& value) {
    out_[key] = Write(value);
  }
  template <class T>
  void Optional(const char* key, T& value) {
    if constexpr (IsOptional<T>::value) {
      if (!value) return;
    }
    out_[key] = Write(value);
  }
  template <class T>
  void Nullable(const char* key, std::optional<T>& value) {
    out_[key] = Write(value);  // null when empty
  }
  json Take() { return std::move(out_); }

 private:
  json out_ = json::object();
};

class ObjectReader {
 public:
  ObjectReader(const json& in, std::string_view type, std::string path)
      : in_(in), type_(type), path_(std::move(path)) {}

  template <class T>
  void Required(const char* key, T& value) {
    seen_.insert(key);
    auto it = in_.find(key);
    if (it == in_.end() || it->is_null()) {
      throw ContractError(type_, Join(path_, key), "is required");
    }
    Read(*it, value, type_, Join(path_, key));
  }
  template <class T>
  void Optional(const char* key, T& value) {
    seen_.insert(key);
    auto it = in_.find(key);
    if (it == in_.end() || it->is_null()) return;  // the default stays
    Read(*it, value, type_, Join(path_, key));
  }
  template <class T>
  void Nullable(const char* key, std::optional<T>& value) {
    Optional(key, value);
  }
  // Every field of the payload must be one the contract knows.
  void RejectUnknown() const;

 private:
  const json& in_;
  std::string_view type_;
  std::string path_;
  std::set<std::string, std::less<>> seen_;
};

template <class T>
json Write(const T& value) {
  if constexpr (IsOptional<T>::value) {
    return value ? Write(*value) : json(nullptr);
  } else if constexpr (IsVector<T>::value) {
    json out = json::array();
    for (const auto& v : value) out.push_back(Write(v));
    return out;
  } else if constexpr (IsStringMap<T>::value) {
    json out = json::object();
    for (const auto& [k, v] : value) out[k] = Write(v);
    return out;
  } else if constexpr (HasFields<T>::value) {
    ObjectWriter w;
    T copy = value;  // VisitFields serves reading and writing
    copy.VisitFields(w);
    return w.Take();
  } else if constexpr (IsDuration<T>::value) {
    return json(static_cast<std::int64_t>(value.count()));
  } else if constexpr (IsTimePoint<T>::value) {
    return json(static_cast<std::int64_t>(value.time_since_epoch().count()));
  } else if constexpr (IsVariant<T>::value) {
    return std::visit(
        [&](const auto& v) {
          return json{{"index", value.index()}, {"value", Write(v)}};
        },
        value);
  } else if constexpr (std::is_enum_v<T>) {
    for (const auto& [v, name] : EnumNames(T{}))
      if (v == value) return json(std::string(name));
    return json(nullptr);
  } else {
    return json(value);
  }
}

template <class Int>
void ReadInteger(const json& in, Int& out, std::string_view type, const std::string& path) {
  bool fits = false;
  if (in.is_number_unsigned()) {
    fits = in.get<std::uint64_t>() <= static_cast<std::uint64_t>(std::numeric_limits<Int>::max());
  } else if (in.is_number_integer()) {
    auto v = in.get<std::int64_t>();
    if constexpr (std::is_signed_v<Int>) {
      fits = v >= static_cast<std::int64_t>(std::numeric_limits<Int>::min()) &&
             v <= static_cast<std::int64_t>(std::numeric_limits<Int>::max());
    } else {
      fits = v >= 0 && static_cast<std::uint64_t>(v) <=
                           static_cast<std::uint64_t>(std::numeric_limits<Int>::max());
    }
  } else {
    throw ContractError(type, path, "expected an integer, got " + TypeOf(in));
  }
  if (!fits) throw ContractError(type, path, "integer " + in.dump() + " is out of range");
  out = in.get<Int>();
}

template <std::size_t I, class Variant>
void ReadAlternative(const json& in, std::size_t index, Variant& out, std::string_view type,
                     const std::string& path) {
  if constexpr (I < std::variant_size_v<Variant>) {
    if (index != I) return ReadAlternative<I + 1>(in, index, out, type, path);
    std::variant_alternative_t<I, Variant> v{};
    Read(in, v, type, path);
    out = std::move(v);
  } else {
    throw ContractError(type, path, "has no alternative " + std::to_string(index));
  }
}

template <class T>
void Read(const json& in, T& out, std::string_view type, const std::string& path) {
  if constexpr (IsOptional<T>::value) {
    if (in.is_null()) {
      out.reset();
      return;
    }
    typename T::value_type v{};
    Read(in, v, type, path);
    out = std::move(v);
  } else if constexpr (IsVector<T>::value) {
    if (!in.is_array()) throw ContractError(type, path, "expected a list, got " + TypeOf(in));
    out.clear();
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
      typename T::value_type v{};
      Read(in[i], v, type, Index(path, i));
      out.push_back(std::move(v));
    }
  } else if constexpr (IsStringMap<T>::value) {
    if (!in.is_object()) throw ContractError(type, path, "expected a map, got " + TypeOf(in));
    out.clear();
    for (const auto& [k, v] : in.items()) {
      typename T::mapped_type value{};
      Read(v, value, type, Join(path, k));
      out.emplace(k, std::move(value));
    }
  } else if constexpr (HasFields<T>::value) {
    if (!in.is_object()) throw ContractError(type, path, "expected a map, got " + TypeOf(in));
    ObjectReader r(in, type, path);
    out.VisitFields(r);
    r.RejectUnknown();
  } else if constexpr (IsDuration<T>::value) {
    std::int64_t count = 0;
    ReadInteger(in, count, type, path);
    out = T(count);
  } else if constexpr (IsTimePoint<T>::value) {
    std::int64_t count = 0;
    ReadInteger(in, count, type, path);
    out = T(typename T::duration(count));
  } else if constexpr (IsVariant<T>::value) {
    if (!in.is_object() || !in.contains("index") || !in.contains("value")) {
      throw ContractError(type, path, "expected {index, value}, got " + TypeOf(in));
    }
    std::size_t index = 0;
    ReadInteger(in["index"], index, type, Join(path, "index"));
    ReadAlternative<0>(in["value"], index, out, type, Join(path, "value"));
  } else if constexpr (std::is_enum_v<T>) {
    std::string names;
    if (in.is_string()) {
      const auto& s = in.get_ref<const std::string&>();
      for (const auto& [v, name] : EnumNames(T{})) {
        if (name == s) {
          out = v;
          return;
        }
      }
    }
    for (const auto& [v, name] : EnumNames(T{}))
      names += (names.empty() ? "" : ", ") + std::string(name);
    throw ContractError(type, path, "expected one of " + names + ", got " + TypeOf(in));
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!in.is_boolean())
      throw ContractError(type, path, "expected true or false, got " + TypeOf(in));
    out = in.get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    ReadInteger(in, out, type, path);
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!in.is_number()) throw ContractError(type, path, "expected a number, got " + TypeOf(in));
    out = in.get<T>();
    if (!std::isfinite(out)) throw ContractError(type, path, "expected a finite number");
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!in.is_string()) throw ContractError(type, path, "expected a string, got " + TypeOf(in));
    out = in.get<std::string>();
  } else {
    static_assert(sizeof(T) == 0, "no contract codec for this field type");
  }
}

}  // namespace detail

// The payload of a contract type.
template <class T>
json Encode(const T& value) {
  return detail::Write(value);
}

// The contract type of a payload; throws ContractError naming `type` and the field.
template <class T>
T Decode(const json& payload, std::string_view type) {
  T out{};
  detail::Read(payload, out, type, "");
  return out;
}

// A request's own reply type, by the contract's `Reply` alias.
template <class Request>
typename Request::Reply DecodeReply(const json& payload) {
  return Decode<typename Request::Reply>(payload, std::string(Request::kType) + " reply");
}

}  // namespace mps::contracts
