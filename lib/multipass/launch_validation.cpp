#include "multipass/launch_validation.h"

#include "config/multipass_size.h"

#include <regex>
#include <string>

#include "multipass/multipass_error.h"

namespace mps::multipass {
namespace {

[[noreturn]] void RejectSize(std::string_view field, std::string_view text, std::string_view why) {
  throw MultipassError(MultipassError::Kind::invalid_argument,
                       std::string(field) + " '" + std::string(text) + "': " + std::string(why));
}

std::uint64_t AtLeast(std::uint64_t bytes, std::uint64_t minimum, std::string_view min_text,
                      std::string_view field, std::string_view text) {
  if (bytes < minimum) RejectSize(field, text, "must be at least " + std::string(min_text));
  return bytes;
}

}  // namespace

std::uint64_t ParseSize(std::string_view text, std::string_view field) {
  auto bytes = config::ParseMultipassSize(text);
  if (!bytes) {
    RejectSize(field, text,
               "expected a size such as 512M, 1.5G, 2GiB or a byte count (binary units K, M, G; "
               "a fraction only with a unit; at most 2^64-1 bytes)");
  }
  return *bytes;
}

std::uint64_t ValidateMemorySize(std::string_view text, std::string_view field) {
  return AtLeast(ParseSize(text, field), kMinMemoryBytes, "512M", field, text);
}

std::uint64_t ValidateDiskSize(std::string_view text, std::string_view field) {
  return AtLeast(ParseSize(text, field), kMinDiskBytes, "1G", field, text);
}

void ValidateInstanceName(std::string_view name) {
  static const std::regex kName("^([a-zA-Z]|[a-zA-Z][a-zA-Z0-9-]*[a-zA-Z0-9])$");
  const std::string s(name);
  if (s.empty()) {
    throw MultipassError(MultipassError::Kind::invalid_name, "instance name is empty");
  }
  if (s.size() > 63) {
    throw MultipassError(MultipassError::Kind::invalid_name,
                         "instance name '" + s + "': longer than 63 characters", s);
  }
  if (!std::regex_match(s, kName)) {
    throw MultipassError(MultipassError::Kind::invalid_name,
                         "instance name '" + s +
                             "': expected a letter, then letters, digits or '-', not ending in '-'",
                         s);
  }
}

}  // namespace mps::multipass
