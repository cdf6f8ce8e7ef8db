#include "child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <utility>

extern char** environ;

namespace mps::test {

std::string BinDir() {
  // ctest should set MPS_BIN_DIR, but mps_gtest's ENVIRONMENT list loses
  // every entry after the first (set_tests_properties splits it), so fall
  // back to the directory this build put the binaries in.
  const char* d = std::getenv("MPS_BIN_DIR");
  return d && *d ? d : MPS_TEST_BIN_DIR;
}

std::string PluginBinary() {
  return BinDir() + "/multipass-target";
}

std::vector<std::string> PluginEnv(const std::vector<std::string>& extra, bool with_cookie) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    if (kv.rfind("PLUGIN_", 0) == 0 || kv.rfind("NOMAD_AUTOSCALER_", 0) == 0 ||
        kv.rfind("MPS_PLUGIN_", 0) == 0) {
      continue;
    }
    std::string name = kv.substr(0, kv.find('=') + 1);
    bool overridden = false;
    for (const auto& e : extra) overridden = overridden || e.rfind(name, 0) == 0;
    if (overridden) continue;
    env.push_back(kv);
  }
  if (with_cookie) env.push_back(kCookie);
  env.push_back("PLUGIN_PROTOCOL_VERSIONS=1");
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv,
                           const std::vector<std::string>& env, const std::string& stdin_data) {
  int out[2], err[2], in[2];
  if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC) || pipe2(in, O_CLOEXEC)) {
    throw std::runtime_error("pipe failed");
  }
  std::vector<char*> av, ev;
  for (auto& a : argv) av.push_back(const_cast<char*>(a.c_str()));
  av.push_back(nullptr);
  for (auto& e : env) ev.push_back(const_cast<char*>(e.c_str()));
  ev.push_back(nullptr);
  pid_ = fork();
  if (pid_ == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    execve(av[0], av.data(), ev.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  if (!stdin_data.empty()) {
    (void)!write(in[1], stdin_data.data(), stdin_data.size());
  }
  close(in[1]);
  out_fd_ = out[0];
  int err_fd = err[0];
  err_thread_ = std::thread([this, err_fd] {
    char buf[4096];
    for (;;) {
      ssize_t n = read(err_fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      std::lock_guard lock(err_mu_);
      if (n <= 0) {
        err_eof_ = true;
        break;
      }
      err_.append(buf, static_cast<size_t>(n));
    }
    close(err_fd);
  });
}

ChildProcess::~ChildProcess() {
  if (!status_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (err_thread_.joinable()) err_thread_.join();
  if (out_fd_ >= 0) close(out_fd_);
}

std::optional<std::string> ChildProcess::ReadStdoutLine(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (auto nl = out_buf_.find('\n'); nl != std::string::npos) {
      std::string line = out_buf_.substr(0, nl);
      out_buf_.erase(0, nl + 1);
      return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{out_fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[1024];
    ssize_t n = read(out_fd_, buf, sizeof buf);
    if (n <= 0) return std::nullopt;
    out_buf_.append(buf, static_cast<size_t>(n));
  }
}

std::string ChildProcess::ReadStdoutToEof(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{out_fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[1024];
    ssize_t n = read(out_fd_, buf, sizeof buf);
    if (n <= 0) break;
    out_buf_.append(buf, static_cast<size_t>(n));
  }
  return std::exchange(out_buf_, {});
}

std::optional<int> ChildProcess::WaitExit(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int st = 0;
    pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return status_;
    }
    if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string ChildProcess::Stderr() {
  std::lock_guard lock(err_mu_);
  return err_;
}

void ChildProcess::WaitStderrEof(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard lock(err_mu_);
      if (err_eof_) return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::vector<std::string> SplitHandshake(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    auto bar = line.find('|', start);
    out.push_back(line.substr(start, bar - start));
    if (bar == std::string::npos) break;
    start = bar + 1;
  }
  return out;
}

}  // namespace mps::test
