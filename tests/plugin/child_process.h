#pragma once
// Spawns a binary with piped stdout/stderr for process-level plugin tests.
// stderr is drained on a thread so a chatty child never blocks.
#include <sys/types.h>

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace mps::test {

inline constexpr const char* kCookie =
    "NOMAD_AUTOSCALER_PLUGIN_MAGIC_COOKIE="
    "e082fa04d587a6525d683666fa253d6afda00f20c122c54a80a3ed57fec99ff3";

std::string BinDir();
std::string PluginBinary();

// Our environment minus the plugin variables, plus `extra` ("K=V").
std::vector<std::string> PluginEnv(const std::vector<std::string>& extra, bool with_cookie = true);

class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env,
               const std::string& stdin_data = "");
  ~ChildProcess();  // SIGKILLs and reaps if still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // One stdout line without '\n'; nullopt on EOF or timeout.
  std::optional<std::string> ReadStdoutLine(std::chrono::milliseconds timeout);
  // Everything left on stdout until EOF (waits up to timeout).
  std::string ReadStdoutToEof(std::chrono::milliseconds timeout);
  // Exit status (WEXITSTATUS, or 128+signal); nullopt on timeout.
  std::optional<int> WaitExit(std::chrono::milliseconds timeout);
  // stderr so far; after WaitExit it is complete once the pipe hit EOF.
  std::string Stderr();
  void WaitStderrEof(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string out_buf_;
  std::optional<int> status_;
  std::thread err_thread_;
  mutable std::mutex err_mu_;
  std::string err_;
  bool err_eof_ = false;
};

// The plugin's handshake fields split on '|'.
std::vector<std::string> SplitHandshake(const std::string& line);

}  // namespace mps::test
