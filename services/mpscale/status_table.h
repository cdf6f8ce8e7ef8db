#pragma once
// The readable form of a `state.pools` reply (lib/contracts/status.h):
// one row per pool, its instances and launch failures indented beneath.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace mps::mpscale {

// "2026-11-23 10:15:45Z" for a Unix time in nanoseconds.
std::string FormatUtc(std::int64_t unix_ns);
// "45s", "3m12s", "2h05m", "3d04h": how long ago (or, negative, how far ahead).
std::string FormatAge(std::int64_t ns);
// "2 launch, 1 drain; scale req-42", or "-" when nothing is in flight.
std::string FormatInFlight(const nlohmann::json& pool_view);
// The whole table; `now_ns` is the Unix time ages are measured against.
std::string FormatStatusTable(const nlohmann::json& reply, std::int64_t now_ns);

}  // namespace mps::mpscale
