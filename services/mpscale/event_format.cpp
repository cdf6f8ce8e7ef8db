#include "mpscale/event_format.h"

#include <cstdio>
#include <ctime>
#include <tuple>
#include <type_traits>

#include "contracts/codec.h"
#include "contracts/status.h"

namespace mps::mpscale {
namespace {

// An event as its contract reads it.
struct Checked {
  bool known = false;  // a type of contracts::status::Events
  std::string pool;
  std::optional<std::string> problem;
};

template <class Event>
void CheckAs(const bus::Envelope& event, Checked& out) {
  if (out.known || event.type != Event::kType) return;
  out.known = true;
  try {
    out.pool = contracts::Decode<Event>(event.payload, Event::kType).pool;
  } catch (const contracts::ContractError& e) {
    out.problem = e.what();
  }
}

Checked Check(const bus::Envelope& event) {
  Checked out;
  std::apply(
      [&](const auto&... types) { (CheckAs<std::decay_t<decltype(types)>>(event, out), ...); },
      contracts::status::Events{});
  if (!out.known || out.problem) {
    // Not readable by the contract: its pool field, if it has a usable one.
    auto it = event.payload.find("pool");
    if (it != event.payload.end() && it->is_string()) out.pool = it->get<std::string>();
  }
  return out;
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

std::optional<std::string> ContractProblem(const bus::Envelope& event) {
  return Check(event).problem;
}

bool MatchesPool(const bus::Envelope& event, const std::optional<std::string>& pool) {
  return !pool || Check(event).pool == *pool;
}

std::string FormatEventLine(const bus::Envelope& event) {
  auto checked = Check(event);
  const auto& pool = checked.pool;
  std::string line = "#" + std::to_string(event.seq) + "  " + TimeOfDay(event.time_ms) + "  " +
                     (pool.empty() ? "-" : pool) + "  " + event.type;
  std::string fields;
  if (event.payload.is_object())
    for (const auto& [key, value] : event.payload.items())
      if (key != "pool") fields += (fields.empty() ? "" : " ") + key + "=" + Value(value);
  if (!fields.empty()) line += "  " + fields;
  if (checked.problem) line += "  [not as documented: " + *checked.problem + "]";
  return line;
}

nlohmann::json EventJson(const bus::Envelope& event) {
  auto checked = Check(event);
  const auto& pool = checked.pool;
  nlohmann::json out = {{"seq", event.seq},
                        {"ts_ns", event.time_ms * 1'000'000},
                        {"type", event.type},
                        {"pool", pool.empty() ? nlohmann::json(nullptr) : nlohmann::json(pool)},
                        {"fields", event.payload}};
  if (checked.problem) out["contract_problem"] = *checked.problem;
  return out;
}

}  // namespace mps::mpscale
