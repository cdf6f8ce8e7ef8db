#pragma once
// `mpscale doctor`: connects to multipassd the way multipass-hostd does and
// to Nomad the way multipass-target does, and prints step by step what works
// and, for what does not, the exact fix. Any failed step makes it exit 1.
#include <sys/types.h>

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "multipass/multipass_client.h"

namespace mps::mpscale {

struct DoctorOptions {
  bool check_multipass = true;
  // hostd's --multipass-* flags (address, cert, key, ca, server name, state dir).
  multipass::MultipassClientOptions multipass;
  std::string passphrase_file;  // hostd's --multipass-passphrase-file

  // Nomad is checked when an address is given (flag or NOMAD_ADDR).
  std::optional<std::string> nomad_address;
  std::string nomad_token_file;  // else NOMAD_TOKEN
  std::string nomad_region;
  std::string nomad_ca_cert;
  bool nomad_skip_verify = false;
  // The pool whose allocations' namespaces are probed for read-job.
  std::optional<std::string> node_class, datacenter, node_pool;
};

// The oldest multipassd whose RPC layouts the client decodes, and the newest
// release tested against.
inline constexpr int kMinDaemonMajor = 1, kMinDaemonMinor = 13;
inline constexpr int kNewestTestedMajor = 1, kNewestTestedMinor = 16;

// "1.16.3", "multipass 1.14.1+mac", "1.15.0-dev.2": {major, minor}; nullopt if unreadable.
std::optional<std::pair<int, int>> ParseDaemonVersion(const std::string& text);

// Why a process (uid, groups) cannot connect to a unix socket with this
// owner/group/mode, and the fix; nullopt when it can. Root always can.
struct SocketVerdict {
  std::string problem;
  std::string fix;
};
std::optional<SocketVerdict> SocketAccessProblem(uid_t owner, gid_t group, mode_t mode, uid_t uid,
                                                 const std::vector<gid_t>& groups,
                                                 const std::string& owner_name,
                                                 const std::string& group_name,
                                                 const std::string& user_name);

// Runs every check, printing to `out`; returns the exit code (0 = all passed,
// 1 = a failure, 2 = nothing to check).
int RunDoctor(const DoctorOptions& options, std::ostream& out);

}  // namespace mps::mpscale
