#pragma once
// spdlog output in the form go-plugin hosts parse from a plugin's stderr
// (hclog JSON): one object per line with "@level", "@message" (always a
// string), "@timestamp" (YYYY-MM-DDTHH:MM:SS.ffffffZ: the host rejects any
// other form), "@module", then key/value fields. Lines stay under the host's
// 64 KiB line buffer.
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <spdlog/formatter.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

namespace mps::plugin {

class HclogJsonFormatter final : public spdlog::formatter {
 public:
  // Longest line written, newline included; the host's buffer is 64 KiB.
  static constexpr size_t kMaxLineBytes = 60 * 1024;

  explicit HclogJsonFormatter(std::string default_module) : module_(std::move(default_module)) {}
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
  std::unique_ptr<spdlog::formatter> clone() const override;

 private:
  std::string module_;
};

// Installs a stderr logger using HclogJsonFormatter as spdlog's default
// logger, at trace level (the host filters by its own level).
void InstallHclogStderrLogger(const std::string& module);

// Logs a message with structured fields (an object; flattened into the line).
// Pass config values through RedactSecrets first.
void LogFields(spdlog::level::level_enum level, std::string_view message,
               const nlohmann::json& fields);

// True for keys whose values are secrets (passphrase, tokens, keys, auth).
// Paths to key or cert files are not secrets.
bool IsSecretKey(std::string_view key);

// The map with every secret value replaced by "<redacted>".
nlohmann::json RedactSecrets(const std::map<std::string, std::string>& config);

// "YYYY-MM-DDTHH:MM:SS.ffffffZ" in UTC.
std::string FormatHclogTimestamp(std::chrono::system_clock::time_point t);

}  // namespace mps::plugin
