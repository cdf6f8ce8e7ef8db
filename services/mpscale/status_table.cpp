#include "mpscale/status_table.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>
#include <vector>

namespace mps::mpscale {
namespace {

using Json = nlohmann::json;

std::string StringOr(const Json& object, const char* key, const std::string& fallback) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_string() || it->get<std::string>().empty()) return fallback;
  return it->get<std::string>();
}

std::string Ready(const Json& pool) {
  if (pool.value("ready", false)) return "yes";
  std::string reasons;
  for (const auto& r : pool.value("reasons", Json::array()))
    if (r.is_string()) reasons += (reasons.empty() ? "" : "; ") + r.get<std::string>();
  return reasons.empty() ? "no" : "no: " + reasons;
}

std::string LastEvent(const Json& pool, std::int64_t now_ns) {
  auto it = pool.find("last_event_ns");
  if (it == pool.end() || !it->is_number_integer()) return "-";
  auto at = it->get<std::int64_t>();
  return FormatUtc(at) + " (" + FormatAge(now_ns - at) + " ago)";
}

// Columns padded to their widest cell; the last column is not padded.
std::vector<std::string> Render(const std::vector<std::vector<std::string>>& rows,
                                const std::string& indent) {
  std::vector<std::size_t> width;
  for (const auto& row : rows)
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], row[i].size());
    }
  std::vector<std::string> out;
  for (const auto& row : rows) {
    std::string line = indent;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out.push_back(line + "\n");
  }
  return out;
}

std::string Instances(const Json& pool) {
  auto instances = pool.value("instances", Json::array());
  if (instances.empty()) return "";
  std::vector<std::vector<std::string>> rows{{"INSTANCE", "STATE", "NODE", "COUNTED"}};
  for (const auto& i : instances) {
    std::string node = StringOr(i, "node_id", "-");
    if (auto status = StringOr(i, "node_status", ""); !status.empty()) node += " (" + status + ")";
    rows.push_back({StringOr(i, "name", "?"), StringOr(i, "state", "?"), node,
                    i.value("counted", false) ? "yes" : "no"});
  }
  std::string out;
  for (const auto& line : Render(rows, "    ")) out += line;
  return out;
}

std::string LaunchFailures(const Json& pool, std::int64_t now_ns) {
  auto it = pool.find("launch_failures");
  if (it == pool.end() || !it->is_object()) return "";
  auto consecutive = it->value("consecutive", 0);
  if (consecutive <= 0) return "";
  std::string line = "    launch failures: " + std::to_string(consecutive) + " in a row";
  if (auto error = StringOr(*it, "last_error", ""); !error.empty()) line += ", last: " + error;
  if (auto retry = it->find("next_retry_ns"); retry != it->end() && retry->is_number_integer()) {
    auto in = retry->get<std::int64_t>() - now_ns;
    line += in > 0 ? ", next retry in " + FormatAge(in) : ", retry due";
  }
  return line + "\n";
}

}  // namespace

std::string FormatUtc(std::int64_t unix_ns) {
  std::time_t seconds = static_cast<std::time_t>(unix_ns / 1'000'000'000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%d %H:%M:%SZ", &tm);
  return buffer;
}

std::string FormatAge(std::int64_t ns) {
  std::int64_t s = ns / 1'000'000'000;
  std::string sign = s < 0 ? "-" : "";
  if (s < 0) s = -s;
  char buffer[32];
  if (s < 60)
    std::snprintf(buffer, sizeof buffer, "%llds", static_cast<long long>(s));
  else if (s < 3600)
    std::snprintf(buffer, sizeof buffer, "%lldm%02llds", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  else if (s < 86400)
    std::snprintf(buffer, sizeof buffer, "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>(s % 3600 / 60));
  else
    std::snprintf(buffer, sizeof buffer, "%lldd%02lldh", static_cast<long long>(s / 86400),
                  static_cast<long long>(s % 86400 / 3600));
  return sign + buffer;
}

std::string FormatInFlight(const Json& pool) {
  // In the protocol's kind order, so rows read the same from one call to the next.
  static const std::vector<std::string> kOrder{"launch", "start", "drain", "delete"};
  std::map<std::string, int> counts;
  for (const auto& op : pool.value("operations", Json::array()))
    ++counts[StringOr(op, "kind", "other")];
  std::string out;
  auto add = [&](const std::string& kind, int n) {
    out += (out.empty() ? "" : ", ") + std::to_string(n) + " " + kind;
  };
  for (const auto& kind : kOrder)
    if (auto it = counts.find(kind); it != counts.end()) add(kind, it->second);
  for (const auto& [kind, n] : counts)
    if (std::find(kOrder.begin(), kOrder.end(), kind) == kOrder.end()) add(kind, n);
  if (auto scale = StringOr(pool, "scale_request", ""); !scale.empty())
    out += (out.empty() ? "" : "; ") + std::string("scale ") + scale;
  return out.empty() ? "-" : out;
}

std::string FormatStatusTable(const Json& reply, std::int64_t now_ns) {
  auto pools = reply.value("pools", Json::array());
  if (pools.empty()) return "no pools\n";
  // Pool rows share one header and column widths; instance blocks follow each row.
  std::vector<std::vector<std::string>> rows{{"POOL", "COUNT", "READY", "LAST EVENT", "IN FLIGHT"}};
  for (const auto& pool : pools)
    rows.push_back({StringOr(pool, "pool", "?"), std::to_string(pool.value("count", 0)),
                    Ready(pool), LastEvent(pool, now_ns), FormatInFlight(pool)});
  auto lines = Render(rows, "");
  std::string out = lines[0];
  for (std::size_t i = 1; i < lines.size(); ++i)
    out += lines[i] + Instances(pools[i - 1]) + LaunchFailures(pools[i - 1], now_ns);
  return out;
}

}  // namespace mps::mpscale
