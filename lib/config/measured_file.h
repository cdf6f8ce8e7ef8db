#pragma once
// Reading a file the caller has measured (std::filesystem::file_size) and
// found within its bound: exactly that many bytes at most, so a file that
// grows between the measure and the read (a log, /dev/zero behind a link
// swapped in) still costs no more than the bound.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace mps::config {

// At most `size` bytes of `path`; empty when it cannot be opened.
std::optional<std::string> ReadMeasuredFile(const std::filesystem::path& path, std::uintmax_t size);

}  // namespace mps::config
