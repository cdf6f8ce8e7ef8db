#pragma once
// How `mpscale events` prints one status-endpoint event
// (lib/contracts/status.h): a readable line or one JSON object per line.
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "bus/envelope.h"

namespace mps::mpscale {

// Events of every pool pass when `pool` is unset; otherwise only those whose
// `pool` field equals it.
bool MatchesPool(const bus::Envelope& event, const std::optional<std::string>& pool);

// "#12  10:15:45.123  web  scale.requested  request_id=r-1 target=3 reason="queue depth"":
// time of day in UTC; fields other than pool in name order; strings with
// spaces or quotes are quoted, other values printed as compact JSON.
std::string FormatEventLine(const bus::Envelope& event);

// {"seq", "ts_ns", "type", "pool", "fields": {the event's payload}}.
nlohmann::json EventJson(const bus::Envelope& event);

}  // namespace mps::mpscale
