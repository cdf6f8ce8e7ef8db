#include "cluster_sim/nomad/cloud_init.h"

#include <regex>
#include <sstream>

namespace mps::sim {

std::optional<std::string> NodeClassFromCloudInit(const std::string& user_data) {
  static const std::regex kHcl(R"re(^\s*node_class\s*=\s*(?:"([^"]*)"|'([^']*)')\s*(?:#.*)?$)re");
  static const std::regex kJson(R"re(^\s*"node_class"\s*:\s*"([^"]*)"\s*,?\s*$)re");
  std::istringstream in(user_data);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::smatch m;
    if (std::regex_match(line, m, kHcl)) return m[1].matched ? m[1].str() : m[2].str();
    if (std::regex_match(line, m, kJson)) return m[1].str();
  }
  return std::nullopt;
}

}  // namespace mps::sim
