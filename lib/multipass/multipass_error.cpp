#include "multipass/multipass_error.h"

#include <utility>

namespace mps::multipass {

MultipassError::MultipassError(Kind k, std::string msg, std::string inst,
                               std::optional<std::string> leftover)
    : kind(k),
      message(std::move(msg)),
      instance(std::move(inst)),
      leftover_instance(std::move(leftover)) {}

std::string_view KindName(MultipassError::Kind kind) {
  using K = MultipassError::Kind;
  switch (kind) {
    case K::unreachable:
      return "unreachable";
    case K::unauthenticated:
      return "unauthenticated";
    case K::wrong_passphrase:
      return "wrong_passphrase";
    case K::passphrase_not_set:
      return "passphrase_not_set";
    case K::image_not_found:
      return "image_not_found";
    case K::invalid_name:
      return "invalid_name";
    case K::name_taken:
      return "name_taken";
    case K::invalid_argument:
      return "invalid_argument";
    case K::out_of_resources:
      return "out_of_resources";
    case K::launch_timeout:
      return "launch_timeout";
    case K::start_failed:
      return "start_failed";
    case K::start_timeout:
      return "start_timeout";
    case K::unsupported_version:
      return "unsupported_version";
    case K::not_found:
      return "not_found";
    case K::aborted:
      return "aborted";
    case K::timeout:
      return "timeout";
    case K::cancelled:
      return "cancelled";
    case K::invalid_config:
      return "invalid_config";
    case K::internal:
      return "internal";
  }
  return "internal";
}

}  // namespace mps::multipass
