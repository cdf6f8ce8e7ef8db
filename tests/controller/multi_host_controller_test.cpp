// One pool over three Multipass hosts (issue 13): the controller sends each
// instance's launch, start, stop, delete and info to its own host, the
// watcher lists every host, and a host that stops answering costs only its
// share. One fake Multipass per host, a fake Nomad and a real state cache,
// all on inproc://.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "cache/state_cache.h"
#include "controller/pool_controller.h"
#include "controller_harness.h"
#include "fake_peers.h"
#include "scaling/pool_status.h"
#include "scaling/state_store.h"
#include "support/temp_dir.h"
#include "watcher/pool_watcher.h"

namespace mps {
namespace {

using controller::ScaleStatus;
using namespace std::chrono_literals;
namespace mp = contracts::multipass;

std::atomic<int> world_number{0};
const std::vector<std::string> kHosts = {"mp-a", "mp-b", "mp-c"};

class MultiHostControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto n = std::to_string(world_number++);
    for (const auto& name : kHosts) {
      hosts_[name] =
          std::make_unique<testing::FakeMultipass>(context_, "inproc://fake-" + name + "-" + n);
      links_.hosts.push_back(
          {name, {}, hosts_[name]->Client(context_), "fake multipass-hostd " + name});
    }
    links_.multipass = links_.hosts.front().client;
    links_.multipass_where = links_.hosts.front().where;
    nomad_ = std::make_unique<testing::FakeNomad>(context_, "inproc://fake-nomad-mh-" + n);
    links_.nomad = nomad_->Client(context_);
    links_.nomad_where = "fake Nomad";
  }

  void TearDown() override {
    if (controller_) controller::StopPoolController(system_, controller_, 1s);
    if (watcher_) caf::anon_send_exit(watcher_, caf::exit_reason::user_shutdown);
    for (auto& host : links_.hosts) host.client->Shutdown();
    links_.nomad->Shutdown();
    if (cache_) caf::anon_send_exit(cache_, caf::exit_reason::user_shutdown);
  }

  void Start() {
    cache::CacheOptions co;
    co.state_dir = dir_.path();
    co.first_sync_wait = 2s;
    for (const auto& name : kHosts) co.hosts.emplace_back().name = name;
    cache_ = cache::SpawnStateCache(system_, co);
    controller_ =
        controller::SpawnPoolController(system_, testing::FastControllerOptions(links_, cache_));
  }

  void StartWatcher() {
    watcher_ = watcher::SpawnPoolWatcher(system_, testing::FastWatcherOptions(), links_, cache_,
                                         controller_);
  }

  // What the watcher would report: each host's listing (or, for the hosts
  // in `failing`, its error), and Nomad's nodes.
  void Observe(const std::set<std::string>& failing = {}) {
    Status();
    caf::scoped_actor self{system_};
    // Nomad sees every node, whichever host cannot be listed.
    mp::ListReply all;
    for (const auto& name : kHosts) {
      auto listing = hosts_[name]->Listing();
      all.instances.insert(all.instances.end(), listing.instances.begin(), listing.instances.end());
      for (const auto& instance : listing.instances) nomad_->PutNode(instance.name);
      cache::Observation o;
      o.pool = "web";
      o.host = name;
      o.epoch = Epoch();
      if (failing.contains(name)) {
        o.multipass_error = "fake multipass-hostd " + name + ": unreachable";
      } else {
        o.instances = std::move(listing);
      }
      self->send(cache_, cache::observe_atom::value, o);
    }
    cache::Observation nodes;
    nodes.pool = "web";
    nodes.nodes = testing::FakeMultipass::ReadyNodesOf(all);
    self->send(cache_, cache::observe_atom::value, nodes);
  }

  std::uint64_t Epoch() {
    caf::scoped_actor self{system_};
    std::uint64_t epoch = 0;
    self->request(cache_, 5s, cache::pools_atom::value)
        .receive(
            [&](cache::PoolTargets& t) {
              for (const auto& p : t.pools)
                if (p.pool == "web") epoch = p.epoch;
            },
            [](caf::error&) {});
    return epoch;
  }

  cache::StatusAnswer Status() { return testing::AskStatus(system_, cache_, policy_); }

  controller::ScaleOutcome Scale(std::int64_t target, std::string id) {
    return testing::RunScaleTo(system_, controller_, policy_, target, std::move(id));
  }

  std::map<std::string, std::size_t> PerHost() const {
    std::map<std::string, std::size_t> out;
    for (const auto& [name, host] : hosts_) out[name] = host->instances().size();
    return out;
  }

  template <class F>
  bool Eventually(F done, std::chrono::milliseconds limit = 10s) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(20ms);
    }
    return true;
  }

  // Puts `per_host` running instances with ready nodes on every host.
  void Populate(int per_host) {
    for (const auto& name : kHosts) {
      for (int i = 0; i < per_host; ++i) {
        std::string instance = "web-" + name + "-" + std::to_string(i);
        hosts_[name]->Put(instance, "running");
        nomad_->PutNode(instance);
      }
    }
  }

  testing::TempDir dir_;
  caf::actor_system_config config_;
  caf::actor_system system_{config_};
  bus::BusContext context_;
  std::map<std::string, std::unique_ptr<testing::FakeMultipass>> hosts_;
  std::unique_ptr<testing::FakeNomad> nomad_;
  controller::BusLinks links_;
  caf::actor cache_;
  caf::actor controller_;
  caf::actor watcher_;
  cache::ConfigMap policy_{
      {"node_class", "web"},     {"instance_image_name", "noble"}, {"max_parallel_launches", "4"},
      {"startup_timeout", "1s"}, {"image_download_timeout", "0s"}, {"node_drain_deadline", "1s"},
      {"node_purge", "true"}};
};

TEST_F(MultiHostControllerTest, ZeroToNineLaunchesThreeOnEachHost) {
  Start();
  Observe();
  auto outcome = Scale(9, "r1");
  EXPECT_EQ(outcome.status, ScaleStatus::kDone) << outcome.message;
  EXPECT_NE(outcome.message.find("placed 9 of 9 (mp-a 3, mp-b 3, mp-c 3)"), std::string::npos)
      << outcome.message;
  EXPECT_EQ(PerHost(), (std::map<std::string, std::size_t>{{"mp-a", 3}, {"mp-b", 3}, {"mp-c", 3}}));
  for (const auto& [name, host] : hosts_) EXPECT_EQ(host->count("multipass.launch"), 3) << name;
  EXPECT_EQ(Status().count, 9);
  // The store knows where each launch went.
  Observe();
  EXPECT_TRUE(scaling::StateStore(dir_.path()).PendingOperations("web").empty());
}

TEST_F(MultiHostControllerTest, MaxParallelLaunchesIsPerHostSoEveryHostLaunchesItsShareAtOnce) {
  policy_["max_parallel_launches"] = "2";
  for (const auto& [name, host] : hosts_) host->Set("multipass.launch", testing::Answering::kHold);
  Start();
  Observe();
  auto scale = std::async(std::launch::async, [&] { return Scale(9, "r1"); });
  // Two at once on each host: six in all, not two for the whole pool.
  for (const auto& [name, host] : hosts_)
    ASSERT_TRUE(host->WaitHeld("multipass.launch", 2)) << name;
  for (const auto& [name, host] : hosts_) host->Release("multipass.launch");
  ASSERT_EQ(scale.wait_for(10s), std::future_status::ready);
  auto outcome = scale.get();
  EXPECT_EQ(outcome.status, ScaleStatus::kDone) << outcome.message;
  for (const auto& [name, host] : hosts_) {
    EXPECT_EQ(host->count("multipass.launch"), 3) << name;
    EXPECT_EQ(host->max_in_flight("multipass.launch"), 2) << name;
  }
}

TEST_F(MultiHostControllerTest, NineToThreeKeepsOneOnEachHost) {
  Populate(3);
  Start();
  Observe();
  ASSERT_EQ(Status().count, 9);
  auto outcome = Scale(3, "r1");
  EXPECT_EQ(outcome.status, ScaleStatus::kDone) << outcome.message;
  EXPECT_EQ(PerHost(), (std::map<std::string, std::size_t>{{"mp-a", 1}, {"mp-b", 1}, {"mp-c", 1}}));
  EXPECT_EQ(nomad_->drained().size(), 6u);
  // Each delete went to the host of its instance: no NOT_FOUND elsewhere.
  for (const auto& [name, host] : hosts_) EXPECT_EQ(host->count("multipass.delete"), 2) << name;
}

TEST_F(MultiHostControllerTest, AnUnreachableHostIsNotCountedNotTouchedAndScaleOutGoesElsewhere) {
  Populate(2);
  Start();
  Observe();
  // mp-b stops answering: what it held is known, kept and not counted.
  Observe({"mp-b"});
  auto status = Status();
  EXPECT_EQ(status.count, 4);
  ASSERT_TRUE(status.meta.contains(scaling::kMetaHostsUnreachable));
  EXPECT_EQ(status.meta[scaling::kMetaHostsUnreachable],
            "mp-b: fake multipass-hostd mp-b: unreachable (2 instance(s) not counted)");

  auto out = Scale(6, "r1");
  EXPECT_EQ(out.status, ScaleStatus::kDone) << out.message;
  EXPECT_EQ(hosts_["mp-b"]->count("multipass.launch"), 0);
  EXPECT_EQ(PerHost(), (std::map<std::string, std::size_t>{{"mp-a", 3}, {"mp-b", 2}, {"mp-c", 3}}));

  Observe({"mp-b"});
  auto in = Scale(2, "r2");
  EXPECT_EQ(in.status, ScaleStatus::kDone) << in.message;
  EXPECT_EQ(hosts_["mp-b"]->count("multipass.delete"), 0);
  EXPECT_EQ(hosts_["mp-b"]->instances().size(), 2u);
  for (const auto& [instance, state] : hosts_["mp-b"]->instances())
    EXPECT_FALSE(nomad_->drained().contains("node-" + instance)) << instance;

  // mp-b answers again: its instances count again.
  Observe();
  EXPECT_EQ(Status().count, 4);
  EXPECT_FALSE(Status().meta.contains(scaling::kMetaHostsUnreachable));
}

// A launch whose hostd went away with it while the other hosts answered is
// no longer counted, so the autoscaler places its share elsewhere; when the
// host answers again without it, it is given up, not made late (which would
// only overshoot the target), and it is no launch failure (no backoff).
TEST_F(MultiHostControllerTest, ALaunchLostWithItsHostIsGivenUpNotMadeWhenTheHostReturns) {
  Populate(2);
  Start();
  StartWatcher();
  ASSERT_TRUE(Eventually([&] { return Status().count == 6; }));
  hosts_["mp-b"]->Set("multipass.launch", testing::Answering::kHold);
  auto scale = std::async(std::launch::async, [&] { return Scale(9, "r1"); });
  ASSERT_TRUE(hosts_["mp-b"]->WaitHeld("multipass.launch", 1));
  // mp-b stops answering, its launch in flight: 6 counted, ready.
  hosts_["mp-b"]->FailWith("multipass.list", contracts::AppCode::kUnreachable, "hostd gone");
  ASSERT_TRUE(Eventually([&] {
    auto s = Status();
    return s.meta.contains(scaling::kMetaHostsUnreachable) && s.count == 6;
  })) << Status().count;
  // The launch never reached multipassd: its answer is "unreachable".
  hosts_["mp-b"]->FailWith("multipass.launch", contracts::AppCode::kUnreachable, "hostd gone");
  hosts_["mp-b"]->Release("multipass.launch");
  auto out = scale.get();
  EXPECT_NE(out.status, ScaleStatus::kDone) << out.message;
  EXPECT_NE(out.message.find("outcome unknown"), std::string::npos) << out.message;

  // mp-b answers again, without that instance.
  hosts_["mp-b"]->ClearFailure("multipass.launch");
  hosts_["mp-b"]->ClearFailure("multipass.list");
  ASSERT_TRUE(Eventually([&] {
    for (const auto& [name, host] : hosts_)  // the new instances join Nomad
      for (const auto& [instance, state] : host->instances()) nomad_->PutNode(instance);
    auto s = Status();
    return !s.meta.contains(scaling::kMetaHostsUnreachable) && s.ready && s.count == 8;
  })) << Status().count
      << " " << ::testing::PrintToString(Status().meta);
  EXPECT_EQ(hosts_["mp-b"]->count("multipass.launch"), 1);
  EXPECT_EQ(PerHost(), (std::map<std::string, std::size_t>{{"mp-a", 3}, {"mp-b", 2}, {"mp-c", 3}}));
  EXPECT_FALSE(Status().meta.contains(scaling::kMetaNotReady));
}

TEST_F(MultiHostControllerTest, TheWatcherListsEveryHostAndRepairsOnTheRightOne) {
  // A soft-deleted instance of the pool on mp-c: the reconciliation purges it there.
  Populate(1);
  hosts_["mp-c"]->Put("web-gone", "deleted");
  Start();
  Status();
  StartWatcher();
  ASSERT_TRUE(Eventually([&] { return !hosts_["mp-c"]->instances().contains("web-gone"); }));
  EXPECT_EQ(hosts_["mp-a"]->count("multipass.delete"), 0);
  EXPECT_EQ(hosts_["mp-b"]->count("multipass.delete"), 0);
  for (const auto& [name, host] : hosts_) EXPECT_GT(host->count("multipass.list"), 0) << name;
  ASSERT_TRUE(Eventually([&] { return Status().count == 3; }));
}

}  // namespace
}  // namespace mps
