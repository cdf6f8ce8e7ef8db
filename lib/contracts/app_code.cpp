#include "contracts/app_code.h"

#include <array>
#include <utility>

namespace mps::contracts {
namespace {

constexpr std::array<std::pair<AppCode, std::string_view>, 27> kNames{{
    {AppCode::kUnreachable, "unreachable"},
    {AppCode::kTimeout, "timeout"},
    {AppCode::kNotFound, "not_found"},
    {AppCode::kInvalidArgument, "invalid_argument"},
    {AppCode::kInvalidConfig, "invalid_config"},
    {AppCode::kInternal, "internal"},
    {AppCode::kUnauthenticated, "unauthenticated"},
    {AppCode::kWrongPassphrase, "wrong_passphrase"},
    {AppCode::kPassphraseNotSet, "passphrase_not_set"},
    {AppCode::kImageNotFound, "image_not_found"},
    {AppCode::kInvalidName, "invalid_name"},
    {AppCode::kNameTaken, "name_taken"},
    {AppCode::kOutOfResources, "out_of_resources"},
    {AppCode::kLaunchTimeout, "launch_timeout"},
    {AppCode::kAborted, "aborted"},
    {AppCode::kCancelled, "cancelled"},
    {AppCode::kNotAllowed, "not_allowed"},
    {AppCode::kStartFailed, "start_failed"},
    {AppCode::kStartTimeout, "start_timeout"},
    {AppCode::kUnsupportedVersion, "unsupported_version"},
    {AppCode::kForbidden, "forbidden"},
    {AppCode::kNodeGone, "node_gone"},
    {AppCode::kBadRequest, "bad_request"},
    {AppCode::kServerError, "server_error"},
    {AppCode::kBadResponse, "bad_response"},
    {AppCode::kFilter, "filter"},
    {AppCode::kNone, ""},
}};

}  // namespace

std::string_view AppCodeName(AppCode code) {
  for (const auto& [c, name] : kNames)
    if (c == code) return name;
  return "";
}

AppCode AppCodeFromName(std::string_view name) {
  if (name.empty()) return AppCode::kNone;
  for (const auto& [c, n] : kNames)
    if (n == name) return c;
  return AppCode::kNone;
}

bus::BusError AppError(AppCode code, std::string message) {
  return bus::BusError(bus::ErrorCode::kHandlerFailed, std::move(message),
                       std::string(AppCodeName(code)));
}

std::set<std::string> RetryableAppCodeNames() {
  std::set<std::string> names;
  for (auto code : {AppCode::kUnreachable, AppCode::kTimeout, AppCode::kCancelled})
    names.insert(std::string(AppCodeName(code)));
  return names;
}

}  // namespace mps::contracts
