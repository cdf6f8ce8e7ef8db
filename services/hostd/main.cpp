// multipass-hostd: serves one Multipass daemon on the bus (split mode).
// Prints "ready <bind> events <events-endpoint>" on stdout when serving (and
// "metrics http://HOST:PORT" with --metrics-address); logs go to stderr.
// Under systemd (Type=notify) it sends READY=1 once serving and kicks the
// watchdog from the bus I/O loop. SIGTERM/SIGINT stop it after logging
// launches in flight.
#include <malloc.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <sstream>
#include <thread>
#include <tuple>

#include "bus/events.h"
#include "bus/keys.h"
#include "bus/server.h"
#include "config/multipass_size.h"
#include "contracts/app_code.h"
#include "metrics/http_endpoint.h"
#include "metrics/systemd_notify.h"
#include "multipass/daemon_endpoint.h"
#include "session/session.h"

namespace {

// A refusal to start: exit code 2 with the message.
struct StartupError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string ReadPassphrase(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw StartupError("--multipass-passphrase-file: cannot read '" + path + "'");
  std::stringstream buf;
  buf << in.rdbuf();
  std::string text = buf.str();
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.empty()) throw StartupError("--multipass-passphrase-file: '" + path + "' is empty");
  return text;
}

// Gives freed heap back to the system. glibc keeps what is freed in its
// (per-thread) arenas: after a flood of connections, all closed and freed,
// hostd stayed at 595 MB for good (issue 16). Checked every few seconds: while
// the resident size is more than `slack` above the lowest it has been (first
// read when serving starts), trim; and every `every` checks in any case, in
// case the lowest was read under load. Cheap on a heap this size, and nothing
// to do when nothing was freed.
class FreedMemoryReturner {
 public:
  explicit FreedMemoryReturner(long slack_kib = 8 * 1024, int every = 15)
      : slack_kib_(slack_kib), every_(every), lowest_kib_(ResidentKiB()) {}
  void Check() {
    long rss = ResidentKiB();
    if (rss <= 0) return;
    if (lowest_kib_ <= 0 || rss < lowest_kib_) lowest_kib_ = rss;
    if (rss <= lowest_kib_ + slack_kib_ && ++checks_ < every_) return;
    checks_ = 0;
    ::malloc_trim(0);
    long after = ResidentKiB();
    if (after > 0 && after < lowest_kib_) lowest_kib_ = after;
    if (rss - after >= slack_kib_)
      spdlog::debug("returned {} MiB of freed memory to the system", (rss - after) / 1024);
  }

 private:
  static long ResidentKiB() {
    std::ifstream in("/proc/self/statm");
    long size = 0, resident = 0;
    if (!(in >> size >> resident)) return 0;
    return resident * (::sysconf(_SC_PAGESIZE) / 1024);
  }
  long slack_kib_;
  int every_;
  int checks_ = 0;
  long lowest_kib_;  // the lowest resident size seen
};

// /ready: the bus is served, multipassd answers and knows our certificate.
mps::metrics::Readiness Readiness(const std::atomic<bool>& serving,
                                  const mps::multipass::SessionHealth& health) {
  mps::metrics::Readiness r;
  if (!serving) r.reasons.push_back("not serving the bus (stopping)");
  if (!health.probed) {
    r.reasons.push_back("multipassd not probed yet");
  } else if (!health.reachable) {
    r.reasons.push_back("multipassd unreachable: " + health.Error());
  } else if (!health.authenticated) {
    r.reasons.push_back("multipassd does not accept our certificate: " + health.Error());
  }
  r.ready = r.reasons.empty();
  return r;
}

// The host's own capacity, read at each scrape (CPUs, memory, the disk
// multipass keeps its images and instances on).
void AddHostCapacity(mps::metrics::Registry& metrics, const std::string& disk_path) {
  metrics.OnCollect([&metrics, disk_path] {
    long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
    double memory = static_cast<double>(::sysconf(_SC_PHYS_PAGES)) *
                    static_cast<double>(::sysconf(_SC_PAGESIZE));
    struct statvfs fs {};
    double disk = 0;
    if (::statvfs(disk_path.c_str(), &fs) == 0 || ::statvfs("/", &fs) == 0)
      disk = static_cast<double>(fs.f_blocks) * static_cast<double>(fs.f_frsize);
    metrics.Gauge("mps_host_cpus", "CPUs of the Multipass host").Set(static_cast<double>(cpus));
    metrics.Gauge("mps_host_memory_bytes", "Physical memory of the Multipass host").Set(memory);
    metrics.Gauge("mps_host_disk_bytes", "Size of the filesystem Multipass keeps instances on")
        .Set(disk);
  });
}

int Run(int argc, char** argv) {
  CLI::App app{"Serves a Multipass daemon to the autoscaler over the bus"};
  mps::multipass::SessionOptions session;
  std::string passphrase_file, bind, server_key, authorized_keys;
  session.client.address = std::string(mps::multipass::kDefaultDaemonAddress);
  app.add_option("--multipass-address", session.client.address,
                 "multipassd address: unix:/path or host:port")
      ->capture_default_str();
  app.add_option("--multipass-cert", session.client.client_cert_file,
                 "Client certificate PEM presented to multipassd (with --multipass-key)");
  app.add_option("--multipass-key", session.client.client_key_file,
                 "Client private key PEM (EC or RSA, PKCS#8 or traditional)");
  app.add_option("--multipass-ca", session.client.root_ca_file,
                 "Root certificate to verify multipassd with (unset: not verified)");
  app.add_option("--multipass-server-name", session.client.server_name,
                 "Name expected in multipassd's certificate")
      ->capture_default_str();
  app.add_option("--multipass-passphrase-file", passphrase_file,
                 "File holding multipassd's local.passphrase, used when it does not know us");
  app.add_option("--bind", bind,
                 "Bus endpoint to serve on, e.g. tcp://10.1.2.1:7400 or "
                 "ipc:///run/multipass-hostd.sock (events on tcp port+1 / NAME.events)")
      ->required();
  app.add_option("--server-key", server_key,
                 "This server's Curve secret key file (required for tcp)");
  app.add_option("--authorized-keys", authorized_keys,
                 "Directory of client Curve public keys (*.pub) (required for tcp)");
  app.add_option("--allow-prefix", session.allowed_prefixes,
                 "Only manage instances named PREFIX-...; repeatable (unset: every instance)");
  app.add_option("--state-dir", session.client.state_dir,
                 "Directory where the generated multipassd client certificate is kept");
  app.add_option("--max-parallel-launches", session.max_parallel_launches,
                 "Launches running at once")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  std::string metrics_address;
  app.add_option("--metrics-address", metrics_address,
                 "Serve Prometheus /metrics and /ready on HOST:PORT (a bare PORT is on "
                 "127.0.0.1; unset: off)");
  unsigned probe_interval = 10;
  app.add_option("--probe-interval", probe_interval,
                 "Seconds between listings of every instance, for readiness and the instance "
                 "gauges (0: never)")
      ->capture_default_str();
  std::string host_disk_path = "/var/snap/multipass/common";
  app.add_option("--host-disk-path", host_disk_path,
                 "multipassd's storage directory: its filesystem is the host's disk when "
                 "multipassd has no daemon_info (before 1.15), and for mps_host_disk_bytes")
      ->capture_default_str();
  auto& headroom = session.headroom;
  app.add_option("--cpu-allocation-ratio", headroom.cpu_allocation_ratio,
                 "CPUs instances may be given per host CPU (host.capacity)")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 1000.0));
  app.add_option("--memory-allocation-ratio", headroom.memory_allocation_ratio,
                 "Memory instances may be given per byte of host memory (host.capacity)")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 1000.0));
  std::string reserve_memory = "0", reserve_disk = "0";
  app.add_option("--reserve-memory", reserve_memory,
                 "Memory kept for the host itself, Multipass size syntax (512M, 2G)")
      ->capture_default_str();
  app.add_option("--reserve-disk", reserve_disk,
                 "Disk kept for the host itself, Multipass size syntax (10G)")
      ->capture_default_str();
  app.add_option("--max-instances", headroom.max_instances,
                 "Most instances this host takes (0: no limit)")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{100000}));
  unsigned shutdown_grace = 60;
  app.add_option("--shutdown-grace", shutdown_grace,
                 "Seconds to let running launches finish on SIGTERM before cancelling them")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  auto transport = mps::bus::TransportOf(bind);  // throws invalid_argument naming it
  std::optional<mps::bus::CurveServerConfig> curve;
  if (transport == mps::bus::Transport::kTcp && (server_key.empty() || authorized_keys.empty()))
    throw StartupError("--bind " + bind +
                       " is tcp: --server-key and --authorized-keys are required"
                       " (Curve encryption and client authentication)");
  if (!server_key.empty() || !authorized_keys.empty()) {
    if (server_key.empty() || authorized_keys.empty())
      throw StartupError("--server-key and --authorized-keys go together");
    std::string secret;
    try {
      secret = mps::bus::ReadSecretKeyFile(server_key).secret_z85;
    } catch (const std::exception& e) {
      throw StartupError(std::string("--server-key: ") + e.what());
    }
    try {
      curve = mps::bus::MakeCurveServerConfig(std::move(secret), authorized_keys);
    } catch (const std::exception& e) {
      throw StartupError(std::string("--authorized-keys: ") + e.what());
    }
    if (curve->authorized_public_z85.empty())
      throw StartupError("--authorized-keys: no *.pub file in '" + authorized_keys + "'");
  }
  if (!passphrase_file.empty()) session.client.passphrase = ReadPassphrase(passphrase_file);
  for (auto [flag, text, bytes] :
       {std::tuple{"--reserve-memory", &reserve_memory, &headroom.reserve_memory_bytes},
        std::tuple{"--reserve-disk", &reserve_disk, &headroom.reserve_disk_bytes}}) {
    auto parsed = mps::config::ParseMultipassSize(*text);
    if (!parsed || *parsed > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      throw StartupError(std::string(flag) + ": expected a size such as 512M, 2G or 10GiB, got '" +
                         *text + "'");
    *bytes = static_cast<std::int64_t>(*parsed);
  }
  session.storage_path = host_disk_path;
  for (const auto& p : session.allowed_prefixes)
    if (p.empty() || p.back() == '-')
      throw StartupError("--allow-prefix: expected a name prefix without the trailing '-', got '" +
                         p + "'");

  // Signals are taken by this thread with sigtimedwait; block them before any other thread exists.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 2);
  caf::actor_system sys{cfg};
  mps::bus::BusContext context;

  std::shared_ptr<mps::metrics::Registry> metrics;
  if (!metrics_address.empty()) {
    try {
      metrics_address = mps::metrics::NormalizeMetricsAddress(metrics_address);
    } catch (const std::invalid_argument& e) {
      throw StartupError(std::string("--metrics-address: ") + e.what());
    }
    metrics = std::make_shared<mps::metrics::Registry>();
    context.SetMetrics(metrics);
    AddHostCapacity(*metrics, host_disk_path);
  }
  auto health = std::make_shared<mps::multipass::SessionHealth>();
  session.metrics = metrics;
  session.health = health;
  session.probe_interval = std::chrono::seconds(probe_interval);
  mps::metrics::SystemdNotifier systemd;

  mps::bus::ServerOptions so;
  so.endpoint = bind;
  so.name = "multipass-hostd";
  so.retry_app_codes = mps::contracts::RetryableAppCodeNames();
  so.curve = curve;
  so.metrics = metrics;
  if (systemd.watchdog_interval().count() > 0) {
    // The watchdog proves the bus I/O loop turns: it is kicked from there.
    so.on_tick = [&systemd] { systemd.Kick(); };
    so.tick = std::min<std::chrono::milliseconds>(
        std::chrono::milliseconds(1000),
        std::chrono::duration_cast<std::chrono::milliseconds>(systemd.watchdog_interval() / 4));
  }
  mps::bus::PublisherOptions po;
  po.endpoint = mps::bus::EventsEndpointFor(bind);
  po.name = "multipass-hostd";
  po.curve = curve;
  po.metrics = metrics;

  auto server = std::make_unique<mps::bus::BusServer>(context, so);
  auto publisher = std::make_unique<mps::bus::EventPublisher>(
      context, po, std::make_shared<mps::bus::MemoryEventLog>());
  publisher->ServeReplay(*server);
  caf::actor actor;
  try {
    actor = mps::multipass::ServeMultipassSession(sys, *server, publisher.get(), session);
  } catch (const mps::multipass::MultipassError& e) {
    throw StartupError("multipassd client: " + e.message);
  }
  // The daemon's version and whether it accepts us, before serving anything.
  auto daemon = mps::multipass::CheckDaemonAtStart(sys, actor);
  if (daemon.fatal) {
    server.reset();
    mps::multipass::StopMultipassSession(sys, actor);
    throw StartupError(daemon.message);
  }
  if (daemon.ok)
    spdlog::info("{}", daemon.message);
  else
    spdlog::warn("multipassd not checked yet ({}); checking again on the first request",
                 daemon.message);
  try {
    server->Start();
    publisher->Start();
  } catch (...) {
    // The actor must be gone before the actor system, or its destructor waits forever.
    server.reset();
    mps::multipass::StopMultipassSession(sys, actor);
    throw;
  }
  std::atomic<bool> serving{true};
  std::unique_ptr<mps::metrics::HttpEndpoint> http;
  if (metrics) {
    try {
      http = std::make_unique<mps::metrics::HttpEndpoint>(
          metrics_address, metrics, [&serving, health] { return Readiness(serving, *health); });
    } catch (const std::exception& e) {
      server->Stop();
      server.reset();
      mps::multipass::StopMultipassSession(sys, actor);
      throw StartupError(std::string("--metrics-address: ") + e.what());
    }
  }
  std::cout << "ready " << server->endpoint() << " events " << publisher->endpoint() << std::endl;
  if (http) std::cout << "metrics http://" << http->address() << std::endl;
  spdlog::info("serving {} on {} (events {}{})", session.client.address, server->endpoint(),
               publisher->endpoint(), http ? ", metrics on http://" + http->address() : "");
  // systemd: ready once serving and the first look at multipassd is done
  // (either way: a multipassd that is down is reported, not waited for).
  for (int i = 0; i < 50 && probe_interval > 0 && !health->probed; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto ready = Readiness(serving, *health);
  systemd.Ready(ready.ready ? "serving " + server->endpoint()
                            : "serving " + server->endpoint() + "; " + ready.reasons.front());

  // Wait for a signal; meanwhile, give memory freed by bursts of
  // connections back to the system.
  FreedMemoryReturner memory;
  int sig = 0;
  while (sig <= 0) {
    const timespec every{2, 0};
    sig = sigtimedwait(&signals, nullptr, &every);
    if (sig < 0 && errno == EAGAIN) memory.Check();
  }
  spdlog::info("signal {}: stopping", sig);
  systemd.Stopping();
  serving = false;
  http.reset();
  server->Stop();
  // Running launches get the grace, then are cancelled.
  auto stop =
      mps::multipass::StopMultipassSession(sys, actor, std::chrono::seconds(shutdown_grace));
  if (!stop.stopped) {
    // Unwinding would wait for the actor forever (~actor_system).
    spdlog::error("the multipass session did not stop; exiting anyway");
    spdlog::shutdown();
    std::_Exit(1);
  }
  publisher->Stop();
  server.reset();
  publisher.reset();
  if (!stop.interrupted.empty()) {
    std::string names;
    for (const auto& n : stop.interrupted) names += (names.empty() ? "" : ", ") + n;
    spdlog::error(
        "stopped with launch(es) interrupted after the grace: {}; their instances may "
        "need cleanup",
        names);
    return 1;
  }
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("multipass-hostd"));
  try {
    return Run(argc, argv);
  } catch (const StartupError& e) {
    std::cerr << "multipass-hostd: " << e.what() << std::endl;
    return 2;
  } catch (const std::invalid_argument& e) {
    std::cerr << "multipass-hostd: --bind: " << e.what() << std::endl;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "multipass-hostd: " << e.what() << std::endl;
    return 1;
  }
}
