#include "config/glob_match.h"

namespace mps::config {

bool GlobMatch(std::string_view pattern, std::string_view name) {
  if (pattern.empty()) return name.empty();
  if (pattern.front() == '*') {
    for (std::size_t i = 0; i <= name.size(); ++i)
      if (GlobMatch(pattern.substr(1), name.substr(i))) return true;
    return false;
  }
  return !name.empty() && pattern.front() == name.front() &&
         GlobMatch(pattern.substr(1), name.substr(1));
}

}  // namespace mps::config
