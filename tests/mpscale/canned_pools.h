#pragma once
// A state.pools reply as multipass-target builds it (lib/contracts/status.h):
// "web" mid scale-up, "batch" not ready after failed launches.
#include <cstdint>

#include <nlohmann/json.hpp>

namespace mps::mpscale::testing {

// 2026-11-23 10:15:45 UTC.
inline constexpr std::int64_t kNowNs = 1'795'428'945'000'000'000;
inline constexpr std::int64_t kSecond = 1'000'000'000;

inline nlohmann::json CannedPools() {
  using nlohmann::json;
  json web = {
      {"pool", "web"},
      {"count", 3},
      {"ready", true},
      {"reasons", json::array()},
      {"last_event_ns", kNowNs - 192 * kSecond},
      {"scale_request", "r-17"},
      {"operations",
       {{{"kind", "launch"},
         {"instance", "web-4"},
         {"started_ns", kNowNs - 30 * kSecond},
         {"request_id", "r-17"}},
        {{"kind", "drain"},
         {"instance", "web-1"},
         {"started_ns", kNowNs - 12 * kSecond},
         {"request_id", "r-16"}},
        {{"kind", "launch"},
         {"instance", "web-5"},
         {"started_ns", kNowNs - 29 * kSecond},
         {"request_id", "r-17"}}}},
      {"instances",
       {{{"name", "web-1"},
         {"state", "running"},
         {"counted", true},
         {"node_id", "5f2c9a1e"},
         {"node_status", "draining"},
         {"launched_ns", kNowNs - 7200 * kSecond}},
        {{"name", "web-2"},
         {"state", "running"},
         {"counted", true},
         {"node_id", "8d41b7c0"},
         {"node_status", "ready"},
         {"launched_ns", kNowNs - 3600 * kSecond}},
        {{"name", "web-4"},
         {"state", "starting"},
         {"counted", true},
         {"node_id", nullptr},
         {"node_status", nullptr},
         {"launched_ns", nullptr}}}},
      {"launch_failures", {{"consecutive", 0}, {"last_error", ""}, {"next_retry_ns", nullptr}}}};
  json batch = {{"pool", "batch"},
                {"count", 0},
                {"ready", false},
                {"reasons", {"image jammy not found", "launch backoff"}},
                {"last_event_ns", nullptr},
                {"scale_request", nullptr},
                {"operations", json::array()},
                {"instances", json::array()},
                {"launch_failures",
                 {{"consecutive", 3},
                  {"last_error", "launch failed: image jammy not found"},
                  {"next_retry_ns", kNowNs + 40 * kSecond}}}};
  return {{"pools", {web, batch}}};
}

}  // namespace mps::mpscale::testing
