// The metrics layer without any service: the registry, the HTTP endpoint on
// loopback (/metrics and /ready), sd_notify captured on our own socket, the
// bus's counters over inproc://, and the plugin's metrics_address key.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <httplib.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "bus/client.h"
#include "bus/context.h"
#include "bus/server.h"
#include "metrics/http_endpoint.h"
#include "metrics/registry.h"
#include "metrics/systemd_notify.h"
#include "plugin/plugin_config.h"
#include "support/child_process.h"
#include "support/notify_socket.h"
#include "support/temp_dir.h"

namespace {

using namespace std::chrono_literals;
using mps::metrics::Registry;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(Registry, CountersGaugesAndHistogramsAppearInTheExposition) {
  Registry r;
  r.Counter("mps_things_total", "Things", {{"kind", "a"}}).Increment(2);
  mps::metrics::Inc(&r, "mps_things_total", "Things", {{"kind", "a"}});
  mps::metrics::Inc(nullptr, "mps_things_total", "Things");  // metrics off: nothing
  r.Gauge("mps_level", "Level").Set(7);
  r.Histogram("mps_wait_seconds", "Waits", mps::metrics::DurationBuckets()).Observe(0.003);
  auto text = r.Text();
  EXPECT_THAT(text, HasSubstr("# TYPE mps_things_total counter"));
  EXPECT_THAT(text, HasSubstr("mps_things_total{kind=\"a\"} 3"));
  EXPECT_THAT(text, HasSubstr("mps_level 7"));
  EXPECT_THAT(text, HasSubstr("mps_wait_seconds_count 1"));
}

TEST(Registry, ReplaceGaugesRemovesSeriesThatAreGoneOnlyInTheirScope) {
  Registry r;
  r.ReplaceGauges("mps_pool_instances", "By state", {{"pool", "web"}},
                  {{{{"state", "running"}}, 2}, {{{"state", "starting"}}, 1}});
  r.ReplaceGauges("mps_pool_instances", "By state", {{"pool", "db"}},
                  {{{{"state", "running"}}, 1}});
  r.ReplaceGauges("mps_pool_instances", "By state", {{"pool", "web"}},
                  {{{{"state", "running"}}, 3}});
  auto text = r.Text();
  EXPECT_THAT(text, HasSubstr("mps_pool_instances{pool=\"web\",state=\"running\"} 3"));
  EXPECT_THAT(text, Not(HasSubstr("state=\"starting\"")));
  EXPECT_THAT(text, HasSubstr("mps_pool_instances{pool=\"db\",state=\"running\"} 1"));
}

TEST(Registry, CollectHooksRunBeforeEachCollection) {
  Registry r;
  int scrapes = 0;
  r.OnCollect([&] { r.Gauge("mps_scrapes", "Scrapes").Set(++scrapes); });
  r.Text();
  EXPECT_THAT(r.Text(), HasSubstr("mps_scrapes 2"));
}

TEST(MetricsAddress, BarePortIsLoopbackAndBadOnesAreRefused) {
  EXPECT_EQ(mps::metrics::NormalizeMetricsAddress("9464"), "127.0.0.1:9464");
  EXPECT_EQ(mps::metrics::NormalizeMetricsAddress("0.0.0.0:9464"), "0.0.0.0:9464");
  EXPECT_EQ(mps::metrics::NormalizeMetricsAddress("http://10.1.2.1:9464"), "10.1.2.1:9464");
  EXPECT_THROW(mps::metrics::NormalizeMetricsAddress("nine"), std::invalid_argument);
  EXPECT_THROW(mps::metrics::NormalizeMetricsAddress("host:99999"), std::invalid_argument);
  EXPECT_THROW(mps::metrics::NormalizeMetricsAddress(":9464"), std::invalid_argument);
}

TEST(HttpEndpoint, ServesMetricsAndReadinessOnOnePort) {
  auto registry = std::make_shared<Registry>();
  registry->Counter("mps_hits_total", "Hits").Increment();
  std::atomic<bool> ready{false};
  mps::metrics::HttpEndpoint http("127.0.0.1:0", registry, [&] {
    mps::metrics::Readiness r;
    r.ready = ready;
    if (!ready) r.reasons.push_back("multipassd unreachable: connection refused");
    return r;
  });
  ASSERT_GT(http.port(), 0);
  EXPECT_EQ(http.address(), "127.0.0.1:" + std::to_string(http.port()));
  httplib::Client client("127.0.0.1", http.port());
  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_THAT(metrics->body, HasSubstr("mps_hits_total 1"));
  auto not_ready = client.Get("/ready");
  ASSERT_TRUE(not_ready);
  EXPECT_EQ(not_ready->status, 503);
  EXPECT_THAT(not_ready->body, HasSubstr("multipassd unreachable"));
  ready = true;
  auto is_ready = client.Get("/ready");
  ASSERT_TRUE(is_ready);
  EXPECT_EQ(is_ready->status, 200);
  EXPECT_EQ(is_ready->body, "ready\n");
}

TEST(HttpEndpoint, AnAddressInUseIsReported) {
  auto registry = std::make_shared<Registry>();
  mps::metrics::HttpEndpoint first("127.0.0.1:0", registry, [] {
    return mps::metrics::Readiness{true, {}};
  });
  try {
    mps::metrics::HttpEndpoint second(first.address(), registry, [] {
      return mps::metrics::Readiness{true, {}};
    });
    FAIL() << "a second endpoint bound " << first.address();
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr(first.address()));
  }
}

using mps::testing::NotifySocket;

TEST(SystemdNotifier, SendsReadyStatusAndRateLimitedWatchdogKicks) {
  mps::testing::TempDir dir;
  NotifySocket socket(dir.path() + "/notify");
  ::setenv("NOTIFY_SOCKET", (dir.path() + "/notify").c_str(), 1);
  ::setenv("WATCHDOG_USEC", "200000", 1);
  ::unsetenv("WATCHDOG_PID");
  mps::metrics::SystemdNotifier notifier;  // sd_notify reads NOTIFY_SOCKET at each call
  ASSERT_TRUE(notifier.enabled());
  EXPECT_EQ(notifier.watchdog_interval(), 200ms);
  notifier.Ready("serving tcp://127.0.0.1:7400");
  for (int i = 0; i < 100; ++i) notifier.Kick();  // within 100 ms of Ready: none sent
  std::this_thread::sleep_for(120ms);
  notifier.Kick();
  notifier.Stopping();
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("WATCHDOG_USEC");
  auto got = socket.Receive(300ms);
  ASSERT_EQ(got.size(), 4u) << ::testing::PrintToString(got);
  EXPECT_EQ(got[0], "READY=1\nSTATUS=serving tcp://127.0.0.1:7400");
  EXPECT_EQ(got[1], "WATCHDOG=1");
  EXPECT_EQ(got[2], "WATCHDOG=1");
  EXPECT_EQ(got[3], "STOPPING=1");
}

TEST(SystemdNotifier, DoesNothingOutsideSystemd) {
  ::unsetenv("NOTIFY_SOCKET");
  mps::metrics::SystemdNotifier notifier;
  EXPECT_FALSE(notifier.enabled());
  notifier.Ready("x");
  notifier.Kick();
}

TEST(BusMetrics, ServerAndClientCountRequestsByTypeAndOutcome) {
  auto registry = std::make_shared<Registry>();
  mps::bus::BusContext context;
  mps::bus::ServerOptions so;
  so.endpoint = "inproc://metrics-test";
  so.name = "test-server";
  so.metrics = registry;
  int ticks = 0;
  so.on_tick = [&] { ++ticks; };
  so.tick = 20ms;
  mps::bus::BusServer server(context, so);
  server.Handle("echo", [](const mps::bus::Request& r, mps::bus::Responder out) {
    out.Reply(r.envelope.payload);
  });
  server.Handle("fail", [](const mps::bus::Request&, mps::bus::Responder out) {
    out.Fail(mps::bus::BusError(mps::bus::ErrorCode::kHandlerFailed, "no"));
  });
  server.Start();
  mps::bus::ClientOptions co;
  co.endpoint = so.endpoint;
  co.name = "test-client";
  co.metrics = registry;
  mps::bus::BusClient client(context, co);
  client.CallSync("echo", {{"a", 1}});
  client.CallSync("echo", {{"a", 2}});
  EXPECT_THROW(client.CallSync("fail", nlohmann::json::object()), mps::bus::BusError);
  EXPECT_THROW(client.CallSync("nope", nlohmann::json::object()), mps::bus::BusError);
  std::this_thread::sleep_for(100ms);
  auto text = registry->Text();
  EXPECT_THAT(
      text,
      HasSubstr("mps_bus_requests_total{outcome=\"ok\",server=\"test-server\",type=\"echo\"} 2"));
  EXPECT_THAT(text, HasSubstr("mps_bus_requests_total{outcome=\"handler_failed\",server=\"test-"
                              "server\",type=\"fail\"} 1"));
  EXPECT_THAT(text, HasSubstr("mps_bus_rejected_requests_total{kind=\"unknown_type\",server=\"test-"
                              "server\"} 1"));
  EXPECT_THAT(text, HasSubstr("mps_bus_request_duration_seconds_count{server=\"test-server\","
                              "type=\"echo\"} 2"));
  EXPECT_THAT(text, HasSubstr("mps_bus_client_requests_total{client=\"test-client\",outcome=\"ok\","
                              "type=\"echo\"} 2"));
  EXPECT_THAT(text, HasSubstr("mps_bus_client_requests_total{client=\"test-client\",outcome="
                              "\"unknown_type\",type=\"nope\"} 1"));
  EXPECT_THAT(text, HasSubstr("mps_bus_link_up{client=\"test-client\",endpoint=\"inproc://"
                              "metrics-test\"} 1"));
  EXPECT_GE(ticks, 3);
  server.Stop();
}

TEST(PluginConfigMetrics, MetricsAddressIsAKnownKeyWithABarePortOnLoopback) {
  mps::testing::TempDir dir;
  auto keys = mps::plugin::KnownPluginConfigKeys();
  EXPECT_NE(std::find(keys.begin(), keys.end(), "metrics_address"), keys.end());
  std::map<std::string, std::string> raw{{"multipass_address", "unix:/run/mp.sock"},
                                         {"client_cert_path", "/etc/hostname"},
                                         {"client_key_path", "/etc/hostname"},
                                         {"passphrase", "x"}};
  auto off = mps::plugin::ParsePluginConfig(raw);
  ASSERT_TRUE(off.config) << mps::plugin::DescribeProblems(off.problems);
  EXPECT_FALSE(off.config->metrics_address);
  raw["metrics_address"] = "9465";
  auto port = mps::plugin::ParsePluginConfig(raw);
  ASSERT_TRUE(port.config) << mps::plugin::DescribeProblems(port.problems);
  EXPECT_EQ(port.config->metrics_address, "127.0.0.1:9465");
  raw["metrics_address"] = "10.1.2.3:9465";
  EXPECT_EQ(mps::plugin::ParsePluginConfig(raw).config->metrics_address, "10.1.2.3:9465");
  raw["metrics_address"] = "nowhere";
  auto bad = mps::plugin::ParsePluginConfig(raw);
  ASSERT_EQ(bad.problems.size(), 1u);
  EXPECT_EQ(bad.problems[0].key, "metrics_address");
}

}  // namespace
