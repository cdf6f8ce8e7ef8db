#include "scaling/cloud_init_file.h"

#include <filesystem>
#include <fstream>

#include "config/measured_file.h"

namespace mps::scaling {

namespace {

std::string Key(const std::string& path) {
  return "cloud_init_user_data_path \"" + path + "\": ";
}

std::uintmax_t CheckedSize(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  auto status = fs::status(path, ec);
  if (ec) throw CloudInitError(Key(path) + "cannot be read: " + ec.message());
  if (!fs::is_regular_file(status)) throw CloudInitError(Key(path) + "is not a regular file");
  auto size = fs::file_size(path, ec);
  if (ec) throw CloudInitError(Key(path) + "cannot be read: " + ec.message());
  if (size > kMaxCloudInitBytes) {
    throw CloudInitError(Key(path) + "is " + std::to_string(size) + " bytes; at most " +
                         std::to_string(kMaxCloudInitBytes) + " are accepted");
  }
  return size;
}

}  // namespace

void CheckCloudInitFile(const std::string& path) {
  CheckedSize(path);
  if (!std::ifstream(path, std::ios::binary)) throw CloudInitError(Key(path) + "cannot be opened");
}

std::string ReadCloudInitFile(const std::string& path) {
  auto text = config::ReadMeasuredFile(path, CheckedSize(path));
  if (!text) throw CloudInitError(Key(path) + "cannot be opened");
  return *text;
}

}  // namespace mps::scaling
