#include "mpscale/status_table.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>
#include <vector>

namespace mps::mpscale {
namespace {

namespace status = contracts::status;

std::string Ready(const status::PoolView& pool) {
  if (pool.ready) return "yes";
  std::string reasons;
  for (const auto& r : pool.reasons) reasons += (reasons.empty() ? "" : "; ") + r;
  return reasons.empty() ? "no" : "no: " + reasons;
}

std::string LastEvent(const status::PoolView& pool, std::int64_t now_ns) {
  if (!pool.last_event_ns) return "-";
  auto at = *pool.last_event_ns;
  return FormatUtc(at) + " (" + FormatAge(now_ns - at) + " ago)";
}

std::string OrDash(const std::optional<std::string>& text) {
  return text && !text->empty() ? *text : "-";
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

std::string Instances(const status::PoolView& pool) {
  if (pool.instances.empty()) return "";
  // The host column only when there is a choice of hosts: one host's
  // table reads as it always did.
  bool hosts = pool.hosts.size() > 1;
  std::vector<std::vector<std::string>> rows{{"INSTANCE", "STATE", "NODE", "COUNTED"}};
  if (hosts) rows.front().insert(rows.front().begin() + 1, "HOST");
  for (const auto& i : pool.instances) {
    std::string node = OrDash(i.node_id);
    if (i.node_status && !i.node_status->empty()) node += " (" + *i.node_status + ")";
    rows.push_back({i.name, i.state, node, i.counted ? "yes" : "no"});
    if (hosts) rows.back().insert(rows.back().begin() + 1, i.host.empty() ? "-" : i.host);
  }
  std::string out;
  for (const auto& line : Render(rows, "    ")) out += line;
  return out;
}

// "    hosts: mp-a [z1]: 3 instance(s), 3 counted; mp-b: 2 instance(s), 0
// counted, unreachable: why"
std::string Hosts(const status::PoolView& pool) {
  if (pool.hosts.size() < 2) return "";
  std::string out;
  for (const auto& h : pool.hosts) {
    out += (out.empty() ? "" : "; ") + h.name;
    if (!h.zone.empty()) out += " [" + h.zone + "]";
    out += ": " + std::to_string(h.instances) + " instance(s), " + std::to_string(h.counted) +
           " counted";
    if (!h.reachable) out += ", unreachable" + (h.reason.empty() ? "" : ": " + h.reason);
  }
  return "    hosts: " + out + "\n";
}

std::string LaunchFailures(const status::PoolView& pool, std::int64_t now_ns) {
  const auto& f = pool.launch_failures;
  if (f.consecutive <= 0) return "";
  std::string line = "    launch failures: " + std::to_string(f.consecutive) + " in a row";
  if (!f.last_error.empty()) line += ", last: " + f.last_error;
  if (f.next_retry_ns) {
    auto in = *f.next_retry_ns - now_ns;
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

std::string FormatInFlight(const status::PoolView& pool) {
  // In the contract's kind order, so rows read the same from one call to the next.
  std::map<status::OperationKind, int> counts;
  for (const auto& op : pool.operations) ++counts[op.kind];
  std::string out;
  for (const auto& [kind, name] : EnumNames(status::OperationKind{}))
    if (auto it = counts.find(kind); it != counts.end())
      out += (out.empty() ? "" : ", ") + std::to_string(it->second) + " " + std::string(name);
  if (pool.scale_request && !pool.scale_request->empty())
    out += (out.empty() ? "" : "; ") + std::string("scale ") + *pool.scale_request;
  return out.empty() ? "-" : out;
}

std::string FormatStatusTable(const status::PoolsReply& reply, std::int64_t now_ns) {
  const auto& pools = reply.pools;
  if (pools.empty()) return "no pools\n";
  // Pool rows share one header and column widths; instance blocks follow each row.
  std::vector<std::vector<std::string>> rows{{"POOL", "COUNT", "READY", "LAST EVENT", "IN FLIGHT"}};
  for (const auto& pool : pools)
    rows.push_back({pool.pool, std::to_string(pool.count), Ready(pool), LastEvent(pool, now_ns),
                    FormatInFlight(pool)});
  auto lines = Render(rows, "");
  std::string out = lines[0];
  for (std::size_t i = 1; i < lines.size(); ++i)
    out += lines[i] + Hosts(pools[i - 1]) + Instances(pools[i - 1]) +
           LaunchFailures(pools[i - 1], now_ns);
  return out;
}

}  // namespace mps::mpscale
