#include "metrics/http_endpoint.h"

#include <CivetServer.h>
#include <civetweb.h>
#include <prometheus/exposer.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace mps::metrics {
namespace {

// civetweb's request callback is a plain function: the readiness check of
// each endpoint is found by the port the request came in on.
std::mutex ready_mutex;
std::map<int, std::function<Readiness()>>& ReadyChecks() {
  static std::map<int, std::function<Readiness()>> checks;
  return checks;
}

int BeginRequest(mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  if (info == nullptr || info->local_uri == nullptr || std::string(info->local_uri) != "/ready")
    return 0;  // the Exposer's
  std::function<Readiness()> check;
  {
    std::lock_guard lock(ready_mutex);
    auto it = ReadyChecks().find(info->server_port);
    if (it != ReadyChecks().end()) check = it->second;
  }
  Readiness r;
  if (check) {
    r = check();
  } else {
    r.reasons.push_back("starting");
  }
  std::string body = r.ready ? "ready\n" : "not ready\n";
  for (const auto& reason : r.reasons) body += reason + "\n";
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: %zu\r\nConnection: close\r\n\r\n",
            r.ready ? 200 : 503, r.ready ? "OK" : "Service Unavailable", body.size());
  mg_write(conn, body.data(), body.size());
  return r.ready ? 200 : 503;
}

bool ValidPort(const std::string& text, bool allow_zero) {
  int n = -1;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  return ec == std::errc() && ptr == text.data() + text.size() && n >= (allow_zero ? 0 : 1) &&
         n <= 65535;
}

}  // namespace

std::string NormalizeMetricsAddress(const std::string& address) {
  std::string a = address;
  if (a.rfind("http://", 0) == 0) a = a.substr(7);
  if (a.find(':') == std::string::npos) {
    if (!ValidPort(a, true))
      throw std::invalid_argument("\"" + address + "\" is not a port or host:port");
    return "127.0.0.1:" + a;
  }
  auto colon = a.rfind(':');
  std::string host = a.substr(0, colon), port = a.substr(colon + 1);
  if (host.empty() || !ValidPort(port, true))
    throw std::invalid_argument("\"" + address + "\" is not a port or host:port");
  if (host.front() == '[' && host.back() != ']')
    throw std::invalid_argument("\"" + address + "\": an IPv6 host goes in brackets, [::1]:9464");
  return a;
}

HttpEndpoint::HttpEndpoint(const std::string& address, std::shared_ptr<Registry> registry,
                           std::function<Readiness()> readiness)
    : registry_(std::move(registry)) {
  std::string bind = NormalizeMetricsAddress(address);
  host_ = bind.substr(0, bind.rfind(':'));
  static const CivetCallbacks callbacks = [] {
    CivetCallbacks c{};
    c.begin_request = BeginRequest;
    return c;
  }();
  // civetweb's own threads serve scrapes; two are plenty for one Prometheus.
  std::vector<std::string> options{"listening_ports", bind, "num_threads", "2"};
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(options, &callbacks);
  } catch (const std::exception& e) {
    throw std::runtime_error("metrics address " + bind + ": cannot listen (" + e.what() + ")");
  }
  auto ports = exposer_->GetListeningPorts();
  if (ports.empty()) throw std::runtime_error("metrics address " + bind + ": no listening port");
  port_ = ports.front();
  exposer_->RegisterCollectable(registry_);
  std::lock_guard lock(ready_mutex);
  ReadyChecks()[port_] = std::move(readiness);
}

namespace {

// civetweb's listener polls with a 2 s timeout and sees its stop flag only
// when it wakes: without a nudge, stopping takes up to 2 s (go-plugin kills a
// plugin 2 s after Shutdown). Connecting to our own port wakes it at once.
void NudgeUntil(const std::string& host, int port, const std::atomic<bool>& done) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  std::string target = host == "0.0.0.0" || host.empty() ? "127.0.0.1" : host;
  if (::inet_pton(AF_INET, target.c_str(), &addr.sin_addr) != 1) return;  // IPv6: no nudge
  while (!done) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    (void)::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::close(fd);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace

HttpEndpoint::~HttpEndpoint() {
  {
    std::lock_guard lock(ready_mutex);
    ReadyChecks().erase(port_);
  }
  std::atomic<bool> done{false};
  std::thread nudge([&] { NudgeUntil(host_, port_, done); });
  exposer_.reset();
  done = true;
  nudge.join();
}

std::string HttpEndpoint::address() const {
  return host_ + ":" + std::to_string(port_);
}

}  // namespace mps::metrics
