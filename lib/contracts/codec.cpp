#include "contracts/codec.h"

namespace mps::contracts {

ContractError::ContractError(std::string_view type, std::string field, const std::string& problem)
    : bus::BusError(bus::ErrorCode::kBadPayload,
                    std::string(type) + ": " +
                        (field.empty() ? std::string("payload") : "field '" + field + "'") + " " +
                        problem),
      field_(std::move(field)) {}

namespace detail {

std::string TypeOf(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::string: {
      auto s = value.get<std::string>();
      if (s.size() > 40) s = s.substr(0, 40) + "...";
      return "the string \"" + s + "\"";
    }
    case json::value_t::array:
      return "a list";
    case json::value_t::object:
      return "a map";
    case json::value_t::number_float:
      return "the number " + value.dump();
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "the integer " + value.dump();
    default:
      return "a value of another type";
  }
}

std::string Join(std::string_view path, std::string_view key) {
  if (path.empty()) return std::string(key);
  return std::string(path) + "." + std::string(key);
}

std::string Index(std::string_view path, std::size_t i) {
  return std::string(path) + "[" + std::to_string(i) + "]";
}

void ObjectReader::RejectUnknown() const {
  for (const auto& [key, value] : in_.items()) {
    if (!seen_.contains(key)) {
      std::string known;
      for (const auto& k : seen_) known += (known.empty() ? "" : ", ") + k;
      throw ContractError(type_, Join(path_, key),
                          "is not part of the contract (known fields: " +
                              (known.empty() ? std::string("none") : known) + ")");
    }
  }
}

}  // namespace detail
}  // namespace mps::contracts
