#include "config/go_values.h"

#include <cstdint>
#include <limits>

namespace mps::config {

std::optional<bool> ParseGoBool(std::string_view t) {
  if (t == "1" || t == "t" || t == "T" || t == "TRUE" || t == "true" || t == "True") return true;
  if (t == "0" || t == "f" || t == "F" || t == "FALSE" || t == "false" || t == "False")
    return false;
  return std::nullopt;
}

namespace {

// Nanoseconds per unit; the longest unit name that matches wins ("ms" vs "m").
std::optional<std::pair<std::int64_t, std::size_t>> MatchUnit(std::string_view rest) {
  struct Unit {
    std::string_view name;
    std::int64_t ns;
  };
  static constexpr Unit kUnits[] = {
      {"ns", 1},           {"us", 1000},      {"\xC2\xB5s", 1000},  // µs (U+00B5)
      {"\xCE\xBCs", 1000},                                          // μs (U+03BC)
      {"ms", 1000000},     {"s", 1000000000}, {"m", 60LL * 1000000000}, {"h", 3600LL * 1000000000},
  };
  const Unit* best = nullptr;
  for (const auto& u : kUnits) {
    if (rest.substr(0, u.name.size()) == u.name && (!best || u.name.size() > best->name.size()))
      best = &u;
  }
  if (!best) return std::nullopt;
  return std::make_pair(best->ns, best->name.size());
}

}  // namespace

std::optional<std::chrono::nanoseconds> ParseGoDuration(std::string_view s) {
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return std::chrono::nanoseconds{0};
  if (s.empty()) return std::nullopt;

  // Accumulate in long double so fractions like 1.5h stay exact enough, then
  // check the range the way Go does (int64 nanoseconds).
  long double total = 0;
  while (!s.empty()) {
    std::size_t i = 0;
    long double whole = 0;
    bool digits = false;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      whole = whole * 10 + (s[i] - '0');
      ++i;
      digits = true;
    }
    long double frac = 0, scale = 1;
    if (i < s.size() && s[i] == '.') {
      ++i;
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
        frac = frac * 10 + (s[i] - '0');
        scale *= 10;
        ++i;
        digits = true;
      }
    }
    if (!digits) return std::nullopt;
    auto unit = MatchUnit(s.substr(i));
    if (!unit) return std::nullopt;  // Go requires a unit on every group
    total += (whole + frac / scale) * static_cast<long double>(unit->first);
    if (total > static_cast<long double>(std::numeric_limits<std::int64_t>::max()))
      return std::nullopt;
    s.remove_prefix(i + unit->second);
  }
  auto ns = static_cast<std::int64_t>(total);
  return std::chrono::nanoseconds{negative ? -ns : ns};
}

std::string FormatGoDuration(std::chrono::nanoseconds d) {
  std::int64_t ns = d.count();
  if (ns == 0) return "0s";
  std::string sign = ns < 0 ? "-" : "";
  std::uint64_t u =
      ns < 0 ? static_cast<std::uint64_t>(-(ns + 1)) + 1 : static_cast<std::uint64_t>(ns);
  auto with_fraction = [](std::uint64_t v, std::uint64_t per, const char* unit) {
    std::string out = std::to_string(v / per);
    std::uint64_t rem = v % per;
    if (rem) {
      std::string f = std::to_string(rem + per).substr(1);  // zero padded
      while (!f.empty() && f.back() == '0') f.pop_back();
      out += "." + f;
    }
    return out + unit;
  };
  if (u < 1000) return sign + std::to_string(u) + "ns";
  if (u < 1000000) return sign + with_fraction(u, 1000, "\xC2\xB5s");
  if (u < 1000000000) return sign + with_fraction(u, 1000000, "ms");
  std::uint64_t total_s = u / 1000000000, sub = u % 1000000000;
  std::uint64_t h = total_s / 3600, m = (total_s % 3600) / 60;
  std::string out = sign;
  if (h) out += std::to_string(h) + "h";
  if (h || m) out += std::to_string(m) + "m";
  return out + with_fraction((total_s % 60) * 1000000000 + sub, 1000000000, "s");
}

}  // namespace mps::config
