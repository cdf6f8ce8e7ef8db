#pragma once
// Starts a real process for a test, reads its stdout line by line, and makes
// sure it is gone when the test ends.
#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mps::testing {

class ChildProcess {
 public:
  // argv[0] is the program path. Extra environment entries are added to ours.
  // With pipe_stdin, the child reads what WriteStdin sends (else /dev/null).
  explicit ChildProcess(std::vector<std::string> argv, std::map<std::string, std::string> env = {},
                        bool pipe_stdin = false);
  ~ChildProcess();  // SIGKILL if still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Next stdout line, or nullopt on EOF/timeout.
  std::optional<std::string> ReadLine(std::chrono::milliseconds timeout);
  // Reads lines until one starts with `prefix`; returns it (nullopt on EOF/timeout).
  std::optional<std::string> WaitForLine(const std::string& prefix,
                                         std::chrono::milliseconds timeout);
  void Signal(int sig);
  // Only with pipe_stdin. Writes everything (blocking); false when the child is gone.
  bool WriteStdin(const std::string& text);
  void CloseStdin();
  // Exit status (or 128+signal), or nullopt if still running after `timeout`.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  std::string stderr_text() const;  // everything it wrote to stderr so far (kept in a temp file)

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  int stdin_fd_ = -1;
  std::string buffer_;
  std::string stderr_path_;
  std::optional<int> status_;
};

// A fresh directory under $TMPDIR, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string BinDir();  // $MPS_BIN_DIR (set by ctest)

}  // namespace mps::testing
