#include "bus/context.h"

#include <spdlog/spdlog.h>

#include <optional>
#include <vector>

#include <zmq_addon.hpp>

namespace mps::bus {

BusContext::BusContext() {
  context_.set(zmq::ctxopt::blocky, false);
}

BusContext::~BusContext() {
  stopping_ = true;
  if (zap_thread_.joinable()) zap_thread_.join();
  context_.shutdown();
}

void BusContext::AuthorizeKeys(const std::string& domain, std::set<std::string> keys) {
  {
    std::lock_guard lock(mutex_);
    domains_[domain] = std::move(keys);
  }
  bool expected = false;
  if (zap_started_.compare_exchange_strong(expected, true)) {
    // Bind here, before any server binds, so no client can handshake before
    // the handler exists; the socket then moves to its own thread (thread
    // start is a full memory barrier, which ZeroMQ requires for a migration).
    zmq::socket_t rep(context_, zmq::socket_type::rep);
    rep.set(zmq::sockopt::linger, 0);
    rep.bind("inproc://zeromq.zap.01");
    zap_thread_ = std::thread([this, sock = std::move(rep)]() mutable { ZapLoop(sock); });
  }
}

void BusContext::SetMetrics(std::shared_ptr<metrics::Registry> metrics) {
  std::lock_guard lock(mutex_);
  metrics_ = std::move(metrics);
}

void BusContext::SetRefusalLogLimits(RefusalLogLimits limits) {
  std::lock_guard lock(mutex_);
  refusals_ = RefusalLog(limits);
}

void BusContext::RevokeDomain(const std::string& domain) {
  std::lock_guard lock(mutex_);
  domains_.erase(domain);
}

void BusContext::ZapLoop(zmq::socket_t& rep) {
  while (!stopping_) {
    zmq::pollitem_t item{rep.handle(), 0, ZMQ_POLLIN, 0};
    try {
      if (zmq::poll(&item, 1, std::chrono::milliseconds(100)) == 0) {
        std::optional<std::string> summary;
        {
          std::lock_guard lock(mutex_);
          summary = refusals_.Tick(RefusalLog::Clock::now());
        }
        if (summary) spdlog::warn("{}", *summary);
        continue;
      }
    } catch (const zmq::error_t&) {
      break;
    }
    std::vector<zmq::message_t> req;
    if (!zmq::recv_multipart(rep, std::back_inserter(req))) continue;
    // Frames: version, request id, domain, address, identity, mechanism, credentials...
    std::string request_id = req.size() > 1 ? req[1].to_string() : "";
    std::string domain = req.size() > 2 ? req[2].to_string() : "";
    std::string address = req.size() > 3 ? req[3].to_string() : "";
    std::string mechanism = req.size() > 5 ? req[5].to_string() : "";
    std::string key_z85;
    if (mechanism == "CURVE" && req.size() > 6 && req[6].size() == 32) {
      char buf[41];
      zmq_z85_encode(buf, static_cast<const uint8_t*>(req[6].data()), 32);
      key_z85 = buf;
    }
    bool ok = false;
    std::vector<std::string> log;
    {
      std::lock_guard lock(mutex_);
      auto it = domains_.find(domain);
      ok = it != domains_.end() && !key_z85.empty() && it->second.count(key_z85) > 0;
      if (!ok) {
        ++refused_;
        metrics::Inc(metrics_.get(), "mps_bus_refused_keys_total",
                     "Curve clients refused by the ZAP handler (key not authorized), by server",
                     {{"server", domain.substr(0, domain.find('#'))}});
        // A refused key is logged once (not once per reconnect attempt), and a
        // flood of fresh keys gives a few lines and a count.
        std::string who = key_z85.empty() ? mechanism + " client without a Curve key" : key_z85;
        log = refusals_.Record(domain + "|" + who,
                               "bus: refused " + who + " from " + address + " on " + domain +
                                   " (not an authorized key)",
                               RefusalLog::Clock::now());
      }
    }
    for (const auto& line : log) spdlog::warn("{}", line);
    std::array<zmq::const_buffer, 6> reply = {
        zmq::str_buffer("1.0"),
        zmq::buffer(request_id),
        ok ? zmq::str_buffer("200") : zmq::str_buffer("400"),
        ok ? zmq::str_buffer("OK") : zmq::str_buffer("key not authorized"),
        zmq::buffer(key_z85),
        zmq::str_buffer("")};
    zmq::send_multipart(rep, reply);
  }
}

}  // namespace mps::bus
