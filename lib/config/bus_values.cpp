#include "config/bus_values.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include "config/measured_file.h"

namespace mps::config {

bool IsBusEndpoint(std::string_view v) {
  if (v.starts_with("ipc://")) return v.size() > 6;
  if (!v.starts_with("tcp://")) return false;
  std::string_view rest = v.substr(6);
  auto colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view port = rest.substr(colon + 1);
  int n = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
  return ec == std::errc() && ptr == port.data() + port.size() && n >= 1 && n <= 65535;
}

std::string ReadZ85KeyFile(const std::filesystem::path& path, std::string_view what) {
  namespace fs = std::filesystem;
  const std::string expected = "expected the path of " + std::string(what) +
                               " (z85 text file, 40 characters, as written by mpscale keygen)";
  const std::string file = "file \"" + path.string() + "\"";
  std::error_code ec;
  auto status = fs::status(path, ec);
  if (!fs::exists(status)) throw KeyFileError(file + " does not exist; " + expected);
  if (!fs::is_regular_file(status))
    throw KeyFileError("\"" + path.string() + "\" is not a regular file; " + expected);
  if (::access(path.c_str(), R_OK) != 0)
    throw KeyFileError(file + " is not readable by this process; " + expected);
  auto size = fs::file_size(path, ec);
  if (ec || size > kMaxKeyFileBytes)
    throw KeyFileError(file + " is larger than " + std::to_string(kMaxKeyFileBytes) + " bytes; " +
                       expected);
  // Unopenable despite access(): read as empty, refused below as no key.
  std::string text = ReadMeasuredFile(path, size).value_or("");
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  static constexpr std::string_view kZ85 =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
  bool alphabet_ok =
      std::all_of(text.begin(), text.end(), [](char c) { return kZ85.find(c) != kZ85.npos; });
  if (text.size() != 40 || !alphabet_ok) {
    throw KeyFileError(file + " does not hold a z85 key; expected " + std::string(what) +
                       " as 40 z85 characters (as written by mpscale keygen), got " +
                       std::to_string(text.size()) + " characters" +
                       (alphabet_ok ? "" : " including non-z85 ones"));
  }
  return text;
}

}  // namespace mps::config
