#pragma once
// Starts a real process for a test, reads its stdout line by line, keeps its
// stderr, and makes sure it is gone when the test ends.
#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mps::testing {

struct ChildOptions {
  // Set in the child's environment, over ours.
  std::map<std::string, std::string> env;
  // Our variables whose names start with one of these are not passed on
  // (unless `env` sets them again).
  std::vector<std::string> unset_env_prefixes;
  // The child reads what WriteStdin sends; otherwise its stdin is /dev/null.
  bool pipe_stdin = false;
};

class ChildProcess {
 public:
  // argv[0] is the program path. The child gets our environment as
  // `options` changes it.
  explicit ChildProcess(std::vector<std::string> argv, ChildOptions options = {});
  ~ChildProcess();  // SIGKILL if still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Next stdout line without its '\n', or nullopt on EOF/timeout.
  std::optional<std::string> ReadLine(std::chrono::milliseconds timeout);
  // Reads lines until one starts with `prefix`; returns it (nullopt on EOF/timeout).
  std::optional<std::string> WaitForLine(const std::string& prefix,
                                         std::chrono::milliseconds timeout);
  // Everything left on stdout up to EOF (or what came before the timeout).
  std::string ReadToEof(std::chrono::milliseconds timeout);
  void Signal(int sig);
  // Only with pipe_stdin. Writes everything (blocking); false when the child is gone.
  bool WriteStdin(const std::string& text);
  void CloseStdin();
  // Exit status (or 128+signal), or nullopt if still running after `timeout`.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  // Everything it wrote to stderr so far (kept in a file, so a chatty child
  // never blocks); complete once Wait has returned a status.
  std::string stderr_text() const;
  // Waits until stderr contains `text`; false at the timeout or when the
  // child exited without writing it.
  bool WaitForStderr(const std::string& text, std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  int stdin_fd_ = -1;
  std::string buffer_;
  std::string stderr_path_;
  std::optional<int> status_;
};

// The environment a child started with `options` gets, as "NAME=value"
// entries (for tests that must fork and exec by themselves).
std::vector<std::string> ChildEnvironment(const ChildOptions& options);

std::string BinDir();  // $MPS_BIN_DIR (set by the test main), else this build's bin/

}  // namespace mps::testing
