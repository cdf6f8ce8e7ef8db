#pragma once
// How `mpscale events` prints one status-endpoint event (contracts/status.h):
// a readable line or one JSON object per line. Each event of a type the
// contract knows is decoded by it; one that does not match (a plugin of
// another version) is still printed, with what is wrong.
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "bus/envelope.h"

namespace mps::mpscale {

// The contract's complaint about a status event, or nullopt when it matches
// its contract or is of a type the contract does not know.
std::optional<std::string> ContractProblem(const bus::Envelope& event);

// Events of every pool pass when `pool` is unset; otherwise only those whose
// `pool` field equals it.
bool MatchesPool(const bus::Envelope& event, const std::optional<std::string>& pool);

// "#12  10:15:45.123  web  scale.requested  request_id=r-1 target=3 reason="queue depth"":
// time of day in UTC; fields other than pool in name order; strings with
// spaces or quotes are quoted, other values printed as compact JSON; then
// "  [not as documented: ...]" for an event that breaks its contract.
std::string FormatEventLine(const bus::Envelope& event);

// {"seq", "ts_ns", "type", "pool", "fields": {the event's payload}}, plus
// "contract_problem" for an event that breaks its contract.
nlohmann::json EventJson(const bus::Envelope& event);

}  // namespace mps::mpscale
