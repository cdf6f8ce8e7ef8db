#include "mpscale/commands.h"

#include <signal.h>

#include <chrono>
#include <future>
#include <iomanip>
#include <iostream>

#include "bus/events.h"
#include "config/hosts_file.h"
#include "contracts/codec.h"
#include "contracts/host.h"
#include "contracts/multipass.h"
#include "contracts/status.h"
#include "mpscale/event_format.h"
#include "mpscale/hosts_table.h"
#include "mpscale/status_table.h"

namespace mps::mpscale {
namespace {

using Json = nlohmann::json;
namespace mp = contracts::multipass;
namespace status = contracts::status;

// Runs `body` with a client for `flags`, turning failures into exit codes and
// operator-facing messages.
template <typename Body>
int WithClient(const EndpointFlags& flags, const ServiceWording& wording, Body body) {
  try {
    auto options = ClientOptionsFor(flags.address, flags.keys);
    bus::BusContext context;
    bus::BusClient client(context, options);
    return body(context, client);
  } catch (const UsageError& e) {
    std::cerr << "mpscale: " << e.what() << "\n";
    return 2;
  } catch (const bus::BusError& e) {
    std::cerr << "mpscale: "
              << DescribeBusError(e, flags.address, std::chrono::seconds(flags.timeout_s),
                                  flags.keys, wording)
              << "\n";
    return 1;
  }
}

std::string JoinOr(const std::vector<std::string>& list, const std::string& none) {
  std::string out;
  for (const auto& v : list) out += (out.empty() ? "" : ",") + v;
  return out.empty() ? none : out;
}

std::string OrDash(const std::string& text) {
  return text.empty() ? "-" : text;
}

void PrintInstances(const mp::ListReply& reply) {
  auto row = [](const std::string& a, const std::string& b, const std::string& c,
                const std::string& d) {
    std::cout << std::left << std::setw(24) << a << " " << std::setw(10) << b << " "
              << std::setw(16) << c << " " << d << "\n";
  };
  row("NAME", "STATE", "IPV4", "RELEASE");
  for (const auto& i : reply.instances)
    row(i.name, i.state, JoinOr(i.ipv4, "-"), OrDash(i.release));
  for (const auto& f : reply.in_flight) row(f.name, "launching", "-", OrDash(f.image));
}

void PrintEvent(const bus::Envelope& event, const std::optional<std::string>& pool, bool json) {
  if (!MatchesPool(event, pool)) return;
  std::cout << (json ? EventJson(event).dump() : FormatEventLine(event)) << std::endl;
}

// Prints the retained events from `from` on, batch by batch, until the reply
// shows nothing newer than what was printed. Returns the last sequence number seen.
std::uint64_t PrintRetained(bus::BusClient& client, std::uint64_t from,
                            std::chrono::seconds timeout, const std::optional<std::string>& pool,
                            bool json) {
  std::uint64_t last_seen = from - 1;
  while (true) {
    auto reply =
        CallWithProgress(client, std::string(bus::kReplayType), {{"since", from}}, timeout);
    auto first = reply.value("first", std::uint64_t{0});
    if (first > from)
      std::cerr << "mpscale: events " << from << ".." << first - 1
                << " are no longer retained by the endpoint\n";
    auto events = reply.value("events", Json::array());
    for (const auto& blob : events) {
      const auto& bin = blob.get_binary();
      auto event =
          bus::Decode(std::string_view(reinterpret_cast<const char*>(bin.data()), bin.size()));
      if (event.seq < from) continue;
      PrintEvent(event, pool, json);
      last_seen = event.seq;
      from = event.seq + 1;
    }
    if (events.empty() || from > reply.value("last", std::uint64_t{0})) return last_seen;
  }
}

// The newest sequence number the endpoint has logged (asks for no events).
std::uint64_t LastLogged(bus::BusClient& client, std::chrono::seconds timeout) {
  auto reply =
      CallWithProgress(client, std::string(bus::kReplayType),
                       {{"since", std::uint64_t{0}}, {"limit", std::uint64_t{0}}}, timeout);
  return reply.value("last", std::uint64_t{0});
}

// Blocks until SIGINT or SIGTERM (blocked in every thread, see RunEvents).
void WaitForStopSignal(const sigset_t& signals) {
  int received = 0;
  sigwait(&signals, &received);
}

}  // namespace

int RunInstances(const EndpointFlags& hostd, const std::string& prefix, bool json) {
  return WithClient(hostd, HostdWording(hostd.address), [&](bus::BusContext&, bus::BusClient& c) {
    mp::ListRequest request{prefix};
    auto reply = contracts::DecodeReply<mp::ListRequest>(
        CallWithProgress(c, std::string(request.kType), contracts::Encode(request),
                         std::chrono::seconds(hostd.timeout_s)));
    if (json)
      std::cout << contracts::Encode(reply).dump(2) << "\n";
    else
      PrintInstances(reply);
    return 0;
  });
}

int RunStatus(const EndpointFlags& target, const std::optional<std::string>& pool, bool json) {
  return WithClient(
      target, StatusWording(target.address), [&](bus::BusContext&, bus::BusClient& c) {
        status::PoolsRequest request{pool};
        auto reply = contracts::DecodeReply<status::PoolsRequest>(
            CallWithProgress(c, std::string(request.kType), contracts::Encode(request),
                             std::chrono::seconds(target.timeout_s)));
        if (json) {
          std::cout << contracts::Encode(reply).dump(2) << "\n";
        } else {
          auto now = std::chrono::system_clock::now().time_since_epoch();
          std::cout << FormatStatusTable(
              reply, std::chrono::duration_cast<std::chrono::nanoseconds>(now).count());
        }
        return 0;
      });
}

int RunEvents(const EndpointFlags& target, std::optional<std::uint64_t> since, bool follow,
              const std::optional<std::string>& pool, bool json) {
  // Blocked before any bus thread exists, so every thread inherits the mask
  // and the main thread alone takes the signal in sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  if (follow) pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  auto timeout = std::chrono::seconds(target.timeout_s);
  return WithClient(
      target, StatusWording(target.address), [&](bus::BusContext& context, bus::BusClient& client) {
        if (!follow) {
          PrintRetained(client, since.value_or(0) + 1, timeout, pool, json);
          return 0;
        }
        std::string events_endpoint;
        try {
          events_endpoint = bus::EventsEndpointFor(target.address);
        } catch (const std::invalid_argument& e) {
          throw UsageError(std::string("--follow: ") + e.what());
        }
        // Asking first both reports an unreachable endpoint or refused key
        // clearly and fixes the position live events continue from.
        std::uint64_t position = since ? PrintRetained(client, *since + 1, timeout, pool, json)
                                       : LastLogged(client, timeout);
        bus::SubscriberOptions options;
        options.events_endpoint = events_endpoint;
        options.replay_endpoint = target.address;
        options.name = "mpscale";
        options.curve = ClientOptionsFor(target.address, target.keys).curve;
        options.since = position;
        options.replay_timeout = timeout;
        bus::EventSubscriber subscriber(
            context, options, [&](const bus::Envelope& e) { PrintEvent(e, pool, json); },
            [](const bus::BusError& e) { std::cerr << "mpscale: warning: " << e.what() << "\n"; });
        subscriber.Start();
        WaitForStopSignal(stop_signals);
        subscriber.Stop();
        return 0;
      });
}

int RunHosts(const std::vector<std::string>& addresses,
             const std::optional<std::string>& hosts_file, const EndpointFlags& flags, bool json) {
  std::vector<config::HostEntry> hosts;
  std::vector<bus::ClientOptions> options;
  try {
    if (hosts_file && !addresses.empty())
      throw UsageError("--hostd and --hosts-file: give one of the two");
    if (hosts_file) {
      try {
        hosts = config::ReadHostsFile(*hosts_file);
      } catch (const config::HostsFileError& e) {
        throw UsageError(std::string("--hosts-file: ") + e.what());
      }
    } else {
      if (addresses.empty()) throw UsageError("give --hostd ENDPOINT (repeatable) or --hosts-file");
      for (const auto& a : addresses) {
        config::HostEntry h;
        h.name = a;
        h.hostd_address = a;
        hosts.push_back(std::move(h));
      }
    }
    for (const auto& h : hosts) {
      CurveKeyFlags keys = flags.keys;
      if (hosts_file) keys.server_key = h.hostd_server_key_path.string();
      try {
        options.push_back(ClientOptionsFor(h.hostd_address, keys));
      } catch (const UsageError& e) {
        throw UsageError("host " + h.name + ": " + e.what());
      }
    }
  } catch (const UsageError& e) {
    std::cerr << "mpscale: " << e.what() << "\n";
    return 2;
  }
  // Every host at once: one that does not answer costs the timeout once, not
  // once per host.
  const auto timeout = std::chrono::seconds(flags.timeout_s);
  bus::BusContext context;
  std::vector<std::unique_ptr<bus::BusClient>> clients;
  std::vector<std::future<bus::CallResult>> calls;
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    clients.push_back(std::make_unique<bus::BusClient>(context, options[i]));
    auto done = std::make_shared<std::promise<bus::CallResult>>();
    calls.push_back(done->get_future());
    clients.back()->Call(std::string(contracts::host::CapacityRequest::kType),
                         contracts::Encode(contracts::host::CapacityRequest{}), {timeout, {}},
                         [done](bus::CallResult r) { done->set_value(std::move(r)); });
  }
  std::vector<HostAnswer> answers;
  int exit_code = 0;
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    HostAnswer a;
    a.host = hosts[i];
    CurveKeyFlags keys = flags.keys;
    if (hosts_file) keys.server_key = hosts[i].hostd_server_key_path.string();
    try {
      auto r = calls[i].get();
      if (r.error) throw *r.error;
      a.capacity = contracts::DecodeReply<contracts::host::CapacityRequest>(r.reply.payload);
    } catch (const bus::BusError& e) {
      a.error = DescribeBusError(e, hosts[i].hostd_address, timeout, keys,
                                 HostdWording(hosts[i].hostd_address));
      std::cerr << "mpscale: host " << hosts[i].name << ": " << a.error << "\n";
      exit_code = 1;
    }
    answers.push_back(std::move(a));
  }
  if (json)
    std::cout << HostsJson(answers).dump(2) << "\n";
  else
    std::cout << FormatHostsTable(answers);
  return exit_code;
}

}  // namespace mps::mpscale
