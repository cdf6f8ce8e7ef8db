#include "mpscale/event_format.h"

#include <cstdio>
#include <ctime>

namespace mps::mpscale {
namespace {

std::string PoolOf(const bus::Envelope& event) {
  auto it = event.payload.find("pool");
  return it != event.payload.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string TimeOfDay(std::int64_t unix_ms) {
  std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(unix_ms % 1000));
  return buffer;
}

std::string Value(const nlohmann::json& v) {
  if (!v.is_string()) return v.dump();
  const auto& s = v.get_ref<const std::string&>();
  bool plain = !s.empty() && s.find_first_of(" \t\n\"=") == std::string::npos;
  return plain ? s : nlohmann::json(s).dump();
}

}  // namespace

bool MatchesPool(const bus::Envelope& event, const std::optional<std::string>& pool) {
  return !pool || PoolOf(event) == *pool;
}

std::string FormatEventLine(const bus::Envelope& event) {
  std::string pool = PoolOf(event);
  std::string line = "#" + std::to_string(event.seq) + "  " + TimeOfDay(event.time_ms) + "  " +
                     (pool.empty() ? "-" : pool) + "  " + event.type;
  std::string fields;
  if (event.payload.is_object())
    for (const auto& [key, value] : event.payload.items())
      if (key != "pool") fields += (fields.empty() ? "" : " ") + key + "=" + Value(value);
  return fields.empty() ? line : line + "  " + fields;
}

nlohmann::json EventJson(const bus::Envelope& event) {
  std::string pool = PoolOf(event);
  return {{"seq", event.seq},
          {"ts_ns", event.time_ms * 1'000'000},
          {"type", event.type},
          {"pool", pool.empty() ? nlohmann::json(nullptr) : nlohmann::json(pool)},
          {"fields", event.payload}};
}

}  // namespace mps::mpscale
