#include "cache/pool_metrics.h"

#include <chrono>
#include <map>

namespace mps::cache {

std::string_view ReasonKind(std::string_view reason) {
  auto has = [&](std::string_view s) { return reason.find(s) != std::string_view::npos; };
  if (has("reconciling")) return "reconciling";
  if (has("multipassd unreachable")) return "multipassd_unreachable";
  if (has("Nomad unreachable")) return "nomad_unreachable";
  if (has("scale request")) return "scale_in_progress";
  if (has("has not registered")) return "node_not_registered";
  if (has("is initializing")) return "node_initializing";
  if (has("launch")) return "launch_failing";
  if (has(" is ")) return "instance_not_running";
  return "other";
}

void RecordPoolMetrics(metrics::Registry& m, const scaling::PoolState& state,
                       const scaling::PoolStatus& status) {
  const metrics::Labels pool{{"pool", state.prefix}};
  std::map<std::string, double> by_state;
  for (const auto& i : state.instances) by_state[std::string(scaling::ToString(i.state))]++;
  std::vector<std::pair<metrics::Labels, double>> instances;
  for (const auto& [s, n] : by_state) instances.push_back({{{"state", s}}, n});
  m.ReplaceGauges("mps_pool_instances", "Instances of the pool as the plugin sees them, by state",
                  pool, instances);

  m.Gauge("mps_pool_ready", "1 when the pool's Status answer is ready", pool)
      .Set(status.ready ? 1 : 0);
  m.Gauge("mps_pool_counted_instances", "The count the plugin answers Status with", pool)
      .Set(static_cast<double>(status.count));
  std::map<std::string, double> kinds;
  for (const auto& r : status.reasons) kinds[std::string(ReasonKind(r))] = 1;
  std::vector<std::pair<metrics::Labels, double>> reasons;
  for (const auto& [k, v] : kinds) reasons.push_back({{{"reason", k}}, v});
  m.ReplaceGauges("mps_pool_not_ready", "1 for each reason the pool is not ready", pool, reasons);

  m.Gauge("mps_peer_reachable", "1 while the pool's peer answers its listings",
          {{"pool", state.prefix}, {"peer", "multipass"}})
      .Set(state.multipass.reachable ? 1 : 0);
  m.Gauge("mps_peer_reachable", "1 while the pool's peer answers its listings",
          {{"pool", state.prefix}, {"peer", "nomad"}})
      .Set(state.nomad.reachable ? 1 : 0);

  // Several hosts (issue 13): where the pool's instances are, and which
  // hosts answer. Every host the pool may use has a series, 0 when empty.
  std::map<std::string, double> per_host;
  std::vector<std::pair<metrics::Labels, double>> reachable;
  for (const auto& [host, r] : state.hosts) {
    per_host[host] = 0;
    reachable.push_back({{{"host", host}}, r.reachable ? 1.0 : 0.0});
  }
  for (const auto& i : state.instances)
    if (!i.host.empty()) per_host[i.host]++;
  std::vector<std::pair<metrics::Labels, double>> placed;
  for (const auto& [host, n] : per_host) placed.push_back({{{"host", host}}, n});
  m.ReplaceGauges("mps_pool_host_instances", "Instances of the pool on each Multipass host", pool,
                  placed);
  m.ReplaceGauges("mps_pool_host_reachable", "1 while the host's hostd answers the pool's listings",
                  pool, reachable);

  std::map<std::string, double> ops;
  for (const auto& o : state.operations) ops[std::string(scaling::ToString(o.kind))]++;
  std::vector<std::pair<metrics::Labels, double>> operations;
  for (const auto& [k, n] : ops) operations.push_back({{{"kind", k}}, n});
  m.ReplaceGauges("mps_pool_operations_in_flight", "Operations of the pool in flight, by kind",
                  pool, operations);

  auto now = std::chrono::system_clock::now().time_since_epoch();
  m.Gauge("mps_pool_status_updated_timestamp_seconds",
          "Unix time the state cache last posted the pool's Status answer", pool)
      .Set(std::chrono::duration<double>(now).count());
}

}  // namespace mps::cache
