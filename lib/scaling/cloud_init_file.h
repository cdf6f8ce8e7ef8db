#pragma once
// The policy's cloud-init user data file (cloud_init_user_data_path): read
// once per launch, bounded, and checked when the policy is first seen, so a
// missing file, a device (/dev/zero) or a huge file is refused at Status and
// Scale time naming the key, instead of exhausting memory at launch time.
#include <cstdint>
#include <stdexcept>
#include <string>

namespace mps::scaling {

// The most user data a launch carries: it travels in one bus frame (1 MiB)
// with the rest of the launch request.
inline constexpr std::uintmax_t kMaxCloudInitBytes = 512 * 1024;

// A cloud-init file that cannot be used; the message names the key and the file.
class CloudInitError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws CloudInitError unless `path` is a readable regular file of at most
// kMaxCloudInitBytes.
void CheckCloudInitFile(const std::string& path);
// The file's text, read at most kMaxCloudInitBytes; throws CloudInitError.
std::string ReadCloudInitFile(const std::string& path);

}  // namespace mps::scaling
