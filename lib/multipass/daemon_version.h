#pragma once
// Which multipassd versions this client speaks. Below 1.13 ListReply,
// InfoRequest/InfoReply and DeleteRequest have other wire layouts (they would
// decode as garbage), so such a daemon is refused; versions newer than the
// newest we tested are used with a warning (unknown fields are skipped).
#include <optional>
#include <string>
#include <string_view>

namespace mps::multipass {

struct DaemonVersion {
  int major = 0;
  int minor = 0;
  int patch = 0;
  friend auto operator<=>(const DaemonVersion&, const DaemonVersion&) = default;
};

inline constexpr DaemonVersion kMinimumDaemonVersion{1, 13, 0};
// The newest release line the tests and the simulator were checked against:
// every 1.16.x.
inline constexpr DaemonVersion kNewestTestedDaemonVersion{1, 16, 3};

// "1.16.3", "1.17.0-dev.1234+g5a6b7c8", "1.15" → the numbers; nullopt when
// the text does not start with MAJOR.MINOR.
std::optional<DaemonVersion> ParseDaemonVersion(std::string_view text);
std::string ToString(const DaemonVersion& v);

struct VersionVerdict {
  bool supported = true;
  // Set for a refusal (names the version found and the minimum) or for a
  // version newer than the newest tested (a warning).
  std::string message;
  bool newer_than_tested = false;
};
// The verdict on the version text multipassd answered `version` with. An
// unparsable text is used with a warning (a development build, say).
VersionVerdict JudgeDaemonVersion(std::string_view text, std::string_view address);

}  // namespace mps::multipass
