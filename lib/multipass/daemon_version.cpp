#include "multipass/daemon_version.h"

#include <charconv>

namespace mps::multipass {
namespace {

// Reads digits at `pos`; returns false when there are none.
bool ReadNumber(std::string_view text, std::size_t& pos, int& out) {
  const char* begin = text.data() + pos;
  auto [end, ec] = std::from_chars(begin, text.data() + text.size(), out);
  if (ec != std::errc() || end == begin) return false;
  pos += static_cast<std::size_t>(end - begin);
  return true;
}

}  // namespace

std::optional<DaemonVersion> ParseDaemonVersion(std::string_view text) {
  DaemonVersion v;
  std::size_t pos = 0;
  if (!ReadNumber(text, pos, v.major)) return std::nullopt;
  if (pos >= text.size() || text[pos] != '.') return std::nullopt;
  ++pos;
  if (!ReadNumber(text, pos, v.minor)) return std::nullopt;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    if (!ReadNumber(text, pos, v.patch)) v.patch = 0;
  }
  return v;
}

std::string ToString(const DaemonVersion& v) {
  return std::to_string(v.major) + "." + std::to_string(v.minor) + "." + std::to_string(v.patch);
}

VersionVerdict JudgeDaemonVersion(std::string_view text, std::string_view address) {
  VersionVerdict verdict;
  const std::string where = "multipassd at " + std::string(address);
  auto version = ParseDaemonVersion(text);
  if (!version) {
    verdict.newer_than_tested = true;
    verdict.message = where + " reports version '" + std::string(text) +
                      "', which is not MAJOR.MINOR.PATCH; using it as if it were newer than " +
                      ToString(kNewestTestedDaemonVersion) + ", the newest tested";
    return verdict;
  }
  if (*version < kMinimumDaemonVersion) {
    verdict.supported = false;
    verdict.message = where + " is version " + std::string(text) + "; the minimum supported is " +
                      ToString(kMinimumDaemonVersion) +
                      " (older daemons use other message layouts for list, info and delete). "
                      "Upgrade multipass (snap refresh multipass)";
    return verdict;
  }
  if (DaemonVersion{version->major, version->minor, 0} >
      DaemonVersion{kNewestTestedDaemonVersion.major, kNewestTestedDaemonVersion.minor, 0}) {
    verdict.newer_than_tested = true;
    verdict.message = where + " is version " + std::string(text) + ", newer than " +
                      ToString(kNewestTestedDaemonVersion) +
                      ", the newest this build was tested with; continuing";
  }
  return verdict;
}

}  // namespace mps::multipass
