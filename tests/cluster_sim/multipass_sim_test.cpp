#include "cluster_sim/multipass_sim.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "raw_client.h"
#include "support/temp_dir.h"

namespace {

using namespace std::chrono_literals;
using mps::sim::InstanceState;
using mps::sim::KeyCertPair;
using mps::sim::MultipassSim;
using mps::sim::SimOptions;
using mps::sim::testing::CallResult;
using mps::sim::testing::LaunchOf;
using mps::sim::testing::RawClient;
using multipass::InstanceStatus;

bool WaitFor(const std::function<bool()>& pred, std::chrono::milliseconds limit = 5s) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

std::optional<mps::sim::InstanceView> Find(const MultipassSim& sim, const std::string& name) {
  for (const auto& v : sim.Snapshot().instances)
    if (v.name == name) return v;
  return std::nullopt;
}

// Image download progress in a launch's replies: there is some only when the
// launch downloaded its image.
std::size_t ImageProgressReplies(const CallResult<multipass::LaunchReply>& r) {
  return std::count_if(r.replies.begin(), r.replies.end(), [](const auto& reply) {
    return reply.has_launch_progress() &&
           reply.launch_progress().type() == multipass::LaunchProgress::IMAGE;
  });
}

class MultipassSimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.world.state_dir = dir_ / "state";
    options_.world.boot_delay = 50ms;
    options_.world.ssh_delay = 1ms;  // strict, but fast
    options_.world.passphrase = "sesame";
    options_.unix_socket = dir_ / "multipass_socket";
    options_.tls_address = "127.0.0.1:0";
  }
  void TearDown() override { sim_.reset(); }

  MultipassSim& Start() {
    sim_ = std::make_unique<MultipassSim>(options_);
    return *sim_;
  }
  RawClient UnixClient(const std::optional<KeyCertPair>& id) {
    return RawClient(sim_->unix_target(), sim_->root_cert_pem(), id);
  }
  RawClient TlsClient(const std::optional<KeyCertPair>& id) {
    return RawClient(sim_->tls_address(), sim_->root_cert_pem(), id);
  }
  // A trusted client: on a used host (the default) it authenticates with the
  // passphrase; with an empty store its first call is auto-accepted.
  RawClient Admin() {
    auto c = UnixClient(admin_id_);
    if (!options_.world.empty_cert_store) {
      EXPECT_TRUE(c.Authenticate("sesame").ok());
    }
    EXPECT_TRUE(c.Version().status.ok());
    return c;
  }

  mps::testing::TempDir tmp_;
  std::filesystem::path dir_{tmp_.path()};
  SimOptions options_;
  std::unique_ptr<MultipassSim> sim_;
  KeyCertPair admin_id_ = mps::sim::CertificateAuthority::SelfSignedClientCertificate("admin");
};

std::vector<std::pair<std::string, InstanceStatus::Status>> Listed(RawClient& c) {
  auto r = c.List();
  EXPECT_TRUE(r.status.ok()) << r.status.error_message();
  std::vector<std::pair<std::string, InstanceStatus::Status>> out;
  if (r.replies.empty()) return out;
  for (const auto& i : r.replies.back().instance_list().instances())
    out.emplace_back(i.name(), i.instance_status().status());
  return out;
}

// ------------------------------------------------------------------ auth

TEST_F(MultipassSimTest, RootCertificateIsWrittenToStateDir) {
  auto& sim = Start();
  EXPECT_EQ(sim.root_cert_path(), options_.world.state_dir / "multipass_root_cert.pem");
  std::ifstream in(sim.root_cert_path());
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, sim.root_cert_pem());
  EXPECT_GT(sim.tls_port(), 0);
}

TEST_F(MultipassSimTest, UnixSocketAutoAcceptsOnlyTheFirstClient) {
  options_.world.empty_cert_store = true;
  Start();
  auto first = UnixClient(admin_id_);
  EXPECT_EQ(first.Ping().error_code(), grpc::StatusCode::UNAUTHENTICATED);  // ping never accepts
  auto v = first.Version();
  ASSERT_TRUE(v.status.ok()) << v.status.error_message();
  ASSERT_EQ(v.replies.size(), 1u);
  EXPECT_EQ(v.replies[0].version(), "1.16.3");
  EXPECT_TRUE(first.Ping().ok());

  auto second = UnixClient(mps::sim::CertificateAuthority::SelfSignedClientCertificate("other"));
  auto denied = second.List();
  EXPECT_EQ(denied.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(denied.status.error_message().find("not authenticated"), std::string::npos);
  EXPECT_EQ(second.Ping().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(sim_->Snapshot().authorized_certificates, 1u);
  EXPECT_EQ(sim_->Snapshot().stats.auto_accepted_certificates, 1u);
}

TEST_F(MultipassSimTest, UnixClientWithoutCertificateIsInvalidWhileStoreIsEmpty) {
  options_.world.empty_cert_store = true;
  Start();
  auto anonymous = UnixClient(std::nullopt);
  auto r = anonymous.Version();
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(r.status.error_message(), "invalid certificate data");
  EXPECT_EQ(sim_->Snapshot().authorized_certificates, 0u);
}

TEST_F(MultipassSimTest, TlsNeedsAuthenticateWithTheRightPassphrase) {
  options_.world.passphrase = "s3cret";
  Start();
  auto c = TlsClient(mps::sim::CertificateAuthority::SelfSignedClientCertificate("remote"));
  EXPECT_EQ(c.List().status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(c.Ping().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  auto wrong = c.Authenticate("guess");
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(wrong.error_message(), "Passphrase is not correct. Please try again.");
  EXPECT_EQ(c.List().status.error_code(), grpc::StatusCode::UNAUTHENTICATED);

  multipass::AuthenticateRequest req;
  req.set_passphrase("s3cret");
  auto ok = c.Call(&multipass::Rpc::Stub::authenticate, req);
  EXPECT_TRUE(ok.status.ok()) << ok.status.error_message();
  EXPECT_TRUE(ok.replies.empty());  // authenticate writes no reply of its own
  EXPECT_TRUE(c.List().status.ok());
  EXPECT_TRUE(c.Ping().ok());
  // TLS never auto-accepts, even with an empty store before.
  EXPECT_EQ(sim_->Snapshot().stats.auto_accepted_certificates, 0u);
}

TEST_F(MultipassSimTest, AuthenticateWithoutConfiguredPassphraseIsFailedPrecondition) {
  options_.world.passphrase.reset();
  Start();
  auto c = TlsClient(mps::sim::CertificateAuthority::SelfSignedClientCertificate("remote"));
  EXPECT_EQ(c.Authenticate("anything").error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

// ------------------------------------------------------------------ launch

TEST_F(MultipassSimTest, LaunchStreamsStagesAndInstanceIsUnlistedWhilePrepared) {
  options_.world.prep_delay = 150ms;
  options_.world.boot_delay = 300ms;
  Start();
  auto admin = Admin();
  auto observer = UnixClient(admin_id_);
  bool listed_while_creating = true;
  InstanceStatus::Status status_at_starting = InstanceStatus::UNKNOWN;
  auto req = LaunchOf("web-1", "jammy");
  req.set_cloud_init_user_data("#cloud-config\n");
  auto r = admin.Launch(req, 8s, [&](const multipass::LaunchReply& reply) {
    if (reply.create_message() == "Creating web-1")
      listed_while_creating = !Listed(observer).empty();
    if (reply.create_message() == "Starting web-1")
      for (auto& [n, s] : Listed(observer))
        if (n == "web-1") status_at_starting = s;
  });
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_FALSE(listed_while_creating);
  EXPECT_EQ(status_at_starting, InstanceStatus::STARTING);

  std::vector<std::string> stages;
  int progress = 0;
  for (const auto& rep : r.replies) {
    if (rep.has_launch_progress()) {
      ++progress;
      continue;
    }
    if (!rep.create_message().empty()) stages.push_back("create:" + rep.create_message());
    if (!rep.reply_message().empty()) stages.push_back("reply:" + rep.reply_message());
    if (!rep.vm_instance_name().empty()) stages.push_back("name:" + rep.vm_instance_name());
  }
  EXPECT_GE(progress, 1);
  EXPECT_EQ(stages,
            (std::vector<std::string>{
                "create:Creating web-1", "create:Configuring web-1", "create:Starting web-1",
                "reply:Waiting for initialization to complete", "name:web-1"}));
  EXPECT_TRUE(r.replies.front().has_create_message());
  EXPECT_EQ(r.replies.back().vm_instance_name(), "web-1");
  EXPECT_EQ(Listed(admin), (std::vector<std::pair<std::string, InstanceStatus::Status>>{
                               {"web-1", InstanceStatus::RUNNING}}));
}

TEST_F(MultipassSimTest, LaunchTimeoutNamesTheInstanceThenFailsAndTheInstanceStays) {
  options_.world.boot_delay = 3s;
  Start();
  auto admin = Admin();
  auto r = admin.Launch(LaunchOf("slow", "", 1));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(r.status.error_message().rfind("The following errors occurred:\n", 0), 0u)
      << r.status.error_message();
  ASSERT_FALSE(r.replies.empty());
  EXPECT_EQ(r.replies.back().vm_instance_name(), "slow");
  auto listed = Listed(admin);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].second, InstanceStatus::STARTING);
}

TEST_F(MultipassSimTest, ListsOperativeFirstAndIpv4OnlyWhenAskedForRunning) {
  Start();
  auto admin = Admin();
  ASSERT_TRUE(admin.Launch(LaunchOf("a")).status.ok());
  ASSERT_TRUE(admin.Launch(LaunchOf("b")).status.ok());
  ASSERT_TRUE(admin.Delete({"a"}, false).status.ok());

  auto with_ip = admin.List(true);
  ASSERT_TRUE(with_ip.status.ok());
  const auto& list = with_ip.replies.back().instance_list().instances();
  ASSERT_EQ(list.size(), 2);
  EXPECT_EQ(list[0].name(), "b");
  EXPECT_EQ(list[0].instance_status().status(), InstanceStatus::RUNNING);
  ASSERT_EQ(list[0].ipv4_size(), 1);
  EXPECT_EQ(list[0].ipv4(0).rfind("10.0.", 0), 0u);
  EXPECT_EQ(list[1].name(), "a");
  EXPECT_EQ(list[1].instance_status().status(), InstanceStatus::DELETED);
  EXPECT_EQ(list[1].ipv4_size(), 0);

  auto without = admin.List(false);
  EXPECT_EQ(without.replies.back().instance_list().instances(0).ipv4_size(), 0);

  multipass::InfoRequest info;
  info.add_instance_snapshot_pairs()->set_instance_name("b");
  auto i = admin.Call(&multipass::Rpc::Stub::info, info);
  ASSERT_TRUE(i.status.ok());
  const auto& d = i.replies.back().details(0);
  EXPECT_EQ(d.memory_total(), std::to_string(1ull << 30));
  EXPECT_EQ(d.disk_total(), std::to_string(5ull << 30));
  EXPECT_EQ(d.cpu_count(), "1");
  EXPECT_EQ(d.instance_info().ipv4(0), list[0].ipv4(0));
  EXPECT_GT(d.instance_info().creation_timestamp().seconds(), 0);
}

multipass::LaunchError Details(const grpc::Status& s) {
  multipass::LaunchError e;
  EXPECT_TRUE(e.ParseFromString(s.error_details()));
  return e;
}

TEST_F(MultipassSimTest, InvalidSizesAndNamesAreRejectedWithLaunchErrorCodes) {
  Start();
  auto admin = Admin();
  auto req = LaunchOf("1bad");
  req.set_mem_size("256M");
  req.set_disk_space("lots");
  auto r = admin.Launch(req);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(r.status.error_message(), "Invalid arguments supplied");
  EXPECT_TRUE(r.replies.empty());
  auto codes = Details(r.status).error_codes();
  std::vector<int> got(codes.begin(), codes.end());
  EXPECT_EQ(got, (std::vector<int>{multipass::LaunchError::INVALID_MEM_SIZE,
                                   multipass::LaunchError::INVALID_DISK_SIZE,
                                   multipass::LaunchError::INVALID_HOSTNAME}));

  auto small_disk = LaunchOf("ok-name");
  small_disk.set_disk_space("512M");
  auto d = admin.Launch(small_disk);
  ASSERT_EQ(Details(d.status).error_codes_size(), 1);
  EXPECT_EQ(Details(d.status).error_codes(0), multipass::LaunchError::INVALID_DISK_SIZE);
  EXPECT_TRUE(sim_->Snapshot().instances.empty());
}

TEST_F(MultipassSimTest, NameClashesImagesAndCapacity) {
  options_.world.host_cpus = 3;
  Start();
  auto admin = Admin();
  ASSERT_TRUE(admin.Launch(LaunchOf("taken")).status.ok());
  auto clash = admin.Launch(LaunchOf("taken"));
  EXPECT_EQ(clash.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(clash.status.error_message(), "instance \"taken\" already exists");
  ASSERT_TRUE(admin.Delete({"taken"}, false).status.ok());
  EXPECT_EQ(admin.Launch(LaunchOf("taken")).status.error_message(),
            "instance \"taken\" already exists");  // soft-deleted still holds the name

  auto image = admin.Launch(LaunchOf("x", "centos"));
  EXPECT_EQ(image.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(image.status.error_message().find("centos"), std::string::npos);

  auto big = LaunchOf("big");
  big.set_num_cores(4);
  auto cap = admin.Launch(big);
  // A start failure during launch: FAILED_PRECONDITION, the instance removed.
  EXPECT_EQ(cap.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(cap.status.error_message().find("not enough host resources"), std::string::npos);
  EXPECT_FALSE(Find(*sim_, "big").has_value());
}

TEST_F(MultipassSimTest, SameNameWhileBeingPreparedIsReported) {
  options_.world.prep_delay = 400ms;
  Start();
  auto admin = Admin();
  auto first = std::async(std::launch::async, [&] { return admin.Launch(LaunchOf("p")); });
  ASSERT_TRUE(WaitFor([&] {
    auto v = Find(*sim_, "p");
    return v && v->state == InstanceState::kPreparing;
  }));
  auto second = UnixClient(admin_id_).Launch(LaunchOf("p"));
  EXPECT_EQ(second.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(second.status.error_message(), "instance \"p\" is being prepared");
  EXPECT_TRUE(first.get().status.ok());
}

TEST_F(MultipassSimTest, ConcurrentLaunchesOfAnImageShareOneDownload) {
  options_.world.image_download_delay = 300ms;
  Start();
  auto admin = Admin();
  auto first =
      std::async(std::launch::async, [&] { return admin.Launch(LaunchOf("j1", "jammy")); });
  ASSERT_TRUE(WaitFor([&] { return Find(*sim_, "j1").has_value(); }));
  auto second = UnixClient(admin_id_).Launch(LaunchOf("j2", "22.04"));  // same release
  ASSERT_TRUE(second.status.ok()) << second.status.error_message();
  auto r1 = first.get();
  ASSERT_TRUE(r1.status.ok()) << r1.status.error_message();
  EXPECT_GT(ImageProgressReplies(r1), 0u);
  EXPECT_GT(ImageProgressReplies(second), 0u);  // it waited for the same download
  EXPECT_EQ(sim_->Snapshot().stats.image_downloads, 1u);
  // Once cached, launches of that image no longer download.
  auto a = std::async(std::launch::async, [&] { return admin.Launch(LaunchOf("j3", "jammy")); });
  auto b = UnixClient(admin_id_).Launch(LaunchOf("j4", "jammy"));
  auto ra = a.get();
  EXPECT_TRUE(ra.status.ok()) << ra.status.error_message();
  EXPECT_TRUE(b.status.ok()) << b.status.error_message();
  EXPECT_EQ(ImageProgressReplies(ra), 0u);
  EXPECT_EQ(ImageProgressReplies(b), 0u);
  EXPECT_EQ(sim_->Snapshot().stats.image_downloads, 1u);
}

TEST_F(MultipassSimTest, LaunchTimeoutAppliesToSshUpAndAgainToCloudInitButNotTheDownload) {
  options_.world.image_download_delay = 1200ms;
  options_.world.boot_delay = 700ms;
  options_.world.cloud_init_delay = 700ms;
  Start();
  auto admin = Admin();
  // 1.2 s download + 0.7 s SSH-up + 0.7 s cloud-init with a 1 s timeout: fine.
  auto ok = admin.Launch(LaunchOf("t1", "jammy", 1), 10s);
  ASSERT_TRUE(ok.status.ok()) << ok.status.error_message();
  EXPECT_EQ(ok.replies.back().vm_instance_name(), "t1");

  // cloud-init longer than the timeout: named, then INVALID_ARGUMENT; the VM stays.
  // Options are fixed at start: a second simulator for the slow case.
  sim_.reset();
  options_.world.image_download_delay = 0ms;
  options_.world.cloud_init_delay = 1500ms;
  options_.world.state_dir = dir_ / "state2";
  Start();
  auto admin2 = Admin();
  auto late = admin2.Launch(LaunchOf("t2", "", 1), 10s);
  EXPECT_EQ(late.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(late.status.error_message().find("initialization"), std::string::npos)
      << late.status.error_message();
  ASSERT_FALSE(late.replies.empty());
  EXPECT_EQ(late.replies.back().vm_instance_name(), "t2");
  ASSERT_TRUE(Find(*sim_, "t2").has_value());
  EXPECT_EQ(Find(*sim_, "t2")->state, InstanceState::kRunning);
}

// ------------------------------------------------------------------ delete / purge

TEST_F(MultipassSimTest, DeleteSemantics) {
  Start();
  auto admin = Admin();
  for (auto n : {"a", "b", "c"}) ASSERT_TRUE(admin.Launch(LaunchOf(n)).status.ok());

  auto unknown = admin.Delete({"a", "nope"}, true);
  EXPECT_EQ(unknown.status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(unknown.status.error_message().find("instance \"nope\" does not exist"),
            std::string::npos);
  EXPECT_EQ(Listed(admin).size(), 3u);  // nothing deleted

  auto soft = admin.Delete({"a"}, false);
  ASSERT_TRUE(soft.status.ok());
  EXPECT_TRUE(soft.replies.back().purged_instances().empty());
  EXPECT_EQ(Find(*sim_, "a")->state, InstanceState::kDeleted);

  auto purge = admin.Call(&multipass::Rpc::Stub::purge, multipass::PurgeRequest{});
  ASSERT_TRUE(purge.status.ok());
  ASSERT_EQ(purge.replies.back().purged_instances_size(), 1);
  EXPECT_EQ(purge.replies.back().purged_instances(0), "a");
  EXPECT_FALSE(Find(*sim_, "a").has_value());

  auto hard = admin.Delete({"b"}, true);
  ASSERT_TRUE(hard.status.ok());
  ASSERT_EQ(hard.replies.back().purged_instances_size(), 1);
  EXPECT_FALSE(Find(*sim_, "b").has_value());
  EXPECT_TRUE(admin.Launch(LaunchOf("b")).status.ok());  // name free again

  EXPECT_EQ(sim_->Snapshot().stats.empty_delete_requests, 0u);
  auto all = admin.Delete({}, true);  // what a client must never send
  ASSERT_TRUE(all.status.ok());
  EXPECT_EQ(all.replies.back().purged_instances_size(), 2);
  EXPECT_TRUE(sim_->Snapshot().instances.empty());
  EXPECT_EQ(sim_->Snapshot().stats.empty_delete_requests, 1u);
}

TEST_F(MultipassSimTest, DeletedHookFiresForPurgedRunningInstance) {
  Start();
  std::promise<std::string> deleted;
  sim_->OnInstanceDeleted([&](const std::string& n) { deleted.set_value(n); });
  auto admin = Admin();
  ASSERT_TRUE(admin.Launch(LaunchOf("gone")).status.ok());
  ASSERT_TRUE(admin.Delete({"gone"}, true).status.ok());
  auto f = deleted.get_future();
  ASSERT_EQ(f.wait_for(2s), std::future_status::ready);
  EXPECT_EQ(f.get(), "gone");
}

TEST_F(MultipassSimTest, StopStartAndInfoErrors) {
  Start();
  auto admin = Admin();
  ASSERT_TRUE(admin.Launch(LaunchOf("s")).status.ok());
  multipass::StopRequest stop;
  stop.mutable_instance_names()->add_instance_name("s");
  ASSERT_TRUE(admin.Call(&multipass::Rpc::Stub::stop, stop).status.ok());
  EXPECT_EQ(Listed(admin).front().second, InstanceStatus::STOPPED);

  multipass::StartRequest start;
  start.mutable_instance_names()->add_instance_name("s");
  ASSERT_TRUE(admin.Call(&multipass::Rpc::Stub::start, start).status.ok());
  EXPECT_EQ(Listed(admin).front().second, InstanceStatus::RUNNING);  // start waits for boot

  multipass::StartRequest missing;
  missing.mutable_instance_names()->add_instance_name("ghost");
  auto r = admin.Call(&multipass::Rpc::Stub::start, missing);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::ABORTED);
  multipass::StartError details;
  ASSERT_TRUE(details.ParseFromString(r.status.error_details()));
  EXPECT_EQ(details.instance_errors().at("ghost"), multipass::StartError::DOES_NOT_EXIST);

  multipass::StopRequest stop_missing;
  stop_missing.mutable_instance_names()->add_instance_name("ghost");
  EXPECT_EQ(admin.Call(&multipass::Rpc::Stub::stop, stop_missing).status.error_code(),
            grpc::StatusCode::NOT_FOUND);

  multipass::InfoRequest info;
  info.add_instance_snapshot_pairs()->set_instance_name("ghost");
  auto i = admin.Call(&multipass::Rpc::Stub::info, info);
  EXPECT_EQ(i.status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(i.status.error_message(),
            "The following errors occurred:\ninstance \"ghost\" does not exist");
}

// ------------------------------------------------------------------ faults

TEST_F(MultipassSimTest, FailEveryNthLaunchAbortsAndRemovesThatInstance) {
  Start();
  sim_->SetFailEveryNthLaunch(2);
  auto admin = Admin();
  EXPECT_TRUE(admin.Launch(LaunchOf("n1")).status.ok());
  auto failed = admin.Launch(LaunchOf("n2"));
  EXPECT_EQ(failed.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  ASSERT_FALSE(failed.replies.empty());
  EXPECT_EQ(failed.replies.front().create_message(), "Creating n2");  // failed after creation
  EXPECT_EQ(failed.replies.back().create_message(), "Starting n2");   // the hypervisor failed
  EXPECT_FALSE(Find(*sim_, "n2").has_value());
  EXPECT_TRUE(admin.Launch(LaunchOf("n3")).status.ok());
  EXPECT_EQ(admin.Launch(LaunchOf("n4")).status.error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(sim_->Snapshot().stats.injected_launch_failures, 2u);
  EXPECT_EQ(Listed(admin).size(), 2u);
}

TEST_F(MultipassSimTest, HangingLaunchEndsOnlyWhenCancelledAndLeavesInstanceStarting) {
  Start();
  sim_->SetHangLaunches(true);
  auto admin = Admin();
  auto r = admin.Launch(LaunchOf("stuck"), 300ms);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  ASSERT_TRUE(Find(*sim_, "stuck").has_value());
  EXPECT_EQ(Find(*sim_, "stuck")->state, InstanceState::kStarting);
  EXPECT_TRUE(admin.Delete({"stuck"}, true).status.ok());
}

TEST_F(MultipassSimTest, RestartDropsConnectionsButKeepsStateAndPort) {
  Start();
  auto admin = Admin();
  ASSERT_TRUE(admin.Launch(LaunchOf("keep")).status.ok());
  sim_->SetHangLaunches(true);
  auto hanging = std::async(std::launch::async,
                            [&] { return UnixClient(admin_id_).Launch(LaunchOf("cut"), 8s); });
  ASSERT_TRUE(WaitFor([&] { return Find(*sim_, "cut").has_value(); }));
  const int port = sim_->tls_port();

  sim_->Restart();
  auto cut = hanging.get();
  EXPECT_FALSE(cut.status.ok());  // the in-flight call was dropped
  EXPECT_EQ(sim_->tls_port(), port);
  EXPECT_EQ(sim_->Snapshot().stats.restarts, 1u);

  // The old channel reconnects (a call racing the dropped connection may fail
  // UNAVAILABLE once, as with a restarted daemon); the cert store and instances survived.
  ASSERT_TRUE(WaitFor([&] { return admin.List().status.ok(); }));
  auto listed = Listed(admin);
  EXPECT_EQ(listed, (std::vector<std::pair<std::string, InstanceStatus::Status>>{
                        {"cut", InstanceStatus::STARTING}, {"keep", InstanceStatus::RUNNING}}));
  auto stranger = UnixClient(mps::sim::CertificateAuthority::SelfSignedClientCertificate("late"));
  EXPECT_EQ(stranger.Version().status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(TlsClient(admin_id_).Ping().ok());
}

TEST_F(MultipassSimTest, DaemonInfoReportsHostCapacity) {
  options_.world.host_cpus = 6;
  options_.world.host_memory_bytes = 8ull << 30;
  Start();
  auto admin = Admin();
  auto r = admin.Call(&multipass::Rpc::Stub::daemon_info, multipass::DaemonInfoRequest{});
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.replies.back().cpus(), 6u);
  EXPECT_EQ(r.replies.back().memory(), 8ull << 30);
}

// ------------------------------------------------------------------ the real daemon's costs

TEST_F(MultipassSimTest, RpcsRunOneAtATimeAndListWithAddressesPaysOneSshPerRunningVm) {
  options_.world.ssh_delay = 100ms;
  Start();
  auto admin = Admin();
  for (auto n : {"a", "b", "c"}) ASSERT_TRUE(admin.Launch(LaunchOf(n)).status.ok());
  const auto before = sim_->Snapshot().stats;

  ASSERT_TRUE(admin.List(false).status.ok());
  // Without addresses no SSH runs: counted, not timed.
  EXPECT_EQ(sim_->Snapshot().stats.ssh_commands, before.ssh_commands);

  // While one list with addresses runs (3 x 100 ms), a version call waits for it.
  auto listing = std::async(std::launch::async, [&] {
    auto c = UnixClient(admin_id_);
    return c.List(true);
  });
  ASSERT_TRUE(WaitFor([&] { return sim_->Snapshot().stats.ssh_commands > before.ssh_commands; }));
  auto t1 = std::chrono::steady_clock::now();
  ASSERT_TRUE(admin.Version().status.ok());
  EXPECT_GE(std::chrono::steady_clock::now() - t1, 150ms);
  auto listed = listing.get();
  ASSERT_TRUE(listed.status.ok());
  EXPECT_EQ(listed.replies.back().instance_list().instances(0).ipv4_size(), 1);
  const auto after = sim_->Snapshot().stats;
  EXPECT_EQ(after.ssh_commands - before.ssh_commands, 3u);
  EXPECT_GE(after.rpc_busy_ns - before.rpc_busy_ns, 300'000'000u);
}

TEST_F(MultipassSimTest, RuntimeInfoFailsWhenOneSshFailsAndListShowsNaFrom116) {
  Start();
  auto admin = Admin();
  ASSERT_TRUE(admin.Launch(LaunchOf("ok")).status.ok());
  ASSERT_TRUE(admin.Launch(LaunchOf("cut")).status.ok());
  sim_->world().SetSshReachable("cut", false);

  multipass::InfoRequest runtime;
  auto r = admin.Call(&multipass::Rpc::Stub::info, runtime);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  multipass::InfoRequest state_only;
  state_only.set_no_runtime_information(true);
  auto s = admin.Call(&multipass::Rpc::Stub::info, state_only);
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  ASSERT_EQ(s.replies.back().details_size(), 2);
  EXPECT_TRUE(s.replies.back().details(0).memory_total().empty());  // only from SSH
  EXPECT_EQ(s.replies.back().details(0).instance_info().ipv4_size(), 0);

  auto list = admin.List(true);
  ASSERT_TRUE(list.status.ok());
  for (const auto& i : list.replies.back().instance_list().instances()) {
    ASSERT_EQ(i.ipv4_size(), 1) << i.name();
    EXPECT_EQ(i.ipv4(0) == "N/A", i.name() == "cut") << i.name() << " " << i.ipv4(0);
  }
}

TEST_F(MultipassSimTest, OnAUsedHostANewClientMustAuthenticate) {
  Start();  // default: the store already holds the CLI's certificate
  EXPECT_EQ(sim_->Snapshot().authorized_certificates, 1u);
  auto c = UnixClient(admin_id_);
  EXPECT_EQ(c.Version().status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(c.Authenticate("guess").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(c.Authenticate("sesame").error_code(), grpc::StatusCode::OK);
  EXPECT_TRUE(c.Version().status.ok());
  EXPECT_EQ(sim_->Snapshot().stats.auto_accepted_certificates, 0u);
  EXPECT_EQ(sim_->Snapshot().authorized_certificates, 2u);
}

TEST_F(MultipassSimTest, StartTimeoutIsInvalidArgumentAndTheInstanceStays) {
  Start();
  auto admin = Admin();
  ASSERT_TRUE(admin.Launch(LaunchOf("s")).status.ok());
  multipass::StopRequest stop;
  stop.mutable_instance_names()->add_instance_name("s");
  ASSERT_TRUE(admin.Call(&multipass::Rpc::Stub::stop, stop).status.ok());
  sim_->SetHangLaunches(true);  // boots never finish
  multipass::StartRequest start;
  start.mutable_instance_names()->add_instance_name("s");
  start.set_timeout(1);
  auto r = admin.Call(&multipass::Rpc::Stub::start, start);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(Find(*sim_, "s").has_value());
  EXPECT_EQ(Find(*sim_, "s")->state, InstanceState::kStarting);
}

TEST_F(MultipassSimTest, DaemonVersionIsAnsweredAndShapesWhichRpcsExist) {
  options_.world.daemon_version = "1.14.1";
  Start();
  auto admin = Admin();
  auto v = admin.Version();
  ASSERT_TRUE(v.status.ok());
  EXPECT_EQ(v.replies.back().version(), "1.14.1");
  auto info = admin.Call(&multipass::Rpc::Stub::daemon_info, multipass::DaemonInfoRequest{});
  EXPECT_EQ(info.status.error_code(), grpc::StatusCode::UNIMPLEMENTED);  // from 1.15
  ASSERT_TRUE(admin.Launch(LaunchOf("x")).status.ok());
  sim_->world().SetSshReachable("x", false);
  auto list = admin.List(true);
  ASSERT_TRUE(list.status.ok());
  EXPECT_EQ(list.replies.back().instance_list().instances(0).ipv4_size(), 0);  // no "N/A" yet
}

TEST(MultipassSimConfig, RefusesNonLoopbackTlsAddress) {
  EXPECT_THROW(mps::sim::ParseLoopbackAddress("0.0.0.0:50051"), mps::sim::SimConfigError);
  EXPECT_THROW(mps::sim::ParseLoopbackAddress("127.0.0.1:port"), mps::sim::SimConfigError);
  EXPECT_EQ(mps::sim::ParseLoopbackAddress("localhost:0").host, "127.0.0.1");
  EXPECT_EQ(mps::sim::ParseLoopbackAddress("127.0.0.1:50051").port, 50051);
}

}  // namespace
