// A real second process for the bus tests: serves `echo`, `count` (counts
// executions, answers after `delay_ms` from another thread) and `executed`.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <thread>

#include "bus/events.h"
#include "bus/keys.h"
#include "bus/server.h"
#include "bus/sqlite_event_log.h"

using namespace mps::bus;

int main(int argc, char** argv) {
  std::map<std::string, std::string> args;
  for (int i = 1; i + 1 < argc; i += 2) args[argv[i]] = argv[i + 1];
  ServerOptions opts;
  opts.endpoint = args["--bind"];
  opts.name = "bus-test-server";
  if (args.count("--secret-key")) {
    opts.curve = MakeCurveServerConfig(ReadSecretKeyFile(args["--secret-key"]).secret_z85,
                                       args["--authorized-keys"]);
  }
  BusContext context;
  BusServer server(context, opts);
  std::atomic<int> executed{0};
  // `--no-delay 1`: answers `count` at once (a restarted server in a test).
  bool no_delay = args["--no-delay"] == "1";
  server.Handle("echo", [](const Request& req, Responder r) { r.Reply(req.envelope.payload); });
  server.Handle("count", [&, no_delay](const Request& req, Responder r) {
    int n = ++executed;
    int delay = no_delay ? 0 : req.envelope.payload.value("delay_ms", 0);
    std::thread([r, n, delay] {
      std::this_thread::sleep_for(std::chrono::milliseconds(delay));
      r.Reply({{"execution", n}});
    }).detach();
  });
  server.Handle("executed", [&](const Request&, Responder r) {
    r.Reply({{"count", executed.load()}, {"replays", server.stats().idempotent_replays}});
  });
  // With --event-log, events go to a durable log and are published beside
  // the request endpoint; `publish {n}` publishes n events.
  std::unique_ptr<EventPublisher> publisher;
  if (args.count("--event-log")) {
    PublisherOptions po;
    po.endpoint = EventsEndpointFor(opts.endpoint);
    po.name = "bus-test-server";
    po.heartbeat = std::chrono::milliseconds(100);
    publisher = std::make_unique<EventPublisher>(
        context, po, std::make_shared<SqliteEventLog>(args["--event-log"]));
    publisher->ServeReplay(server);
    server.Handle("publish", [&](const Request& req, Responder r) {
      int n = req.envelope.payload.value("n", 1);
      std::uint64_t last = 0;
      for (int i = 0; i < n; ++i) last = publisher->Publish("test.event", {{"i", i}});
      r.Reply({{"last", last}});
    });
    publisher->Start();
  }
  server.Start();
  std::cout << "ready " << server.endpoint() << std::endl;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  int sig;
  sigwait(&set, &sig);
  server.Stop();
  if (publisher) publisher->Stop();
  return 0;
}
