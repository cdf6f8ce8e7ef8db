#include "plugin/hclog_format.h"

#include <regex>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

using mps::plugin::HclogJsonFormatter;
using nlohmann::json;

namespace {

// Captures what the formatter writes, through a real spdlog logger.
struct Capture {
  Capture() {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
    sink->set_formatter(std::make_unique<HclogJsonFormatter>("multipass-target"));
    logger = std::make_shared<spdlog::logger>("", sink);
    logger->set_level(spdlog::level::trace);
    previous = spdlog::default_logger();
    spdlog::set_default_logger(logger);
  }
  ~Capture() { spdlog::set_default_logger(previous); }
  std::vector<json> Lines() {
    std::vector<json> lines;
    std::istringstream in(out.str());
    std::string line;
    while (std::getline(in, line)) lines.push_back(json::parse(line));
    return lines;
  }
  std::ostringstream out;
  std::shared_ptr<spdlog::logger> logger, previous;
};

}  // namespace

TEST(HclogFormat, TimestampHasSixFractionalDigitsAndZ) {
  auto t = std::chrono::system_clock::time_point(std::chrono::microseconds(1700000000000042));
  EXPECT_EQ(mps::plugin::FormatHclogTimestamp(t), "2023-11-14T22:13:20.000042Z");
}

TEST(HclogFormat, LevelsMessageModuleAndFields) {
  Capture c;
  spdlog::trace("t");
  spdlog::debug("d");
  spdlog::info("i {}", 1);
  spdlog::warn("w");
  spdlog::error("e");
  spdlog::critical("c");
  mps::plugin::LogFields(spdlog::level::info, "with fields",
                         {{"node", "n1"}, {"count", 3}, {"@level", "spoof"}});
  auto lines = c.Lines();
  ASSERT_EQ(lines.size(), 7u);
  std::vector<std::string> levels;
  for (auto& l : lines) levels.push_back(l["@level"]);
  EXPECT_THAT(levels,
              testing::ElementsAre("trace", "debug", "info", "warn", "error", "error", "info"));
  EXPECT_EQ(lines[2]["@message"], "i 1");
  EXPECT_EQ(lines[0]["@module"], "multipass-target");
  EXPECT_TRUE(std::regex_match(lines[0]["@timestamp"].get<std::string>(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)")));
  EXPECT_EQ(lines[6]["@message"], "with fields");
  EXPECT_EQ(lines[6]["node"], "n1");
  EXPECT_EQ(lines[6]["count"], 3);
  EXPECT_EQ(lines[6]["@level"], "info");  // fields cannot override '@' keys
}

TEST(HclogFormat, MessageIsAlwaysAStringEvenForOddText) {
  Capture c;
  spdlog::info("42");
  spdlog::info("{}", "{\"a\":1}");
  spdlog::info("bad utf8 \xff\xfe end");
  auto lines = c.Lines();
  ASSERT_EQ(lines.size(), 3u);
  for (auto& l : lines) EXPECT_TRUE(l["@message"].is_string());
}

TEST(HclogFormat, LongLinesStayUnder64KiBAndParse) {
  Capture c;
  spdlog::info("{}", std::string(200000, 'x'));
  spdlog::info("{}", std::string(100000, '\x01'));  // escapes to 6 bytes each
  mps::plugin::LogFields(spdlog::level::info, "big field", {{"blob", std::string(90000, 'y')}});
  std::istringstream in(c.out.str());
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    EXPECT_LT(line.size() + 1, 64u * 1024u);
    auto j = json::parse(line);
    EXPECT_THAT(j["@message"].get<std::string>(), testing::HasSubstr("[truncated]"));
  }
  EXPECT_EQ(n, 3);
}

TEST(HclogFormat, SecretKeysAreRedacted) {
  using mps::plugin::IsSecretKey;
  for (const char* k : {"passphrase", "nomad_token", "nomad_http-auth", "api_key", "secret_id",
                        "bus_secret_key", "password"}) {
    EXPECT_TRUE(IsSecretKey(k)) << k;
  }
  for (const char* k : {"client_key_path", "bus_key_path", "nomad_client-key", "nomad_address",
                        "multipass_address", "node_class"}) {
    EXPECT_FALSE(IsSecretKey(k)) << k;
  }
  auto j = mps::plugin::RedactSecrets({{"passphrase", "pw"}, {"node_class", "web"}});
  EXPECT_EQ(j["passphrase"], "<redacted>");
  EXPECT_EQ(j["node_class"], "web");
}
