#pragma once
// The go-plugin process contract that does not involve gRPC: the magic
// cookie, app protocol negotiation, where to listen, and the handshake line.
//
// Environment read (all set by the host, see go-plugin's client.go):
//   NOMAD_AUTOSCALER_PLUGIN_MAGIC_COOKIE  must equal kMagicCookieValue
//   PLUGIN_PROTOCOL_VERSIONS              comma list; we speak only 1
//   PLUGIN_UNIX_SOCKET_DIR                socket directory (else a private
//                                         0700 dir under $TMPDIR or /tmp)
//   PLUGIN_UNIX_SOCKET_GROUP              group name or gid: chown + 0660
//   PLUGIN_MIN_PORT / PLUGIN_MAX_PORT     port range for the tcp transport
//   MPS_PLUGIN_TRANSPORT                  our own: "tcp" listens on
//                                         127.0.0.1 within the port range
//                                         instead of a unix socket (for
//                                         hosts that cannot reach a socket);
//                                         "unix" or unset: unix socket.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace mps::plugin {

inline constexpr const char* kMagicCookieKey = "NOMAD_AUTOSCALER_PLUGIN_MAGIC_COOKIE";
inline constexpr const char* kMagicCookieValue =
    "e082fa04d587a6525d683666fa253d6afda00f20c122c54a80a3ed57fec99ff3";
inline constexpr int kCoreProtocolVersion = 1;
inline constexpr int kAppProtocolVersion = 1;

using GetEnv = std::function<std::optional<std::string>(const std::string&)>;
std::optional<std::string> ProcessEnv(const std::string& name);

// False when the cookie is missing or wrong; then the caller must print
// NotAPluginMessage() to stderr and exit 1.
bool MagicCookieValid(const GetEnv& env);
const char* NotAPluginMessage();  // the three lines, newline-terminated

// Highest version both sides speak; ours when the list has none of them.
// Bad entries are skipped and reported in `skipped`.
int NegotiateAppProtocol(const std::optional<std::string>& host_versions,
                         std::vector<std::string>* skipped = nullptr);

// Thrown for environment values that make serving impossible.
struct ListenerError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct ListenerPlan {
  enum class Network { unix, tcp } network = Network::unix;
  // unix: the socket path; the directory is created when private.
  std::filesystem::path socket_path;
  std::optional<std::filesystem::path> private_dir;  // remove on exit
  std::optional<std::string> socket_group;
  // tcp: the range to try on 127.0.0.1.
  int min_port = 10000;
  int max_port = 25000;
};

// Decides the listener from the environment; creates the private dir.
ListenerPlan PlanListener(const GetEnv& env);

// First port in [min,max] that 127.0.0.1 can bind right now.
int FindFreeLoopbackPort(int min_port, int max_port);

// Applies PLUGIN_UNIX_SOCKET_GROUP to a bound socket (and private dir).
void ApplySocketGroup(const ListenerPlan& plan);

// The gRPC listen URI for the plan ("unix:/path" or "127.0.0.1:port").
std::string GrpcListenUri(const ListenerPlan& plan, int tcp_port);

// "1|<app>|unix|/path|grpc|" (six fields, the last empty: no AutoMTLS).
std::string HandshakeLine(int app_version, const ListenerPlan& plan, int tcp_port);

// Makes fd 1 /dev/null and returns a private close-on-exec duplicate of the
// original stdout for the one handshake line, so that nothing else ever
// reaches the host's stdout pipe. Marks stderr close-on-exec so that no child
// process keeps the host's pipes open after we exit.
int IsolateStdout();

// Writes the line plus '\n' to fd and closes nothing; throws on failure.
void WriteHandshake(int fd, const std::string& line);

}  // namespace mps::plugin
