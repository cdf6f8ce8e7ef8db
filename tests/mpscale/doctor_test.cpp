// `mpscale doctor`: the real binary against the real cluster-sim binary
// (multipassd on a unix socket that auto-accepts the first client, and on tcp
// whose certificate store refuses a new client; Nomad with and without ACL
// tokens), plus the pure rules it applies to versions and socket permissions.
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "mpscale/doctor.h"
#include "support/child_process.h"
#include "support/temp_dir.h"

using namespace std::chrono_literals;
using mps::testing::BinDir;
using mps::testing::ChildOptions;
using mps::testing::ChildProcess;
using mps::testing::TempDir;

namespace {

struct Sim {
  std::unique_ptr<ChildProcess> process;
  std::string socket, tls, nomad;
};

Sim StartSim(const std::filesystem::path& dir, std::vector<std::string> extra) {
  Sim s;
  s.socket = (dir / "mp.sock").string();
  std::vector<std::string> args = {BinDir() + "/cluster-sim", "--multipass-socket", s.socket,
                                   "--multipass-tls",         "127.0.0.1:0",        "--state-dir",
                                   (dir / "sim").string(),    "--nomad-port",       "0"};
  args.insert(args.end(), extra.begin(), extra.end());
  s.process = std::make_unique<ChildProcess>(args);
  while (auto line = s.process->ReadLine(10s)) {
    if (line->starts_with("multipass-tls ")) s.tls = line->substr(14);
    if (line->starts_with("nomad ")) s.nomad = line->substr(6);
    if (*line == "ready") break;
  }
  return s;
}

struct Run {
  std::optional<int> exit;
  std::string out;
  std::string err;
};

Run Doctor(std::vector<std::string> args, std::vector<std::string> prefix = {}) {
  std::vector<std::string> argv = prefix;
  argv.push_back(BinDir() + "/mpscale");
  argv.push_back("doctor");
  argv.insert(argv.end(), args.begin(), args.end());
  ChildOptions options;
  options.unset_env_prefixes = {"NOMAD_"};
  ChildProcess p(argv, options);
  Run r;
  r.out = p.ReadToEof(30s);
  r.exit = p.Wait(30s);
  r.err = p.stderr_text();
  return r;
}

std::string Text(const Run& r) {
  return r.out + "--- stderr:\n" + r.err;
}

bool Has(const Run& r, const std::string& text) {
  return r.out.find(text) != std::string::npos;
}

std::string WriteFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path) << text << "\n";
  return path.string();
}

// A node of class web with one running allocation in `ns`, through the sim's admin API.
void AddBusyNode(const std::string& nomad, const std::string& instance, const std::string& ns) {
  httplib::Client c(nomad);
  auto node = c.Post("/sim/nodes", R"({"instance":")" + instance + R"(","node_class":"web"})",
                     "application/json");
  ASSERT_TRUE(node && node->status == 200);
  auto id = nlohmann::json::parse(node->body).at("ID").get<std::string>();
  auto alloc = c.Post("/sim/allocations", nlohmann::json{{"node_id", id}, {"namespace", ns}}.dump(),
                      "application/json");
  ASSERT_TRUE(alloc && alloc->status == 200);
}

}  // namespace

TEST(DoctorRules, DaemonVersions) {
  using mps::mpscale::ParseDaemonVersion;
  EXPECT_EQ(ParseDaemonVersion("1.16.3"), std::make_pair(1, 16));
  EXPECT_EQ(ParseDaemonVersion("multipass 1.13.0+mac"), std::make_pair(1, 13));
  EXPECT_EQ(ParseDaemonVersion("1.12.2-dev.1"), std::make_pair(1, 12));
  EXPECT_FALSE(ParseDaemonVersion("unknown"));
}

TEST(DoctorRules, SocketPermissionsNameTheGroupToJoin) {
  using mps::mpscale::SocketAccessProblem;
  const mode_t real = S_IFSOCK | 0660;  // multipassd's socket: root:sudo 0660
  EXPECT_FALSE(SocketAccessProblem(0, 27, real, 0, {0}, "root", "sudo", "root"));
  EXPECT_FALSE(SocketAccessProblem(0, 27, real, 1000, {1000, 27}, "root", "sudo", "alice"));
  auto outside = SocketAccessProblem(0, 27, real, 1000, {1000}, "root", "sudo", "alice");
  ASSERT_TRUE(outside);
  EXPECT_NE(outside->problem.find("not in group sudo"), std::string::npos) << outside->problem;
  EXPECT_NE(outside->fix.find("usermod -aG sudo alice"), std::string::npos) << outside->fix;
  auto owner_only = SocketAccessProblem(0, 0, S_IFSOCK | 0600, 1000, {1000}, "root", "root", "bob");
  ASSERT_TRUE(owner_only);
  EXPECT_NE(owner_only->problem.find("admits only root"), std::string::npos);
  EXPECT_FALSE(SocketAccessProblem(0, 0, S_IFSOCK | 0666, 1000, {1000}, "root", "root", "bob"));
}

class DoctorBinary : public ::testing::Test {
 protected:
  TempDir tmp_;
  std::filesystem::path dir_{tmp_.path()};
};

// Passes whether the simulated daemon auto-accepts the first client on its
// unix socket (an empty certificate store) or, like a real host whose CLI is
// trusted already, wants the passphrase.
TEST_F(DoctorBinary, AllGoodOnTheSocketWithoutAcls) {
  auto sim = StartSim(dir_, {"--passphrase", "open-sesame"});
  ASSERT_FALSE(sim.nomad.empty()) << sim.process->stderr_text();
  auto r = Doctor({"--multipass-address", "unix:" + sim.socket, "--multipass-passphrase-file",
                   WriteFile(dir_ / "pp", "open-sesame"), "--state-dir", (dir_ / "hostd").string(),
                   "--nomad-address", sim.nomad, "--node-class", "web"});
  EXPECT_EQ(r.exit, 0) << Text(r);
  EXPECT_TRUE(Has(r, "[ ok ] socket " + sim.socket)) << Text(r);
  EXPECT_TRUE(Has(r, "[ ok ] multipassd accepts our client certificate") ||
              Has(r, "[ ok ] passphrase accepted"))
      << Text(r);
  EXPECT_TRUE(Has(r, "[ ok ] multipassd version ")) << Text(r);
  EXPECT_TRUE(Has(r, "[ ok ] Nomad at " + sim.nomad + " answers")) << Text(r);
  EXPECT_TRUE(Has(r, "[ ok ] Nomad runs without ACLs")) << Text(r);
  EXPECT_TRUE(Has(r, "[ ok ] pool node_class=web: 0 node(s)")) << Text(r);
  EXPECT_TRUE(Has(r, "all checks passed")) << Text(r);
}

TEST_F(DoctorBinary, NothingToCheckIsAUsageError) {
  auto r = Doctor({"--skip-multipass"});
  EXPECT_EQ(r.exit, 2) << Text(r);
  EXPECT_TRUE(Has(r, "nothing to check")) << Text(r);
}

TEST_F(DoctorBinary, MissingSocketAndUnreachableNomadFailWithTheirFixes) {
  auto r = Doctor({"--multipass-address", "unix:" + (dir_ / "none.sock").string(),
                   "--nomad-address", "http://127.0.0.1:1"});
  EXPECT_EQ(r.exit, 1) << Text(r);
  EXPECT_TRUE(Has(r, "[FAIL] socket " + (dir_ / "none.sock").string() + " does not exist"))
      << Text(r);
  EXPECT_TRUE(Has(r, "fix: start multipassd")) << Text(r);
  EXPECT_TRUE(Has(r, "cannot reach Nomad at http://127.0.0.1:1")) << Text(r);
  EXPECT_TRUE(Has(r, "2 check(s) failed")) << Text(r);
}

TEST_F(DoctorBinary, CertStoreRefusalNeedsThePassphrase) {
  auto sim = StartSim(dir_, {"--passphrase", "open-sesame"});
  ASSERT_FALSE(sim.tls.empty()) << sim.process->stderr_text();

  auto none = Doctor({"--multipass-address", sim.tls});
  EXPECT_EQ(none.exit, 1) << Text(none);
  EXPECT_TRUE(Has(none, "refuses our client certificate (UNAUTHENTICATED)")) << Text(none);
  EXPECT_TRUE(Has(none, "multipass set local.passphrase")) << Text(none);
  EXPECT_TRUE(Has(none, "--multipass-passphrase-file")) << Text(none);

  auto wrong = Doctor({"--multipass-address", sim.tls, "--multipass-passphrase-file",
                       WriteFile(dir_ / "wrong", "guess")});
  EXPECT_EQ(wrong.exit, 1) << Text(wrong);
  EXPECT_TRUE(Has(wrong, "rejected the passphrase")) << Text(wrong);

  // hostd's state dir: the certificate registered here is the one hostd will present.
  auto state = (dir_ / "hostd").string();
  auto right = Doctor({"--multipass-address", sim.tls, "--multipass-passphrase-file",
                       WriteFile(dir_ / "right", "open-sesame"), "--state-dir", state});
  EXPECT_EQ(right.exit, 0) << Text(right);
  EXPECT_TRUE(Has(right, "[ ok ] passphrase accepted")) << Text(right);
  EXPECT_TRUE(Has(right, "[ ok ] multipassd version ")) << Text(right);

  // Registered now: the same identity is accepted without the passphrase.
  auto again = Doctor({"--multipass-address", sim.tls, "--state-dir", state});
  EXPECT_EQ(again.exit, 0) << Text(again);
  EXPECT_TRUE(Has(again, "[ ok ] multipassd accepts our client certificate")) << Text(again);
}

TEST_F(DoctorBinary, DaemonWithoutPassphraseSaysToSetOne) {
  auto sim = StartSim(dir_, {});
  auto r = Doctor({"--multipass-address", sim.tls, "--multipass-passphrase-file",
                   WriteFile(dir_ / "pp", "anything")});
  EXPECT_EQ(r.exit, 1) << Text(r);
  EXPECT_TRUE(Has(r, "multipassd has no passphrase set (FAILED_PRECONDITION)")) << Text(r);
  EXPECT_TRUE(Has(r, "multipass set local.passphrase")) << Text(r);
}

TEST_F(DoctorBinary, SocketOfAGroupWeAreNotIn) {
  if (geteuid() != 0 || access("/usr/bin/setpriv", X_OK) != 0)
    GTEST_SKIP() << "needs root and setpriv to run the doctor as another user";
  auto sim = StartSim(dir_, {});
  // As multipassd's socket: root:GROUP 0660, in a directory others may enter.
  ASSERT_EQ(chmod(dir_.c_str(), 0755), 0);
  ASSERT_EQ(chown(sim.socket.c_str(), 0, 1), 0);  // gid 1: "daemon" on Debian
  ASSERT_EQ(chmod(sim.socket.c_str(), 0660), 0);
  auto as_nobody = Doctor({"--multipass-address", "unix:" + sim.socket},
                          {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"});
  EXPECT_EQ(as_nobody.exit, 1) << Text(as_nobody);
  EXPECT_TRUE(Has(as_nobody, "is not in group")) << Text(as_nobody);
  EXPECT_TRUE(Has(as_nobody, "fix: sudo usermod -aG ")) << Text(as_nobody);
}

TEST_F(DoctorBinary, TokenCapabilitiesAndTheNamespacesOfThePoolsAllocations) {
  auto sim = StartSim(dir_, {"--nomad-token", "root", "--nomad-token", "narrow=default",
                             "--nomad-token", "wide=*", "--nomad-token", "reader=*;node=read"});
  ASSERT_FALSE(sim.nomad.empty()) << sim.process->stderr_text();
  AddBusyNode(sim.nomad, "web-1", "default");
  AddBusyNode(sim.nomad, "web-2", "secret");
  auto doctor = [&](const std::string& token) {
    return Doctor({"--skip-multipass", "--nomad-address", sim.nomad, "--nomad-token-file",
                   WriteFile(dir_ / ("token-" + token), token), "--node-class", "web"});
  };

  auto wide = doctor("wide");
  EXPECT_EQ(wide.exit, 0) << Text(wide);
  EXPECT_TRUE(Has(wide, "node write (drain, eligibility, purge)")) << Text(wide);
  EXPECT_TRUE(Has(wide, "read-job in every namespace")) << Text(wide);
  EXPECT_TRUE(Has(wide, "2 node(s), 2 allocation(s) visible")) << Text(wide);
  EXPECT_TRUE(Has(wide, "[ ok ] read-job in namespace secret")) << Text(wide);

  auto narrow = doctor("narrow");
  EXPECT_EQ(narrow.exit, 1) << Text(narrow);
  EXPECT_TRUE(Has(narrow,
                  "[FAIL] the Nomad token 'sim client token' lacks read-job in "
                  "namespaces other than default"))
      << Text(narrow);
  EXPECT_TRUE(Has(narrow, "namespace \"*\" { policy = \"read\" }")) << Text(narrow);
  // The hidden allocation is not even counted: that is the trap.
  EXPECT_TRUE(Has(narrow, "2 node(s), 1 allocation(s) visible")) << Text(narrow);

  auto reader = doctor("reader");
  EXPECT_EQ(reader.exit, 1) << Text(reader);
  EXPECT_TRUE(Has(reader, "lacks node write (node policy: \"read\")")) << Text(reader);

  auto root = doctor("root");
  EXPECT_EQ(root.exit, 0) << Text(root);
  EXPECT_TRUE(Has(root, "management token")) << Text(root);

  auto unknown = doctor("who-is-this");
  EXPECT_EQ(unknown.exit, 1) << Text(unknown);
  EXPECT_TRUE(Has(unknown, "ACL token not found")) << Text(unknown);
  EXPECT_TRUE(Has(unknown, "nomad acl token create")) << Text(unknown);
}
