#pragma once
// The part of go-bexpr the simulated Nomad understands for GET /v1/nodes?filter=:
// selectors NodeClass, Datacenter, NodePool, Status, SchedulingEligibility,
// ID, Name, Attributes["k"], Meta["k"]; operators ==, !=, matches, not matches;
// and / or / not / parentheses; "double" or `raw` strings. Anything else is
// rejected with an error naming it, so a test never silently matches all.
#include <memory>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace mps::sim {

class FilterSyntaxError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

class NodeFilterExpression {
 public:
  // Throws FilterSyntaxError.
  static NodeFilterExpression Parse(const std::string& text);
  // Evaluated on the full node object, as Nomad does.
  bool Matches(const nlohmann::json& node) const;

  struct Expr;

 private:
  std::shared_ptr<const Expr> root_;
};

}  // namespace mps::sim
