#include "mpscale/doctor.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "nomad/acl_check.h"
#include "nomad/node_pool_filter.h"
#include "nomad/nomad_api.h"
#include "nomad/nomad_config.h"
#include "nomad/nomad_error.h"

namespace mps::mpscale {
namespace {

using multipass::MultipassError;
using nomad::NomadError;
using MKind = MultipassError::Kind;

// One line per step; failures carry the fix.
class Report {
 public:
  explicit Report(std::ostream& out) : out_(out) {}
  void Section(const std::string& title) { out_ << title << "\n"; }
  void Ok(const std::string& text) { Line("[ ok ]", text); }
  void Warn(const std::string& text) { Line("[warn]", text); }
  void Skip(const std::string& text) { Line("[skip]", text); }
  void Fail(const std::string& text, const std::string& fix) {
    ++failures_;
    Line("[FAIL]", text);
    if (!fix.empty()) out_ << "         fix: " << fix << "\n";
  }
  int failures() const { return failures_; }

 private:
  void Line(const char* tag, const std::string& text) {
    out_ << "  " << tag << " " << text << "\n";
  }
  std::ostream& out_;
  int failures_ = 0;
};

std::string UserName(uid_t uid) {
  if (auto* pw = getpwuid(uid)) return pw->pw_name;
  return "uid " + std::to_string(uid);
}

std::string GroupName(gid_t gid) {
  if (auto* gr = getgrgid(gid)) return gr->gr_name;
  return "gid " + std::to_string(gid);
}

std::string ModeText(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

std::vector<gid_t> OurGroups() {
  std::vector<gid_t> groups(static_cast<std::size_t>(std::max(getgroups(0, nullptr), 0)));
  int n = groups.empty() ? 0 : getgroups(static_cast<int>(groups.size()), groups.data());
  groups.resize(static_cast<std::size_t>(std::max(n, 0)));
  groups.push_back(getegid());
  return groups;
}

std::string ReadSecretFile(const std::string& path, const std::string& flag) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(flag + ": cannot read '" + path + "'");
  std::stringstream buf;
  buf << in.rdbuf();
  std::string text = buf.str();
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.empty()) throw std::runtime_error(flag + ": '" + path + "' is empty");
  return text;
}

// The unix socket: there, a socket, and ours to connect to.
bool CheckSocket(const std::string& path, Report& r) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT) {
      r.Fail("socket " + path + " does not exist",
             "start multipassd (sudo snap start multipass; snap services multipass), or point "
             "--multipass-address at its socket");
    } else {
      r.Fail("socket " + path + " cannot be examined: " + std::strerror(err),
             "a directory on the way is closed to user " + UserName(geteuid()) +
                 "; run as a user of multipassd's group or as root");
    }
    return false;
  }
  if (!S_ISSOCK(st.st_mode)) {
    r.Fail(path + " exists but is not a unix socket",
           "point --multipass-address at multipassd's socket (the snap's is "
           "/var/snap/multipass/common/multipass_socket)");
    return false;
  }
  const std::string owner = UserName(st.st_uid), group = GroupName(st.st_gid);
  const std::string user = UserName(geteuid());
  if (auto problem = SocketAccessProblem(st.st_uid, st.st_gid, st.st_mode, geteuid(), OurGroups(),
                                         owner, group, user)) {
    r.Fail("socket " + path + ": " + problem->problem, problem->fix);
    return false;
  }
  r.Ok("socket " + path + " (" + owner + ":" + group + " " + ModeText(st.st_mode) + "): user " +
       user + " may connect");
  return true;
}

// Version, with the one authenticate hostd would do on UNAUTHENTICATED.
std::optional<std::string> Connect(const DoctorOptions& o, Report& r) {
  multipass::MultipassClientOptions options = o.multipass;
  options.passphrase.reset();  // authenticate explicitly below, to report it
  options.call_timeout = std::chrono::seconds(15);
  std::unique_ptr<multipass::MultipassClient> client;
  try {
    client = std::make_unique<multipass::MultipassClient>(options);
  } catch (const MultipassError& e) {
    r.Fail("client identity: " + e.message,
           "fix the --multipass-cert/--multipass-key/--multipass-ca/--state-dir files hostd uses");
    return std::nullopt;
  }
  if (o.multipass.client_cert_file.empty() && o.multipass.state_dir.empty()) {
    r.Warn(
        "no --state-dir or --multipass-cert: checking with a throwaway client certificate, not "
        "hostd's own (pass hostd's --state-dir to check the certificate it uses)");
  }
  auto version = [&]() -> std::string { return client->Version(); };
  try {
    auto v = version();
    r.Ok("multipassd accepts our client certificate");
    return v;
  } catch (const MultipassError& e) {
    if (e.kind == MKind::unreachable || e.kind == MKind::timeout) {
      r.Fail("cannot talk to multipassd at " + client->endpoint().address + ": " + e.message,
             "check that multipassd runs (snap services multipass) and --multipass-address; for "
             "tcp, that --multipass-ca/--multipass-server-name match its certificate");
      return std::nullopt;
    }
    if (e.kind != MKind::unauthenticated) {
      r.Fail("multipassd refused the version call: " + e.message, "");
      return std::nullopt;
    }
  }
  // UNAUTHENTICATED: the cert store does not know us.
  if (o.passphrase_file.empty()) {
    r.Fail(
        "multipassd's certificate store refuses our client certificate (UNAUTHENTICATED) and no "
        "passphrase is configured",
        "on the host, as a trusted client: multipass set local.passphrase; write the same "
        "passphrase to a file only hostd can read (0600) and pass --multipass-passphrase-file "
        "FILE to hostd and to this check");
    return std::nullopt;
  }
  r.Ok(
      "multipassd does not know our certificate yet (UNAUTHENTICATED): authenticating with the "
      "passphrase from " +
      o.passphrase_file);
  try {
    client->Authenticate(ReadSecretFile(o.passphrase_file, "--multipass-passphrase-file"));
  } catch (const MultipassError& e) {
    if (e.kind == MKind::wrong_passphrase) {
      r.Fail("multipassd rejected the passphrase in " + o.passphrase_file + " (INVALID_ARGUMENT)",
             "set it again on the host (multipass set local.passphrase) and write the same text "
             "to " +
                 o.passphrase_file);
    } else if (e.kind == MKind::passphrase_not_set) {
      r.Fail("multipassd has no passphrase set (FAILED_PRECONDITION)",
             "on the host, as a trusted client: multipass set local.passphrase (the text in " +
                 o.passphrase_file + ")");
    } else {
      r.Fail("authenticate failed: " + e.message, "");
    }
    return std::nullopt;
  } catch (const std::exception& e) {
    r.Fail(e.what(), "point --multipass-passphrase-file at a readable file holding the passphrase");
    return std::nullopt;
  }
  r.Ok("passphrase accepted: multipassd registered our client certificate");
  try {
    return version();
  } catch (const MultipassError& e) {
    r.Fail("multipassd still refuses us after authenticating: " + e.message, "");
    return std::nullopt;
  }
}

void CheckVersion(const std::string& text, Report& r) {
  auto v = ParseDaemonVersion(text);
  if (!v) {
    r.Warn("multipassd reports version \"" + text + "\", which this check cannot read");
    return;
  }
  const auto min = std::make_pair(kMinDaemonMajor, kMinDaemonMinor);
  const auto newest = std::make_pair(kNewestTestedMajor, kNewestTestedMinor);
  const std::string min_text = std::to_string(min.first) + "." + std::to_string(min.second);
  if (*v < min) {
    r.Fail("multipassd " + text + " is older than " + min_text +
               ", the oldest whose list/info/delete messages this client decodes",
           "upgrade multipassd to " + min_text + " or newer (sudo snap refresh multipass)");
  } else if (*v > newest) {
    r.Warn("multipassd " + text + " is newer than " + std::to_string(newest.first) + "." +
           std::to_string(newest.second) + ", the newest tested; it should work");
  } else {
    r.Ok("multipassd version " + text + " (at least " + min_text + ")");
  }
}

void CheckMultipass(const DoctorOptions& o, Report& r) {
  r.Section("multipassd (as multipass-hostd connects)");
  multipass::DaemonEndpoint endpoint;
  try {
    endpoint = multipass::DaemonEndpoint::Parse(o.multipass.address);
  } catch (const MultipassError& e) {
    r.Fail("--multipass-address: " + e.message, "use unix:/path or host:port");
    return;
  }
  r.Ok("address " + endpoint.address + (endpoint.is_unix ? " (unix socket)" : " (tcp)"));
  if (!endpoint.is_unix && o.multipass.root_ca_file.empty()) {
    r.Warn("no --multipass-ca: multipassd's certificate is not verified over tcp");
  }
  if (endpoint.is_unix && !CheckSocket(endpoint.socket_path, r)) return;
  auto version = Connect(o, r);
  if (version) CheckVersion(*version, r);
}

const char* kPolicyFix =
    "attach a policy with node { policy = \"write\" } and namespace \"*\" { policy = \"read\" } "
    "(nomad acl policy apply autoscaler autoscaler.hcl) to the token";

void CheckPool(const DoctorOptions& o, const nomad::NomadApi& api, Report& r) {
  std::map<std::string, std::string> policy;
  if (o.node_class) policy["node_class"] = *o.node_class;
  if (o.datacenter) policy["datacenter"] = *o.datacenter;
  if (o.node_pool) policy["node_pool"] = *o.node_pool;
  if (policy.empty()) {
    r.Skip(
        "pool allocations (give --node-class/--datacenter/--node-pool to probe the namespaces "
        "of a pool's allocations)");
    return;
  }
  auto filter = nomad::NodePoolFilter::FromPolicyConfig(policy);
  std::set<std::string> namespaces;
  std::size_t nodes = 0, allocations = 0;
  try {
    for (const auto& stub : api.ListNodes(false)) {
      if (!filter.InPool(stub)) continue;
      ++nodes;
      for (const auto& a : api.GetNodeAllocations(stub.id).value) {
        ++allocations;
        namespaces.insert(a.namespace_name.empty() ? "default" : a.namespace_name);
      }
    }
  } catch (const NomadError& e) {
    r.Fail("pool " + filter.Describe() + ": " + e.message, kPolicyFix);
    return;
  }
  r.Ok("pool " + filter.Describe() + ": " + std::to_string(nodes) + " node(s), " +
       std::to_string(allocations) + " allocation(s) visible to the token");
  try {
    for (const auto& ns : api.ListNamespaces()) namespaces.insert(ns);
  } catch (const NomadError&) {
    // Listing namespaces needs a capability in them; the allocations' namespaces suffice.
  }
  namespaces.insert("default");
  for (const auto& ns : namespaces) {
    try {
      if (api.CanReadJobs(ns)) {
        r.Ok("read-job in namespace " + ns);
      } else {
        r.Fail("no read-job in namespace " + ns + ": its allocations are invisible to the token",
               kPolicyFix);
      }
    } catch (const NomadError& e) {
      r.Fail("read-job probe in namespace " + ns + ": " + e.message, "");
    }
  }
}

std::string NodePolicyText(const nomad::TokenCapabilities& caps) {
  return caps.node_policy.empty() ? "none" : "\"" + caps.node_policy + "\"";
}

void CheckNomad(const DoctorOptions& o, Report& r) {
  r.Section("Nomad (as multipass-target connects)");
  std::map<std::string, std::string> keys;
  if (o.nomad_address) keys["nomad_address"] = *o.nomad_address;
  if (!o.nomad_region.empty()) keys["nomad_region"] = o.nomad_region;
  if (!o.nomad_ca_cert.empty()) keys["nomad_ca-cert"] = o.nomad_ca_cert;
  if (o.nomad_skip_verify) keys["nomad_skip-verify"] = "true";
  nomad::NomadConnectionConfig config;
  try {
    if (!o.nomad_token_file.empty())
      keys["nomad_token"] = ReadSecretFile(o.nomad_token_file, "--nomad-token-file");
    config = nomad::FromConfigMap(keys, nomad::ProcessEnv());
  } catch (const std::exception& e) {
    r.Fail(e.what(), "fix the named flag or NOMAD_* variable");
    return;
  }
  nomad::NomadApi api(config, std::chrono::seconds(10));
  try {
    auto leader = api.Leader();
    r.Ok("Nomad at " + config.address + " answers (leader " + leader + ")");
  } catch (const NomadError& e) {
    r.Fail(e.message,
           "check --nomad-address / NOMAD_ADDR (and TLS flags); Nomad's HTTP port (4646) must be "
           "reachable from here");
    return;
  }
  nomad::TokenCapabilities caps;
  try {
    caps = nomad::ReadTokenCapabilities(api);
  } catch (const NomadError& e) {
    r.Fail("the token: " + e.message,
           e.kind == NomadError::Kind::forbidden
               ? "Nomad does not know this token: create one (nomad acl token create -name "
                 "autoscaler -policy autoscaler) and pass its secret (--nomad-token-file, "
                 "NOMAD_TOKEN, the plugin's nomad_token)"
               : "");
    return;
  }
  if (caps.acl_disabled) {
    r.Ok("Nomad runs without ACLs: no token needed, every capability granted");
  } else if (caps.management) {
    r.Ok("management token" + (caps.token_name.empty() ? "" : " '" + caps.token_name + "'") +
         ": every capability (a client token with the policy below is enough)");
  } else {
    const std::string who = "token" + (caps.token_name.empty() ? "" : " '" + caps.token_name + "'");
    if (caps.NodeRead())
      r.Ok(who + ": node read (list nodes, watch drains)");
    else
      r.Fail(who + " lacks node read (node policy: " + NodePolicyText(caps) + ")", kPolicyFix);
    if (caps.NodeWrite())
      r.Ok(who + ": node write (drain, eligibility, purge)");
    else
      r.Fail(who + " lacks node write (node policy: " + NodePolicyText(caps) + ")", kPolicyFix);
    if (caps.ReadsJobsEverywhere())
      r.Ok(who + ": read-job in every namespace (node allocation lists are complete)");
    else
      r.Fail(caps.JobReadGap(), kPolicyFix);
  }
  CheckPool(o, api, r);
}

}  // namespace

std::optional<std::pair<int, int>> ParseDaemonVersion(const std::string& text) {
  auto start = text.find_first_of("0123456789");
  if (start == std::string::npos) return std::nullopt;
  int major = 0, minor = 0;
  char dot = 0;
  std::istringstream in(text.substr(start));
  if (!(in >> major >> dot >> minor) || dot != '.') return std::nullopt;
  return std::make_pair(major, minor);
}

std::optional<SocketVerdict> SocketAccessProblem(uid_t owner, gid_t group, mode_t mode, uid_t uid,
                                                 const std::vector<gid_t>& groups,
                                                 const std::string& owner_name,
                                                 const std::string& group_name,
                                                 const std::string& user_name) {
  if (uid == 0) return std::nullopt;
  const std::string what = owner_name + ":" + group_name + " " + ModeText(mode);
  if (uid == owner) {
    if ((mode & 0600) == 0600) return std::nullopt;
    return SocketVerdict{
        "the socket (" + what + ") is not readable and writable by its owner " + user_name,
        "let multipassd recreate it (sudo snap restart multipass)"};
  }
  const bool in_group = std::find(groups.begin(), groups.end(), group) != groups.end();
  if (in_group && (mode & 0060) == 0060) return std::nullopt;
  if (!in_group && (mode & 0006) == 0006) return std::nullopt;
  if ((mode & 0060) == 0060) {
    return SocketVerdict{"user " + user_name + " is not in group " + group_name +
                             ", which the socket (" + what + ") admits",
                         "sudo usermod -aG " + group_name + " " + user_name +
                             ", then log in again (or run hostd as a member of " + group_name +
                             ", e.g. SupplementaryGroups=" + group_name + " in its unit)"};
  }
  return SocketVerdict{"the socket (" + what + ") admits only " + owner_name,
                       "run as " + owner_name + " (hostd's systemd unit runs as root)"};
}

int RunDoctor(const DoctorOptions& options, std::ostream& out) {
  Report r(out);
  const bool nomad = options.nomad_address || nomad::ProcessEnv()("NOMAD_ADDR");
  if (!options.check_multipass && !nomad) {
    out << "nothing to check: --skip-multipass and no --nomad-address or NOMAD_ADDR\n";
    return 2;
  }
  if (options.check_multipass) {
    CheckMultipass(options, r);
  } else {
    r.Section("multipassd");
    r.Skip("--skip-multipass");
  }
  if (nomad) {
    CheckNomad(options, r);
  } else {
    r.Section("Nomad");
    r.Skip("no --nomad-address or NOMAD_ADDR: Nomad not checked");
  }
  if (r.failures() == 0) {
    out << "all checks passed\n";
    return 0;
  }
  out << r.failures() << " check(s) failed\n";
  return 1;
}

}  // namespace mps::mpscale
