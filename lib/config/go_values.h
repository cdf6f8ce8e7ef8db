#pragma once
// Values in the syntax the Nomad Autoscaler's Go code accepts, so that a
// policy written for the Go plugin means the same thing here.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace mps::config {

// strconv.ParseBool: 1 t T TRUE true True / 0 f F FALSE false False.
std::optional<bool> ParseGoBool(std::string_view text);

// time.ParseDuration: optional sign, then one or more <number><unit> groups
// (units ns us µs ms s m h; fractions allowed), or a bare "0".
std::optional<std::chrono::nanoseconds> ParseGoDuration(std::string_view text);

// The inverse, in Go's String() form (e.g. "1h30m0s", "1.5s", "0s").
std::string FormatGoDuration(std::chrono::nanoseconds d);

}  // namespace mps::config
