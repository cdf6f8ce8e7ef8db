// multipass-target as a process, probed with our own gRPC client: the parts
// of the go-plugin contract that Debian's go-plugin 1.0.1 host never uses.
#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <grp.h>
#include <link.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "autoscaler/base.grpc.pb.h"
#include "cluster_sim/certificate_authority.h"
#include "goplugin/grpc_broker.grpc.pb.h"
#include "goplugin/grpc_controller.grpc.pb.h"
#include "goplugin/grpc_stdio.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "plugin_launch.h"
#include "support/child_process.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using mps::test::PluginBinary;
using mps::test::PluginOptions;
using mps::test::SplitHandshake;
using mps::testing::ChildProcess;
using mps::testing::TempDir;

namespace {

struct RunningPlugin {
  explicit RunningPlugin(const std::map<std::string, std::string>& extra_env = {},
                         const std::string& binary = PluginBinary())
      : child({binary}, PluginOptions(extra_env)) {
    auto line = child.ReadLine(5s);
    if (!line) throw std::runtime_error("no handshake; stderr: " + child.stderr_text());
    handshake = *line;
    fields = SplitHandshake(handshake);
    if (fields.size() < 5) throw std::runtime_error("bad handshake: " + handshake);
    target = fields[2] == "unix" ? "unix:" + fields[3] : fields[3];
    channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  }
  // As go-plugin's GRPCClient.Close does: Shutdown, then drop the connection.
  // A connection left open holds the plugin's graceful stop until its grace
  // period (1 s) ends.
  void Shutdown(bool close_channel = true) {
    grpc::ClientContext ctx;
    ::plugin::Empty req, resp;
    auto st = ::plugin::GRPCController::NewStub(channel)->Shutdown(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    if (close_channel) channel.reset();
  }

  ChildProcess child;
  std::string handshake;
  std::vector<std::string> fields;
  std::string target;
  std::shared_ptr<grpc::Channel> channel;
};

namespace base_proto = hashicorp::nomad_autoscaler::plugins::base::proto::v1;

// A direct-mode configuration (nothing listens on its multipassd address:
// SetConfig does not call it) with a client certificate written to `dir`.
std::map<std::string, std::string> DirectConfig(const TempDir& dir) {
  std::string cert = (dir / "c.pem").string(), key = (dir / "k.pem").string();
  if (!fs::exists(cert)) {
    auto identity = mps::sim::CertificateAuthority::SelfSignedClientCertificate("plugin");
    std::ofstream(cert) << identity.certificate_pem;
    std::ofstream(key) << identity.private_key_pem;
  }
  return {{"multipass_address", "127.0.0.1:50051"},
          {"client_cert_path", cert},
          {"client_key_path", key},
          {"passphrase", "sesame"},
          {"state_dir", (dir / "state").string()}};
}

grpc::Status SetConfig(RunningPlugin& p, const std::map<std::string, std::string>& config) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 30s);
  base_proto::SetConfigRequest req;
  for (const auto& [k, v] : config) (*req.mutable_config())[k] = v;
  base_proto::SetConfigResponse resp;
  return base_proto::BasePluginService::NewStub(p.channel)->SetConfig(&ctx, req, &resp);
}

grpc::Status PluginInfo(RunningPlugin& p) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 5s);
  base_proto::PluginInfoRequest req;
  base_proto::PluginInfoResponse resp;
  return base_proto::BasePluginService::NewStub(p.channel)->PluginInfo(&ctx, req, &resp);
}

// The files mapped into process `pid` whose name contains `part`.
std::set<std::string> MappedFiles(pid_t pid, const std::string& part) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::set<std::string> files;
  for (std::string line; std::getline(maps, line);) {
    auto slash = line.find('/');
    if (slash != std::string::npos && line.find(part, slash) != std::string::npos)
      files.insert(line.substr(slash));
  }
  return files;
}

// multipass-target copied alone into dir/bin, so that dir/lib is where it
// looks for its backend module.
std::string PluginCopyIn(const TempDir& dir) {
  fs::create_directories(dir / "bin");
  fs::create_directories(dir / "lib");
  auto copy = dir / "bin" / "multipass-target";
  fs::copy_file(PluginBinary(), copy);
  return copy.string();
}

grpc::health::v1::HealthCheckResponse::ServingStatus Health(RunningPlugin& p,
                                                            const std::string& service,
                                                            grpc::StatusCode* code) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 2s);
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(service);
  grpc::health::v1::HealthCheckResponse resp;
  auto st = grpc::health::v1::Health::NewStub(p.channel)->Check(&ctx, req, &resp);
  *code = st.error_code();
  return resp.status();
}

}  // namespace

TEST(PluginProcess, HandshakeIsFirstAndOnlyStdoutLine) {
  TempDir dir;
  RunningPlugin p({{"PLUGIN_UNIX_SOCKET_DIR", dir.path()}});
  ASSERT_EQ(p.fields.size(), 6u) << p.handshake;
  EXPECT_EQ(p.fields[0], "1");
  EXPECT_EQ(p.fields[1], "1");
  EXPECT_EQ(p.fields[2], "unix");
  EXPECT_EQ(p.fields[4], "grpc");
  EXPECT_EQ(p.fields[5], "");
  fs::path sock(p.fields[3]);
  EXPECT_EQ(sock.parent_path(), fs::path(dir.path()));
  EXPECT_TRUE(std::regex_match(sock.filename().string(), std::regex("plugin[0-9]+")));
  EXPECT_TRUE(fs::is_socket(sock));
  p.Shutdown();
  EXPECT_EQ(p.child.Wait(2s), 0);
  EXPECT_EQ(p.child.ReadToEof(1s), "");  // nothing after the handshake
  EXPECT_FALSE(fs::exists(sock));
}

TEST(PluginProcess, PrivateSocketDirIsOwnerOnlyAndRemoved) {
  RunningPlugin p;
  fs::path dir = fs::path(p.fields[3]).parent_path();
  struct stat st {};
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  p.Shutdown();
  EXPECT_EQ(p.child.Wait(2s), 0);
  EXPECT_FALSE(fs::exists(p.fields[3]));
  EXPECT_FALSE(fs::exists(dir));
}

TEST(PluginProcess, SocketGroupMakesSocketGroupWritable) {
  TempDir dir;
  gid_t gid = getegid();
  RunningPlugin p(
      {{"PLUGIN_UNIX_SOCKET_DIR", dir.path()}, {"PLUGIN_UNIX_SOCKET_GROUP", std::to_string(gid)}});
  struct stat st {};
  ASSERT_EQ(stat(p.fields[3].c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  EXPECT_EQ(st.st_gid, gid);
  p.Shutdown();
  EXPECT_EQ(p.child.Wait(2s), 0);
}

TEST(PluginProcess, HealthPluginServingAndUnknownNotFound) {
  RunningPlugin p;
  grpc::StatusCode code;
  EXPECT_EQ(Health(p, "plugin", &code), grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_EQ(code, grpc::StatusCode::OK);
  Health(p, "no-such-service", &code);
  EXPECT_EQ(code, grpc::StatusCode::NOT_FOUND);
  p.Shutdown();
  EXPECT_EQ(p.child.Wait(2s), 0);
}

TEST(PluginProcess, StdioStreamStaysOpenUntilShutdown) {
  RunningPlugin p;
  grpc::ClientContext ctx;
  google::protobuf::Empty req;
  auto reader = ::plugin::GRPCStdio::NewStub(p.channel)->StreamStdio(&ctx, req);
  std::atomic<bool> ended{false};
  grpc::Status final_status;
  std::thread t([&] {
    ::plugin::StdioData data;
    while (reader->Read(&data)) {
    }
    final_status = reader->Finish();
    ended = true;
  });
  // Open while the plugin serves other calls.
  grpc::StatusCode code;
  EXPECT_EQ(Health(p, "plugin", &code), grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_FALSE(ended.load());
  p.Shutdown();
  EXPECT_EQ(p.child.Wait(2s), 0);
  t.join();
  EXPECT_TRUE(ended.load());
  EXPECT_TRUE(final_status.ok()) << final_status.error_message();
}

TEST(PluginProcess, StdioStreamEndsWhenCancelled) {
  RunningPlugin p;
  grpc::ClientContext ctx;
  google::protobuf::Empty req;
  auto reader = ::plugin::GRPCStdio::NewStub(p.channel)->StreamStdio(&ctx, req);
  ctx.TryCancel();
  ::plugin::StdioData data;
  EXPECT_FALSE(reader->Read(&data));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // The plugin keeps serving after a cancelled stream.
  grpc::StatusCode code;
  EXPECT_EQ(Health(p, "plugin", &code), grpc::health::v1::HealthCheckResponse::SERVING);
  p.Shutdown();
  EXPECT_EQ(p.child.Wait(2s), 0);
}

TEST(PluginProcess, BrokerStreamHeldOpenAndKnockRefused) {
  RunningPlugin p;
  grpc::ClientContext ctx;
  auto stream = ::plugin::GRPCBroker::NewStub(p.channel)->StartStream(&ctx);
  ::plugin::ConnInfo knock;
  knock.set_service_id(7);
  knock.mutable_knock()->set_knock(true);
  ASSERT_TRUE(stream->Write(knock));
  ::plugin::ConnInfo ack;
  ASSERT_TRUE(stream->Read(&ack));
  EXPECT_EQ(ack.service_id(), 7u);
  EXPECT_TRUE(ack.knock().knock());
  EXPECT_TRUE(ack.knock().ack());
  EXPECT_EQ(ack.knock().error(), "brokering is not supported");
  // A second knock on the same stream is answered too: the stream stays open.
  knock.set_service_id(8);
  ASSERT_TRUE(stream->Write(knock));
  ASSERT_TRUE(stream->Read(&ack));
  EXPECT_EQ(ack.service_id(), 8u);
  p.Shutdown();
  EXPECT_FALSE(stream->Read(&ack));  // ended by the plugin's stop
  stream->Finish();
  EXPECT_EQ(p.child.Wait(2s), 0);
}

TEST(PluginProcess, ControllerShutdownExitsAndRemovesSocket) {
  // How long the stop takes is measured by status_bench.
  for (bool close_channel : {true, false}) {
    RunningPlugin p;
    p.Shutdown(close_channel);
    EXPECT_EQ(p.child.Wait(2s), 0);
    EXPECT_FALSE(fs::exists(p.fields[3]));
  }
}

TEST(PluginProcess, SigtermStopsGracefullyAndSigintIsIgnored) {
  RunningPlugin p;
  kill(p.child.pid(), SIGINT);
  grpc::StatusCode code;
  EXPECT_EQ(Health(p, "plugin", &code), grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_FALSE(p.child.Wait(0ms).has_value());
  kill(p.child.pid(), SIGTERM);
  EXPECT_EQ(p.child.Wait(2s), 0);
  EXPECT_FALSE(fs::exists(p.fields[3]));
}

TEST(PluginProcess, TcpTransportWithinPortRange) {
  // Find a small free range by asking the kernel for an ephemeral port.
  int probe = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  getsockname(probe, reinterpret_cast<sockaddr*>(&addr), &len);
  int busy = ntohs(addr.sin_port);  // held: the plugin must skip it
  ASSERT_EQ(listen(probe, 1), 0);
  RunningPlugin p({{"MPS_PLUGIN_TRANSPORT", "tcp"},
                   {"PLUGIN_MIN_PORT", std::to_string(busy)},
                   {"PLUGIN_MAX_PORT", std::to_string(busy + 20)}});
  close(probe);
  ASSERT_EQ(p.fields[2], "tcp");
  auto colon = p.fields[3].rfind(':');
  EXPECT_EQ(p.fields[3].substr(0, colon), "127.0.0.1");
  int port = std::stoi(p.fields[3].substr(colon + 1));
  EXPECT_GT(port, busy);
  EXPECT_LE(port, busy + 20);
  grpc::StatusCode code;
  EXPECT_EQ(Health(p, "plugin", &code), grpc::health::v1::HealthCheckResponse::SERVING);
  p.Shutdown();
  EXPECT_EQ(p.child.Wait(2s), 0);
}

TEST(PluginProcess, BadPortRangeFailsWithoutHandshake) {
  ChildProcess c({PluginBinary()}, PluginOptions({{"MPS_PLUGIN_TRANSPORT", "tcp"},
                                                  {"PLUGIN_MIN_PORT", "2000"},
                                                  {"PLUGIN_MAX_PORT", "1000"}}));
  EXPECT_EQ(c.Wait(3s), 1);
  EXPECT_EQ(c.ReadToEof(1s), "");
  EXPECT_THAT(c.stderr_text(), testing::HasSubstr("PLUGIN_MIN_PORT"));
}

TEST(PluginProcess, MissingOrWrongCookieExitsOneWithThreeLines) {
  const std::string expected =
      "This binary is a plugin. These are not meant to be executed directly.\n"
      "Please execute the program that consumes these plugins, which will\n"
      "load any plugins automatically\n";
  for (bool wrong : {false, true}) {
    auto options =
        PluginOptions(wrong ? std::map<std::string, std::string>{{mps::test::kCookieName, "nope"}}
                            : std::map<std::string, std::string>{},
                      /*with_cookie=*/false);
    ChildProcess c({PluginBinary()}, options);
    EXPECT_EQ(c.Wait(3s), 1);
    EXPECT_EQ(c.ReadToEof(1s), "");
    EXPECT_EQ(c.stderr_text(), expected);
  }
}

TEST(PluginProcess, EveryStderrLineIsHclogJson) {
  // gRPC core's own log lines must come out as hclog JSON too.
  RunningPlugin p(std::map<std::string, std::string>{{"GRPC_VERBOSITY", "DEBUG"}});
  {
    grpc::ClientContext ctx;
    hashicorp::nomad_autoscaler::plugins::base::proto::v1::SetConfigRequest req;
    (*req.mutable_config())["bogus"] = "x";
    hashicorp::nomad_autoscaler::plugins::base::proto::v1::SetConfigResponse resp;
    hashicorp::nomad_autoscaler::plugins::base::proto::v1::BasePluginService::NewStub(p.channel)
        ->SetConfig(&ctx, req, &resp);
  }
  p.Shutdown();
  ASSERT_EQ(p.child.Wait(2s), 0);
  std::istringstream in(p.child.stderr_text());
  std::string line;
  int lines = 0;
  const std::regex ts(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2}))");
  while (std::getline(in, line)) {
    ++lines;
    auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << line;
    ASSERT_TRUE(j["@message"].is_string()) << line;
    ASSERT_TRUE(j["@module"].is_string()) << line;
    ASSERT_TRUE(std::regex_match(j["@timestamp"].get<std::string>(), ts)) << line;
    EXPECT_THAT(j["@level"].get<std::string>(),
                testing::AnyOf("trace", "debug", "info", "warn", "error"));
    EXPECT_LT(line.size(), 64u * 1024u);
  }
  EXPECT_GE(lines, 3);
  EXPECT_THAT(p.child.stderr_text(), testing::HasSubstr("unknown plugin config key"));
  EXPECT_THAT(p.child.stderr_text(), testing::HasSubstr("\"component\":\"grpc\""));
}

TEST(PluginProcess, SecretsNeverReachStderrAtTrace) {
  TempDir dir;
  std::string cert = (dir / "c.pem").string(), key = (dir / "k.pem").string();
  // Direct mode checks the client identity at SetConfig: give it a real one.
  auto identity = mps::sim::CertificateAuthority::SelfSignedClientCertificate("plugin");
  std::ofstream(cert) << identity.certificate_pem;
  std::ofstream(key) << identity.private_key_pem;
  RunningPlugin p;
  const std::string secrets[] = {"pass-phrase-Zq81", "nomad-token-Xy77", "user:pw-Hk22"};
  for (bool valid : {false, true}) {
    grpc::ClientContext ctx;
    hashicorp::nomad_autoscaler::plugins::base::proto::v1::SetConfigRequest req;
    auto& m = *req.mutable_config();
    m["multipass_address"] = valid ? "127.0.0.1:50051" : "";
    m["client_cert_path"] = cert;
    m["client_key_path"] = key;
    m["passphrase"] = secrets[0];
    m["nomad_token"] = secrets[1];
    m["nomad_http-auth"] = secrets[2];
    m["state_dir"] = (dir / "state").string();  // not the shared default: tests run in parallel
    hashicorp::nomad_autoscaler::plugins::base::proto::v1::SetConfigResponse resp;
    auto st =
        hashicorp::nomad_autoscaler::plugins::base::proto::v1::BasePluginService::NewStub(p.channel)
            ->SetConfig(&ctx, req, &resp);
    EXPECT_EQ(st.ok(), valid) << st.error_message();
    for (const auto& s : secrets)
      EXPECT_THAT(st.error_message(), testing::Not(testing::HasSubstr(s)));
  }
  p.Shutdown();
  ASSERT_EQ(p.child.Wait(2s), 0);
  std::string err = p.child.stderr_text();
  EXPECT_THAT(err, testing::HasSubstr("\"@level\":\"trace\""));  // trace was on
  EXPECT_THAT(err, testing::HasSubstr("<redacted>"));
  for (const auto& s : secrets) EXPECT_THAT(err, testing::Not(testing::HasSubstr(s)));
}

TEST(PluginProcess, ExitsWhenParentDies) {
  // The test becomes the subreaper, so the orphaned plugin can be reaped here.
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  int out[2], pidpipe[2];
  ASSERT_EQ(pipe(out), 0);
  ASSERT_EQ(pipe(pidpipe), 0);
  auto env = mps::testing::ChildEnvironment(PluginOptions());
  std::vector<char*> ev;
  for (auto& e : env) ev.push_back(e.data());
  ev.push_back(nullptr);
  std::string bin = PluginBinary();
  pid_t middle = fork();
  if (middle == 0) {
    pid_t plugin = fork();
    if (plugin == 0) {
      dup2(out[1], 1);
      int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 2);
      close(out[0]);
      close(pidpipe[0]);
      close(pidpipe[1]);
      char* argv[] = {bin.data(), nullptr};
      execve(bin.c_str(), argv, ev.data());
      _exit(127);
    }
    (void)!write(pidpipe[1], &plugin, sizeof plugin);
    close(out[1]);  // a failed exec then shows as EOF, not a hang
    for (;;) pause();
  }
  close(out[1]);
  close(pidpipe[1]);
  pid_t plugin = 0;
  ASSERT_EQ(read(pidpipe[0], &plugin, sizeof plugin), static_cast<ssize_t>(sizeof plugin));
  close(pidpipe[0]);
  std::string hs;
  char c;
  while (read(out[0], &c, 1) == 1 && c != '\n') hs += c;
  auto fields = SplitHandshake(hs);
  ASSERT_GE(fields.size(), 5u) << hs;
  ASSERT_TRUE(fs::exists(fields[3]));

  kill(middle, SIGKILL);
  waitpid(middle, nullptr, 0);
  auto deadline = std::chrono::steady_clock::now() + 3s;
  int status = 0;
  pid_t r = 0;
  while ((r = waitpid(plugin, &status, WNOHANG)) == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  if (r != plugin) kill(plugin, SIGKILL);
  ASSERT_EQ(r, plugin) << "plugin still running after its parent died";
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_FALSE(fs::exists(fields[3]));
  close(out[0]);
  prctl(PR_SET_CHILD_SUBREAPER, 0);
}

// Issue 16, defect 6: two plugin processes on one state_dir both scaled
// (targets 3 and 5 gave 7 instances). The second now refuses, naming the
// holder's pid; once the first is gone the second may take it.
TEST(PluginProcess, ASecondProcessOnTheSameStateDirIsRefusedNamingTheHolder) {
  TempDir dir;
  const auto config = DirectConfig(dir);
  auto set_config = [&](RunningPlugin& p) { return SetConfig(p, config); };
  RunningPlugin first;
  auto st = set_config(first);
  ASSERT_TRUE(st.ok()) << st.error_message();
  {
    RunningPlugin second;
    auto refused = set_config(second);
    EXPECT_FALSE(refused.ok());
    EXPECT_THAT(refused.error_message(), testing::HasSubstr("state_dir"));
    EXPECT_THAT(refused.error_message(),
                testing::HasSubstr("pid " + std::to_string(first.child.pid())));
    second.Shutdown();
    EXPECT_EQ(second.child.Wait(5s), 0);
  }
  first.Shutdown();
  EXPECT_EQ(first.child.Wait(5s), 0);
  RunningPlugin third;
  auto taken = set_config(third);
  EXPECT_TRUE(taken.ok()) << taken.error_message();
  third.Shutdown();
}

// The front execs with gRPC and protobuf linked in and loads the backend
// module after the handshake; the module takes gRPC and protobuf from the
// executable, so the process maps no shared copy of either (with
// MPS_STATIC_GRPC_FRONT=OFF both halves share Debian's one shared copy).
TEST(PluginProcess, BackendModuleServesSetConfigWithOneGrpcAndProtobufInTheProcess) {
  TempDir dir;
  RunningPlugin p;
  auto st = SetConfig(p, DirectConfig(dir));
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(MappedFiles(p.child.pid(), "multipass-target-backend.so").size(), 1u);
  for (const char* library : {"libprotobuf.so", "libgrpc++.so", "libgrpc.so"}) {
    auto mapped = MappedFiles(p.child.pid(), library);
#if MPS_STATIC_GRPC_FRONT
    EXPECT_THAT(mapped, testing::IsEmpty()) << library;
#else
    EXPECT_EQ(mapped.size(), 1u) << library;
#endif
  }
  p.Shutdown();
  EXPECT_EQ(p.child.Wait(5s), 0);
}

// The front links gRPC's TLS and compression in as well (docs/BENCHMARKS.md,
// start-up): until its module is loaded the process maps no shared OpenSSL
// or zlib; the module brings its own shared OpenSSL for its certificates.
TEST(PluginProcess, TheFrontMapsNoSharedOpenSslOrZlibBeforeItsModule) {
  RunningPlugin p;
  ASSERT_TRUE(PluginInfo(p).ok());
  for (const char* library : {"libssl.so", "libcrypto.so", "libz.so"}) {
#if MPS_STATIC_GRPC_FRONT
    EXPECT_THAT(MappedFiles(p.child.pid(), library), testing::IsEmpty()) << library;
#else
    EXPECT_EQ(MappedFiles(p.child.pid(), library).size(), 1u) << library;
#endif
  }
  p.Shutdown();
  EXPECT_EQ(p.child.Wait(5s), 0);
}

// The release archive's layout (README, deploy/nomad): bin/multipass-target
// and lib/multipass-target-backend.so, unpacked anywhere and started through
// a symlink, as scripts/demo does.
TEST(PluginProcess, BackendModuleIsFoundBesideTheExecutableWhereverItIsUnpacked) {
  TempDir dir;
  PluginCopyIn(dir);
  fs::copy_file(
      fs::path(PluginBinary()).parent_path() / ".." / "lib" / "multipass-target-backend.so",
      dir / "lib" / "multipass-target-backend.so");
  fs::create_symlink(dir / "bin" / "multipass-target", dir / "plugin-link");
  RunningPlugin p({}, (dir / "plugin-link").string());
  auto st = SetConfig(p, DirectConfig(dir));
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(
      MappedFiles(p.child.pid(), (dir / "lib" / "multipass-target-backend.so").string()).size(),
      1u);
  p.Shutdown();
  EXPECT_EQ(p.child.Wait(5s), 0);
}

TEST(PluginProcess, MissingBackendModuleFailsEveryCallNamingItsPath) {
  TempDir dir;
  RunningPlugin p({}, PluginCopyIn(dir));
  EXPECT_TRUE(PluginInfo(p).ok());  // the front serves without its module
  auto st = SetConfig(p, DirectConfig(dir));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  auto module = (dir / "lib" / "multipass-target-backend.so").string();
  EXPECT_THAT(st.error_message(), testing::HasSubstr("backend module " + module));
  EXPECT_THAT(st.error_message(), testing::HasSubstr("No such file or directory"));
  // Every later call gets the same answer; the process stops cleanly.
  EXPECT_EQ(SetConfig(p, DirectConfig(dir)).error_message(), st.error_message());
  p.Shutdown();
  EXPECT_EQ(p.child.Wait(5s), 0);
}

TEST(PluginProcess, UnloadableBackendModuleFailsSetConfigWithTheLoadersReason) {
  TempDir dir;
  auto binary = PluginCopyIn(dir);
  auto module = (dir / "lib" / "multipass-target-backend.so").string();
  std::ofstream(module) << "not an ELF file";
  RunningPlugin p({}, binary);
  auto st = SetConfig(p, DirectConfig(dir));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(st.error_message(), testing::HasSubstr("backend module " + module));
  EXPECT_THAT(st.error_message(), testing::HasSubstr("file too short"));
  p.Shutdown();
  EXPECT_EQ(p.child.Wait(5s), 0);
}

TEST(PluginProcess, ASharedObjectWithoutTheFactoryIsRefusedNamingIt) {
  TempDir dir;
  auto binary = PluginCopyIn(dir);
  // Any loadable shared object that is not our module: zlib, which gRPC
  // already brought into this test.
  void* zlib = dlopen("libz.so.1", RTLD_NOW | RTLD_NOLOAD);
  ASSERT_NE(zlib, nullptr);
  link_map* map = nullptr;
  ASSERT_EQ(dlinfo(zlib, RTLD_DI_LINKMAP, &map), 0);
  fs::copy_file(map->l_name, dir / "lib" / "multipass-target-backend.so");
  dlclose(zlib);
  RunningPlugin p({}, binary);
  auto st = SetConfig(p, DirectConfig(dir));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(st.error_message(), testing::HasSubstr("no mps_target_backend_create_v1"));
  p.Shutdown();
  EXPECT_EQ(p.child.Wait(5s), 0);
}
