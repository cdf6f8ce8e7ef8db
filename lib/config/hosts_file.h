#pragma once
// The plugin's host list (split mode key `hosts_file`): a small JSON file
// naming every Multipass host a pool may span, each served by its own
// multipass-hostd.
//
//   {"hosts": [
//     {"name": "mp-a", "hostd_address": "tcp://10.0.0.11:7400",
//      "hostd_server_key_path": "keys/mp-a.pub", "zone": "rack-1", "weight": 2},
//     ...]}
//
// A relative key path is taken from the hosts file's own directory, so the
// file and its keys can move together. Every problem of the file is reported
// at once, each naming the file, the entry (index and name) and the field.
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mps::config {

// The file holds one entry per host: a few hundred bytes each. Bounded like
// every file a user names, so /dev/zero or a log file given by mistake is
// refused instead of read into memory.
inline constexpr std::uintmax_t kMaxHostsFileBytes = 256 * 1024;
inline constexpr int kMaxHostWeight = 1000;

struct HostEntry {
  std::string name;  // what Status, events and `hosts` policies call the host
  std::string hostd_address;
  std::filesystem::path hostd_server_key_path;  // as resolved
  std::string hostd_server_public_key;          // z85, 40 characters
  std::string zone;                             // empty: a zone of its own
  // Its share in spreading a pool: a host of weight 2 takes twice the
  // instances of a host of weight 1 before they count as balanced.
  int weight = 1;
};

// Host and zone names: letters, digits, '.', '_' and '-', starting with a
// letter or digit, at most 63 characters (they appear in metric labels and
// comma-separated policy lists).
bool IsHostName(std::string_view name);

class HostsFileError : public std::runtime_error {
 public:
  explicit HostsFileError(std::vector<std::string> problems);
  // Each names the file, the entry and the field, and what was expected.
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  std::vector<std::string> problems_;
};

// Reads, parses and checks `path` (and every key file it names); throws
// HostsFileError.
std::vector<HostEntry> ReadHostsFile(const std::filesystem::path& path);

// The same for text already read; `path` names the file in messages and
// anchors relative key paths.
std::vector<HostEntry> ParseHostsFile(std::string_view text, const std::filesystem::path& path);

}  // namespace mps::config
