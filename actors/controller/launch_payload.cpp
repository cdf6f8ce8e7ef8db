#include "controller/launch_payload.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace mps::controller {

namespace {

std::string ReadCloudInit(const std::string& path) {
  namespace fs = std::filesystem;
  const std::string key = "cloud_init_user_data_path \"" + path + "\": ";
  std::error_code ec;
  auto status = fs::status(path, ec);
  if (ec) throw LaunchPayloadError(key + "cannot be read: " + ec.message());
  if (!fs::is_regular_file(status)) throw LaunchPayloadError(key + "is not a regular file");
  auto size = fs::file_size(path, ec);
  if (ec) throw LaunchPayloadError(key + "cannot be read: " + ec.message());
  if (size > kMaxCloudInitBytes) {
    throw LaunchPayloadError(key + "is " + std::to_string(size) + " bytes; at most " +
                             std::to_string(kMaxCloudInitBytes) + " are accepted");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw LaunchPayloadError(key + "cannot be opened");
  std::string text;
  text.resize(static_cast<std::size_t>(size));
  in.read(text.data(), static_cast<std::streamsize>(size));
  // Read no more than was measured, even if the file grew meanwhile.
  text.resize(static_cast<std::size_t>(in.gcount()));
  return text;
}

}  // namespace

contracts::multipass::LaunchRequest LaunchRequestFor(const scaling::LaunchAction& launch,
                                                     std::chrono::nanoseconds startup_timeout) {
  contracts::multipass::LaunchRequest request;
  request.name = launch.name;
  request.image = launch.image;
  request.cpus = launch.cpus;
  request.memory = launch.memory;
  request.disk = launch.disk;
  if (!launch.cloud_init_path.empty()) request.cloud_init = ReadCloudInit(launch.cloud_init_path);
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(startup_timeout).count();
  request.timeout_s = static_cast<int>(std::clamp<std::int64_t>(seconds, 1, 1'000'000));
  return request;
}

}  // namespace mps::controller
