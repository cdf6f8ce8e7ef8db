#pragma once
// /metrics (prometheus-cpp's Exposer over civetweb) and /ready on one HTTP
// port. /ready answers 200 "ready" or 503 with the reasons, for Nomad service
// checks and load balancers; everything else is the Exposer's.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "metrics/registry.h"

namespace prometheus {
class Exposer;
}

namespace mps::metrics {

struct Readiness {
  bool ready = false;
  std::vector<std::string> reasons;  // why not ready
};

// "9464" -> "127.0.0.1:9464" (loopback unless an address is given);
// "0.0.0.0:9464", "10.1.2.1:9464", "[::1]:9464" as they are. Throws
// std::invalid_argument naming what is wrong.
std::string NormalizeMetricsAddress(const std::string& address);

class HttpEndpoint {
 public:
  // Binds at once; throws std::runtime_error naming the address when it cannot.
  HttpEndpoint(const std::string& address, std::shared_ptr<Registry> registry,
               std::function<Readiness()> readiness);
  ~HttpEndpoint();
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;

  int port() const { return port_; }
  std::string address() const;  // host:port with the bound port

 private:
  std::string host_;
  int port_ = 0;
  std::shared_ptr<Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace mps::metrics
