// Connection floods against a real multipass-hostd over tcp on 127.0.0.1
// (issue 16, defect 10). Phase 1: LISTED short-lived connections with the
// authorized key, one multipass.version each, then closed. Phase 2: UNLISTED
// connections, each with a fresh key hostd does not know. Meanwhile a
// legitimate client (its own long-lived connection) calls multipass.version
// every 50 ms with a 5 s deadline. FLOOD_GDB_TRIM=1: after phase 1, gdb
// calls malloc_trim(0) in hostd (was the growth freed memory malloc kept?). Printed: hostd's RSS
// before, after each phase and some seconds later, its log lines (all, and refusal warnings), and
// the legitimate client's answers and latency.
//
// usage: flood_bench [LISTED, default 20000] [UNLISTED, default 30000] [THREADS, default 4]
//                    [WAIT_MS, default 500: how long a flood connection waits for its
//                    answer before closing; 0: send and close at once]
//                    [HOLD, default 0: connections each thread keeps open at once]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <thread>

#include "support/flood.h"

using namespace std::chrono_literals;

namespace {

double MiB(long kib) {
  return static_cast<double>(kib) / 1024.0;
}

int Run(int listed, int unlisted, int threads, int wait_ms, int hold) {
  mps::testing::FloodWorld world;
  mps::bus::BusContext context;
  std::this_thread::sleep_for(1s);
  const pid_t pid = world.hostd_pid();
  std::printf("flood_bench: hostd pid %d on %s, %d listed + %d unlisted connections, %d threads\n",
              pid, world.endpoint().c_str(), listed, unlisted, threads);
  std::printf("%-22s %9s %9s %10s %9s %10s\n", "phase", "conns", "answered", "seconds", "RSS MiB",
              "log lines");
  auto row = [&](const char* phase, const mps::testing::FloodResult* r) {
    std::printf("%-22s %9d %9d %10.1f %9.1f %10d\n", phase, r ? r->connections : 0,
                r ? r->answered : 0, r ? r->seconds : 0.0, MiB(mps::testing::RssKiB(pid)),
                mps::testing::CountLines(world.hostd_stderr(), ""));
    std::fflush(stdout);
  };
  row("start", nullptr);
  mps::testing::SteadyClient steady(context, world);
  mps::testing::FloodOptions fo;
  fo.endpoint = world.endpoint();
  fo.server_public_z85 = world.server_keys().public_z85;
  fo.threads = threads;
  fo.wait_reply = std::chrono::milliseconds(wait_ms);
  fo.hold = hold;
  fo.connections = listed;
  fo.client_secret_z85 = world.client_keys().secret_z85;
  auto a = mps::testing::RunFlood(fo);
  row("after listed", &a);
  std::this_thread::sleep_for(3s);
  row("listed + 3 s", nullptr);
  if (std::getenv("FLOOD_GDB_TRIM")) {
    std::system(
        ("gdb -p " + std::to_string(pid) + " -batch -ex 'call (int)malloc_trim(0)' >/dev/null 2>&1")
            .c_str());
    row("TRIMMED", nullptr);
  }
  fo.connections = unlisted;
  fo.client_secret_z85.reset();
  // Unlisted connections are never answered: each thread keeps 500 open,
  // the last for a second, while their handshakes reach the ZAP handler.
  fo.wait_reply = 1000ms;
  fo.hold = 500;
  auto b = mps::testing::RunFlood(fo);
  row("after unlisted", &b);
  std::this_thread::sleep_for(3s);
  row("unlisted + 3 s", nullptr);
  std::this_thread::sleep_for(8s);  // past the refusal log's interval: its summary is out
  row("unlisted + 11 s", nullptr);
  steady.Stop();
  auto log = world.hostd_stderr();
  std::printf("hostd log: %d lines, %d 'refused' warnings\n", mps::testing::CountLines(log, ""),
              mps::testing::CountLines(log, "refused"));
  std::printf("legitimate client: %d/%d answered within 5 s, p99 %.1f ms, max %.1f ms%s%s\n",
              steady.answered(), steady.calls(), steady.p99_ms(), steady.max_ms(),
              steady.first_error().empty() ? "" : "; first error: ", steady.first_error().c_str());
  world.StopHostd();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(argc > 1 ? std::atoi(argv[1]) : 20000, argc > 2 ? std::atoi(argv[2]) : 30000,
               argc > 3 ? std::atoi(argv[3]) : 4, argc > 4 ? std::atoi(argv[4]) : 500,
               argc > 5 ? std::atoi(argv[5]) : 0);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flood_bench: %s\n", e.what());
    return 1;
  }
}
