#include "multipass/host_capacity.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "config/measured_file.h"
#include "config/multipass_size.h"

namespace mps::multipass {

InstanceSize SizeOfLaunch(const LaunchSpec& spec) {
  InstanceSize size = kMultipassDefaultSize;
  if (spec.cpus > 0) size.cpus = spec.cpus;
  auto bytes = [](const std::string& text, std::int64_t fallback) {
    if (text.empty()) return fallback;
    auto parsed = config::ParseMultipassSize(text);
    return parsed ? static_cast<std::int64_t>(*parsed) : fallback;
  };
  size.memory_bytes = bytes(spec.memory, size.memory_bytes);
  size.disk_bytes = bytes(spec.disk, size.disk_bytes);
  return size;
}

std::optional<std::int64_t> MemTotalFromMeminfo(std::string_view meminfo) {
  // "MemTotal:       16318412 kB"
  constexpr std::string_view kKey = "MemTotal:";
  auto at = meminfo.find(kKey);
  if (at == std::string_view::npos || (at != 0 && meminfo[at - 1] != '\n')) return std::nullopt;
  auto rest = meminfo.substr(at + kKey.size());
  auto digits = rest.find_first_not_of(' ');
  if (digits == std::string_view::npos) return std::nullopt;
  rest = rest.substr(digits);
  std::int64_t kib = 0;
  auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), kib);
  if (ec != std::errc() || kib <= 0) return std::nullopt;
  if (std::string_view(end, rest.data() + rest.size() - end).substr(0, 3) != " kB")
    return std::nullopt;
  return kib * 1024;
}

contracts::host::Totals ReadHostTotals(const std::string& disk_path,
                                       const std::string& meminfo_path) {
  contracts::host::Totals totals;
  totals.source = "host";
  totals.disk_path = disk_path;
  totals.cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  std::ifstream in(meminfo_path);
  std::stringstream text;
  text << in.rdbuf();
  if (auto memory = MemTotalFromMeminfo(text.str())) {
    totals.memory_bytes = *memory;
  } else {
    totals.error = "no MemTotal in " + meminfo_path;
  }
  struct statvfs fs {};
  if (::statvfs(disk_path.c_str(), &fs) == 0) {
    totals.disk_bytes =
        static_cast<std::int64_t>(fs.f_blocks) * static_cast<std::int64_t>(fs.f_frsize);
  } else {
    totals.error += (totals.error.empty() ? "" : "; ") +
                    std::string("cannot statvfs multipassd's storage directory ") + disk_path +
                    " (--host-disk-path): " + std::strerror(errno);
  }
  return totals;
}

contracts::host::Allocation AllocationOf(const std::vector<InstanceInfo>& listed,
                                         const std::map<std::string, InstanceSize>& known) {
  contracts::host::Allocation a;
  for (const auto& i : listed) {
    if (i.state == InstanceState::deleted) continue;
    InstanceSize size = kMultipassDefaultSize;
    if (auto it = known.find(i.name); it != known.end()) {
      size = it->second;
    } else {
      ++a.estimated;
    }
    ++a.instances;
    a.cpus += size.cpus;
    a.memory_bytes += size.memory_bytes;
    a.disk_bytes += size.disk_bytes;
  }
  return a;
}

bool CountsAgainstHost(MultipassError::Kind kind) {
  using K = MultipassError::Kind;
  switch (kind) {
    case K::out_of_resources:
    case K::launch_timeout:
    case K::start_failed:
    case K::start_timeout:
    case K::aborted:
    case K::timeout:
    case K::unreachable:
    case K::internal:
      return true;
    default:
      return false;
  }
}

namespace {

constexpr int kLedgerFileVersion = 1;

std::map<std::string, InstanceSize> ParseLedger(const std::string& text) {
  auto doc = nlohmann::json::parse(text);
  if (!doc.is_object() || doc.value("version", 0) != kLedgerFileVersion || !doc.contains("sizes") ||
      !doc["sizes"].is_object())
    throw std::runtime_error("expected {\"version\": 1, \"sizes\": {...}}");
  std::map<std::string, InstanceSize> sizes;
  for (const auto& [name, v] : doc["sizes"].items()) {
    if (sizes.size() >= LaunchLedger::kMaxEntries) break;
    InstanceSize size{v.at("cpus").get<std::int64_t>(), v.at("memory_bytes").get<std::int64_t>(),
                      v.at("disk_bytes").get<std::int64_t>()};
    if (size.cpus <= 0 || size.memory_bytes <= 0 || size.disk_bytes <= 0)
      throw std::runtime_error("instance \"" + name + "\": sizes must be positive");
    sizes[name] = size;
  }
  return sizes;
}

}  // namespace

LaunchLedger::LaunchLedger(std::filesystem::path file) : file_(std::move(file)) {
  std::error_code ec;
  if (!std::filesystem::exists(file_, ec)) return;
  auto size = std::filesystem::file_size(file_, ec);
  if (ec || size > kMaxFileBytes) {
    load_error_ = file_.string() + ": " +
                  (ec ? ec.message() : "larger than " + std::to_string(kMaxFileBytes) + " bytes");
    return;
  }
  // Unopenable: read as empty, which the parser reports.
  std::string text = config::ReadMeasuredFile(file_, size).value_or("");
  try {
    sizes_ = ParseLedger(text);
  } catch (const std::exception& e) {
    load_error_ = file_.string() + ": " + e.what();
  }
}

std::string LaunchLedger::save_error() const {
  std::lock_guard lock(mutex_);
  return save_error_;
}

void LaunchLedger::SaveLocked() {
  if (file_.empty()) return;
  nlohmann::json sizes = nlohmann::json::object();
  for (const auto& [name, size] : sizes_)
    sizes[name] = {
        {"cpus", size.cpus}, {"memory_bytes", size.memory_bytes}, {"disk_bytes", size.disk_bytes}};
  std::string text = nlohmann::json{{"version", kLedgerFileVersion}, {"sizes", sizes}}.dump();
  auto tmp = file_;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  bool ok = fd >= 0;
  for (std::size_t done = 0; ok && done < text.size();) {
    auto n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<std::size_t>(n);
  }
  int saved_errno = errno;
  ok = ok && ::fsync(fd) == 0;
  if (!ok) saved_errno = errno;
  if (fd >= 0) ::close(fd);
  if (ok && std::rename(tmp.c_str(), file_.c_str()) != 0) {
    ok = false;
    saved_errno = errno;
  }
  if (ok) {
    save_error_.clear();
  } else {
    save_error_ = "cannot write " + file_.string() + ": " + std::strerror(saved_errno);
    ::unlink(tmp.c_str());
  }
}

void LaunchLedger::Launched(const std::string& name, const InstanceSize& size) {
  std::lock_guard lock(mutex_);
  if (sizes_.size() >= kMaxEntries && !sizes_.contains(name)) return;
  sizes_[name] = size;
  SaveLocked();
}

void LaunchLedger::Succeeded() {
  std::lock_guard lock(mutex_);
  consecutive_failures_ = 0;
  last_failure_.clear();
}

void LaunchLedger::Failed(const MultipassError& error) {
  if (!CountsAgainstHost(error.kind)) return;
  std::lock_guard lock(mutex_);
  ++consecutive_failures_;
  last_failure_ = error.message;
}

void LaunchLedger::Deleted(const std::vector<std::string>& names) {
  std::lock_guard lock(mutex_);
  std::size_t erased = 0;
  for (const auto& n : names) erased += sizes_.erase(n);
  if (erased > 0) SaveLocked();
}

std::map<std::string, InstanceSize> LaunchLedger::Sizes() const {
  std::lock_guard lock(mutex_);
  return sizes_;
}

std::int64_t LaunchLedger::consecutive_failures() const {
  std::lock_guard lock(mutex_);
  return consecutive_failures_;
}

std::string LaunchLedger::last_failure() const {
  std::lock_guard lock(mutex_);
  return last_failure_;
}

}  // namespace mps::multipass
