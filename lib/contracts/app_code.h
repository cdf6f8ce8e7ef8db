#pragma once
// The domain error codes that travel in a bus error's `app_code` (with
// bus::ErrorCode::kHandlerFailed), in one table. The Multipass session sends
// its MultipassError kinds, the Nomad actor its NomadError kinds and the few
// codes of its own below; callers decide on the enum, never on a literal.
#include <set>
#include <string>
#include <string_view>

#include "bus/error.h"

namespace mps::contracts {

enum class AppCode {
  kNone,  // no app code (a bus-level error), or one this build does not know
  // Both peers
  kUnreachable,  // the peer behind the actor (multipassd, Nomad) cannot be reached
  kTimeout,      // the peer did not answer in time
  kNotFound,
  kInvalidArgument,
  kInvalidConfig,  // a bad config or policy key (the message starts with the key)
  kInternal,
  // Multipass session
  kUnauthenticated,
  kWrongPassphrase,
  kPassphraseNotSet,
  kImageNotFound,
  kInvalidName,
  kNameTaken,
  kOutOfResources,
  kLaunchTimeout,
  kAborted,
  kCancelled,
  kNotAllowed,          // a name outside hostd's --allow-prefix
  kStartFailed,         // launch: the VM was made but failed to start; multipassd removed it
  kStartTimeout,        // start: not up within the timeout; the instance stays
  kUnsupportedVersion,  // multipassd is older than the oldest version we speak
  // Nomad actor
  kForbidden,
  kNodeGone,
  kBadRequest,
  kServerError,
  kBadResponse,
  kFilter,  // the scale-in node filter refused the pool
};

std::string_view AppCodeName(AppCode code);      // "" for kNone
AppCode AppCodeFromName(std::string_view name);  // kNone for unknown names
// The codes of failures that did nothing and may go otherwise if asked again
// (the peer was unreachable, timed out, the call was cancelled): a server
// does not keep them for repeats of an idempotency key
// (bus::ServerOptions::retry_app_codes).
std::set<std::string> RetryableAppCodeNames();
inline AppCode AppCodeOf(const bus::BusError& error) {
  return AppCodeFromName(error.app_code());
}

// A domain failure as a bus error.
bus::BusError AppError(AppCode code, std::string message);

}  // namespace mps::contracts
