#include "plugin/process_contract.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>

namespace mps::plugin {
namespace {

std::optional<int> ParseInt(const std::string& s) {
  int n = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return n;
}

std::string Trim(std::string s) {
  auto b = s.find_first_not_of(" \t\r\n");
  auto e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

std::string Errno(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

}  // namespace

std::optional<std::string> ProcessEnv(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

bool MagicCookieValid(const GetEnv& env) {
  auto v = env(kMagicCookieKey);
  return v && *v == kMagicCookieValue;
}

const char* NotAPluginMessage() {
  return "This binary is a plugin. These are not meant to be executed directly.\n"
         "Please execute the program that consumes these plugins, which will\n"
         "load any plugins automatically\n";
}

int NegotiateAppProtocol(const std::optional<std::string>& host_versions,
                         std::vector<std::string>* skipped) {
  if (!host_versions) return kAppProtocolVersion;
  int best = -1;
  std::stringstream in(*host_versions);
  std::string item;
  while (std::getline(in, item, ',')) {
    std::string t = Trim(item);
    auto v = ParseInt(t);
    if (!v) {
      if (skipped) skipped->push_back(t);
      continue;
    }
    if (*v == kAppProtocolVersion && *v > best) best = *v;
  }
  return best > 0 ? best : kAppProtocolVersion;
}

ListenerPlan PlanListener(const GetEnv& env) {
  ListenerPlan plan;
  auto transport = env("MPS_PLUGIN_TRANSPORT");
  if (transport && !transport->empty() && *transport != "unix") {
    if (*transport != "tcp") {
      throw ListenerError("MPS_PLUGIN_TRANSPORT=\"" + *transport +
                          "\" is not valid; expected unix or tcp");
    }
    plan.network = ListenerPlan::Network::tcp;
    if (auto v = env("PLUGIN_MIN_PORT"); v && !v->empty()) {
      auto n = ParseInt(*v);
      if (!n || *n < 1 || *n > 65535) {
        throw ListenerError("PLUGIN_MIN_PORT=\"" + *v + "\" is not a port number 1-65535");
      }
      plan.min_port = *n;
    }
    if (auto v = env("PLUGIN_MAX_PORT"); v && !v->empty()) {
      auto n = ParseInt(*v);
      if (!n || *n < 1 || *n > 65535) {
        throw ListenerError("PLUGIN_MAX_PORT=\"" + *v + "\" is not a port number 1-65535");
      }
      plan.max_port = *n;
    }
    if (plan.min_port > plan.max_port) {
      throw ListenerError("PLUGIN_MIN_PORT (" + std::to_string(plan.min_port) +
                          ") is greater than PLUGIN_MAX_PORT (" + std::to_string(plan.max_port) +
                          ")");
    }
    return plan;
  }

  std::filesystem::path dir;
  if (auto d = env("PLUGIN_UNIX_SOCKET_DIR"); d && !d->empty()) {
    dir = *d;
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      throw ListenerError("PLUGIN_UNIX_SOCKET_DIR=\"" + *d + "\" is not a directory");
    }
  } else {
    auto tmp = env("TMPDIR");
    std::string templ = (tmp && !tmp->empty() ? *tmp : std::string("/tmp")) + "/mps-plugin-XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) throw ListenerError(Errno("mkdtemp " + templ));
    dir = templ;  // mkdtemp creates it 0700
    plan.private_dir = dir;
  }
  std::random_device rd;
  std::uniform_int_distribution<uint32_t> digits(1000000000u, 4294967295u);
  for (int attempt = 0; attempt < 16; ++attempt) {
    auto candidate = dir / ("plugin" + std::to_string(digits(rd)));
    if (!std::filesystem::exists(candidate)) {
      plan.socket_path = candidate;
      break;
    }
  }
  if (plan.socket_path.empty()) throw ListenerError("no free socket name in " + dir.string());
  if (plan.socket_path.string().size() >= sizeof(sockaddr_un::sun_path)) {
    throw ListenerError("socket path \"" + plan.socket_path.string() + "\" is longer than " +
                        std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes");
  }
  if (auto g = env("PLUGIN_UNIX_SOCKET_GROUP"); g && !g->empty()) plan.socket_group = *g;
  return plan;
}

int FindFreeLoopbackPort(int min_port, int max_port) {
  for (int port = min_port; port <= max_port; ++port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw ListenerError(Errno("socket"));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    ::close(fd);
    if (ok) return port;
  }
  throw ListenerError(
      "no free port on 127.0.0.1 between PLUGIN_MIN_PORT=" + std::to_string(min_port) +
      " and PLUGIN_MAX_PORT=" + std::to_string(max_port));
}

void ApplySocketGroup(const ListenerPlan& plan) {
  if (!plan.socket_group || plan.network != ListenerPlan::Network::unix) return;
  gid_t gid;
  if (auto n = ParseInt(*plan.socket_group); n && *n >= 0) {
    gid = static_cast<gid_t>(*n);
  } else {
    group* g = ::getgrnam(plan.socket_group->c_str());
    if (g == nullptr) {
      throw ListenerError("PLUGIN_UNIX_SOCKET_GROUP=\"" + *plan.socket_group +
                          "\" is neither a group name nor a numeric gid");
    }
    gid = g->gr_gid;
  }
  if (::chown(plan.socket_path.c_str(), static_cast<uid_t>(-1), gid) != 0) {
    throw ListenerError(Errno("chown " + plan.socket_path.string()));
  }
  if (::chmod(plan.socket_path.c_str(), 0660) != 0) {
    throw ListenerError(Errno("chmod " + plan.socket_path.string()));
  }
  if (plan.private_dir) {
    // The group must be able to reach the socket inside our private dir.
    if (::chown(plan.private_dir->c_str(), static_cast<uid_t>(-1), gid) != 0 ||
        ::chmod(plan.private_dir->c_str(), 0710) != 0) {
      throw ListenerError(Errno("chown/chmod " + plan.private_dir->string()));
    }
  }
}

std::string GrpcListenUri(const ListenerPlan& plan, int tcp_port) {
  if (plan.network == ListenerPlan::Network::tcp) return "127.0.0.1:" + std::to_string(tcp_port);
  return "unix:" + plan.socket_path.string();
}

std::string HandshakeLine(int app_version, const ListenerPlan& plan, int tcp_port) {
  bool tcp = plan.network == ListenerPlan::Network::tcp;
  std::string address = tcp ? "127.0.0.1:" + std::to_string(tcp_port) : plan.socket_path.string();
  return std::to_string(kCoreProtocolVersion) + "|" + std::to_string(app_version) + "|" +
         (tcp ? "tcp" : "unix") + "|" + address + "|grpc|";
}

int IsolateStdout() {
  int saved = ::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
  if (saved < 0) throw ListenerError(Errno("dup stdout"));
  int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (devnull < 0) throw ListenerError(Errno("open /dev/null"));
  if (::dup2(devnull, STDOUT_FILENO) < 0) throw ListenerError(Errno("dup2 stdout"));
  ::close(devnull);
  // dup2 clears FD_CLOEXEC on fd 1; /dev/null there is harmless for children.
  ::fcntl(STDERR_FILENO, F_SETFD, FD_CLOEXEC);
  return saved;
}

void WriteHandshake(int fd, const std::string& line) {
  std::string text = line + "\n";
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw ListenerError(Errno("write handshake"));
    done += static_cast<size_t>(n);
  }
}

}  // namespace mps::plugin
