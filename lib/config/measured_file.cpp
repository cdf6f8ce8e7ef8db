#include "config/measured_file.h"

#include <fstream>

namespace mps::config {

std::optional<std::string> ReadMeasuredFile(const std::filesystem::path& path,
                                            std::uintmax_t size) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string text(static_cast<std::size_t>(size), '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  text.resize(static_cast<std::size_t>(in.gcount()));
  return text;
}

}  // namespace mps::config
