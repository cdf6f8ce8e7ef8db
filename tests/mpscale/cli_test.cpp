// The real mpscale binary against a status endpoint served in this process:
// a BusServer answering state.pools with a canned reply and an
// EventPublisher with a SQLite log, as multipass-target serves them.
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "bus/events.h"
#include "bus/keys.h"
#include "bus/server.h"
#include "bus/sqlite_event_log.h"
#include "canned_pools.h"
#include "contracts/codec.h"
#include "contracts/status.h"
#include "support/child_process.h"
#include "support/temp_dir.h"

using namespace std::chrono_literals;
using mps::testing::BinDir;
using mps::testing::ChildProcess;
using mps::testing::TempDir;
namespace bus = mps::bus;
namespace status = mps::contracts::status;

namespace {

struct Run {
  std::optional<int> exit;
  std::vector<std::string> lines;
  std::string err;
};

Run Mpscale(std::vector<std::string> args) {
  args.insert(args.begin(), BinDir() + "/mpscale");
  ChildProcess p(args);
  Run r;
  while (auto line = p.ReadLine(15s)) r.lines.push_back(*line);
  r.exit = p.Wait(15s);
  r.err = p.stderr_text();
  return r;
}

std::string Joined(const Run& r) {
  std::string out;
  for (const auto& l : r.lines) out += l + "\n";
  return out + "--- stderr:\n" + r.err;
}

// Sequence numbers of "#N ..." lines, in order.
std::vector<std::uint64_t> Seqs(const std::vector<std::string>& lines) {
  std::vector<std::uint64_t> seqs;
  for (const auto& l : lines)
    if (!l.empty() && l[0] == '#') seqs.push_back(std::stoull(l.substr(1)));
  return seqs;
}

std::vector<std::uint64_t> Range(std::uint64_t from, std::uint64_t to) {
  std::vector<std::uint64_t> out;
  for (auto s = from; s <= to; ++s) out.push_back(s);
  return out;
}

// The status endpoint: state.pools and events.replay on `endpoint`, events on
// its EventsEndpointFor. Can be torn down and brought back on the same log file.
class StatusEndpoint {
 public:
  StatusEndpoint(bus::BusContext& context, std::string endpoint, std::filesystem::path log_path,
                 std::optional<bus::CurveServerConfig> curve = {})
      : context_(context),
        endpoint_(std::move(endpoint)),
        log_path_(std::move(log_path)),
        curve_(std::move(curve)) {
    Up();
  }

  void Up() {
    bus::ServerOptions so;
    so.endpoint = endpoint_;
    so.name = "multipass-target-status";
    so.curve = curve_;
    server_ = std::make_unique<bus::BusServer>(context_, so);
    server_->Handle(std::string(status::PoolsRequest::kType),
                    [](const bus::Request& req, bus::Responder r) {
                      auto reply = mps::mpscale::testing::CannedPools();
                      auto want = req.envelope.payload.find("pool");
                      if (want != req.envelope.payload.end()) {
                        auto kept = nlohmann::json::array();
                        for (auto& p : reply["pools"])
                          if (p["pool"] == *want) kept.push_back(p);
                        reply["pools"] = kept;
                      }
                      r.Reply(reply);
                    });
    if (bus::TransportOf(endpoint_) != bus::Transport::kTcp) {
      bus::PublisherOptions po;
      po.endpoint = bus::EventsEndpointFor(endpoint_);
      po.name = "multipass-target-events";
      po.heartbeat = 50ms;
      publisher_ = std::make_unique<bus::EventPublisher>(
          context_, po, std::make_shared<bus::SqliteEventLog>(log_path_));
      publisher_->ServeReplay(*server_);
    }
    server_->Start();
    if (publisher_) publisher_->Start();
  }

  void Down() {
    publisher_.reset();
    server_.reset();
  }

  std::string endpoint() const { return server_->endpoint(); }

  // A realistic scale-up of "web" interleaved with "batch" failing: 8 events.
  void PublishScaleUp() {
    Publish(status::ScaleRequested{"web", "r-17", 5, 3, false, "queue depth"});
    Publish(status::ScalePlanned{
        "web", "r-17", "launch", "launch 2", false, {"launch web-4", "launch web-5"}});
    Publish(status::InstanceLaunching{"web", "web-4", "jammy"});
    Publish(status::InstanceFailed{"batch", "batch-1", "image jammy not found"});
    Publish(status::InstanceLaunching{"web", "web-5", "jammy"});
    Publish(status::InstanceRunning{"web", "web-4"});
    Publish(status::NodeRegistered{"web", "web-4", "a1b2c3"});
    Publish(status::ScaleCompleted{"web", "r-17", 5, "done"});
  }

  template <class Event>
  void Publish(const Event& event) {
    publisher_->Publish(std::string(Event::kType), mps::contracts::Encode(event));
  }

 private:
  bus::BusContext& context_;
  std::string endpoint_;
  std::filesystem::path log_path_;
  std::optional<bus::CurveServerConfig> curve_;
  std::unique_ptr<bus::BusServer> server_;
  std::unique_ptr<bus::EventPublisher> publisher_;
};

class MpscaleCli : public ::testing::Test {
 protected:
  void SetUp() override {
    endpoint_ = "ipc://" + dir_.path() + "/status.sock";
    status_ = std::make_unique<StatusEndpoint>(context_, endpoint_, dir_.path() + "/events.db");
    status_->PublishScaleUp();
  }

  TempDir dir_;
  bus::BusContext context_;
  std::string endpoint_;
  std::unique_ptr<StatusEndpoint> status_;
};

}  // namespace

TEST_F(MpscaleCli, StatusPrintsOneRowPerPoolWithInstancesBeneath) {
  auto r = Mpscale({"status", "--address", endpoint_});
  ASSERT_EQ(r.exit, 0) << Joined(r);
  ASSERT_GE(r.lines.size(), 3u) << Joined(r);
  EXPECT_EQ(r.lines[0].rfind("POOL", 0), 0u) << Joined(r);
  EXPECT_NE(r.lines[0].find("IN FLIGHT"), std::string::npos);
  auto text = Joined(r);
  EXPECT_NE(text.find("2 launch, 1 drain; scale r-17"), std::string::npos) << text;
  EXPECT_NE(text.find("no: image jammy not found; launch backoff"), std::string::npos) << text;
  EXPECT_NE(text.find("2026-11-23 10:12:33Z ("), std::string::npos) << text;
  EXPECT_NE(text.find("web-1"), std::string::npos) << text;
  EXPECT_NE(text.find("launch failures: 3 in a row"), std::string::npos) << text;
}

TEST_F(MpscaleCli, StatusJsonAsksForOnePool) {
  auto r = Mpscale({"status", "--address", endpoint_, "--pool", "batch", "--json"});
  ASSERT_EQ(r.exit, 0) << Joined(r);
  std::string text;
  for (const auto& l : r.lines) text += l + "\n";
  auto reply = nlohmann::json::parse(text);
  ASSERT_EQ(reply["pools"].size(), 1u) << text;
  EXPECT_EQ(reply["pools"][0]["pool"], "batch");
  EXPECT_EQ(reply["pools"][0]["launch_failures"]["consecutive"], 3);
}

TEST_F(MpscaleCli, EventsPrintsEveryRetainedEventOnceAndExits) {
  auto all = Mpscale({"events", "--address", endpoint_});
  ASSERT_EQ(all.exit, 0) << Joined(all);
  EXPECT_EQ(Seqs(all.lines), Range(1, 8)) << Joined(all);

  auto r = Mpscale({"events", "--address", endpoint_, "--since", "3"});
  ASSERT_EQ(r.exit, 0) << Joined(r);
  EXPECT_EQ(Seqs(r.lines), Range(4, 8)) << Joined(r);
  EXPECT_EQ(r.lines.size(), 5u) << Joined(r);
  EXPECT_NE(
      r.lines[0].find("  batch  instance.failed  error=\"image jammy not found\" name=batch-1"),
      std::string::npos)
      << r.lines[0];
}

TEST_F(MpscaleCli, EventsOfOnePoolAsJsonLines) {
  auto r = Mpscale({"events", "--address", endpoint_, "--pool", "batch", "--json"});
  ASSERT_EQ(r.exit, 0) << Joined(r);
  ASSERT_EQ(r.lines.size(), 1u) << Joined(r);
  auto e = nlohmann::json::parse(r.lines[0]);
  EXPECT_EQ(e["seq"], 4);
  EXPECT_EQ(e["type"], "instance.failed");
  EXPECT_EQ(e["pool"], "batch");
  EXPECT_EQ(e["fields"]["name"], "batch-1");
  EXPECT_GT(e["ts_ns"].get<std::int64_t>(), 0);

  auto web = Mpscale({"events", "--address", endpoint_, "--pool", "web", "--json"});
  ASSERT_EQ(web.exit, 0) << Joined(web);
  std::vector<std::uint64_t> seqs;
  for (const auto& l : web.lines) {
    auto j = nlohmann::json::parse(l);
    EXPECT_EQ(j["pool"], "web") << l;
    seqs.push_back(j["seq"]);
  }
  EXPECT_EQ(seqs, (std::vector<std::uint64_t>{1, 2, 3, 5, 6, 7, 8}));
}

TEST_F(MpscaleCli, FollowPrintsLiveEventsUntilSigterm) {
  ChildProcess follow(
      {BinDir() + "/mpscale", "events", "--address", endpoint_, "--follow", "--since", "6"});
  auto seventh = follow.ReadLine(10s);
  ASSERT_TRUE(seventh) << follow.stderr_text();
  EXPECT_EQ(seventh->rfind("#7  ", 0), 0u) << *seventh;
  auto eighth = follow.ReadLine(10s);
  ASSERT_TRUE(eighth) << follow.stderr_text();
  EXPECT_EQ(eighth->rfind("#8  ", 0), 0u) << *eighth;

  status_->Publish(status::ScaleRequested{"web", "r-18", 4, 5, false, "idle"});
  auto live = follow.ReadLine(10s);
  ASSERT_TRUE(live) << follow.stderr_text();
  EXPECT_EQ(live->rfind("#9  ", 0), 0u) << *live;
  EXPECT_NE(live->find("request_id=r-18"), std::string::npos) << *live;

  follow.Signal(SIGTERM);
  EXPECT_EQ(follow.Wait(10s), 0) << follow.stderr_text();
}

TEST_F(MpscaleCli, FollowWithoutSinceStartsWithNewEvents) {
  ChildProcess follow(
      {BinDir() + "/mpscale", "events", "--address", endpoint_, "--follow", "--pool", "web"});
  // mpscale's start is not observable from here: publish until it prints.
  std::optional<std::string> line;
  for (int i = 0; i < 100 && !line; ++i) {
    status_->Publish(status::InstanceRunning{"web", "web-5"});
    status_->Publish(status::InstanceRunning{"batch", "batch-2"});
    line = follow.ReadLine(100ms);
  }
  ASSERT_TRUE(line) << follow.stderr_text();
  EXPECT_GT(Seqs({*line}).at(0), 8u) << "retained events are not printed: " << *line;
  EXPECT_NE(line->find("  web  instance.running  name=web-5"), std::string::npos) << *line;
  follow.Signal(SIGINT);
  EXPECT_EQ(follow.Wait(10s), 0) << follow.stderr_text();
}

TEST_F(MpscaleCli, RestartedPublisherContinuesItsNumbering) {
  status_->Down();
  status_->Up();
  status_->PublishScaleUp();  // 9..16 on the same log file
  auto r = Mpscale({"events", "--address", endpoint_, "--since", "5"});
  ASSERT_EQ(r.exit, 0) << Joined(r);
  EXPECT_EQ(Seqs(r.lines), Range(6, 16)) << Joined(r);
}

TEST_F(MpscaleCli, FollowCarriesOnAcrossAPublisherRestart) {
  ChildProcess follow(
      {BinDir() + "/mpscale", "events", "--address", endpoint_, "--follow", "--since", "7"});
  auto eighth = follow.ReadLine(10s);
  ASSERT_TRUE(eighth) << follow.stderr_text();
  EXPECT_EQ(eighth->rfind("#8  ", 0), 0u) << *eighth;

  status_->Down();
  status_->Up();
  status_->Publish(status::InstanceDeleted{"web", "web-1", "scale-in"});
  status_->Publish(status::NodePurged{"web", "5f2c9a1e"});
  auto ninth = follow.ReadLine(10s);
  ASSERT_TRUE(ninth) << follow.stderr_text();
  EXPECT_EQ(ninth->rfind("#9  ", 0), 0u) << *ninth;
  auto tenth = follow.ReadLine(10s);
  ASSERT_TRUE(tenth) << follow.stderr_text();
  EXPECT_EQ(tenth->rfind("#10  ", 0), 0u) << *tenth;

  follow.Signal(SIGTERM);
  EXPECT_EQ(follow.Wait(10s), 0) << follow.stderr_text();
  EXPECT_FALSE(follow.ReadLine(100ms)) << "nothing printed twice";
}

TEST_F(MpscaleCli, NobodyListeningIsAClearRuntimeError) {
  std::string nobody = "ipc://" + dir_.path() + "/nobody.sock";
  for (const auto& command : {"status", "events"}) {
    auto r = Mpscale({command, "--address", nobody, "--timeout", "1"});
    EXPECT_EQ(r.exit, 1) << Joined(r);
    EXPECT_NE(r.err.find("no answer from " + nobody +
                         " within 1s: is multipass-target running "
                         "with status_address = " +
                         nobody + "?"),
              std::string::npos)
        << command << ": " << r.err;
    EXPECT_EQ(r.err.find("waiting for"), std::string::npos) << "stdout is no terminal: " << r.err;
  }
}

TEST_F(MpscaleCli, SlowAnswerOnATerminalSaysWhatItWaitsFor) {
  std::string nobody = "ipc://" + dir_.path() + "/nobody.sock";
  std::string bin = BinDir() + "/mpscale";
  int terminal = -1;
  pid_t pid = forkpty(&terminal, nullptr, nullptr, nullptr);
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl(bin.c_str(), bin.c_str(), "status", "--address", nobody.c_str(), "--timeout", "2",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  std::string seen;
  pollfd item{terminal, POLLIN, 0};
  while (poll(&item, 1, 15000) > 0) {
    char buffer[512];
    auto n = read(terminal, buffer, sizeof buffer);
    if (n <= 0) break;  // EIO once the child has exited
    seen.append(buffer, static_cast<std::size_t>(n));
  }
  close(terminal);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << seen;
  EXPECT_NE(seen.find("waiting for " + nobody + "..."), std::string::npos) << seen;
  EXPECT_NE(seen.find("no answer from " + nobody + " within 2s"), std::string::npos) << seen;
}

TEST_F(MpscaleCli, TcpWithoutKeysOrPortIsAUsageError) {
  auto r = Mpscale({"status", "--address", "tcp://127.0.0.1:1"});
  EXPECT_EQ(r.exit, 2) << Joined(r);
  EXPECT_NE(r.err.find("pass --server-key"), std::string::npos) << r.err;
  auto keys = std::filesystem::path(dir_.path());
  bus::WriteKeyPair(keys, "target", bus::GenerateKeyPair());
  auto follow = Mpscale({"events", "--follow", "--address", "tcp://127.0.0.1:*", "--server-key",
                         (keys / "target.pub").string(), "--key", (keys / "target.key").string()});
  EXPECT_EQ(follow.exit, 2) << Joined(follow);
  EXPECT_NE(follow.err.find("must be tcp://HOST:PORT"), std::string::npos) << follow.err;
}

TEST_F(MpscaleCli, BadKeyFilesAreUsageErrorsNamingFlagAndFile) {
  auto keys = std::filesystem::path(dir_.path()) / "keys";
  bus::WriteKeyPair(keys, "server", bus::GenerateKeyPair());
  std::string missing = (keys / "missing.key").string();
  auto r = Mpscale({"status", "--address", endpoint_, "--server-key",
                    (keys / "server.pub").string(), "--key", missing});
  EXPECT_EQ(r.exit, 2) << Joined(r);
  EXPECT_NE(r.err.find("--key " + missing), std::string::npos) << r.err;

  auto half = Mpscale({"events", "--address", endpoint_, "--key", (keys / "server.key").string()});
  EXPECT_EQ(half.exit, 2) << Joined(half);
  EXPECT_NE(half.err.find("--server-key and --key go together"), std::string::npos) << half.err;

  auto usage = Mpscale({"events", "--since", "3"});
  EXPECT_EQ(usage.exit, 2) << Joined(usage);
}

TEST(MpscaleCliCurve, AuthorizedKeyIsServedAndAStrangerIsToldWhereItsKeyGoes) {
  TempDir dir;
  auto keys = std::filesystem::path(dir.path());
  auto server = bus::GenerateKeyPair();
  auto operator_keys = bus::GenerateKeyPair();
  bus::WriteKeyPair(keys, "target", server);
  bus::WriteKeyPair(keys, "operator", operator_keys);
  bus::WriteKeyPair(keys, "stranger", bus::GenerateKeyPair());
  bus::BusContext context;
  StatusEndpoint status(context, "tcp://127.0.0.1:*", keys / "unused.db",
                        bus::CurveServerConfig{server.secret_z85, {operator_keys.public_z85}});
  auto endpoint = status.endpoint();
  auto ok = Mpscale({"status", "--address", endpoint, "--server-key",
                     (keys / "target.pub").string(), "--key", (keys / "operator.key").string()});
  EXPECT_EQ(ok.exit, 0) << Joined(ok);
  ASSERT_FALSE(ok.lines.empty());
  EXPECT_EQ(ok.lines[0].rfind("POOL", 0), 0u) << Joined(ok);

  auto refused =
      Mpscale({"status", "--address", endpoint, "--server-key", (keys / "target.pub").string(),
               "--key", (keys / "stranger.key").string(), "--timeout", "2"});
  EXPECT_EQ(refused.exit, 1) << Joined(refused);
  EXPECT_NE(
      refused.err.find(endpoint + " refused our key: add " + (keys / "stranger.pub").string() +
                       " to its status_authorized_keys_path"),
      std::string::npos)
      << refused.err;
}
