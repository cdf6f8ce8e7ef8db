// Refused Curve keys are logged boundedly (issue 16, defect 10: a flood of
// fresh unlisted keys logged one warning per key, 2,154 lines in 10 s, and
// the set of logged keys grew without bound).
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>
#include <thread>

#include <zmq.hpp>

#include "bus/context.h"
#include "bus/envelope.h"
#include "bus/keys.h"
#include "bus/rejection_log.h"
#include "bus/server.h"
#include "support/temp_dir.h"

namespace {

using namespace std::chrono_literals;
using mps::bus::RefusalLog;
using mps::bus::RefusalLogLimits;
using Clock = RefusalLog::Clock;

std::string Key(int i) {
  return "domain|key-" + std::to_string(i);
}

std::vector<std::string> Refuse(RefusalLog& log, int key, Clock::time_point now) {
  return log.Record(Key(key), "refused " + Key(key), now);
}

TEST(RefusalLog, AKeyIsLoggedOnceWhileRemembered) {
  RefusalLog log;
  auto t = Clock::now();
  EXPECT_EQ(Refuse(log, 1, t), std::vector<std::string>{"refused " + Key(1)});
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(Refuse(log, 1, t + i * 1s).empty());
  EXPECT_EQ(log.remembered_keys(), 1u);
  EXPECT_EQ(log.not_logged(), 0u);  // repeats of a logged key are not "suppressed"
}

TEST(RefusalLog, NewKeysAreRateLimitedAndTheRestSummedUp) {
  RefusalLog log({.max_keys = 1024, .lines_per_interval = 3, .interval = 10s});
  auto t = Clock::now();
  int lines = 0;
  for (int i = 0; i < 1000; ++i) lines += static_cast<int>(Refuse(log, i, t + i * 1ms).size());
  EXPECT_EQ(lines, 3);
  EXPECT_EQ(log.not_logged(), 997u);
  EXPECT_FALSE(log.Tick(t + 9s));  // the interval is not over yet
  auto summary = log.Tick(t + 10s);
  ASSERT_TRUE(summary);
  EXPECT_NE(summary->find("refused 997 more unlisted key(s) in the last 10 s"), std::string::npos)
      << *summary;
  EXPECT_FALSE(log.Tick(t + 11s));  // said once
  // A new interval: the summary counted as one of its lines, two are left.
  EXPECT_EQ(Refuse(log, 5000, t + 12s).size(), 1u);
  EXPECT_EQ(Refuse(log, 5001, t + 12s).size(), 1u);
  EXPECT_TRUE(Refuse(log, 5002, t + 12s).empty());
  // A refusal after the interval brings the summary first, then its own line.
  auto next = Refuse(log, 5003, t + 25s);
  ASSERT_EQ(next.size(), 2u);
  EXPECT_NE(next[0].find("refused 1 more"), std::string::npos) << next[0];
  EXPECT_EQ(next[1], "refused " + Key(5003));
}

TEST(RefusalLog, RemembersAtMostMaxKeys) {
  RefusalLog log({.max_keys = 100, .lines_per_interval = 5, .interval = 10s});
  auto t = Clock::now();
  for (int i = 0; i < 30000; ++i) Refuse(log, i, t);
  EXPECT_EQ(log.remembered_keys(), 100u);
  // The most recent keys are the ones remembered: a repeat of one is silent
  // and not counted; a forgotten one is new again (and counted, not logged).
  auto before = log.not_logged();
  EXPECT_TRUE(Refuse(log, 29999, t).empty());
  EXPECT_EQ(log.not_logged(), before);
  EXPECT_TRUE(Refuse(log, 0, t).empty());
  EXPECT_EQ(log.not_logged(), before + 1);
  EXPECT_EQ(log.remembered_keys(), 100u);
}

// Through a real server: a flood of fresh unlisted keys on a Curve socket
// gives a handful of warnings, not one per key.
TEST(RefusalLog, AFloodOfUnlistedKeysLogsAFewLines) {
  std::ostringstream out;
  auto previous = spdlog::default_logger();
  auto logger = std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  spdlog::set_default_logger(logger);

  mps::testing::TempDir dir;
  mps::bus::BusContext context;
  auto server_keys = mps::bus::GenerateKeyPair();
  mps::bus::ServerOptions so;
  so.endpoint = "ipc://" + dir.path() + "/s.sock";
  so.name = "flooded";
  so.curve =
      mps::bus::CurveServerConfig{server_keys.secret_z85, {mps::bus::GenerateKeyPair().public_z85}};
  mps::bus::BusServer server(context, so);
  server.Start();

  constexpr int kKeys = 60;
  zmq::context_t flood;
  std::vector<zmq::socket_t> peers;
  for (int i = 0; i < kKeys; ++i) {
    zmq::socket_t s(flood, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    auto keys = mps::bus::GenerateKeyPair();
    mps::bus::ApplyCurveClient(s, {keys.secret_z85, server_keys.public_z85});
    s.connect(server.endpoint());
    peers.push_back(std::move(s));
  }
  auto until = std::chrono::steady_clock::now() + 20s;
  while (context.refused_count() < kKeys && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(10ms);
  peers.clear();
  server.Stop();
  spdlog::set_default_logger(previous);

  EXPECT_GE(context.refused_count(), static_cast<std::uint64_t>(kKeys));
  std::istringstream lines(out.str());
  int refused = 0;
  for (std::string line; std::getline(lines, line);)
    if (line.find("bus: refused") != std::string::npos) ++refused;
  EXPECT_GE(refused, 1) << out.str();
  EXPECT_LE(refused, RefusalLogLimits{}.lines_per_interval) << out.str();
}

}  // namespace
