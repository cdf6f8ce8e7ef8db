#include "cluster_sim/launch_validation.h"

#include "config/multipass_size.h"

#include <cctype>
#include <string>

namespace mps::sim {
namespace {

bool IsAlpha(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) != 0;
}
bool IsDigit(char c) {
  return std::isdigit(static_cast<unsigned char>(c)) != 0;
}

}  // namespace

bool IsValidInstanceName(std::string_view name) {
  if (name.empty() || !IsAlpha(name.front())) return false;
  for (char c : name)
    if (!IsAlpha(c) && !IsDigit(c) && c != '-') return false;
  return name.back() != '-';
}

std::optional<std::uint64_t> ParseSizeBytes(std::string_view text) {
  return config::ParseMultipassSize(text);
}

}  // namespace mps::sim
