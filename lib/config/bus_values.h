#pragma once
// Values that name a bus peer, shared by the plugin's config keys and the
// hosts file (hosts_file.h): a bus endpoint and a CurveZMQ key file. Both
// give the reason a value is refused without naming the key, so each caller
// can name its own key or field.
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>

namespace mps::config {

// tcp://host:port (port 1..65535) or ipc:///path.
bool IsBusEndpoint(std::string_view value);

// A key file that cannot be used: what is wrong with it, naming the file
// (never its content: it may be a secret key).
class KeyFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The largest key file read: a z85 key is 40 characters, the rest may only be
// trailing whitespace, so anything longer is refused without reading it all.
inline constexpr std::uintmax_t kMaxKeyFileBytes = 4096;

// The 40 z85 characters of a readable regular file holding them (trailing
// whitespace allowed), as `mpscale keygen` writes them. `what` says what the
// file should hold ("hostd's public key"); throws KeyFileError.
std::string ReadZ85KeyFile(const std::filesystem::path& path, std::string_view what);

}  // namespace mps::config
