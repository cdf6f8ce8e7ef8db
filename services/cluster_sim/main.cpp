// cluster-sim: a simulated Multipass daemon for tests and the demo.
// Prints one line per fact when ready ("multipass unix:...", "multipass-tls
// 127.0.0.1:PORT", "root-cert PATH", "ready"; with --hosts N, one line
// "host mp-I unix:PATH root-cert PATH" per host instead); SIGUSR1 restarts
// the gRPC servers (dropping every connection), SIGUSR2 prints a "stats ..."
// line per host (the daemon RPC thread's busy time), SIGTERM/SIGINT stop it
// cleanly. Lines on stdin stop and start one host's daemon: "stop mp-I"
// (its socket goes away, its VMs keep running) and "start mp-I", answered
// "stopped mp-I" / "started mp-I".
// By default it is as strict as a real multipassd on a used host: one RPC at a
// time, SSH costs for addresses and runtime information, a cert store that
// already holds the CLI's certificate (a new client must authenticate).
#include <poll.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include "cluster_sim/launch_validation.h"
#include "cluster_sim/multipass_sim.h"
#include "cluster_sim/nomad/cloud_init.h"
#include "cluster_sim/nomad/nomad_sim.h"
#include "config/go_values.h"

namespace {

using mps::sim::SimConfigError;

std::chrono::nanoseconds Duration(const std::string& flag, const std::string& text) {
  auto d = mps::config::ParseGoDuration(text);
  if (!d || d->count() < 0)
    throw SimConfigError("--" + flag +
                         ": expected a non-negative Go duration such as 2s or "
                         "150ms, got \"" +
                         text + "\"");
  return *d;
}

// Runs delayed node joins on their own threads; Stop() cancels the waits.
class NodeJoiner {
 public:
  ~NodeJoiner() { Stop(); }
  void After(std::chrono::milliseconds delay, std::function<void()> join) {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    threads_.emplace_back([this, delay, join = std::move(join)] {
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, delay, [this] { return stopping_; })) return;
      lock.unlock();
      join();
    });
  }
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
    threads_.clear();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

std::string HostName(std::size_t i) {
  return "mp-" + std::to_string(i);
}

// One value for every host, or a comma-separated value per host.
std::vector<std::uint64_t> PerHost(
    const std::string& flag, const std::string& text, unsigned hosts, const std::string& expected,
    const std::function<std::optional<std::uint64_t>(const std::string&)>& parse) {
  std::vector<std::uint64_t> values;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    auto v = parse(item);
    if (!v)
      throw SimConfigError(flag + ": expected " + expected + ", got \"" + item + "\" in \"" + text +
                           "\"");
    values.push_back(*v);
  }
  if (values.size() == 1) values.resize(hosts, values.front());
  if (values.size() != hosts)
    throw SimConfigError(flag + ": expected one value or " + std::to_string(hosts) +
                         " (one per host), got " + std::to_string(values.size()) + " in \"" + text +
                         "\"");
  return values;
}

// "stop mp-I": the host's daemon stops listening and its socket goes away;
// its VMs keep running, as when multipassd itself is down. "start mp-I":
// it listens again with every VM as it is now.
void Control(const std::string& line,
             const std::vector<std::unique_ptr<mps::sim::MultipassSim>>& sims) {
  std::stringstream in(line);
  std::string verb, host;
  in >> verb >> host;
  std::size_t index = sims.size();
  for (std::size_t i = 0; i < sims.size(); ++i)
    if (host == HostName(i)) index = i;
  if ((verb != "stop" && verb != "start") || index == sims.size()) {
    spdlog::warn(
        "cluster-sim: control line \"{}\": expected \"stop HOST\" or \"start HOST\" "
        "with HOST one of mp-0..mp-{}",
        line, sims.size() - 1);
    return;
  }
  if (verb == "stop") {
    sims[index]->Shutdown();
    std::cout << "stopped " << host << std::endl;
  } else {
    sims[index]->Resume();
    std::cout << "started " << host << std::endl;
  }
}

int Run(int argc, char** argv) {
  CLI::App app{"Simulated Multipass daemon (multipass.Rpc over TLS) for tests and the demo"};
  std::string state_dir, socket, tls, passphrase;
  std::string boot_delay = "2s", start_delay, prep_delay = "0s", download_delay = "0s";
  std::string ssh_delay = "50ms", cloud_init_delay = "0s", daemon_version = "1.16.3";
  bool empty_cert_store = false;
  std::string host_memory = "32G";
  std::string host_cpus = "16";
  unsigned fail_every_nth = 0, hosts = 1;
  std::string socket_dir;
  bool hang = false;
  int nomad_port = -1;
  std::vector<std::string> nomad_tokens;
  std::string join_delay = "1s", restart_join_delay, heartbeat_delay = "1s",
              migration_delay = "200ms";
  app.add_option("--state-dir", state_dir,
                 "Directory for multipass_root_cert.pem and the client-cert store "
                 "(default: a fresh temporary directory)");
  app.add_option("--multipass-socket", socket, "Listen on this unix socket path (TLS)");
  app.add_option("--hosts", hosts,
                 "Simulated Multipass hosts in this one world (one Nomad): each its own daemon, "
                 "VMs and daemon_info, on --multipass-socket-dir/mp-I.sock")
      ->capture_default_str()
      ->check(CLI::Range(1u, 64u));
  app.add_option("--multipass-socket-dir", socket_dir,
                 "With --hosts N above 1: host I listens on DIR/mp-I.sock (its state in "
                 "--state-dir/mp-I)");
  app.add_option("--multipass-tls", tls,
                 "Listen with TLS on HOST:PORT; HOST must be 127.0.0.1 or localhost; port 0 = "
                 "ephemeral");
  app.add_option("--passphrase", passphrase,
                 "Passphrase accepted by 'authenticate' (unset: authenticate fails with "
                 "FAILED_PRECONDITION)");
  app.add_option("--boot-delay", boot_delay,
                 "STARTING → RUNNING delay of an instance's first boot (Go duration)")
      ->capture_default_str();
  app.add_option("--start-delay", start_delay,
                 "STARTING → RUNNING delay when a stopped instance is started again (Go "
                 "duration; default: --boot-delay)");
  app.add_option("--prep-delay", prep_delay,
                 "Time an instance spends being prepared, unlisted (Go duration)")
      ->capture_default_str();
  app.add_option("--download-delay,--image-download-delay", download_delay,
                 "Time an image's download takes; concurrent launches of the image share it, "
                 "and it is not counted in a launch's timeout (Go duration)")
      ->capture_default_str();
  app.add_option("--cloud-init-delay", cloud_init_delay,
                 "Time from SSH-up (RUNNING) until cloud-init is done, on an instance's first "
                 "boot only; a launch's timeout applies to each of the two waits (Go duration)")
      ->capture_default_str();
  app.add_option("--ssh-delay", ssh_delay,
                 "Cost of one SSH command in a VM, paid on the daemon's only RPC thread: per "
                 "running VM for list with addresses, twice for info with runtime information "
                 "(Go duration)")
      ->capture_default_str();
  app.add_flag("--empty-cert-store", empty_cert_store,
               "Start with an empty client-cert store: the first client on the unix socket is "
               "auto-accepted (a fresh host where the CLI was never used). Default: the store "
               "holds the CLI's certificate, so a new client must authenticate");
  app.add_option("--daemon-version", daemon_version,
                 "Version answered by 'version'; daemon_info exists from 1.15, N/A addresses "
                 "from 1.16")
      ->capture_default_str();
  app.add_option("--host-cpus", host_cpus,
                 "Host CPUs available to instances; with --hosts, one value for every host or "
                 "a comma-separated value per host (8,16,16)")
      ->capture_default_str();
  app.add_option("--host-memory", host_memory,
                 "Host memory available to instances (size); with --hosts, one value or one "
                 "per host (16G,32G,32G)")
      ->capture_default_str();
  app.add_option("--fail-every-nth-launch", fail_every_nth,
                 "Every Nth launch fails to start (ABORTED, instance removed); 0 = never")
      ->capture_default_str();
  app.add_flag("--hang-launches", hang,
               "Launches never finish: the instance stays STARTING until the call is cancelled");
  app.add_option("--nomad-port", nomad_port,
                 "Also serve the simulated Nomad HTTP API on 127.0.0.1:PORT (0: any free port)");
  app.add_option("--nomad-token", nomad_tokens,
                 "Enforce ACLs (repeatable): SECRET is a management token; "
                 "SECRET=NS[,NS...][;node=read|write|deny] a client token that reads jobs only "
                 "in those namespaces ('*' globs), node policy write unless given");
  app.add_option("--join-delay", join_delay,
                 "How long after its first boot (RUNNING) an instance's Nomad client joins (Go "
                 "duration)");
  app.add_option("--restart-join-delay", restart_join_delay,
                 "How long after a restarted instance is RUNNING its node (same ID) is ready "
                 "again (Go duration; default: --join-delay)");
  app.add_option("--heartbeat-delay", heartbeat_delay,
                 "How long after an instance stops its Nomad node goes down (missed heartbeats; "
                 "Go duration)")
      ->capture_default_str();
  app.add_option("--migration-delay", migration_delay,
                 "How long a drain takes to move a node's allocations away (Go duration)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  mps::sim::SimOptions options;
  options.world.state_dir = state_dir;
  if (!passphrase.empty()) options.world.passphrase = passphrase;
  options.world.boot_delay = Duration("boot-delay", boot_delay);
  options.world.start_delay =
      start_delay.empty() ? options.world.boot_delay : Duration("start-delay", start_delay);
  options.world.prep_delay = Duration("prep-delay", prep_delay);
  options.world.image_download_delay = Duration("download-delay", download_delay);
  options.world.cloud_init_delay = Duration("cloud-init-delay", cloud_init_delay);
  options.world.ssh_delay = Duration("ssh-delay", ssh_delay);
  options.world.empty_cert_store = empty_cert_store;
  int major = 0, minor = 0;
  if (std::sscanf(daemon_version.c_str(), "%d.%d", &major, &minor) != 2)
    throw SimConfigError("--daemon-version: expected a version such as 1.16.3, got \"" +
                         daemon_version + "\"");
  options.world.daemon_version = daemon_version;
  options.world.fail_every_nth_launch = fail_every_nth;
  options.world.hang_launches = hang;
  const auto cpus = PerHost("--host-cpus", host_cpus, hosts, "a CPU count such as 16",
                            [](const std::string& t) -> std::optional<std::uint64_t> {
                              unsigned long long n = 0;
                              std::size_t used = 0;
                              try {
                                n = std::stoull(t, &used);
                              } catch (const std::exception&) {
                                return std::nullopt;
                              }
                              if (used != t.size() || n == 0 || n > 4096) return std::nullopt;
                              return n;
                            });
  const auto memory = PerHost("--host-memory", host_memory, hosts, "a size such as 16G",
                              [](const std::string& t) { return mps::sim::ParseSizeBytes(t); });
  std::vector<mps::sim::SimOptions> host_options;
  if (hosts == 1) {
    if (!socket_dir.empty())
      throw SimConfigError(
          "--multipass-socket-dir goes with --hosts N above 1; one host listens "
          "on --multipass-socket");
    if (!socket.empty()) options.unix_socket = socket;
    if (!tls.empty()) options.tls_address = tls;
    if (!options.unix_socket && !options.tls_address)
      throw SimConfigError("give --multipass-socket PATH and/or --multipass-tls 127.0.0.1:PORT");
    host_options.push_back(options);
  } else {
    if (!socket.empty() || !tls.empty())
      throw SimConfigError("--hosts " + std::to_string(hosts) +
                           ": give --multipass-socket-dir DIR (host I listens on DIR/mp-I.sock), "
                           "not --multipass-socket or --multipass-tls");
    if (socket_dir.empty())
      throw SimConfigError("--hosts " + std::to_string(hosts) +
                           " needs --multipass-socket-dir DIR (host I listens on DIR/mp-I.sock)");
    for (unsigned i = 0; i < hosts; ++i) {
      auto o = options;
      const auto name = HostName(i);
      o.unix_socket = std::filesystem::path(socket_dir) / (name + ".sock");
      if (!state_dir.empty())
        o.world.state_dir = (std::filesystem::path(state_dir) / name).string();
      host_options.push_back(std::move(o));
    }
  }
  for (unsigned i = 0; i < hosts; ++i) {
    host_options[i].world.host_cpus = static_cast<unsigned>(cpus[i]);
    host_options[i].world.host_memory_bytes = memory[i];
  }

  // Signals are taken synchronously by this thread; block them before any
  // other thread exists so they all inherit the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGUSR1);
  sigaddset(&signals, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::vector<std::unique_ptr<mps::sim::MultipassSim>> sims;
  for (auto& o : host_options) sims.push_back(std::make_unique<mps::sim::MultipassSim>(o));
  // One world: an instance whose cloud-init gives its Nomad client a
  // node_class joins as a node of that class after --join-delay (named by
  // unique.hostname = the instance name); a deleted instance's node goes down.
  std::unique_ptr<mps::sim::NomadSim> nomad;
  NodeJoiner joiner;
  if (nomad_port >= 0) {
    mps::sim::NomadSimOptions nomad_options;
    for (const auto& spec : nomad_tokens) {
      try {
        nomad_options.tokens.push_back(mps::sim::ParseSimAclToken(spec));
      } catch (const std::invalid_argument& e) {
        throw SimConfigError(std::string("--nomad-token: ") + e.what());
      }
    }
    nomad_options.migration_delay = std::chrono::duration_cast<std::chrono::milliseconds>(
        Duration("migration-delay", migration_delay));
    nomad = std::make_unique<mps::sim::NomadSim>(nomad_options);
    nomad->Start(nomad_port);
    using std::chrono::milliseconds;
    const auto delay = std::chrono::duration_cast<milliseconds>(Duration("join-delay", join_delay));
    const auto rejoin_delay = restart_join_delay.empty()
                                  ? delay
                                  : std::chrono::duration_cast<milliseconds>(
                                        Duration("restart-join-delay", restart_join_delay));
    const auto down_delay =
        std::chrono::duration_cast<milliseconds>(Duration("heartbeat-delay", heartbeat_delay));
    for (auto& host : sims) {
      auto& sim = *host;
      // The instance's state and boot count now: a delayed reaction acts only
      // if the VM has not moved on since (stopped and started again, deleted).
      auto observe = [&sim](const std::string& name) -> std::optional<mps::sim::InstanceView> {
        std::vector<mps::sim::InstanceView> found;
        if (sim.world().Info({name}, &found) || found.empty()) return std::nullopt;
        return found.front();
      };
      sim.OnInstanceRunning(
          [&joiner, &nomad, observe, delay, rejoin_delay](
              const std::string& name, const std::string& user_data, bool first_boot) {
            auto node_class = mps::sim::NodeClassFromCloudInit(user_data);
            if (!node_class) {
              if (first_boot)
                spdlog::info(
                    "cluster-sim: {} has no Nomad node_class in its cloud-init; it will not join",
                    name);
              return;
            }
            // The hook runs just before RUNNING is visible: the boot it reports is
            // the one after the current count.
            const auto boot = observe(name) ? observe(name)->boots + 1 : 1;
            auto still_up = [observe, name, boot] {
              auto v = observe(name);
              return v && v->state == mps::sim::InstanceState::kRunning && v->boots == boot;
            };
            if (!first_boot) {
              joiner.After(rejoin_delay, [&nomad, still_up, name, cls = *node_class] {
                if (!still_up()) return;
                nomad->Rejoin(name, cls);
                if (!still_up()) nomad->MarkDown(name, /*record_undrained=*/false);
              });
              return;
            }
            joiner.After(delay, [&nomad, still_up, name, cls = *node_class] {
              // A VM deleted (or stopped) before its Nomad client came up never
              // joins; one deleted while it was joining goes down again.
              if (!still_up()) return;
              try {
                nomad->RegisterNode(name, cls);
              } catch (const std::exception& e) {
                spdlog::warn("cluster-sim: {} could not join Nomad: {}", name, e.what());
              }
              if (!still_up()) nomad->MarkDown(name, /*record_undrained=*/false);
            });
          });
      // A stopped VM's client stops heartbeating: Nomad marks its node down
      // once the heartbeat TTL runs out, unless the VM came back meanwhile.
      sim.OnInstanceStopped([&joiner, &nomad, observe, down_delay](const std::string& name) {
        auto stopped = observe(name);
        if (!stopped) return;
        const auto boots = stopped->boots;
        joiner.After(down_delay, [&nomad, observe, name, boots] {
          auto v = observe(name);
          if (!v || v->state != mps::sim::InstanceState::kStopped || v->boots != boots) return;
          nomad->MarkDown(name);
        });
      });
      sim.OnInstanceDeleted([&nomad](const std::string& name) { nomad->MarkDown(name); });
    }
    // POST /sim/faults also reaches the Multipass side:
    // {"fail_every_nth_launch": N, "fail_every_nth_start": N}.
    nomad->OnFault([&sims](const nlohmann::json& faults) {
      for (auto& sim : sims) {
        if (faults.contains("fail_every_nth_launch")) {
          sim->SetFailEveryNthLaunch(faults["fail_every_nth_launch"].get<unsigned>());
        }
        if (faults.contains("fail_every_nth_start")) {
          sim->world().SetFailEveryNthStart(faults["fail_every_nth_start"].get<unsigned>());
        }
      }
    });
  }
  if (nomad) std::cout << "nomad " << nomad->address() << "\n";
  if (sims.size() == 1) {
    auto& sim = *sims.front();
    if (!sim.unix_target().empty()) std::cout << "multipass " << sim.unix_target() << "\n";
    if (!sim.tls_address().empty()) std::cout << "multipass-tls " << sim.tls_address() << "\n";
    std::cout << "root-cert " << sim.root_cert_path().string() << "\n";
  } else {
    for (std::size_t i = 0; i < sims.size(); ++i)
      std::cout << "host " << HostName(i) << " " << sims[i]->unix_target() << " root-cert "
                << sims[i]->root_cert_path().string() << "\n";
  }
  std::cout << "ready" << std::endl;

  // Signals and control lines on stdin, both on this thread.
  const int signal_fd = signalfd(-1, &signals, SFD_CLOEXEC);
  if (signal_fd < 0) throw SimConfigError("signalfd failed");
  bool stdin_open = true;
  std::string control;
  while (true) {
    pollfd fds[2] = {{signal_fd, POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
    if (poll(fds, stdin_open ? 2 : 1, -1) < 0) continue;
    if (stdin_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      char buffer[512];
      auto n = read(STDIN_FILENO, buffer, sizeof buffer);
      if (n <= 0) {
        stdin_open = false;  // /dev/null or the other end closed: signals only
      } else {
        control.append(buffer, static_cast<std::size_t>(n));
        for (auto nl = control.find('\n'); nl != std::string::npos; nl = control.find('\n')) {
          Control(control.substr(0, nl), sims);
          control.erase(0, nl + 1);
        }
      }
    }
    if (!(fds[0].revents & POLLIN)) continue;
    signalfd_siginfo info{};
    if (read(signal_fd, &info, sizeof info) != sizeof info) continue;
    const int sig = static_cast<int>(info.ssi_signo);
    if (sig == SIGUSR2) {
      for (std::size_t i = 0; i < sims.size(); ++i) {
        const auto stats = sims[i]->Snapshot().stats;
        std::cout << "stats " << (sims.size() == 1 ? "" : HostName(i) + " ")
                  << "rpc_calls=" << stats.rpc_calls << " rpc_busy_us=" << stats.rpc_busy_ns / 1000
                  << " ssh_commands=" << stats.ssh_commands
                  << " image_downloads=" << stats.image_downloads
                  << " unauthenticated_calls=" << stats.unauthenticated_calls << std::endl;
      }
      continue;
    }
    if (sig == SIGUSR1) {
      spdlog::info("cluster-sim: SIGUSR1, restarting the multipass server(s)");
      for (auto& sim : sims) sim->Restart();
      continue;
    }
    spdlog::info("cluster-sim: signal {}, stopping", sig);
    for (auto& sim : sims) sim->Shutdown();
    joiner.Stop();
    if (nomad) nomad->Stop();
    close(signal_fd);
    return 0;
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Logs go to stderr: stdout carries only the ready lines.
  spdlog::set_default_logger(spdlog::stderr_color_mt("cluster-sim"));
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "cluster-sim: " << e.what() << std::endl;
    return 2;
  }
}
