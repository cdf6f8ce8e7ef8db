#include "plugin/hclog_format.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <ctime>

#include <spdlog/sinks/stdout_sinks.h>

namespace mps::plugin {
namespace {

// Separates the message from its JSON fields inside one spdlog payload;
// ASCII unit separator never appears in ordinary text.
constexpr char kFieldSeparator = '\x1f';

std::string_view LevelName(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
      return "trace";
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    default:
      return "error";  // err, critical
  }
}

std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Cut at a UTF-8 boundary so the result is still valid text.
std::string Truncate(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return std::string(s);
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return std::string(s.substr(0, cut));
}

}  // namespace

std::string FormatHclogTimestamp(std::chrono::system_clock::time_point t) {
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(micros / 1000000);
  long frac = static_cast<long>(micros % 1000000);
  if (frac < 0) {
    frac += 1000000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  std::array<char, 40> buf{};
  size_t n = std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf.data() + n, buf.size() - n, ".%06ldZ", frac);
  return buf.data();
}

void HclogJsonFormatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
  std::string_view payload(msg.payload.data(), msg.payload.size());
  std::string_view message = payload;
  nlohmann::json fields;
  if (auto sep = payload.find(kFieldSeparator); sep != payload.npos) {
    message = payload.substr(0, sep);
    fields = nlohmann::json::parse(payload.substr(sep + 1), nullptr, false);
  }

  // nlohmann keeps keys sorted, which puts the '@' keys first anyway.
  nlohmann::json line = nlohmann::json::object();
  line["@level"] = LevelName(msg.level);
  line["@message"] = std::string(message);
  line["@timestamp"] = FormatHclogTimestamp(msg.time);
  line["@module"] = msg.logger_name.size() > 0
                        ? std::string(msg.logger_name.data(), msg.logger_name.size())
                        : module_;
  if (fields.is_object()) {
    for (auto& [k, v] : fields.items()) {
      if (!k.empty() && k[0] != '@') line[k] = v;
    }
  }
  std::string text = Dump(line);
  if (text.size() + 1 > kMaxLineBytes) {
    // Keep the line parseable: shorten the message and drop the fields.
    nlohmann::json cut = nlohmann::json::object();
    cut["@level"] = line["@level"];
    cut["@timestamp"] = line["@timestamp"];
    cut["@module"] = line["@module"];
    cut["@message"] = Truncate(message, kMaxLineBytes / 2) + " [truncated]";
    cut["truncated_bytes"] = text.size();
    text = Dump(cut);
    // Escaping can grow text up to 6x; cut harder if still too long.
    if (text.size() + 1 > kMaxLineBytes) {
      cut["@message"] = Truncate(message, kMaxLineBytes / 8) + " [truncated]";
      text = Dump(cut);
    }
  }
  dest.append(text.data(), text.data() + text.size());
  dest.push_back('\n');
}

std::unique_ptr<spdlog::formatter> HclogJsonFormatter::clone() const {
  return std::make_unique<HclogJsonFormatter>(module_);
}

void InstallHclogStderrLogger(const std::string& module) {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  sink->set_formatter(std::make_unique<HclogJsonFormatter>(module));
  auto logger = std::make_shared<spdlog::logger>(module, std::move(sink));
  logger->set_level(spdlog::level::trace);
  logger->flush_on(spdlog::level::trace);  // the host reads lines as they come
  spdlog::set_default_logger(std::move(logger));
}

void LogFields(spdlog::level::level_enum level, std::string_view message,
               const nlohmann::json& fields) {
  auto logger = spdlog::default_logger_raw();
  if (!logger->should_log(level)) return;
  std::string payload(message);
  // A separator inside the message would split it wrongly: drop it.
  std::replace(payload.begin(), payload.end(), kFieldSeparator, ' ');
  payload.push_back(kFieldSeparator);
  payload += Dump(fields);
  logger->log(level, "{}", payload);
}

bool IsSecretKey(std::string_view key) {
  std::string k(key);
  std::transform(k.begin(), k.end(), k.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto has = [&](std::string_view part) { return k.find(part) != std::string::npos; };
  auto ends = [&](std::string_view tail) {
    return k.size() >= tail.size() && k.compare(k.size() - tail.size(), tail.size(), tail) == 0;
  };
  for (std::string_view part :
       {"passphrase", "password", "passwd", "token", "secret", "auth", "credential"}) {
    if (has(part)) return true;
  }
  // client_key_path / nomad_client-key name files, not key material.
  if (has("key")) return !(ends("_path") || ends("-path") || ends("-key") || ends("_file"));
  return false;
}

nlohmann::json RedactSecrets(const std::map<std::string, std::string>& config) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [k, v] : config) out[k] = IsSecretKey(k) ? "<redacted>" : v;
  return out;
}

}  // namespace mps::plugin
