// multipass-hostd and mpscale as real processes against a real cluster-sim,
// plus the session actor served in-process on inproc:// (direct mode).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "bus/caf_bridge.h"
#include "bus/client.h"
#include "bus/events.h"
#include "bus/keys.h"
#include "contracts/app_code.h"
#include "contracts/codec.h"
#include "contracts/host.h"
#include "contracts/multipass.h"
#include "multipass/host_capacity.h"
#include "session/session.h"
#include "support/child_process.h"
#include "support/temp_dir.h"

namespace {

using namespace std::chrono_literals;
using mps::bus::BusError;
using mps::bus::ErrorCode;
using mps::testing::BinDir;
using mps::testing::ChildProcess;
using mps::testing::TempDir;
namespace mp = mps::contracts::multipass;
using mps::contracts::AppCode;
using mps::contracts::AppCodeOf;

bool PortFree(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

// A free port whose successor (the events port) is free too.
int FreePortPair() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    close(fd);
    int port = ntohs(a.sin_port);
    if (port < 65535 && PortFree(port + 1)) return port;
  }
  ADD_FAILURE() << "no free port pair";
  return 0;
}

struct Sim {
  std::unique_ptr<ChildProcess> proc;
  std::string address;
};

Sim StartSim(const TempDir& dir, const std::string& boot_delay,
             std::vector<std::string> extra = {}) {
  Sim sim;
  sim.address = "unix:" + dir.path() + "/multipass.sock";
  std::vector<std::string> argv{BinDir() + "/cluster-sim",
                                "--multipass-socket",
                                dir.path() + "/multipass.sock",
                                "--state-dir",
                                dir.path() + "/sim",
                                "--boot-delay",
                                boot_delay,
                                "--passphrase",
                                "sesame",
                                "--ssh-delay",
                                "5ms"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  sim.proc = std::make_unique<ChildProcess>(argv);
  EXPECT_TRUE(sim.proc->WaitForLine("ready", 10s)) << sim.proc->stderr_text();
  return sim;
}

// Keys as an operator makes them: with mpscale keygen.
struct Keys {
  std::string server_key, server_pub, client_key, authorized_dir, stranger_key;
};

void Run(const std::vector<std::string>& argv) {
  ChildProcess p(argv);
  ASSERT_EQ(p.Wait(10s), 0) << p.stderr_text();
}

Keys MakeKeys(const TempDir& dir) {
  Keys k;
  auto keys = dir.path() + "/keys", clients = dir.path() + "/clients";
  Run({BinDir() + "/mpscale", "keygen", "--out", keys, "--name", "hostd"});
  Run({BinDir() + "/mpscale", "keygen", "--out", clients, "--name", "plugin"});
  Run({BinDir() + "/mpscale", "keygen", "--out", keys, "--name", "stranger"});
  k.server_key = keys + "/hostd.key";
  k.server_pub = keys + "/hostd.pub";
  k.client_key = clients + "/plugin.key";
  k.authorized_dir = clients;
  k.stranger_key = keys + "/stranger.key";
  return k;
}

struct Hostd {
  std::unique_ptr<ChildProcess> proc;
  std::string endpoint;
};

Hostd StartHostd(const TempDir& dir, const Sim& sim, const Keys& keys,
                 std::vector<std::string> extra = {}) {
  { std::ofstream(dir.path() + "/passphrase") << "sesame\n"; }
  Hostd h;
  h.endpoint = "tcp://127.0.0.1:" + std::to_string(FreePortPair());
  std::vector<std::string> argv{BinDir() + "/multipass-hostd",
                                "--multipass-address",
                                sim.address,
                                "--multipass-passphrase-file",
                                dir.path() + "/passphrase",
                                "--state-dir",
                                dir.path() + "/hostd-state",
                                "--bind",
                                h.endpoint,
                                "--server-key",
                                keys.server_key,
                                "--authorized-keys",
                                keys.authorized_dir};
  argv.insert(argv.end(), extra.begin(), extra.end());
  h.proc = std::make_unique<ChildProcess>(argv);
  auto line = h.proc->WaitForLine("ready ", 10s);
  EXPECT_TRUE(line) << h.proc->stderr_text();
  if (line) {
    EXPECT_EQ(*line, "ready " + h.endpoint + " events " + mps::bus::EventsEndpointFor(h.endpoint));
  }
  return h;
}

std::unique_ptr<mps::bus::BusClient> Connect(mps::bus::BusContext& ctx, const Hostd& h,
                                             const Keys& keys, const std::string& key_file) {
  mps::bus::ClientOptions o;
  o.endpoint = h.endpoint;
  o.name = "hostd-test";
  o.curve = mps::bus::CurveClientConfig{mps::bus::ReadSecretKeyFile(key_file).secret_z85,
                                        mps::bus::ReadKeyFile(keys.server_pub)};
  return std::make_unique<mps::bus::BusClient>(ctx, o);
}

mps::bus::CallOptions Mutating(const std::string& key, std::chrono::milliseconds t = 20s) {
  return {t, key};
}

std::vector<std::string> Names(const nlohmann::json& list, const char* field = "instances") {
  std::vector<std::string> names;
  for (const auto& i : list[field]) names.push_back(i["name"]);
  return names;
}

// The bus error of a call that must fail.
BusError CallError(mps::bus::BusClient& c, std::string_view type, nlohmann::json payload,
                   mps::bus::CallOptions o = {5s, "k"}) {
  try {
    c.CallSync(std::string(type), std::move(payload), o);
  } catch (const BusError& e) {
    return e;
  }
  ADD_FAILURE() << type << " succeeded unexpectedly";
  return BusError(ErrorCode::kBadFrame, "none");
}

// On a loaded machine the session's first TLS handshake with the sim can
// outlast its connect timeout; tests start once the chain answers end to end.
void WaitUntilDaemonAnswers(mps::bus::BusClient& client) {
  auto until = std::chrono::steady_clock::now() + 15s;
  while (true) {
    try {
      client.CallSync(std::string(mp::VersionRequest::kType), nlohmann::json::object());
      return;
    } catch (const BusError& e) {
      if (std::chrono::steady_clock::now() > until || AppCodeOf(e) != AppCode::kUnreachable) throw;
      std::this_thread::sleep_for(100ms);
    }
  }
}

class HostdTest : public ::testing::Test {
 protected:
  void Start(const std::string& boot_delay, std::vector<std::string> extra = {},
             std::vector<std::string> sim_extra = {}) {
    sim_ = StartSim(dir_, boot_delay, std::move(sim_extra));
    keys_ = MakeKeys(dir_);
    hostd_ = StartHostd(dir_, sim_, keys_, std::move(extra));
    client_ = Connect(ctx_, hostd_, keys_, keys_.client_key);
    WaitUntilDaemonAnswers(*client_);
  }
  void TearDown() override {
    client_.reset();
    if (hostd_.proc) {
      hostd_.proc->Signal(SIGTERM);
      EXPECT_EQ(hostd_.proc->Wait(10s), 0) << hostd_.proc->stderr_text();
    }
  }
  TempDir dir_;
  Sim sim_;
  Keys keys_;
  Hostd hostd_;
  mps::bus::BusContext ctx_;
  std::unique_ptr<mps::bus::BusClient> client_;
};

TEST_F(HostdTest, ListLaunchInfoDeleteRoundTrip) {
  Start("100ms");
  auto& c = *client_;
  auto version = c.CallSync(std::string(mp::VersionRequest::kType), nlohmann::json::object());
  EXPECT_FALSE(version["version"].get<std::string>().empty());
  EXPECT_EQ(version["address"], sim_.address);
  EXPECT_TRUE(Names(c.CallSync(std::string(mp::ListRequest::kType), {{"prefix", ""}})).empty());

  auto launched = c.CallSync(std::string(mp::LaunchRequest::kType),
                             {{"name", "web-1"}, {"image", "22.04"}, {"cpus", 1}, {"memory", "1G"}},
                             Mutating("launch-web-1"));
  EXPECT_EQ(launched["name"], "web-1");

  auto list = c.CallSync(std::string(mp::ListRequest::kType), {{"prefix", "web"}});
  ASSERT_EQ(Names(list), std::vector<std::string>{"web-1"});
  EXPECT_EQ(list["instances"][0]["state"], "running");
  EXPECT_FALSE(list["instances"][0]["ipv4"].empty());
  EXPECT_TRUE(list["in_flight"].empty());

  auto info = c.CallSync(std::string(mp::InfoRequest::kType), {{"names", {"web-1"}}});
  ASSERT_EQ(Names(info), std::vector<std::string>{"web-1"});
  EXPECT_EQ(info["instances"][0]["state"], "running");

  // Taken names come back with the daemon's kind.
  auto taken =
      CallError(c, mp::LaunchRequest::kType, {{"name", "web-1"}}, Mutating("launch-web-1-again"));
  EXPECT_EQ(taken.code(), ErrorCode::kHandlerFailed);
  EXPECT_EQ(AppCodeOf(taken), AppCode::kNameTaken);

  auto deleted = c.CallSync(std::string(mp::DeleteRequest::kType), {{"names", {"web-1"}}},
                            Mutating("delete-web-1"));
  EXPECT_EQ(deleted["deleted"], nlohmann::json::array({"web-1"}));
  EXPECT_TRUE(Names(c.CallSync(std::string(mp::ListRequest::kType), {{"prefix", ""}})).empty());

  // An empty delete would wipe the host: refused before it reaches the daemon.
  auto empty = CallError(c, mp::DeleteRequest::kType, {{"names", nlohmann::json::array()}},
                         Mutating("delete-nothing"));
  EXPECT_EQ(AppCodeOf(empty), AppCode::kInvalidArgument);
  auto missing =
      CallError(c, mp::LaunchRequest::kType, {{"image", "22.04"}}, Mutating("launch-unnamed"));
  EXPECT_EQ(missing.code(), ErrorCode::kBadPayload);
  auto wrong_type = CallError(c, mp::LaunchRequest::kType, {{"name", "web-2"}, {"cpus", "two"}},
                              Mutating("launch-web-2"));
  EXPECT_EQ(wrong_type.code(), ErrorCode::kBadPayload);
  EXPECT_NE(std::string(wrong_type.what()).find("cpus"), std::string::npos) << wrong_type.what();
  auto no_key = CallError(c, mp::DeleteRequest::kType, {{"names", {"web-2"}}}, {5s, ""});
  EXPECT_EQ(no_key.code(), ErrorCode::kBadPayload);
}

TEST_F(HostdTest, PublishesInstanceEventsOverCurve) {
  Start("100ms");
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::string> seen;
  mps::bus::SubscriberOptions so;
  so.events_endpoint = mps::bus::EventsEndpointFor(hostd_.endpoint);
  so.replay_endpoint = hostd_.endpoint;
  so.name = "hostd-test-events";
  so.curve = mps::bus::CurveClientConfig{mps::bus::ReadSecretKeyFile(keys_.client_key).secret_z85,
                                         mps::bus::ReadKeyFile(keys_.server_pub)};
  so.since = 0;  // retained events too, so the slow-joiner window loses nothing
  mps::bus::EventSubscriber sub(ctx_, so, [&](const mps::bus::Envelope& e) {
    if (e.type.rfind("instance.", 0) != 0) return;
    std::lock_guard lock(m);
    seen.push_back(e.type + " " + e.payload.value("name", ""));
    cv.notify_all();
  });
  sub.Start();
  client_->CallSync(std::string(mp::LaunchRequest::kType), {{"name", "web-3"}},
                    Mutating("launch-web-3"));
  client_->CallSync(std::string(mp::DeleteRequest::kType), {{"names", {"web-3"}}},
                    Mutating("delete-web-3"));
  std::unique_lock lock(m);
  EXPECT_TRUE(cv.wait_for(lock, 10s, [&] { return seen.size() >= 3; }));
  EXPECT_EQ(seen, (std::vector<std::string>{"instance.launching web-3", "instance.running web-3",
                                            "instance.deleted web-3"}));
  lock.unlock();
  sub.Stop();
}

TEST_F(HostdTest, NamesOutsideAllowedPrefixesAreRefused) {
  Start("100ms", {"--allow-prefix", "web", "--allow-prefix", "db"});
  auto& c = *client_;
  for (const char* name : {"webapp-1", "web", "cache-1"}) {
    auto e = CallError(c, mp::LaunchRequest::kType, {{"name", name}},
                       Mutating(std::string("l-") + name));
    EXPECT_EQ(e.code(), ErrorCode::kHandlerFailed) << name;
    EXPECT_EQ(AppCodeOf(e), AppCode::kNotAllowed) << name;
    EXPECT_NE(std::string(e.what()).find("web-*, db-*"), std::string::npos) << e.what();
  }
  EXPECT_EQ(
      AppCodeOf(CallError(c, mp::DeleteRequest::kType, {{"names", {"webapp-1"}}}, Mutating("d"))),
      AppCode::kNotAllowed);
  EXPECT_EQ(AppCodeOf(CallError(c, mp::InfoRequest::kType, {{"names", {"cache-1"}}})),
            AppCode::kNotAllowed);

  // An instance made behind hostd's back with a look-alike name stays invisible.
  mps::multipass::MultipassClientOptions direct;
  direct.address = sim_.address;
  direct.passphrase = "sesame";
  mps::multipass::MultipassClient other(direct);
  mps::multipass::LaunchSpec spec;
  spec.name = "webapp-1";
  other.Launch(spec);
  c.CallSync(std::string(mp::LaunchRequest::kType), {{"name", "web-1"}}, Mutating("launch-web-1"));
  EXPECT_EQ(Names(c.CallSync(std::string(mp::ListRequest::kType), {{"prefix", ""}})),
            std::vector<std::string>{"web-1"});
  EXPECT_EQ(Names(c.CallSync(std::string(mp::ListRequest::kType), {{"prefix", "web"}})),
            std::vector<std::string>{"web-1"});
  EXPECT_EQ(other.List().size(), 2u);
}

TEST_F(HostdTest, UnlistedClientKeyIsRefused) {
  Start("100ms");
  auto stranger = Connect(ctx_, hostd_, keys_, keys_.stranger_key);
  auto e = CallError(*stranger, mp::ListRequest::kType, {{"prefix", ""}}, {1500ms, {}});
  EXPECT_EQ(e.code(), ErrorCode::kRefused) << e.what();
  // The listed client still gets in.
  EXPECT_NO_THROW(client_->CallSync(std::string(mp::ListRequest::kType), {{"prefix", ""}}));
}

TEST_F(HostdTest, EightLaunchesAtOnceAllSucceed) {
  Start("2s", {"--max-parallel-launches", "8"});
  // The first launch of an image runs alone by design (the daemon would
  // download it twice); warm the image up, then launch eight at once.
  // (launch_bench measures that they overlap: 16 launches against 1.)
  client_->CallSync(std::string(mp::LaunchRequest::kType), {{"name", "warm-0"}, {"image", "22.04"}},
                    Mutating("warm-0"));

  std::mutex m;
  std::condition_variable cv;
  std::vector<mps::bus::CallResult> results;
  for (int i = 1; i <= 8; ++i) {
    auto name = "node-" + std::to_string(i);
    client_->Call(std::string(mp::LaunchRequest::kType), {{"name", name}, {"image", "22.04"}},
                  Mutating("launch-" + name), [&](mps::bus::CallResult r) {
                    std::lock_guard lock(m);
                    results.push_back(std::move(r));
                    cv.notify_all();
                  });
  }
  {
    std::unique_lock lock(m);
    ASSERT_TRUE(cv.wait_for(lock, 20s, [&] { return results.size() == 8; }));
  }
  for (const auto& r : results) EXPECT_FALSE(r.error) << r.error->what();
  EXPECT_EQ(
      Names(client_->CallSync(std::string(mp::ListRequest::kType), {{"prefix", "node"}})).size(),
      8u);
}

TEST_F(HostdTest, MpscaleInstancesPrintsTheInstances) {
  Start("100ms");
  client_->CallSync(std::string(mp::LaunchRequest::kType), {{"name", "web-7"}},
                    Mutating("launch-web-7"));
  ChildProcess table({BinDir() + "/mpscale", "instances", "--hostd", hostd_.endpoint,
                      "--server-key", keys_.server_pub, "--key", keys_.client_key});
  auto header = table.ReadLine(10s);
  ASSERT_TRUE(header);
  EXPECT_EQ(header->rfind("NAME", 0), 0u);
  auto row = table.ReadLine(10s);
  ASSERT_TRUE(row) << table.stderr_text();
  EXPECT_EQ(row->rfind("web-7 ", 0), 0u) << *row;
  EXPECT_NE(row->find("running"), std::string::npos) << *row;
  EXPECT_EQ(table.Wait(10s), 0);

  ChildProcess json({BinDir() + "/mpscale", "instances", "--hostd", hostd_.endpoint, "--server-key",
                     keys_.server_pub, "--key", keys_.client_key, "--prefix", "web", "--json"});
  std::string text;
  while (auto line = json.ReadLine(10s)) text += *line + "\n";
  EXPECT_EQ(json.Wait(10s), 0);
  auto parsed = nlohmann::json::parse(text);
  EXPECT_EQ(Names(parsed), std::vector<std::string>{"web-7"});

  ChildProcess refused({BinDir() + "/mpscale", "instances", "--hostd", hostd_.endpoint,
                        "--server-key", keys_.server_pub, "--key", keys_.stranger_key, "--timeout",
                        "2"});
  EXPECT_EQ(refused.Wait(20s), 1);
  EXPECT_NE(refused.stderr_text().find("refused our key"), std::string::npos)
      << refused.stderr_text();
}

TEST_F(HostdTest, SurvivesDaemonRestart) {
  Start("100ms");
  client_->CallSync(std::string(mp::LaunchRequest::kType), {{"name", "web-1"}},
                    Mutating("launch-web-1"));
  sim_.proc->Signal(SIGUSR1);
  // Requests while the daemon is away fail fast (cancelled or unreachable),
  // they do not hang; once it is back, hostd reconnects by itself.
  nlohmann::json list;
  int failures = 0;
  auto until = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < until) {
    try {
      list = client_->CallSync(std::string(mp::ListRequest::kType), {{"prefix", ""}});
      break;
    } catch (const BusError& e) {
      ++failures;
      // Failed fast: answered by hostd, not a timeout at the bus deadline.
      EXPECT_EQ(e.code(), ErrorCode::kHandlerFailed) << e.what();
      std::this_thread::sleep_for(100ms);  // the sim gives no signal when it is back
    }
  }
  std::cout << "lists failed during the restart: " << failures << "\n";
  EXPECT_EQ(Names(list), std::vector<std::string>{"web-1"});
}

TEST_F(HostdTest, SigtermLogsLaunchesInFlightAndStopsWithinTheGrace) {
  Start("100ms", {"--shutdown-grace", "1"}, {"--hang-launches"});
  std::atomic<bool> answered{false};
  client_->Call(std::string(mp::LaunchRequest::kType), {{"name", "stuck-1"}},
                Mutating("launch-stuck-1"), [&](mps::bus::CallResult) { answered = true; });
  // Wait until hostd reports the launch in flight.
  bool seen = false;
  for (int i = 0; i < 50 && !seen; ++i) {
    auto list = client_->CallSync(std::string(mp::ListRequest::kType), {{"prefix", "stuck"}});
    seen = Names(list, "in_flight") == std::vector<std::string>{"stuck-1"};
    if (!seen) std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(seen);
  hostd_.proc->Signal(SIGTERM);
  // The launch never ends: exiting at all means the 1 s grace ended it.
  auto status = hostd_.proc->Wait(10s);
  EXPECT_EQ(status, 1) << "a launch was abandoned";
  auto log = hostd_.proc->stderr_text();
  EXPECT_NE(log.find("1 launch(es) in flight: stuck-1 (running)"), std::string::npos) << log;
  hostd_.proc.reset();
}

// cluster-sim's counters: SIGUSR2 prints "stats k=v ...".
std::map<std::string, long> SimStats(ChildProcess& sim) {
  sim.Signal(SIGUSR2);
  std::map<std::string, long> out;
  auto line = sim.WaitForLine("stats ", 5s);
  EXPECT_TRUE(line) << sim.stderr_text();
  if (!line) return out;
  std::istringstream words(line->substr(6));
  std::string word;
  while (words >> word) {
    auto eq = word.find('=');
    out[word.substr(0, eq)] = std::stol(word.substr(eq + 1));
  }
  return out;
}

TEST_F(HostdTest, ListingWithoutAddressesCostsTheDaemonNoSsh) {
  Start("10ms");
  auto& c = *client_;
  for (auto n : {"web-1", "web-2"})
    c.CallSync(std::string(mp::LaunchRequest::kType), {{"name", n}}, Mutating(n));
  auto before = SimStats(*sim_.proc);
  // The watcher's listing: states only.
  auto states =
      c.CallSync(std::string(mp::ListRequest::kType), {{"prefix", "web"}, {"addresses", false}});
  ASSERT_EQ(Names(states), (std::vector<std::string>{"web-1", "web-2"}));
  EXPECT_TRUE(states["instances"][0]["ipv4"].empty());
  auto middle = SimStats(*sim_.proc);
  EXPECT_EQ(middle["ssh_commands"], before["ssh_commands"]);
  // Someone asks to see addresses (mpscale instances): one SSH per running VM.
  auto full = c.CallSync(std::string(mp::ListRequest::kType), {{"prefix", "web"}});
  EXPECT_FALSE(full["instances"][0]["ipv4"].empty());
  EXPECT_EQ(SimStats(*sim_.proc)["ssh_commands"] - middle["ssh_commands"], 2);
  // info only needs state: no runtime information, so no SSH either.
  auto info = c.CallSync(std::string(mp::InfoRequest::kType), {{"names", {"web-1"}}});
  EXPECT_EQ(info["instances"][0]["state"], "running");
  EXPECT_EQ(SimStats(*sim_.proc)["ssh_commands"] - middle["ssh_commands"], 2);
}

TEST_F(HostdTest, BatchesWithAGoneNameStillWork) {
  Start("10ms");
  auto& c = *client_;
  for (auto n : {"web-1", "web-2", "web-3"})
    c.CallSync(std::string(mp::LaunchRequest::kType), {{"name", n}}, Mutating(n));
  // multipassd answers NOT_FOUND for the whole batch and deletes nothing;
  // the session deletes the ones that exist.
  auto deleted = c.CallSync(std::string(mp::DeleteRequest::kType),
                            {{"names", {"web-1", "web-ghost"}}}, Mutating("delete-batch"));
  EXPECT_EQ(deleted["deleted"], nlohmann::json::array({"web-1"}));
  EXPECT_EQ(Names(c.CallSync(std::string(mp::ListRequest::kType), {{"prefix", "web"}})),
            (std::vector<std::string>{"web-2", "web-3"}));
  // Only unknown names: not_found.
  EXPECT_EQ(AppCodeOf(CallError(c, mp::DeleteRequest::kType, {{"names", {"web-ghost"}}},
                                Mutating("delete-ghost"))),
            AppCode::kNotFound);
  // info answers for the names that exist.
  auto info = c.CallSync(std::string(mp::InfoRequest::kType), {{"names", {"web-2", "web-ghost"}}});
  EXPECT_EQ(Names(info), std::vector<std::string>{"web-2"});
}

TEST_F(HostdTest, AStartFailureDuringLaunchIsLabelledStartFailed) {
  Start("10ms", {}, {"--fail-every-nth-launch", "1"});
  auto e = CallError(*client_, mp::LaunchRequest::kType, {{"name", "web-1"}},
                     Mutating("launch-web-1", 10s));
  EXPECT_EQ(AppCodeOf(e), AppCode::kStartFailed) << e.what();
  // multipassd removed it: nothing left to clean up.
  EXPECT_TRUE(
      Names(client_->CallSync(std::string(mp::ListRequest::kType), {{"prefix", "web"}})).empty());
}

TEST(HostdStartup, RefusesADaemonOlderThan113NamingBothVersions) {
  TempDir dir;
  auto sim = StartSim(dir, "10ms", {"--daemon-version", "1.12.0"});
  auto keys = MakeKeys(dir);
  { std::ofstream(dir.path() + "/passphrase") << "sesame\n"; }
  ChildProcess hostd({BinDir() + "/multipass-hostd", "--multipass-address", sim.address,
                      "--multipass-passphrase-file", dir.path() + "/passphrase", "--bind",
                      "ipc://" + dir.path() + "/hostd.sock"});
  EXPECT_EQ(hostd.Wait(20s), 2) << hostd.stderr_text();
  const auto err = hostd.stderr_text();
  EXPECT_NE(err.find("version 1.12.0"), std::string::npos) << err;
  EXPECT_NE(err.find("minimum supported is 1.13.0"), std::string::npos) << err;
}

TEST(HostdStartup, WarnsOnceForADaemonNewerThanTested) {
  TempDir dir;
  auto sim = StartSim(dir, "10ms", {"--daemon-version", "1.17.0"});
  auto keys = MakeKeys(dir);
  auto hostd = StartHostd(dir, sim, keys);
  mps::bus::BusContext ctx;
  auto client = Connect(ctx, hostd, keys, keys.client_key);
  for (int i = 0; i < 3; ++i)
    client->CallSync(std::string(mp::VersionRequest::kType), nlohmann::json::object());
  client.reset();
  hostd.proc->Signal(SIGTERM);
  EXPECT_EQ(hostd.proc->Wait(10s), 0);
  const auto err = hostd.proc->stderr_text();
  auto first = err.find("newer than 1.16.3");
  ASSERT_NE(first, std::string::npos) << err;
  EXPECT_EQ(err.find("newer than 1.16.3", first + 1), std::string::npos) << err;
}

TEST(HostdStartup, OnAUsedHostItNeedsTheRightPassphrase) {
  TempDir dir;
  auto sim = StartSim(dir, "10ms");
  // No passphrase: the daemon knows only the CLI's certificate.
  ChildProcess none({BinDir() + "/multipass-hostd", "--multipass-address", sim.address, "--bind",
                     "ipc://" + dir.path() + "/a.sock", "--state-dir", dir.path() + "/a"});
  EXPECT_EQ(none.Wait(20s), 2) << none.stderr_text();
  EXPECT_NE(none.stderr_text().find("--multipass-passphrase-file"), std::string::npos)
      << none.stderr_text();
  { std::ofstream(dir.path() + "/wrong") << "open sesame\n"; }
  ChildProcess wrong({BinDir() + "/multipass-hostd", "--multipass-address", sim.address,
                      "--multipass-passphrase-file", dir.path() + "/wrong", "--bind",
                      "ipc://" + dir.path() + "/b.sock", "--state-dir", dir.path() + "/b"});
  EXPECT_EQ(wrong.Wait(20s), 2) << wrong.stderr_text();
  EXPECT_NE(wrong.stderr_text().find("rejected the passphrase"), std::string::npos)
      << wrong.stderr_text();
  // With the right one hostd authenticates and serves (StartHostd checks "ready").
  auto keys = MakeKeys(dir);
  auto hostd = StartHostd(dir, sim, keys);
  // Each hostd above was refused first (its health probe may be refused too).
  EXPECT_GE(SimStats(*sim.proc)["unauthenticated_calls"], 3);
  hostd.proc->Signal(SIGTERM);
  EXPECT_EQ(hostd.proc->Wait(10s), 0);
}

TEST(HostdStartup, RefusesTcpWithoutCurveKeysOrWithBadKeyFiles) {
  TempDir dir;
  ChildProcess bare({BinDir() + "/multipass-hostd", "--bind", "tcp://127.0.0.1:1"});
  EXPECT_EQ(bare.Wait(10s), 2);
  EXPECT_NE(bare.stderr_text().find("--server-key"), std::string::npos) << bare.stderr_text();

  { std::ofstream(dir.path() + "/bad.key") << "not a key\n"; }
  std::filesystem::create_directories(dir.path() + "/clients");
  ChildProcess bad({BinDir() + "/multipass-hostd", "--bind", "tcp://127.0.0.1:1", "--server-key",
                    dir.path() + "/bad.key", "--authorized-keys", dir.path() + "/clients"});
  EXPECT_EQ(bad.Wait(10s), 2);
  EXPECT_NE(bad.stderr_text().find("--server-key"), std::string::npos) << bad.stderr_text();
  EXPECT_NE(bad.stderr_text().find("bad.key"), std::string::npos) << bad.stderr_text();

  ChildProcess missing({BinDir() + "/multipass-hostd", "--bind", "tcp://127.0.0.1:1",
                        "--server-key", dir.path() + "/absent.key", "--authorized-keys",
                        dir.path() + "/clients"});
  EXPECT_EQ(missing.Wait(10s), 2);
  EXPECT_NE(missing.stderr_text().find("absent.key"), std::string::npos) << missing.stderr_text();

  ChildProcess help({BinDir() + "/multipass-hostd", "--help"});
  std::string text;
  while (auto line = help.ReadLine(10s)) text += *line + "\n";
  for (const char* flag :
       {"--multipass-address", "--multipass-cert", "--multipass-key", "--multipass-ca",
        "--multipass-server-name", "--multipass-passphrase-file", "--bind", "--server-key",
        "--authorized-keys", "--allow-prefix", "--state-dir", "--max-parallel-launches"})
    EXPECT_NE(text.find(flag), std::string::npos) << flag;
}

// Direct mode (multipass-target without hostd): the same actor on inproc://.
TEST(SessionInProcess, ServesTheProtocolAndPublishesEvents) {
  TempDir dir;
  auto sim = StartSim(dir, "100ms");
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 2);
  caf::actor_system sys{cfg};
  {
    mps::bus::BusContext ctx;
    mps::bus::ServerOptions so;
    so.endpoint = "inproc://multipass-session";
    mps::bus::BusServer server(ctx, so);
    mps::bus::PublisherOptions po;
    po.endpoint = mps::bus::EventsEndpointFor(so.endpoint);
    mps::bus::EventPublisher publisher(ctx, po, std::make_shared<mps::bus::MemoryEventLog>());
    publisher.ServeReplay(server);
    mps::multipass::SessionOptions options;
    options.client.address = sim.address;
    options.client.passphrase = "sesame";
    options.allowed_prefixes = {"web"};
    auto session = mps::multipass::ServeMultipassSession(sys, server, &publisher, options);
    server.Start();
    publisher.Start();

    mps::bus::BusClient client(ctx, {so.endpoint, "direct", std::nullopt, {}, 3, nullptr});
    WaitUntilDaemonAnswers(client);
    client.CallSync(std::string(mp::LaunchRequest::kType), {{"name", "web-1"}}, Mutating("l1"));
    EXPECT_EQ(Names(client.CallSync(std::string(mp::ListRequest::kType), {{"prefix", "web"}})),
              std::vector<std::string>{"web-1"});
    auto failed = CallError(client, mp::LaunchRequest::kType, {{"name", "web-1"}}, Mutating("l2"));
    EXPECT_EQ(AppCodeOf(failed), AppCode::kNameTaken);
    client.CallSync(std::string(mp::DeleteRequest::kType), {{"names", {"web-1"}}}, Mutating("d1"));

    std::vector<std::string> events;
    for (const auto& logged : publisher.log().ReadFrom(1, 100)) {
      auto e = mps::bus::Decode(logged.frame);
      // host.capacity events follow launches and deletes at their own pace.
      if (e.type.rfind("instance.", 0) != 0) continue;
      events.push_back(e.type + " " + e.payload.value("name", ""));
    }
    EXPECT_EQ(events,
              (std::vector<std::string>{"instance.launching web-1", "instance.running web-1",
                                        "instance.launching web-1", "instance.failed web-1",
                                        "instance.deleted web-1"}));
    // The CAF convention of caf_bridge.h, for actors calling the session directly.
    caf::scoped_actor self{sys};
    mps::bus::Envelope request;
    request.type = std::string(mp::LaunchRequest::kType);
    request.idempotency_key = "caf-1";
    request.payload = {{"name", "web-2"}};
    std::string launched;
    self->request(session, 20s, mps::bus::bus_request_atom::value, request)
        .receive(
            [&](const mps::bus::BusAnswer& a) {
              ASSERT_FALSE(a.error) << a.error->what();
              launched = a.payload["name"];
            },
            [&](caf::error& e) { FAIL() << sys.render(e); });
    EXPECT_EQ(launched, "web-2");
    request.type = std::string(mp::InfoRequest::kType);
    request.payload = {{"names", {"webapp-2"}}};
    self->request(session, 5s, mps::bus::bus_request_atom::value, request)
        .receive(
            [&](const mps::bus::BusAnswer& a) {
              ASSERT_TRUE(a.error);
              EXPECT_EQ(AppCodeOf(*a.error), AppCode::kNotAllowed);
            },
            [&](caf::error& e) { FAIL() << sys.render(e); });

    server.Stop();
    EXPECT_TRUE(mps::multipass::StopMultipassSession(sys, session));
    EXPECT_FALSE(session);
  }
}

// The session's contract checks run before multipassd is asked, so these
// need no daemon: the session points at a socket nobody serves.
class SessionContract : public ::testing::Test {
 protected:
  void SetUp() override {
    cfg_.set("scheduler.max-threads", 2);
    sys_ = std::make_unique<caf::actor_system>(cfg_);
    mps::bus::ServerOptions so;
    so.endpoint = "inproc://multipass-session-contract";
    server_ = std::make_unique<mps::bus::BusServer>(ctx_, so);
    mps::multipass::SessionOptions options;
    options.client.address = "unix:" + dir_.path() + "/nobody.sock";
    session_ = mps::multipass::ServeMultipassSession(*sys_, *server_, nullptr, options);
    server_->Start();
    client_ = std::make_unique<mps::bus::BusClient>(
        ctx_, mps::bus::ClientOptions{so.endpoint, "contract-test", std::nullopt, {}, 1, nullptr});
  }
  void TearDown() override {
    client_.reset();
    server_->Stop();
    EXPECT_TRUE(mps::multipass::StopMultipassSession(*sys_, session_));
    server_.reset();
  }
  TempDir dir_;
  caf::actor_system_config cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  mps::bus::BusContext ctx_;
  std::unique_ptr<mps::bus::BusServer> server_;
  caf::actor session_;
  std::unique_ptr<mps::bus::BusClient> client_;
};

TEST_F(SessionContract, MistypedFieldIsBadPayloadNamingTheField) {
  auto cpus = CallError(*client_, mp::LaunchRequest::kType, {{"name", "web-1"}, {"cpus", "two"}},
                        Mutating("l1", 5s));
  EXPECT_EQ(cpus.code(), ErrorCode::kBadPayload);
  EXPECT_EQ(std::string(cpus.what()),
            "multipass.launch: field 'cpus' expected an integer, got the string \"two\"");
  auto names =
      CallError(*client_, mp::DeleteRequest::kType, {{"names", {"web-1", 7}}}, Mutating("d1", 5s));
  EXPECT_EQ(names.code(), ErrorCode::kBadPayload);
  EXPECT_NE(std::string(names.what()).find("field 'names[1]'"), std::string::npos) << names.what();
  // The semantic checks stay: bounds, non-empty names, the idempotency key.
  auto huge = CallError(*client_, mp::LaunchRequest::kType,
                        {{"name", "web-1"}, {"timeout_s", 2'000'000}}, Mutating("l2", 5s));
  EXPECT_EQ(huge.code(), ErrorCode::kBadPayload);
  EXPECT_NE(std::string(huge.what()).find("field 'timeout_s'"), std::string::npos) << huge.what();
  auto blank = CallError(*client_, mp::StartRequest::kType, {{"names", {""}}}, Mutating("s1", 5s));
  EXPECT_NE(std::string(blank.what()).find("field 'names[0]' must not be empty"), std::string::npos)
      << blank.what();
  auto no_key = CallError(*client_, mp::LaunchRequest::kType, {{"name", "web-1"}}, {5s, ""});
  EXPECT_EQ(no_key.code(), ErrorCode::kBadPayload);
}

TEST_F(SessionContract, UnknownFieldIsRefused) {
  auto launch = CallError(*client_, mp::LaunchRequest::kType, {{"name", "web-1"}, {"cpu", 2}},
                          Mutating("l1", 5s));
  EXPECT_EQ(launch.code(), ErrorCode::kBadPayload);
  EXPECT_NE(std::string(launch.what()).find("field 'cpu' is not part of the contract"),
            std::string::npos)
      << launch.what();
  auto version = CallError(*client_, mp::VersionRequest::kType, {{"verbose", true}});
  EXPECT_EQ(version.code(), ErrorCode::kBadPayload);
  EXPECT_NE(std::string(version.what()).find("field 'verbose'"), std::string::npos)
      << version.what();
}

// The session served in-process with one launch in flight; the launch's
// answer arrives in `answer`.
struct SessionWithALaunch {
  TempDir dir;
  Sim sim;
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  mps::bus::BusContext ctx;
  std::unique_ptr<mps::bus::BusServer> server;
  caf::actor session;
  std::unique_ptr<mps::bus::BusClient> client;
  std::promise<mps::bus::CallResult> answered;
  std::future<mps::bus::CallResult> answer = answered.get_future();

  SessionWithALaunch(const std::string& boot_delay, std::vector<std::string> sim_flags) {
    sim = StartSim(dir, boot_delay, std::move(sim_flags));
    cfg.set("scheduler.max-threads", 2);
    sys = std::make_unique<caf::actor_system>(cfg);
    mps::bus::ServerOptions so;
    so.endpoint = "inproc://multipass-session-stop";
    server = std::make_unique<mps::bus::BusServer>(ctx, so);
    mps::multipass::SessionOptions options;
    options.client.address = sim.address;
    options.client.passphrase = "sesame";
    session = mps::multipass::ServeMultipassSession(*sys, *server, nullptr, options);
    server->Start();
    client = std::make_unique<mps::bus::BusClient>(
        ctx, mps::bus::ClientOptions{so.endpoint, "direct", std::nullopt, {}, 3, nullptr});
    WaitUntilDaemonAnswers(*client);
    client->Call(std::string(mp::LaunchRequest::kType), {{"name", "web-1"}}, Mutating("l1", 120s),
                 [this](mps::bus::CallResult r) { answered.set_value(std::move(r)); });
    // Until the daemon has it (listed STARTING): the gRPC launch is in flight.
    mps::multipass::MultipassClientOptions observer;
    observer.address = sim.address;
    observer.passphrase = "sesame";
    mps::multipass::MultipassClient daemon(observer);
    for (int i = 0; i < 200 && daemon.List("web-").empty(); ++i) std::this_thread::sleep_for(20ms);
    EXPECT_EQ(daemon.List("web-").size(), 1u);
  }
  ~SessionWithALaunch() {
    client.reset();
    server.reset();
    if (session) mps::multipass::StopMultipassSession(*sys, session);
  }
};

std::chrono::milliseconds Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               t0);
}

TEST(SessionStop, CancelsALaunchInFlightAtOnceAndAnswersShuttingDown) {
  SessionWithALaunch w("100ms", {"--hang-launches"});  // the launch never ends by itself
  ASSERT_EQ(w.answer.wait_for(200ms), std::future_status::timeout);
  auto t0 = std::chrono::steady_clock::now();
  auto stop = mps::multipass::StopMultipassSession(*w.sys, w.session);  // grace 0
  auto took = Since(t0);
  std::cout << "StopMultipassSession took " << took.count() << " ms\n";
  EXPECT_TRUE(stop.stopped);
  EXPECT_EQ(stop.interrupted, std::vector<std::string>{"web-1"});
  EXPECT_FALSE(stop) << "a launch was interrupted";
  EXPECT_FALSE(w.session);
  EXPECT_LT(took, 5s) << "the hanging launch was waited for";
  ASSERT_EQ(w.answer.wait_for(5s), std::future_status::ready);
  auto r = w.answer.get();
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code(), ErrorCode::kShuttingDown) << r.error->what();
}

TEST(SessionStop, RunningLaunchesFinishWithinTheGrace) {
  SessionWithALaunch w("500ms", {});
  auto stop = mps::multipass::StopMultipassSession(*w.sys, w.session, 20s);
  EXPECT_TRUE(stop) << "nothing interrupted";
  ASSERT_EQ(w.answer.wait_for(5s), std::future_status::ready);
  auto r = w.answer.get();
  EXPECT_FALSE(r.error) << r.error->what();
}

TEST(SessionStop, CancelRefusesNewRequestsAndCancelsLaunchesWithoutEndingTheActor) {
  SessionWithALaunch w("100ms", {"--hang-launches"});
  mps::multipass::CancelMultipassSession(w.session);
  ASSERT_EQ(w.answer.wait_for(5s), std::future_status::ready);
  auto r = w.answer.get();
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code(), ErrorCode::kShuttingDown) << r.error->what();
  auto refused = CallError(*w.client, mp::ListRequest::kType, {{"prefix", "web"}});
  EXPECT_EQ(refused.code(), ErrorCode::kShuttingDown) << refused.what();
  EXPECT_TRUE(w.session);
  auto stop = mps::multipass::StopMultipassSession(*w.sys, w.session);
  EXPECT_TRUE(stop.stopped);
  EXPECT_TRUE(stop.interrupted.empty()) << "cancelled before the stop";
  EXPECT_FALSE(w.session);
}

TEST(SessionStop, CancelAllReachesEverySessionOfTheProcess) {
  SessionWithALaunch w("100ms", {"--hang-launches"});
  mps::multipass::CancelAllMultipassSessions();
  ASSERT_EQ(w.answer.wait_for(5s), std::future_status::ready);
  auto r = w.answer.get();
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code(), ErrorCode::kShuttingDown) << r.error->what();
  auto refused = CallError(*w.client, mp::ListRequest::kType, {{"prefix", "web"}});
  EXPECT_EQ(refused.code(), ErrorCode::kShuttingDown) << refused.what();
  EXPECT_TRUE(w.session);
  auto stop = mps::multipass::StopMultipassSession(*w.sys, w.session);
  EXPECT_TRUE(stop);
  EXPECT_FALSE(w.session);
}

}  // namespace

namespace {

TEST(InstanceNameFilter, PrefixMustBeFollowedByADash) {
  mps::multipass::InstanceNameFilter filter({"web", "db"});
  EXPECT_TRUE(filter.Allows("web-1"));
  EXPECT_TRUE(filter.Allows("db-primary-2"));
  EXPECT_FALSE(filter.Allows("webapp-1"));
  EXPECT_FALSE(filter.Allows("web"));
  EXPECT_FALSE(filter.Allows("web-"));
  EXPECT_FALSE(filter.Allows("cache-1"));
  EXPECT_EQ(filter.Describe(), "web-*, db-*");
  mps::multipass::InstanceNameFilter open({});
  EXPECT_TRUE(open.Allows("anything"));
  EXPECT_EQ(open.Describe(), "any name");
}

}  // namespace

// host.capacity: what hostd tells the plugin about its host.
namespace {

namespace ch = mps::contracts::host;
constexpr std::int64_t kGiB = 1LL << 30;

ch::CapacityReply Capacity(mps::bus::BusClient& c) {
  return mps::contracts::DecodeReply<ch::CapacityRequest>(
      c.CallSync(std::string(ch::CapacityRequest::kType), nlohmann::json::object()));
}

TEST_F(HostdTest, CapacityComesFromDaemonInfoWithTheRulesAndWhatItLaunched) {
  Start("10ms",
        {"--cpu-allocation-ratio", "2", "--memory-allocation-ratio", "1.5", "--reserve-memory",
         "1G", "--reserve-disk", "10G", "--max-instances", "5"},
        {"--host-cpus", "8", "--host-memory", "16G"});
  auto empty = Capacity(*client_);
  EXPECT_EQ(empty.totals.source, "daemon_info");
  EXPECT_EQ(empty.totals.cpus, 8);
  EXPECT_EQ(empty.totals.memory_bytes, 16 * kGiB);
  EXPECT_EQ(empty.totals.disk_bytes, 200 * kGiB);  // the sim's data volume
  EXPECT_EQ(empty.allocated.instances, 0);
  EXPECT_EQ(empty.headroom.cpu_allocation_ratio, 2.0);
  EXPECT_EQ(empty.headroom.memory_allocation_ratio, 1.5);
  EXPECT_EQ(empty.headroom.reserve_memory_bytes, kGiB);
  EXPECT_EQ(empty.headroom.reserve_disk_bytes, 10 * kGiB);
  EXPECT_EQ(empty.headroom.max_instances, 5);
  EXPECT_TRUE(empty.health.daemon_reachable);
  EXPECT_EQ(empty.health.daemon_version, "1.16.3");
  EXPECT_EQ(empty.health.consecutive_launch_failures, 0);

  client_->CallSync(std::string(mp::LaunchRequest::kType),
                    {{"name", "web-1"}, {"cpus", 2}, {"memory", "2G"}, {"disk", "10G"}},
                    Mutating("launch-web-1"));
  client_->CallSync(std::string(mp::LaunchRequest::kType), {{"name", "web-2"}},
                    Mutating("launch-web-2"));
  auto two = Capacity(*client_);
  EXPECT_EQ(two.allocated.instances, 2);
  EXPECT_EQ(two.allocated.cpus, 2 + 1);  // web-2 at Multipass's defaults
  EXPECT_EQ(two.allocated.memory_bytes, 2 * kGiB + kGiB);
  EXPECT_EQ(two.allocated.disk_bytes, 10 * kGiB + 5 * kGiB);
  EXPECT_EQ(two.allocated.estimated, 0);

  client_->CallSync(std::string(mp::DeleteRequest::kType), {{"names", {"web-1"}}},
                    Mutating("delete-web-1"));
  auto one = Capacity(*client_);
  EXPECT_EQ(one.allocated.instances, 1);
  EXPECT_EQ(one.allocated.cpus, 1);
}

TEST_F(HostdTest, PublishesCapacityWhenItChanges) {
  Start("10ms");
  std::mutex m;
  std::condition_variable cv;
  std::vector<ch::CapacityReply> seen;
  mps::bus::SubscriberOptions so;
  so.events_endpoint = mps::bus::EventsEndpointFor(hostd_.endpoint);
  so.replay_endpoint = hostd_.endpoint;
  so.name = "hostd-test-capacity";
  so.curve = mps::bus::CurveClientConfig{mps::bus::ReadSecretKeyFile(keys_.client_key).secret_z85,
                                         mps::bus::ReadKeyFile(keys_.server_pub)};
  so.since = 0;
  mps::bus::EventSubscriber sub(ctx_, so, [&](const mps::bus::Envelope& e) {
    if (e.type != ch::CapacityChanged::kType) return;
    auto event = mps::contracts::Decode<ch::CapacityChanged>(e.payload, e.type);
    std::lock_guard lock(m);
    seen.push_back(event);
    cv.notify_all();
  });
  sub.Start();
  client_->CallSync(std::string(mp::LaunchRequest::kType), {{"name", "web-1"}, {"cpus", 3}},
                    Mutating("launch-web-1"));
  {
    std::unique_lock lock(m);
    EXPECT_TRUE(
        cv.wait_for(lock, 10s, [&] { return !seen.empty() && seen.back().allocated.cpus == 3; }))
        << seen.size() << " capacity events";
  }
  // Asking again with nothing changed publishes nothing new: the next event
  // seen is the delete's.
  std::size_t before = 0;
  {
    std::lock_guard lock(m);
    before = seen.size();
  }
  Capacity(*client_);
  client_->CallSync(std::string(mp::DeleteRequest::kType), {{"names", {"web-1"}}},
                    Mutating("delete-web-1"));
  std::unique_lock lock(m);
  EXPECT_TRUE(cv.wait_for(lock, 10s, [&] { return seen.size() > before; }));
  EXPECT_EQ(seen.at(before).allocated.instances, 0);
  lock.unlock();
  sub.Stop();
}

TEST_F(HostdTest, ARestartedHostdKnowsWhatItLaunchedAndEstimatesTheRest) {
  Start("10ms");
  client_->CallSync(std::string(mp::LaunchRequest::kType),
                    {{"name", "web-1"}, {"cpus", 4}, {"memory", "4G"}}, Mutating("launch-web-1"));
  auto restart = [&] {
    client_.reset();
    hostd_.proc->Signal(SIGTERM);
    ASSERT_EQ(hostd_.proc->Wait(10s), 0) << hostd_.proc->stderr_text();
    hostd_ = StartHostd(dir_, sim_, keys_);
    client_ = Connect(ctx_, hostd_, keys_, keys_.client_key);
    WaitUntilDaemonAnswers(*client_);
  };
  // The size it launched web-1 with is kept in its state dir.
  restart();
  auto c = Capacity(*client_);
  EXPECT_EQ(c.allocated.instances, 1);
  EXPECT_EQ(c.allocated.estimated, 0);
  EXPECT_EQ(c.allocated.cpus, 4);
  EXPECT_EQ(c.allocated.memory_bytes, 4 * kGiB);

  // An instance it has no size for (launched by hand, or before that file):
  // multipassd tells the size only with runtime information (an SSH command
  // per VM), so it counts at Multipass's defaults, as estimated.
  std::filesystem::remove(dir_.path() + "/hostd-state/launched-sizes.json");
  restart();
  c = Capacity(*client_);
  EXPECT_EQ(c.allocated.instances, 1);
  EXPECT_EQ(c.allocated.estimated, 1);
  EXPECT_EQ(c.allocated.cpus, 1);
  EXPECT_EQ(c.allocated.memory_bytes, kGiB);
}

TEST_F(HostdTest, FailedLaunchesAndAnUnreachableDaemonAreItsHealth) {
  Start("10ms", {}, {"--fail-every-nth-launch", "1"});
  for (int i = 1; i <= 3; ++i) {
    auto name = "web-" + std::to_string(i);
    CallError(*client_, mp::LaunchRequest::kType, {{"name", name}}, Mutating("launch-" + name));
  }
  auto failing = Capacity(*client_);
  EXPECT_TRUE(failing.health.daemon_reachable);
  EXPECT_EQ(failing.health.consecutive_launch_failures, 3);
  EXPECT_FALSE(failing.health.last_launch_failure.empty());
  EXPECT_EQ(failing.allocated.instances, 0);  // the daemon removed them

  sim_.proc->Signal(SIGKILL);
  sim_.proc->Wait(5s);
  auto unreachable = Capacity(*client_);
  EXPECT_FALSE(unreachable.health.daemon_reachable);
  EXPECT_NE(unreachable.health.daemon_error.find("unreachable"), std::string::npos)
      << unreachable.health.daemon_error;
  // Totals still come from somewhere: the host itself (here without the
  // snap's storage directory, so without a disk size, and saying why).
  EXPECT_EQ(unreachable.totals.source, "host");
  EXPECT_GT(unreachable.totals.cpus, 0);
  EXPECT_GT(unreachable.totals.memory_bytes, 0);
  EXPECT_EQ(unreachable.totals.disk_bytes, 0);
  EXPECT_NE(unreachable.totals.error.find("cannot statvfs multipassd's storage directory "
                                          "/var/snap/multipass/common"),
            std::string::npos)
      << unreachable.totals.error;
}

TEST_F(HostdTest, BeforeDaemonInfoTheHostsOwnTotalsAreUsed) {
  Start("10ms", {"--host-disk-path", dir_.path()}, {"--daemon-version", "1.14.1"});
  auto c = Capacity(*client_);
  EXPECT_EQ(c.totals.source, "host");
  EXPECT_EQ(c.totals.disk_path, dir_.path());
  EXPECT_EQ(c.totals.cpus, ::sysconf(_SC_NPROCESSORS_ONLN));
  std::ifstream meminfo("/proc/meminfo");
  std::stringstream text;
  text << meminfo.rdbuf();
  EXPECT_EQ(c.totals.memory_bytes, mps::multipass::MemTotalFromMeminfo(text.str()).value_or(-1));
  struct statvfs fs {};
  ASSERT_EQ(::statvfs(dir_.path().c_str(), &fs), 0);
  EXPECT_EQ(c.totals.disk_bytes,
            static_cast<std::int64_t>(fs.f_blocks) * static_cast<std::int64_t>(fs.f_frsize));
  EXPECT_EQ(c.health.daemon_version, "1.14.1");
}

TEST_F(HostdTest, CapacityRequestWithAnUnknownFieldIsRefused) {
  Start("10ms");
  auto e = CallError(*client_, ch::CapacityRequest::kType, {{"pool", "web"}});
  EXPECT_EQ(e.code(), ErrorCode::kBadPayload);
  EXPECT_NE(std::string(e.what()).find("pool"), std::string::npos) << e.what();
}

TEST(HostdStartup, RefusesBadHeadroomFlagsNamingThem) {
  TempDir dir;
  ChildProcess bad_size({BinDir() + "/multipass-hostd", "--bind", "ipc://" + dir.path() + "/h.sock",
                         "--reserve-memory", "lots"});
  EXPECT_EQ(bad_size.Wait(10s), 2);
  EXPECT_NE(bad_size.stderr_text().find("--reserve-memory: expected a size"), std::string::npos)
      << bad_size.stderr_text();
  ChildProcess bad_ratio({BinDir() + "/multipass-hostd", "--bind",
                          "ipc://" + dir.path() + "/h.sock", "--cpu-allocation-ratio", "0"});
  EXPECT_NE(bad_ratio.Wait(10s), 0);
  EXPECT_NE(bad_ratio.stderr_text().find("--cpu-allocation-ratio"), std::string::npos)
      << bad_ratio.stderr_text();
}

}  // namespace

namespace {

// `mpscale hosts` over two real hosts (each a cluster-sim with its own
// hostd and key) and one whose hostd is not running.
TEST(MpscaleHosts, ListsEveryHostFromTheHostsFileAndNamesTheOneThatDoesNotAnswer) {
  TempDir a_dir, b_dir;
  auto a_sim = StartSim(a_dir, "10ms", {"--host-cpus", "8", "--host-memory", "16G"});
  auto b_sim = StartSim(b_dir, "10ms");
  auto a_keys = MakeKeys(a_dir);
  auto b_keys = MakeKeys(b_dir);
  // The operator's key (a's "plugin") is admitted by both hostds.
  std::filesystem::copy_file(a_dir.path() + "/clients/plugin.pub",
                             b_dir.path() + "/clients/operator.pub");
  auto a_hostd =
      StartHostd(a_dir, a_sim, a_keys, {"--reserve-memory", "2G", "--max-instances", "4"});
  auto b_hostd = StartHostd(b_dir, b_sim, b_keys);
  mps::bus::BusContext ctx;
  auto a_client = Connect(ctx, a_hostd, a_keys, a_keys.client_key);
  WaitUntilDaemonAnswers(*a_client);
  WaitUntilDaemonAnswers(*Connect(ctx, b_hostd, b_keys, b_keys.client_key));
  a_client->CallSync(std::string(mp::LaunchRequest::kType),
                     {{"name", "web-1"}, {"cpus", 2}, {"memory", "4G"}}, Mutating("launch-web-1"));

  auto hosts_file = a_dir.path() + "/hosts.json";
  std::ofstream(hosts_file) << nlohmann::json{
      {"hosts",
       {{{"name", "mp-a"},
         {"zone", "z1"},
         {"hostd_address", a_hostd.endpoint},
         {"hostd_server_key_path", a_keys.server_pub}},
        {{"name", "mp-b"},
         {"hostd_address", b_hostd.endpoint},
         {"hostd_server_key_path", b_keys.server_pub}},
        {{"name", "mp-gone"},
         {"hostd_address", "tcp://127.0.0.1:" + std::to_string(FreePortPair())},
         {"hostd_server_key_path",
          b_keys.server_pub}}}}}.dump();

  ChildProcess table({BinDir() + "/mpscale", "hosts", "--hosts-file", hosts_file, "--key",
                      a_keys.client_key, "--timeout", "2"});
  std::vector<std::string> lines;
  while (auto line = table.ReadLine(15s)) lines.push_back(*line);
  EXPECT_EQ(table.Wait(15s), 1);
  ASSERT_EQ(lines.size(), 4u) << table.stderr_text();
  EXPECT_EQ(lines[0].rfind("HOST", 0), 0u) << lines[0];
  // 8 CPUs less 2; 16 GiB less the 2 GiB reserve and 4 GiB.
  EXPECT_EQ(lines[1].rfind("mp-a ", 0), 0u) << lines[1];
  for (const char* part : {" z1 ", " 1/4 ", "6 of 8", "10.0 GiB of 14.0 GiB", " ok"})
    EXPECT_NE(lines[1].find(part), std::string::npos) << part << " in " << lines[1];
  EXPECT_EQ(lines[2].rfind("mp-b ", 0), 0u) << lines[2];
  for (const char* part : {"16 of 16", "32.0 GiB of 32.0 GiB", " ok"})
    EXPECT_NE(lines[2].find(part), std::string::npos) << part << " in " << lines[2];
  EXPECT_EQ(lines[3].rfind("mp-gone ", 0), 0u) << lines[3];
  EXPECT_NE(lines[3].find("unreachable"), std::string::npos) << lines[3];
  EXPECT_NE(table.stderr_text().find("host mp-gone: no answer from tcp://127.0.0.1:"),
            std::string::npos)
      << table.stderr_text();

  // One host by address, as JSON.
  ChildProcess json({BinDir() + "/mpscale", "hosts", "--hostd", b_hostd.endpoint, "--server-key",
                     b_keys.server_pub, "--key", a_keys.client_key, "--json"});
  std::string text;
  while (auto line = json.ReadLine(15s)) text += *line + "\n";
  EXPECT_EQ(json.Wait(15s), 0) << json.stderr_text();
  auto parsed = nlohmann::json::parse(text);
  ASSERT_EQ(parsed.size(), 1u);
  EXPECT_EQ(parsed[0]["name"], b_hostd.endpoint);
  EXPECT_EQ(parsed[0]["healthy"], true);
  EXPECT_EQ(parsed[0]["capacity"]["totals"]["cpus"], 16);
  EXPECT_EQ(parsed[0]["free"]["cpus"], 16);

  // A bad hosts file is a usage error naming the entry.
  std::ofstream(hosts_file) << R"({"hosts": [{"name": "mp-a"}]})";
  ChildProcess bad(
      {BinDir() + "/mpscale", "hosts", "--hosts-file", hosts_file, "--key", a_keys.client_key});
  EXPECT_EQ(bad.Wait(10s), 2);
  EXPECT_NE(bad.stderr_text().find("hosts[0] (\"mp-a\"): hostd_address: missing"),
            std::string::npos)
      << bad.stderr_text();

  a_client.reset();
  for (auto* h : {&a_hostd, &b_hostd}) {
    h->proc->Signal(SIGTERM);
    EXPECT_EQ(h->proc->Wait(10s), 0) << h->proc->stderr_text();
  }
}

}  // namespace
