#include "support/flood.h"

#include <signal.h>

#include <algorithm>
#include <deque>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <zmq.hpp>

#include "bus/client.h"
#include "bus/envelope.h"
#include "bus/transport.h"

namespace mps::testing {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

long RssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return 0;
}

int CountLines(const std::string& text, const std::string& needle) {
  std::istringstream in(text);
  std::string line;
  int n = 0;
  while (std::getline(in, line))
    if (line.find(needle) != std::string::npos) ++n;
  return n;
}

namespace {

// A free tcp port on 127.0.0.1 whose successor (the events port) is free too.
int FreePortPair() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    zmq::context_t ctx;
    zmq::socket_t probe(ctx, zmq::socket_type::rep);
    probe.set(zmq::sockopt::linger, 0);
    probe.bind("tcp://127.0.0.1:*");
    std::string ep = probe.get(zmq::sockopt::last_endpoint);
    int port = std::stoi(ep.substr(ep.rfind(':') + 1));
    probe.close();
    if (port >= 65535) continue;
    zmq::socket_t next(ctx, zmq::socket_type::rep);
    next.set(zmq::sockopt::linger, 0);
    try {
      next.bind("tcp://127.0.0.1:" + std::to_string(port + 1));
    } catch (const zmq::error_t&) {
      continue;
    }
    return port;
  }
  throw std::runtime_error("no free port pair on 127.0.0.1");
}

}  // namespace

FloodWorld::FloodWorld() {
  namespace fs = std::filesystem;
  const auto bin = BinDir();
  const auto dir = dir_.path();
  sim_ = std::make_unique<ChildProcess>(std::vector<std::string>{
      bin + "/cluster-sim", "--multipass-socket", dir + "/mp.sock", "--state-dir", dir + "/sim",
      "--boot-delay", "10ms", "--passphrase", "sesame", "--ssh-delay", "1ms"});
  if (!sim_->WaitForLine("ready", 20s))
    throw std::runtime_error("cluster-sim did not start: " + sim_->stderr_text());
  server_ = bus::GenerateKeyPair();
  client_ = bus::GenerateKeyPair();
  bus::WriteKeyPair(fs::path(dir) / "keys", "hostd", server_);
  bus::WriteKeyPair(fs::path(dir) / "clients", "plugin", client_);
  std::ofstream(dir + "/passphrase") << "sesame\n";
  endpoint_ = "tcp://127.0.0.1:" + std::to_string(FreePortPair());
  hostd_ = std::make_unique<ChildProcess>(std::vector<std::string>{
      bin + "/multipass-hostd", "--multipass-address", "unix:" + dir + "/mp.sock",
      "--multipass-passphrase-file", dir + "/passphrase", "--state-dir", dir + "/hostd-state",
      "--bind", endpoint_, "--server-key", dir + "/keys/hostd.key", "--authorized-keys",
      dir + "/clients", "--probe-interval", "0"});
  if (!hostd_->WaitForLine("ready ", 20s))
    throw std::runtime_error("multipass-hostd did not start: " + hostd_->stderr_text());
}

FloodWorld::~FloodWorld() = default;

std::optional<int> FloodWorld::StopHostd() {
  hostd_->Signal(SIGTERM);
  return hostd_->Wait(10s);
}

FloodResult RunFlood(const FloodOptions& o) {
  zmq::context_t ctx(2);
  // Closed sockets are reaped asynchronously: with no wait for an answer
  // they pile up beyond the default 1023.
  ctx.set(zmq::ctxopt::max_sockets, 16384);
  std::atomic<int> next{0}, answered{0};
  bus::Envelope request;
  request.type = o.type;
  request.sender = "flood";
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < std::max(1, o.threads); ++t) {
    threads.emplace_back([&] {
      std::deque<zmq::socket_t> open;
      auto close_oldest = [&] {
        zmq::message_t reply;
        if (open.front().recv(reply, zmq::recv_flags::dontwait)) ++answered;
        open.pop_front();
      };
      for (int i = next++; i < o.connections; i = next++) {
        zmq::socket_t s;
        try {
          s = zmq::socket_t(ctx, zmq::socket_type::dealer);
        } catch (const zmq::error_t&) {  // EMFILE: let the reaper catch up
          if (!open.empty()) close_oldest();
          std::this_thread::sleep_for(10ms);
          continue;
        }
        s.set(zmq::sockopt::linger, 0);
        auto keys = o.client_secret_z85
                        ? bus::CurveKeyPair{bus::PublicKeyFromSecret(*o.client_secret_z85),
                                            *o.client_secret_z85}
                        : bus::GenerateKeyPair();
        bus::ApplyCurveClient(s, {keys.secret_z85, o.server_public_z85});
        s.connect(o.endpoint);
        bus::Envelope r = request;
        r.correlation_id = static_cast<std::uint64_t>(i) + 1;
        r.deadline_ms = bus::NowUnixMs() + 5000;
        std::string frame = bus::Encode(r);
        (void)s.send(zmq::buffer(frame), zmq::send_flags::dontwait);
        if (o.hold > 0) {
          open.push_back(std::move(s));
          if (static_cast<int>(open.size()) > o.hold) close_oldest();
          continue;
        }
        zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
        if (o.wait_reply.count() > 0 && zmq::poll(&item, 1, o.wait_reply) > 0) {
          zmq::message_t reply;
          if (s.recv(reply, zmq::recv_flags::dontwait)) ++answered;
        }
      }
      if (!open.empty()) std::this_thread::sleep_for(o.wait_reply);
      while (!open.empty()) close_oldest();
    });
  }
  for (auto& t : threads) t.join();
  FloodResult result;
  result.connections = o.connections;
  result.answered = answered;
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

SteadyClient::SteadyClient(bus::BusContext& context, const FloodWorld& world,
                           std::chrono::milliseconds interval, std::string type) {
  bus::ClientOptions co;
  co.endpoint = world.endpoint();
  co.name = "steady";
  co.curve = bus::CurveClientConfig{world.client_keys().secret_z85, world.server_keys().public_z85};
  auto client = std::make_shared<bus::BusClient>(context, co);
  thread_ = std::thread([this, client, interval, type] {
    for (auto next = Clock::now(); !stop_; next += interval) {
      std::this_thread::sleep_until(next);
      auto t0 = Clock::now();
      ++calls_;
      try {
        client->CallSync(type, nlohmann::json::object(), {5s, ""});
        long us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
        ++answered_;
        long seen = max_us_;
        while (us > seen && !max_us_.compare_exchange_weak(seen, us)) {
        }
        std::lock_guard lock(mutex_);
        latencies_us_.push_back(us);
      } catch (const std::exception& e) {
        std::lock_guard lock(mutex_);
        if (first_error_.empty()) first_error_ = e.what();
      }
    }
  });
}

SteadyClient::~SteadyClient() {
  Stop();
}

void SteadyClient::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

std::string SteadyClient::first_error() const {
  std::lock_guard lock(mutex_);
  return first_error_;
}

double SteadyClient::p99_ms() const {
  std::lock_guard lock(mutex_);
  if (latencies_us_.empty()) return 0;
  auto v = latencies_us_;
  std::sort(v.begin(), v.end());
  return static_cast<double>(v[std::min(v.size() - 1, v.size() * 99 / 100)]) / 1000.0;
}

}  // namespace mps::testing
