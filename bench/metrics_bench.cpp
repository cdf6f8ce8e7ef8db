// What metrics cost, on vs off in the same run:
//  1. the bus round trip (tcp loopback, CurveZMQ) with the server and client
//     counting every request (the hostd side and the plugin side of a call)
//     and /metrics scraped four times a second, against the same pair without
//     a registry;
//  2. Status through multipass-target's go-plugin socket with and without
//     `metrics_address` (SetConfig switches between the two), /metrics scraped
//     four times a second while it is on.
// Rounds alternate between the two modes so that machine noise hits both.
//
// usage: metrics_bench [bus calls per round, default 5000] [Status calls per round,
//                      default 1000] [rounds, default 4]
#include <httplib.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "bench_stats.h"
#include "bus/client.h"
#include "bus/keys.h"
#include "bus/server.h"
#include "metrics/http_endpoint.h"
#include "plugin_world.h"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// GETs /metrics every 250 ms until destroyed, like a busy Prometheus.
class Scraper {
 public:
  explicit Scraper(int port)
      : thread_([this, port] {
          httplib::Client client("127.0.0.1", port);
          while (!stop_) {
            auto r = client.Get("/metrics");
            if (r && r->status == 200) ++scrapes_;
            for (int i = 0; i < 25 && !stop_; ++i) std::this_thread::sleep_for(10ms);
          }
        }) {}
  ~Scraper() {
    stop_ = true;
    thread_.join();
  }
  int scrapes() const { return scrapes_; }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> scrapes_{0};
  std::thread thread_;
};

struct BusPair {
  std::unique_ptr<mps::bus::BusServer> server;
  std::unique_ptr<mps::bus::BusClient> client;
};

BusPair MakePair(mps::bus::BusContext& ctx, const mps::bus::CurveKeyPair& server_keys,
                 const mps::bus::CurveKeyPair& client_keys,
                 std::shared_ptr<mps::metrics::Registry> metrics) {
  BusPair p;
  mps::bus::ServerOptions so;
  so.endpoint = "tcp://127.0.0.1:*";
  so.name = metrics ? "bench-on" : "bench-off";
  so.curve = mps::bus::CurveServerConfig{server_keys.secret_z85, {client_keys.public_z85}};
  so.metrics = metrics;
  p.server = std::make_unique<mps::bus::BusServer>(ctx, so);
  p.server->Handle("multipass.list", [](const mps::bus::Request& req, mps::bus::Responder r) {
    r.Reply(req.envelope.payload);
  });
  p.server->Start();
  mps::bus::ClientOptions co;
  co.endpoint = p.server->endpoint();
  co.name = "bench-client";
  co.curve = mps::bus::CurveClientConfig{client_keys.secret_z85, server_keys.public_z85};
  co.metrics = metrics;
  p.client = std::make_unique<mps::bus::BusClient>(ctx, co);
  return p;
}

void Row(const char* what, const mps::bench::Percentiles& p) {
  std::printf("%-46s %10.1f %10.1f\n", what, p.p50_us, p.p99_us);
}

void Ratio(const mps::bench::Percentiles& on, const mps::bench::Percentiles& off) {
  std::printf("on/off: p50 %.3f, p99 %.3f (aim: within 5%%)\n", on.p50_us / off.p50_us,
              on.p99_us / off.p99_us);
}

void BusRoundTrip(int calls, int rounds) {
  mps::bus::BusContext ctx;
  auto server_keys = mps::bus::GenerateKeyPair(), client_keys = mps::bus::GenerateKeyPair();
  auto registry = std::make_shared<mps::metrics::Registry>();
  ctx.SetMetrics(registry);
  auto off = MakePair(ctx, server_keys, client_keys, nullptr);
  auto on = MakePair(ctx, server_keys, client_keys, registry);
  mps::metrics::HttpEndpoint http("127.0.0.1:0", registry, [] {
    return mps::metrics::Readiness{true, {}};
  });
  Scraper scraper(http.port());
  // A list request as the watcher sends it, small.
  nlohmann::json body = {{"prefix", "web"}};
  for (int i = 0; i < 1000; ++i) {
    off.client->CallSync("multipass.list", body);
    on.client->CallSync("multipass.list", body);
  }
  std::vector<std::chrono::nanoseconds> off_samples, on_samples;
  for (int round = 0; round < rounds; ++round) {
    for (auto* pair : {&off, &on}) {
      auto& samples = pair == &off ? off_samples : on_samples;
      for (int i = 0; i < calls; ++i) {
        auto t0 = Clock::now();
        pair->client->CallSync("multipass.list", body);
        samples.push_back(Clock::now() - t0);
      }
    }
  }
  auto a = mps::bench::Summarize(off_samples), b = mps::bench::Summarize(on_samples);
  std::printf("Bus round trip, tcp + Curve, %d rounds x %d calls per mode (%d scrapes)\n", rounds,
              calls, scraper.scrapes());
  std::printf("%-46s %10s %10s\n", "mode", "p50 (us)", "p99 (us)");
  Row("metrics off", a);
  Row("metrics on (server + client counting)", b);
  Ratio(b, a);
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

void StatusThroughThePlugin(int calls, int rounds) {
  mps::bench::PluginWorld world({});
  world.StartPlugin();
  std::vector<std::chrono::nanoseconds> off_samples, on_samples;
  int scrapes = 0;
  for (int round = 0; round < rounds; ++round) {
    for (bool metrics : {false, true}) {
      int port = FreePort();
      if (metrics) {
        world.SetConfig({{"metrics_address", "127.0.0.1:" + std::to_string(port)}});
      } else {
        world.SetConfig();
      }
      world.WaitReady(0, 30s);
      std::unique_ptr<Scraper> scraper;
      if (metrics) scraper = std::make_unique<Scraper>(port);
      for (int i = 0; i < 200; ++i) world.Status();
      auto& samples = metrics ? on_samples : off_samples;
      for (int i = 0; i < calls; ++i) {
        auto t0 = Clock::now();
        world.Status();
        samples.push_back(Clock::now() - t0);
      }
      if (scraper) scrapes += scraper->scrapes();
    }
  }
  auto a = mps::bench::Summarize(off_samples), b = mps::bench::Summarize(on_samples);
  std::printf("\nStatus through the plugin socket, %d rounds x %d calls per mode (%d scrapes)\n",
              rounds, calls, scrapes);
  std::printf("%-46s %10s %10s\n", "mode", "p50 (us)", "p99 (us)");
  Row("metrics off", a);
  Row("metrics_address set, /metrics scraped", b);
  Ratio(b, a);
}

}  // namespace

int main(int argc, char** argv) {
  int bus_calls = argc > 1 ? std::atoi(argv[1]) : 5000;
  int status_calls = argc > 2 ? std::atoi(argv[2]) : 1000;
  int rounds = argc > 3 ? std::atoi(argv[3]) : 4;
  if (bus_calls <= 0 || status_calls <= 0 || rounds <= 0) {
    std::fprintf(stderr, "usage: metrics_bench [bus calls > 0] [Status calls > 0] [rounds > 0]\n");
    return 2;
  }
  try {
    BusRoundTrip(bus_calls, rounds);
    StatusThroughThePlugin(status_calls, rounds);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "metrics_bench: %s\n", e.what());
    return 1;
  }
}
