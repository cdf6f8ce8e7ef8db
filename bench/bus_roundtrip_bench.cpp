// Bus request/reply over tcp loopback with CurveZMQ, against a raw cppzmq
// DEALER/ROUTER ping-pong of the same payload size and the same Curve
// setting, in the same run. Prints p50/p99 latency, throughput and ratios,
// then how long the CAF bridge's actor system takes to shut down after its
// calls were answered, and when a call to an endpoint nobody serves fails.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <zmq_addon.hpp>

#include "bench_stats.h"
#include "bus/caf_bridge.h"
#include "bus/client.h"
#include "bus/keys.h"
#include "bus/server.h"

using namespace mps::bus;
using Clock = std::chrono::steady_clock;

namespace {

struct Keys {
  CurveKeyPair server = GenerateKeyPair();
  CurveKeyPair client = GenerateKeyPair();
};

struct Result {
  mps::bench::Percentiles latency;
  double throughput = 0;  // round trips per second with a window in flight
};

// Raw baseline: ROUTER echo thread, DEALER in the calling thread.
Result RawZmq(const Keys& keys, std::size_t payload, int iterations, int window) {
  zmq::context_t ctx;
  zmq::socket_t router(ctx, zmq::socket_type::router);
  router.set(zmq::sockopt::curve_server, true);
  router.set(zmq::sockopt::curve_secretkey, keys.server.secret_z85);
  router.set(zmq::sockopt::linger, 0);
  router.bind("tcp://127.0.0.1:*");
  std::string endpoint = router.get(zmq::sockopt::last_endpoint);
  std::atomic<bool> stop{false};
  std::thread echo([&] {
    zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
    while (!stop) {
      if (zmq::poll(&item, 1, std::chrono::milliseconds(50)) == 0) continue;
      std::vector<zmq::message_t> parts;
      while (zmq::recv_multipart(router, std::back_inserter(parts), zmq::recv_flags::dontwait)) {
        zmq::send_multipart(router, parts);
        parts.clear();
      }
    }
  });
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::curve_serverkey, keys.server.public_z85);
  dealer.set(zmq::sockopt::curve_secretkey, keys.client.secret_z85);
  dealer.set(zmq::sockopt::curve_publickey, keys.client.public_z85);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.connect(endpoint);
  std::string body(payload, 'x');
  zmq::message_t reply;
  for (int i = 0; i < 1000; ++i) {  // warm-up, includes the Curve handshake
    dealer.send(zmq::buffer(body));
    (void)dealer.recv(reply);
  }
  std::vector<std::chrono::nanoseconds> samples;
  samples.reserve(iterations);
  for (int i = 0; i < iterations; ++i) {
    auto t0 = Clock::now();
    dealer.send(zmq::buffer(body));
    (void)dealer.recv(reply);
    samples.push_back(Clock::now() - t0);
  }
  Result r;
  r.latency = mps::bench::Summarize(std::move(samples));
  auto t0 = Clock::now();
  int sent = 0, received = 0;
  while (received < iterations) {
    while (sent < iterations && sent - received < window) {
      dealer.send(zmq::buffer(body));
      ++sent;
    }
    (void)dealer.recv(reply);
    ++received;
  }
  r.throughput = iterations / std::chrono::duration<double>(Clock::now() - t0).count();
  stop = true;
  echo.join();
  return r;
}

std::unique_ptr<BusServer> MakeServer(BusContext& ctx, const Keys& keys) {
  ServerOptions so;
  so.endpoint = "tcp://127.0.0.1:*";
  so.name = "bench";
  so.curve = CurveServerConfig{keys.server.secret_z85, {keys.client.public_z85}};
  return std::make_unique<BusServer>(ctx, so);
}

ClientOptions ClientFor(const BusServer& server, const Keys& keys) {
  ClientOptions co;
  co.endpoint = server.endpoint();
  co.name = "bench-client";
  co.curve = CurveClientConfig{keys.client.secret_z85, keys.server.public_z85};
  return co;
}

Result Ours(const Keys& keys, std::size_t payload, int iterations, int window) {
  BusContext ctx;
  auto server = MakeServer(ctx, keys);
  server->Handle("echo", [](const Request& req, Responder r) { r.Reply(req.envelope.payload); });
  server->Start();
  BusClient client(ctx, ClientFor(*server, keys));
  nlohmann::json body = {{"data", std::string(payload, 'x')}};
  for (int i = 0; i < 1000; ++i) client.CallSync("echo", body);
  std::vector<std::chrono::nanoseconds> samples;
  samples.reserve(iterations);
  for (int i = 0; i < iterations; ++i) {
    auto t0 = Clock::now();
    client.CallSync("echo", body);
    samples.push_back(Clock::now() - t0);
  }
  Result r;
  r.latency = mps::bench::Summarize(std::move(samples));
  std::atomic<int> done{0};
  std::mutex m;
  std::condition_variable cv;
  auto t0 = Clock::now();
  for (int sent = 0; sent < iterations; ++sent) {
    {
      std::unique_lock l(m);
      cv.wait(l, [&] { return sent - done.load() < window; });
    }
    client.Call("echo", body, {}, [&](CallResult) {
      ++done;
      cv.notify_one();
    });
  }
  std::unique_lock l(m);
  cv.wait(l, [&] { return done.load() == iterations; });
  r.throughput = iterations / std::chrono::duration<double>(Clock::now() - t0).count();
  return r;
}

caf::behavior EchoActor(caf::event_based_actor*) {
  return {[](bus_request_atom, const Envelope& e) { return BusAnswer::Ok(e.payload); }};
}

struct CafResult {
  mps::bench::Percentiles latency;
  // ~actor_system after every call was answered: it must not wait out the
  // calls' deadlines (5 s each).
  std::chrono::nanoseconds shutdown{0};
};

CafResult OursThroughCaf(const Keys& keys, std::size_t payload, int iterations) {
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 2);
  std::optional<caf::actor_system> system;
  system.emplace(cfg);
  caf::actor_system& sys = *system;
  CafResult result;
  mps::bench::Percentiles& p = result.latency;
  {
    BusContext ctx;
    auto server = MakeServer(ctx, keys);
    ServeWithActor(*server, sys, "echo", sys.spawn(EchoActor));
    server->Start();
    auto client = std::make_shared<BusClient>(ctx, ClientFor(*server, keys));
    auto caller = SpawnBusCaller(sys, client);
    caf::scoped_actor self{sys};
    BusCall call{"echo", {{"data", std::string(payload, 'x')}}, CallOptions{}};
    auto once = [&] {
      self->request(caller, std::chrono::seconds(5), bus_call_atom::value, call)
          .receive([](BusAnswer&) {}, [](caf::error&) { std::abort(); });
    };
    for (int i = 0; i < 1000; ++i) once();
    std::vector<std::chrono::nanoseconds> samples;
    for (int i = 0; i < iterations; ++i) {
      auto t0 = Clock::now();
      once();
      samples.push_back(Clock::now() - t0);
    }
    p = mps::bench::Summarize(std::move(samples));
    self->send_exit(caller, caf::exit_reason::user_shutdown);
  }
  auto t0 = Clock::now();
  system.reset();
  result.shutdown = Clock::now() - t0;
  return result;
}

// A call to an ipc endpoint nobody binds, with a 200 ms deadline: the
// caller hears `unreachable` at the deadline, not later. Median of 5.
std::chrono::nanoseconds UnreachableAtDeadline() {
  BusContext ctx;
  ClientOptions co;
  co.endpoint = "ipc:///tmp/mps-bench-nobody-" + std::to_string(getpid()) + ".sock";
  co.name = "bench-client";
  BusClient client(ctx, co);
  std::vector<std::chrono::nanoseconds> samples;
  for (int i = 0; i < 5; ++i) {
    auto t0 = Clock::now();
    try {
      client.CallSync("echo", nlohmann::json::object(), {std::chrono::milliseconds(200), {}});
      std::fprintf(stderr, "a call to %s was answered\n", co.endpoint.c_str());
      std::exit(1);
    } catch (const BusError& e) {
      if (e.code() != ErrorCode::kUnreachable) {
        std::fprintf(stderr, "expected unreachable, got: %s\n", e.what());
        std::exit(1);
      }
    }
    samples.push_back(Clock::now() - t0);
  }
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = argc > 1 ? std::atoi(argv[1]) : 20000;
  const std::size_t payload = 256;
  const int window = 64;
  Keys keys;
  Result raw = RawZmq(keys, payload, iterations, window);
  Result ours = Ours(keys, payload, iterations, window);
  auto caf = OursThroughCaf(keys, payload, iterations / 2);
  auto unreachable = UnreachableAtDeadline();
  std::printf("bus request/reply, tcp loopback + CurveZMQ, %zu-byte payload, %d round trips\n",
              payload, iterations);
  std::printf("%-34s %10s %10s %14s\n", "path", "p50 (us)", "p99 (us)", "req/s (w=64)");
  std::printf("%-34s %10.1f %10.1f %14.0f\n", "raw cppzmq DEALER/ROUTER", raw.latency.p50_us,
              raw.latency.p99_us, raw.throughput);
  std::printf("%-34s %10.1f %10.1f %14.0f\n", "mps bus (BusClient -> BusServer)",
              ours.latency.p50_us, ours.latency.p99_us, ours.throughput);
  std::printf("%-34s %10.1f %10.1f %14s\n", "mps bus via CAF bridge (both ends)",
              caf.latency.p50_us, caf.latency.p99_us, "-");
  std::printf("ratio p50 ours/raw: %.2f (aim <= 1.5)\n", ours.latency.p50_us / raw.latency.p50_us);
  std::printf("ratio p99 ours/raw: %.2f\n", ours.latency.p99_us / raw.latency.p99_us);
  std::printf("ratio throughput raw/ours: %.2f\n", raw.throughput / ours.throughput);
  auto ms = [](std::chrono::nanoseconds d) {
    return std::chrono::duration<double, std::milli>(d).count();
  };
  std::printf("CAF bridge: actor system shut down %.1f ms after its last call (deadlines 5 s)\n",
              ms(caf.shutdown));
  std::printf("unreachable endpoint, 200 ms deadline: error after %.1f ms (median of 5)\n",
              ms(unreachable));
  return 0;
}
