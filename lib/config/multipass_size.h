#pragma once
// Sizes in multipass syntax (multipassd's memory_size.cpp), shared by the
// client's launch checks, the policy parser and the simulated daemon so that
// all three accept exactly the same text.
#include <cstdint>
#include <optional>
#include <string_view>

namespace mps::config {

// An integer, an optional fraction (only together with a unit), an optional
// unit K, M or G (any case) optionally followed by B or iB, or a bare B.
// Units are binary (1K = 1024); the fraction of a unit is truncated to whole
// bytes. Surrounding whitespace is allowed. nullopt for anything else,
// including values beyond 2^64 - 1 bytes.
std::optional<std::uint64_t> ParseMultipassSize(std::string_view text);

}  // namespace mps::config
