#include <gmock/gmock.h>

#include <gtest/gtest.h>
#include "support/refusing_port.h"

#include <chrono>
#include <thread>

#include "daemon_fixture.h"
#include "multipass/multipass_client.h"

namespace mps::multipass::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using Kind = MultipassError::Kind;
using State = FakeMultipassd::State;
namespace pb = ::multipass;

using ClientTest = DaemonTest;

TEST_F(ClientTest, ListFiltersByPrefixAndMapsStates) {
  fake_->With([](State& s) {
    s.instances["web-1"] = {pb::InstanceStatus::RUNNING, {"10.0.0.5", "172.17.0.1"}};
    s.instances["web-2"] = {pb::InstanceStatus::STOPPED, {"10.0.0.6"}};
    s.instances["web-3"] = {pb::InstanceStatus::DELETED, {}};
    s.instances["web-4"] = {pb::InstanceStatus::UNAVAILABLE, {}};
    s.instances["web-5"] = {pb::InstanceStatus::DELAYED_SHUTDOWN, {}};
    s.instances["db-1"] = {pb::InstanceStatus::RUNNING, {"10.0.0.9"}};
  });
  MultipassClient client(Options());
  const auto vms = client.List("web-");
  ASSERT_EQ(vms.size(), 5u);
  EXPECT_EQ(vms[0].name, "web-1");
  EXPECT_EQ(vms[0].state, InstanceState::running);
  EXPECT_THAT(vms[0].ipv4, ElementsAre("10.0.0.5", "172.17.0.1"));
  EXPECT_EQ(vms[0].release, "Ubuntu 24.04 LTS");
  EXPECT_EQ(vms[1].state, InstanceState::stopped);
  EXPECT_TRUE(vms[1].ipv4.empty());
  EXPECT_EQ(vms[2].state, InstanceState::deleted);
  EXPECT_EQ(vms[3].state, InstanceState::unavailable);
  EXPECT_EQ(vms[4].state, InstanceState::delayed_shutdown);
  EXPECT_EQ(client.List().size(), 6u);
  fake_->With([](State& s) {
    ASSERT_FALSE(s.list_requests.empty());
    EXPECT_TRUE(s.list_requests.back().request_ipv4());
  });
}

TEST_F(ClientTest, InfoAsksWithoutRuntimeInformation) {
  fake_->With([](State& s) { s.instances["web-1"] = {pb::InstanceStatus::RUNNING, {"10.0.0.5"}}; });
  MultipassClient client(Options());
  const auto details = client.Info({"web-1"});
  ASSERT_EQ(details.size(), 1u);
  EXPECT_EQ(details[0].name, "web-1");
  EXPECT_EQ(details[0].state, InstanceState::running);
  EXPECT_EQ(details[0].cpu_count, 2);
  EXPECT_EQ(details[0].memory_total, 2147483648u);
  EXPECT_EQ(details[0].disk_total, 10737418240u);
  EXPECT_EQ(details[0].image_release, "24.04 LTS");
  EXPECT_TRUE(details[0].ipv4.empty());
  fake_->With([](State& s) { EXPECT_TRUE(s.info_requests.back().no_runtime_information()); });
  EXPECT_THAT(client.Info({"web-1"}, true)[0].ipv4, ElementsAre("10.0.0.5"));
  const auto e = CatchError([&] { client.Info({"nope"}); });
  EXPECT_EQ(e.kind, Kind::not_found);
  EXPECT_EQ(e.instance, "nope");
}

TEST_F(ClientTest, EmptyDeleteIsRefusedBeforeAnyRpc) {
  fake_->With([](State& s) { s.instances["keep-me"] = {}; });
  MultipassClient client(Options());
  const auto e = CatchError([&] { client.Delete({}); });
  EXPECT_EQ(e.kind, Kind::invalid_argument);
  EXPECT_THAT(e.message, HasSubstr("EVERY instance"));
  fake_->With([](State& s) {
    EXPECT_EQ(s.delete_calls, 0);
    EXPECT_TRUE(s.presented_certs.empty());  // no RPC of any kind reached the server
    EXPECT_TRUE(s.instances.contains("keep-me"));
  });
}

TEST_F(ClientTest, DeleteSendsPurgeWithExactlyTheNamedInstances) {
  fake_->With([](State& s) {
    for (const char* n : {"a-1", "a-2", "a-3"}) s.instances[n] = {};
  });
  MultipassClient client(Options());
  EXPECT_THAT(client.Delete({"a-1", "a-3"}), ElementsAre("a-1", "a-3"));
  fake_->With([](State& s) {
    ASSERT_EQ(s.delete_requests.size(), 1u);
    const auto& r = s.delete_requests[0];
    EXPECT_TRUE(r.purge());
    ASSERT_EQ(r.instance_snapshot_pairs_size(), 2);
    EXPECT_EQ(r.instance_snapshot_pairs(0).instance_name(), "a-1");
    EXPECT_FALSE(r.instance_snapshot_pairs(0).has_snapshot_name());
    EXPECT_EQ(r.instance_snapshot_pairs(1).instance_name(), "a-3");
    EXPECT_EQ(s.instances.size(), 1u);
    EXPECT_TRUE(s.instances.contains("a-2"));
  });
  const auto e = CatchError([&] { client.Delete({"ghost"}); });
  EXPECT_EQ(e.kind, Kind::not_found);
  EXPECT_EQ(e.instance, "ghost");
}

TEST_F(ClientTest, UnauthenticatedCallAuthenticatesOnceAndRetries) {
  fake_->With([](State& s) {
    s.require_auth = true;
    s.passphrase = "sesame";
    s.instances["web-1"] = {};
  });
  auto options = Options();
  options.passphrase = "sesame";
  MultipassClient client(options);
  EXPECT_EQ(client.List().size(), 1u);
  EXPECT_EQ(client.Version(), "1.16.3");
  fake_->With([&](State& s) {
    EXPECT_EQ(s.authenticate_calls, 1);
    EXPECT_TRUE(s.accepted_certs.contains(client.client_cert_pem()));
    EXPECT_EQ(s.list_calls, 1);               // the retry; the refused call is not counted
    EXPECT_EQ(s.presented_certs.size(), 3u);  // refused list, retried list, version
  });
}

TEST_F(ClientTest, UnauthenticatedWithoutPassphraseIsReported) {
  fake_->With([](State& s) {
    s.require_auth = true;
    s.passphrase = "sesame";
  });
  MultipassClient client(Options());
  const auto e = CatchError([&] { client.List(); });
  EXPECT_EQ(e.kind, Kind::unauthenticated);
  EXPECT_THAT(e.message, HasSubstr("no passphrase configured"));
  fake_->With([](State& s) { EXPECT_EQ(s.authenticate_calls, 0); });
}

TEST_F(ClientTest, WrongOrUnsetPassphraseIsMapped) {
  fake_->With([](State& s) {
    s.require_auth = true;
    s.passphrase = "sesame";
  });
  auto options = Options();
  options.passphrase = "wrong";
  MultipassClient client(options);
  auto e = CatchError([&] { client.List(); });
  EXPECT_EQ(e.kind, Kind::wrong_passphrase);
  EXPECT_THAT(e.message, ::testing::Not(HasSubstr("wrong\"")));
  fake_->With([](State& s) { s.passphrase.reset(); });
  e = CatchError([&] { client.Authenticate("anything"); });
  EXPECT_EQ(e.kind, Kind::passphrase_not_set);
}

TEST_F(ClientTest, LaunchReportsProgressAndReturnsTheName) {
  MultipassClient client(Options());
  std::vector<LaunchProgress> seen;
  LaunchSpec spec;
  spec.name = "worker-1";
  spec.image = "24.04";
  spec.cpus = 2;
  spec.memory = "2G";
  spec.disk = "10G";
  spec.cloud_init_user_data = "#cloud-config\n";
  spec.timeout = std::chrono::seconds(120);
  EXPECT_EQ(client.Launch(spec, [&](const LaunchProgress& p) { seen.push_back(p); }), "worker-1");
  ASSERT_EQ(seen.size(), 5u);
  EXPECT_EQ(seen[0].phase, LaunchProgress::Phase::message);
  EXPECT_EQ(seen[0].text, "Creating worker-1");
  EXPECT_EQ(seen[1].phase, LaunchProgress::Phase::download);
  EXPECT_EQ(seen[1].percent, -1);
  EXPECT_EQ(seen[2].percent, 50);
  EXPECT_EQ(seen[3].percent, 100);
  EXPECT_EQ(seen[4].text, "Waiting for initialization to complete");
  fake_->With([](State& s) {
    ASSERT_EQ(s.launch_requests.size(), 1u);
    const auto& r = s.launch_requests[0];
    EXPECT_EQ(r.image(), "24.04");
    EXPECT_EQ(r.num_cores(), 2);
    EXPECT_EQ(r.mem_size(), "2G");
    EXPECT_EQ(r.disk_space(), "10G");
    EXPECT_EQ(r.timeout(), 120);
    EXPECT_EQ(r.cloud_init_user_data(), "#cloud-config\n");
  });
  EXPECT_EQ(client.List("worker-").size(), 1u);
}

TEST_F(ClientTest, LaunchRejectsBadInputBeforeAnyRpc) {
  MultipassClient client(Options());
  LaunchSpec spec;
  spec.name = "bad_name";
  EXPECT_EQ(CatchError([&] { client.Launch(spec); }).kind, Kind::invalid_name);
  spec.name = "ok";
  spec.memory = "100M";
  EXPECT_EQ(CatchError([&] { client.Launch(spec); }).kind, Kind::invalid_argument);
  fake_->With([](State& s) { EXPECT_TRUE(s.launch_requests.empty()); });
}

TEST_F(ClientTest, LaunchErrorsMapOnCodesAndDetails) {
  auto details = [](std::initializer_list<pb::LaunchError::ErrorCodes> codes) {
    pb::LaunchError e;
    for (auto c : codes) e.add_error_codes(c);
    return e.SerializeAsString();
  };
  using grpc::StatusCode;
  fake_->With([&](State& s) {
    s.launch_failures["n-host"] = grpc::Status(StatusCode::INVALID_ARGUMENT, "Invalid arguments",
                                               details({pb::LaunchError::INVALID_HOSTNAME}));
    s.launch_failures["n-mem"] = grpc::Status(
        StatusCode::INVALID_ARGUMENT, "Invalid arguments",
        details({pb::LaunchError::INVALID_MEM_SIZE, pb::LaunchError::INVALID_DISK_SIZE}));
    s.launch_failures["n-zone"] = grpc::Status(StatusCode::INVALID_ARGUMENT, "Invalid arguments",
                                               details({pb::LaunchError::ZONE_UNAVAILABLE}));
    s.launch_failures["n-image"] =
        grpc::Status(StatusCode::FAILED_PRECONDITION, "Unable to find an image matching \"x\"");
    s.launch_failures["n-start"] = grpc::Status(StatusCode::ABORTED, "failed to start");
    s.launch_failures["n-internal"] = grpc::Status(StatusCode::INTERNAL, "boom");
    s.instances["n-taken"] = {};
  });
  MultipassClient client(Options());
  const std::vector<std::pair<std::string, Kind>> cases = {
      {"n-host", Kind::invalid_name},     {"n-mem", Kind::invalid_argument},
      {"n-zone", Kind::out_of_resources}, {"n-image", Kind::image_not_found},
      {"n-start", Kind::aborted},         {"n-internal", Kind::internal},
      {"n-taken", Kind::name_taken}};
  for (const auto& [name, kind] : cases) {
    LaunchSpec spec;
    spec.name = name;
    const auto e = CatchError([&] { client.Launch(spec); });
    EXPECT_EQ(e.kind, kind) << name << ": " << e.message;
    EXPECT_EQ(e.instance, name);
    EXPECT_FALSE(e.leftover_instance) << name;
  }
}

TEST_F(ClientTest, AStartFailureAfterStartingIsStartFailedNotImageNotFound) {
  fake_->With([](State& s) {
    s.launch_failures["n-vm"] =
        grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "failed to start \"n-vm\"");
    s.announce_start.insert("n-vm");
  });
  MultipassClient client(Options());
  LaunchSpec spec;
  spec.name = "n-vm";
  const auto e = CatchError([&] { client.Launch(spec); });
  EXPECT_EQ(e.kind, Kind::start_failed) << e.message;
  EXPECT_FALSE(e.leftover_instance);  // multipassd removed it
}

TEST_F(ClientTest, ListsWithoutAddressesWhenAskedAndDropsNa) {
  fake_->With([](State& s) {
    s.instances["web-1"] = {pb::InstanceStatus::RUNNING, {"N/A"}};
    s.instances["web-2"] = {pb::InstanceStatus::RUNNING, {"10.0.0.7"}};
  });
  MultipassClient client(Options());
  const auto plain = client.List("web-", /*addresses=*/false);
  ASSERT_EQ(plain.size(), 2u);
  EXPECT_TRUE(plain[1].ipv4.empty());
  fake_->With([](State& s) { EXPECT_FALSE(s.list_requests.back().request_ipv4()); });
  const auto full = client.List("web-");
  EXPECT_TRUE(full[0].ipv4.empty());  // "N/A": the daemon could not get it
  EXPECT_THAT(full[1].ipv4, ElementsAre("10.0.0.7"));
}

TEST_F(ClientTest, DeleteOfABatchWithAGoneNameDeletesTheRest) {
  fake_->With([](State& s) {
    s.instances["a"] = {};
    s.instances["b"] = {};
  });
  MultipassClient client(Options());
  EXPECT_THAT(client.Delete({"a", "gone", "b"}), ElementsAre("a", "b"));
  fake_->With([](State& s) {
    EXPECT_TRUE(s.instances.empty());
    ASSERT_EQ(s.delete_requests.size(), 2u);  // refused whole, then without "gone"
    EXPECT_EQ(s.delete_requests.back().instance_snapshot_pairs_size(), 2);
    EXPECT_FALSE(s.list_requests.back().request_ipv4());
  });
  EXPECT_EQ(CatchError([&] { client.Delete({"gone", "also-gone"}); }).kind, Kind::not_found);
}

TEST_F(ClientTest, StartTimeoutIsLabelledAndLeavesTheInstance) {
  fake_->With([](State& s) {
    s.instances["a"] = {pb::InstanceStatus::STOPPED, {}};
    s.start_failures["a"] = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                         "The following errors occurred:\na: timed out");
  });
  MultipassClient client(Options());
  const auto e = CatchError([&] { client.Start({"a"}); });
  EXPECT_EQ(e.kind, Kind::start_timeout) << e.message;
  EXPECT_EQ(e.instance, "a");
}

TEST_F(ClientTest, TimeoutAfterInstanceNamedLeavesLeftover) {
  fake_->With([](State& s) { s.timeout_after_name.insert("slow-1"); });
  MultipassClient client(Options());
  LaunchSpec spec;
  spec.name = "slow-1";
  const auto e = CatchError([&] { client.Launch(spec); });
  EXPECT_EQ(e.kind, Kind::launch_timeout);
  ASSERT_TRUE(e.leftover_instance);
  EXPECT_EQ(*e.leftover_instance, "slow-1");
  EXPECT_THAT(e.message, HasSubstr("timed out"));
}

TEST_F(ClientTest, StartErrorDetailsAndStop) {
  fake_->With([](State& s) { s.instances["a"] = {pb::InstanceStatus::STOPPED, {}}; });
  MultipassClient client(Options());
  client.Start({"a"});
  EXPECT_EQ(client.List()[0].state, InstanceState::running);
  const auto e = CatchError([&] { client.Start({"a", "ghost"}); });
  EXPECT_EQ(e.kind, Kind::not_found);
  EXPECT_EQ(e.instance, "ghost");
  client.Stop({"a"});
  EXPECT_EQ(client.List()[0].state, InstanceState::stopped);
  EXPECT_EQ(CatchError([&] { client.Start({}); }).kind, Kind::invalid_argument);
  EXPECT_EQ(CatchError([&] { client.Stop({}); }).kind, Kind::invalid_argument);
}

TEST_F(ClientTest, UnreachableFailsFastNamingTheAddress) {
  const std::string missing = "unix:" + (dir_ / "no_such_socket").string();
  mps::testing::RefusingPort closed;
  const std::string tcp = "127.0.0.1:" + std::to_string(closed.port());
  for (const std::string& address : {missing, tcp}) {
    auto options = Options();
    options.address = address;
    MultipassClient client(options);
    // Failed on the refused connection itself: neither at the connect
    // timeout ("no connection within") nor at the call's deadline (timeout).
    const auto e = CatchError([&] { client.List(); });
    EXPECT_EQ(e.kind, Kind::unreachable) << e.message;
    EXPECT_THAT(e.message, HasSubstr("multipassd unreachable at " + address));
    EXPECT_THAT(e.message, Not(HasSubstr("no connection within"))) << e.message;
  }
}

TEST_F(ClientTest, ReconnectsAfterDaemonRestart) {
  MultipassClient client(Options());
  EXPECT_EQ(client.Version(), "1.16.3");
  fake_->Stop();
  EXPECT_EQ(CatchError([&] { client.Version(); }).kind, Kind::unreachable);
  fake_ = std::make_unique<FakeMultipassd>(pki_.server);
  fake_->Start(SocketAddress());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(8);
  std::string version;
  while (version.empty() && std::chrono::steady_clock::now() < deadline) {
    try {
      version = client.Version();
    } catch (const MultipassError& e) {
      ASSERT_EQ(e.kind, Kind::unreachable) << e.message;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // poll interval
    }
  }
  EXPECT_EQ(version, "1.16.3");
}

TEST_F(ClientTest, VerifiedTlsWithRootCaAndServerName) {
  TempDir certs;
  WriteFile(certs / "root.pem", pki_.ca.cert_pem);
  FakeMultipassd tcp_daemon(pki_.server);
  const std::string tcp = tcp_daemon.Start("127.0.0.1:0");
  for (const std::string& address : {address_, tcp}) {
    auto options = Options();
    options.address = address;
    options.root_ca_file = (certs / "root.pem").string();
    EXPECT_EQ(MultipassClient(options).Version(), "1.16.3") << address;
    options.server_name = "not-the-daemon.example";
    const auto e = CatchError([&] { MultipassClient(options).Version(); });
    EXPECT_EQ(e.kind, Kind::unreachable) << address << ": " << e.message;
  }
  // A root CA that did not sign the daemon's certificate is refused too.
  WriteFile(certs / "other.pem", MakeTestPki().ca.cert_pem);
  auto options = Options();
  options.root_ca_file = (certs / "other.pem").string();
  EXPECT_EQ(CatchError([&] { MultipassClient(options).Version(); }).kind, Kind::unreachable);
  tcp_daemon.Stop();
}

TEST_F(ClientTest, PresentsConfiguredOrPersistedCertificate) {
  TempDir state;
  auto options = Options();
  options.state_dir = state.path();
  std::string first;
  {
    MultipassClient client(options);
    client.Version();
    first = client.client_cert_pem();
  }
  MultipassClient again(options);
  again.Version();
  EXPECT_EQ(again.client_cert_pem(), first);

  const auto pair = MakeClientPair(KeyType::rsa_2048, KeyForm::traditional);
  WriteFile(state / "rsa.pem", pair.cert_pem);
  WriteFile(state / "rsa.key", pair.key_pem);
  auto rsa = Options();
  rsa.client_cert_file = (state / "rsa.pem").string();
  rsa.client_key_file = (state / "rsa.key").string();
  MultipassClient rsa_client(rsa);
  rsa_client.Version();
  fake_->With([&](State& s) {
    ASSERT_EQ(s.presented_certs.size(), 3u);
    EXPECT_EQ(s.presented_certs[0], first);
    EXPECT_EQ(s.presented_certs[1], first);
    EXPECT_EQ(s.presented_certs[2], pair.cert_pem);
  });
  auto half = Options();
  half.client_cert_file = rsa.client_cert_file;
  EXPECT_EQ(CatchError([&] { MultipassClient c(half); }).kind, Kind::invalid_config);
}

}  // namespace
}  // namespace mps::multipass::testing
