// The nomad.* bus messages end to end: NomadSim <- ServeNomad <- BusServer <- BusClient.
#include <gtest/gtest.h>

#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <iostream>

#include "bus/caf_bridge.h"
#include "bus/events.h"
#include "cluster_sim/nomad/nomad_sim.h"
#include "contracts/app_code.h"
#include "contracts/codec.h"
#include "contracts/nomad.h"
#include "nomad_actor/nomad_actor.h"
#include "support/drain_order.h"

using namespace mps;
using namespace std::chrono_literals;
using nlohmann::json;
namespace nm = mps::contracts::nomad;
using mps::contracts::AppCode;
using mps::contracts::AppCodeOf;

namespace {

std::string NextEndpoint() {
  static std::atomic<int> n{0};
  return "inproc://nomad-actor-" + std::to_string(n++);
}

nomad::NomadConnectionConfig ConfigFor(const std::string& address) {
  return nomad::FromConfigMap({{"nomad_address", address}, {"nomad_block-query-wait-time", "2s"}},
                              nomad::EnvFromMap({}));
}

// The actor served on an in-process bus, with its events in a memory log.
struct Served {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  bus::BusContext ctx;
  std::unique_ptr<bus::BusServer> server;
  std::unique_ptr<bus::EventPublisher> publisher;
  std::unique_ptr<bus::BusClient> client;
  nomad::NomadService service;

  explicit Served(nomad::NomadConnectionConfig config, nomad::NomadActorOptions options = {}) {
    cfg.set("scheduler.max-threads", 2);
    sys = std::make_unique<caf::actor_system>(cfg);
    const auto endpoint = NextEndpoint();
    bus::ServerOptions so;
    so.endpoint = endpoint;
    so.name = "nomad";
    server = std::make_unique<bus::BusServer>(ctx, so);
    bus::PublisherOptions po;
    po.endpoint = bus::EventsEndpointFor(endpoint);
    po.name = "nomad";
    publisher =
        std::make_unique<bus::EventPublisher>(ctx, po, std::make_shared<bus::MemoryEventLog>());
    publisher->ServeReplay(*server);
    options.env = nomad::EnvFromMap({});
    service =
        nomad::ServeNomad(*sys, *server, publisher.get(), std::move(config), std::move(options));
    server->Start();
    publisher->Start();
    bus::ClientOptions co;
    co.endpoint = endpoint;
    co.name = "test";
    client = std::make_unique<bus::BusClient>(ctx, co);
  }
  ~Served() {
    if (!sys) return;
    client.reset();
    if (server) server->Stop();
    if (publisher) publisher->Stop();
    server.reset();
    publisher.reset();
  }

  // Tears the bus down and destroys the actor system, which waits for every
  // worker still running; returns how long that took.
  std::chrono::milliseconds DestroyActorSystem() {
    client.reset();
    server->Stop();
    publisher->Stop();
    server.reset();
    publisher.reset();
    auto t0 = std::chrono::steady_clock::now();
    sys.reset();
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 t0);
  }

  json Call(std::string_view type, json payload, std::string key = "",
            std::chrono::milliseconds timeout = 10s) {
    return client->CallSync(std::string(type), std::move(payload), bus::CallOptions{timeout, key});
  }
  bus::BusError CallFails(std::string_view type, json payload, std::string key = "") {
    try {
      auto reply = Call(type, std::move(payload), std::move(key));
      ADD_FAILURE() << type << " succeeded: " << reply.dump();
    } catch (const bus::BusError& e) {
      return e;
    }
    return bus::BusError(bus::ErrorCode::kHandlerFailed, "no error");
  }
  // Published events of `type`, as their field maps.
  std::vector<json> Events(std::string_view type) const {
    std::vector<json> out;
    for (const auto& logged : publisher->log().ReadFrom(1, 1000)) {
      auto e = bus::Decode(logged.frame);
      if (e.type == type) out.push_back(e.payload);
    }
    return out;
  }
};

// A loopback port nobody listens on: bound, then released.
int ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    throw std::runtime_error("cannot bind a loopback port");
  ::close(fd);
  return ntohs(a.sin_port);
}

json WebPolicy(json extra = json::object()) {
  json p = {{"node_class", "web"}};
  p.update(extra);
  return p;
}

}  // namespace

TEST(NomadActor, PoolNodesMapsNodesToInstances) {
  sim::NomadSim sim;
  sim.Start();
  auto web1 = sim.RegisterNode("web-1", "web");
  auto web2 = sim.RegisterNode("web-2", "web");
  sim.RegisterNode("batch-1", "batch");
  Served s(ConfigFor(sim.address()));

  auto reply = s.Call(nm::PoolNodesRequest::kType, {{"policy", WebPolicy()}});
  ASSERT_EQ(reply["nodes"].size(), 2u) << reply.dump();
  std::map<std::string, json> by_id;
  for (const auto& n : reply["nodes"]) by_id[n["id"]] = n;
  EXPECT_EQ(by_id[web1]["instance"], "web-1");
  EXPECT_EQ(by_id[web2]["instance"], "web-2");
  EXPECT_EQ(by_id[web1]["status"], "ready");
  EXPECT_EQ(by_id[web1]["drain"], false);
  EXPECT_EQ(by_id[web1]["eligible"], true);
  EXPECT_GT(by_id[web2]["create_index"].get<std::uint64_t>(), 0u);
  EXPECT_TRUE(reply["unmapped"].empty());
  EXPECT_FALSE(reply.contains("own_node_id"));

  // An attribute the nodes lack: reported, never guessed.
  auto unmapped = s.Call(nm::PoolNodesRequest::kType,
                         {{"policy", WebPolicy({{"node_id_attribute", "unique.platform.aws"}})}});
  ASSERT_EQ(unmapped["nodes"].size(), 2u);
  EXPECT_TRUE(unmapped["nodes"][0]["instance"].is_null());
  EXPECT_EQ(unmapped["unmapped"].size(), 2u);
}

TEST(NomadActor, PoolNodesWithAnIndexIsABlockingQueryOnTheNodeTable) {
  sim::NomadSim sim;
  sim.Start();
  sim.RegisterNode("web-1", "web");
  Served s(ConfigFor(sim.address()));

  auto first = s.Call(nm::PoolNodesRequest::kType, {{"policy", WebPolicy()}, {"index", 0}});
  ASSERT_EQ(first["nodes"].size(), 1u);
  std::uint64_t index = first["index"];
  EXPECT_GT(index, 0u);

  // Nothing changes: answered after the wait, with the same index.
  auto t0 = std::chrono::steady_clock::now();
  auto same = s.Call(nm::PoolNodesRequest::kType,
                     {{"policy", WebPolicy()}, {"index", index}, {"wait_ms", 300}});
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 250ms);
  EXPECT_EQ(same["index"], index);

  // A node joins while the query is held: answered at once, with it.
  std::thread joiner([&] {
    std::this_thread::sleep_for(100ms);
    sim.RegisterNode("web-2", "web");
  });
  // (How soon after the change it is answered is measured by drain_bench.)
  auto changed = s.Call(nm::PoolNodesRequest::kType,
                        {{"policy", WebPolicy()}, {"index", index}, {"wait_ms", 10000}});
  joiner.join();
  EXPECT_GT(changed["index"].get<std::uint64_t>(), index);
  EXPECT_EQ(changed["nodes"].size(), 2u);

  auto bad = s.CallFails(nm::PoolNodesRequest::kType, {{"policy", WebPolicy()}, {"index", "soon"}});
  EXPECT_EQ(bad.code(), bus::ErrorCode::kBadPayload);
  EXPECT_NE(std::string(bad.what()).find("index"), std::string::npos);
}

TEST(NomadActor, SelectPicksTheEmptyNodeAmongCandidatesOnly) {
  sim::NomadSim sim;
  sim.Start();
  auto busy = sim.RegisterNode("web-1", "web");
  sim.AddAllocation(busy, "service");
  auto empty = sim.RegisterNode("web-2", "web");
  sim.RegisterNode("web-3", "web");  // empty too, but not a candidate
  Served s(ConfigFor(sim.address()));

  json policy = WebPolicy({{"node_selector_strategy", "empty"}});
  auto one = s.Call(nm::SelectRequest::kType,
                    {{"policy", policy}, {"count", 1}, {"candidates", {"web-1", "web-2"}}});
  ASSERT_EQ(one["selected"].size(), 1u) << one.dump();
  EXPECT_EQ(one["selected"][0]["node_id"], empty);
  EXPECT_EQ(one["selected"][0]["instance"], "web-2");

  auto two = s.Call(nm::SelectRequest::kType,
                    {{"policy", policy}, {"count", 2}, {"candidates", {"web-1", "web-2"}}});
  ASSERT_EQ(two["selected"].size(), 1u) << "web-1 is busy, web-3 not a candidate: " << two.dump();
  EXPECT_FALSE(two["note"].get<std::string>().empty());

  auto bad = s.CallFails(nm::SelectRequest::kType,
                         {{"policy", WebPolicy({{"node_selector_strategy", "biggest"}})},
                          {"count", 1},
                          {"candidates", {"web-1"}}});
  EXPECT_EQ(AppCodeOf(bad), AppCode::kInvalidConfig);
  EXPECT_NE(std::string(bad.what()).find("node_selector_strategy"), std::string::npos)
      << bad.what();

  auto no_count =
      s.CallFails(nm::SelectRequest::kType, {{"policy", policy}, {"candidates", {"web-1"}}});
  EXPECT_EQ(no_count.code(), bus::ErrorCode::kBadPayload);
  EXPECT_NE(std::string(no_count.what()).find("count"), std::string::npos);
}

TEST(NomadActor, SelectRefusesAPoolWithAnInitializingNode) {
  sim::NomadSimOptions o;
  o.ready_delay = 60s;
  sim::NomadSim sim(o);
  sim.Start();
  sim.RegisterNode("web-1", "web");
  Served s(ConfigFor(sim.address()));
  auto e = s.CallFails(nm::SelectRequest::kType,
                       {{"policy", WebPolicy()}, {"count", 1}, {"candidates", {"web-1"}}});
  EXPECT_EQ(AppCodeOf(e), AppCode::kFilter);
  EXPECT_NE(std::string(e.what()).find("initializing"), std::string::npos) << e.what();
}

TEST(NomadActor, DrainsNodesInParallelAndPublishesEvents) {
  sim::NomadSimOptions o;
  o.migration_delay = 300ms;
  sim::NomadSim sim(o);
  sim.Start();
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    ids.push_back(sim.RegisterNode("web-" + std::to_string(i), "web"));
    sim.AddAllocation(ids.back(), "service");
  }
  Served s(ConfigFor(sim.address()));

  auto missing_key =
      s.CallFails(nm::DrainRequest::kType, {{"policy", WebPolicy()}, {"node_ids", ids}});
  EXPECT_EQ(missing_key.code(), bus::ErrorCode::kBadPayload);

  auto t0 = std::chrono::steady_clock::now();
  auto reply = s.Call(nm::DrainRequest::kType,
                      {{"policy", WebPolicy({{"node_drain_deadline", "10s"}})}, {"node_ids", ids}},
                      "drain-1");
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_EQ(reply["results"].size(), 3u);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const auto& r = reply["results"][i];
    EXPECT_EQ(r["node_id"], ids[i]);
    EXPECT_EQ(r["outcome"], "drained") << r.dump();
    EXPECT_EQ(r["deadline_reached"], false);
  }
  EXPECT_GE(took, 300ms);  // each waited for its migration
  EXPECT_TRUE(mps::testing::DrainsOverlapped(sim, ids))
      << "the three drains did not run in parallel";
  RecordProperty(
      "drain3_ms",
      std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));

  auto draining = s.Events(nm::NodeDraining::kType);
  auto drained = s.Events(nm::NodeDrained::kType);
  ASSERT_EQ(draining.size(), 3u);
  ASSERT_EQ(drained.size(), 3u);
  std::set<std::string> seen;
  for (const auto& f : drained)
    seen.insert(contracts::Decode<nm::NodeDrained>(f, nm::NodeDrained::kType).node_id);
  EXPECT_EQ(seen, std::set<std::string>(ids.begin(), ids.end()));
}

TEST(NomadActor, DeadlineReachedIsReportedAndANeverEndingDrainFails) {
  sim::NomadSim sim;
  sim.Start();
  auto forced = sim.RegisterNode("web-1", "web");
  sim.AddAllocation(forced, "service");
  sim.SetNodeMigrationDelay(forced, 30s);  // Nomad force-stops at the deadline
  auto stuck = sim.RegisterNode("web-2", "web");
  sim.AddAllocation(stuck, "service");
  sim.SetNodeMigrationDelay(stuck, 60s);
  nomad::NomadActorOptions options;
  options.drain_grace = 500ms;
  options.drain_no_deadline_limit = 400ms;
  Served s(ConfigFor(sim.address()), options);

  auto reply = s.Call(
      nm::DrainRequest::kType,
      {{"policy", WebPolicy({{"node_drain_deadline", "300ms"}})}, {"node_ids", {forced}}}, "d1");
  const auto& r = reply["results"][0];
  EXPECT_EQ(r["deadline_reached"], true) << r.dump();
  EXPECT_EQ(r["outcome"], "drained") << "Nomad ends a drain at its deadline";
  EXPECT_NE(r["reason"].get<std::string>().find("deadline"), std::string::npos);

  // No deadline: Nomad would wait forever; our watch gives up and says so.
  auto never =
      s.Call(nm::DrainRequest::kType,
             {{"policy", WebPolicy({{"node_drain_deadline", "0s"}})}, {"node_ids", {stuck}}}, "d2");
  EXPECT_EQ(never["results"][0]["outcome"], "drain_failed") << never.dump();
  ASSERT_EQ(s.Events(nm::NodeDrainFailed::kType).size(), 1u);
  EXPECT_EQ(s.Events(nm::NodeDrainFailed::kType)[0]["node_id"], stuck);

  auto bad = s.CallFails(
      nm::DrainRequest::kType,
      {{"policy", WebPolicy({{"node_drain_deadline", "soon"}})}, {"node_ids", {stuck}}}, "d3");
  EXPECT_EQ(AppCodeOf(bad), AppCode::kInvalidConfig);
  EXPECT_NE(std::string(bad.what()).find("node_drain_deadline"), std::string::npos) << bad.what();
}

TEST(NomadActor, AclRefusalIsAClearError) {
  sim::NomadSimOptions o;
  o.acl_token = "s3cret-token";
  sim::NomadSim sim(o);
  sim.Start();
  sim.RegisterNode("web-1", "web");
  Served s(ConfigFor(sim.address()));
  auto e = s.CallFails(nm::PoolNodesRequest::kType, {{"policy", WebPolicy()}});
  EXPECT_EQ(e.code(), bus::ErrorCode::kHandlerFailed);
  EXPECT_EQ(AppCodeOf(e), AppCode::kForbidden);
  EXPECT_NE(std::string(e.what()).find("403"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("nomad_token"), std::string::npos) << e.what();
  EXPECT_EQ(std::string(e.what()).find("s3cret"), std::string::npos);
}

TEST(NomadActor, NomadDownIsUnreachable) {
  const std::string address = "http://127.0.0.1:" + std::to_string(ClosedPort());
  Served s(ConfigFor(address));
  auto e = s.CallFails(nm::PoolNodesRequest::kType, {{"policy", WebPolicy()}});
  EXPECT_EQ(AppCodeOf(e), AppCode::kUnreachable);
  EXPECT_NE(std::string(e.what()).find(address), std::string::npos) << e.what();
  auto d = s.CallFails(nm::PurgeRequest::kType,
                       {{"node_ids", {"11111111-2222-3333-4444-555555555555"}}});
  EXPECT_EQ(AppCodeOf(d), AppCode::kUnreachable);
}

TEST(NomadActor, PurgeOfAGoneNodeIsAlreadyGoneNotAnError) {
  sim::NomadSim sim;
  sim.Start();
  auto id = sim.RegisterNode("web-1", "web");
  Served s(ConfigFor(sim.address()));
  auto first = s.Call(nm::PurgeRequest::kType, {{"node_ids", {id}}});
  EXPECT_EQ(first["purged"], json::array({id}));
  EXPECT_TRUE(first["already_gone"].empty());
  EXPECT_EQ(sim.NodeCount(), 0u);
  auto again = s.Call(nm::PurgeRequest::kType, {{"node_ids", {id}}});
  EXPECT_TRUE(again["purged"].empty());
  EXPECT_EQ(again["already_gone"], json::array({id}));
  auto purged = s.Events(nm::NodePurged::kType);
  ASSERT_EQ(purged.size(), 2u);
  EXPECT_EQ(purged[0]["node_id"], id);

  auto bad = s.CallFails(nm::PurgeRequest::kType, {{"node_ids", "web-1"}});
  EXPECT_EQ(bad.code(), bus::ErrorCode::kBadPayload);
}

TEST(NomadActor, MarkEligibleUndoesADrain) {
  sim::NomadSimOptions o;
  o.migration_delay = 50ms;
  sim::NomadSim sim(o);
  sim.Start();
  auto id = sim.RegisterNode("web-1", "web");
  Served s(ConfigFor(sim.address()));
  auto drained =
      s.Call(nm::DrainRequest::kType, {{"policy", WebPolicy()}, {"node_ids", {id}}}, "d");
  ASSERT_EQ(drained["results"][0]["outcome"], "drained");
  EXPECT_EQ(sim.NodeJson(id)->at("SchedulingEligibility"), "ineligible");
  auto reply = s.Call(nm::MarkEligibleRequest::kType,
                      {{"node_ids", {id, "11111111-2222-3333-4444-555555555555"}}});
  EXPECT_EQ(reply["ok"], json::array({id}));
  EXPECT_EQ(reply["gone"].size(), 1u);
  EXPECT_EQ(sim.NodeJson(id)->at("SchedulingEligibility"), "eligible");
}

// The contract is checked before Nomad is asked: no Nomad is needed here.
TEST(NomadActor, MistypedFieldIsBadPayloadNamingTheField) {
  Served s(ConfigFor("http://127.0.0.1:" + std::to_string(ClosedPort())));
  auto count = s.CallFails(nm::SelectRequest::kType,
                           {{"policy", WebPolicy()}, {"count", "two"}, {"candidates", {"web-1"}}});
  EXPECT_EQ(count.code(), bus::ErrorCode::kBadPayload);
  EXPECT_EQ(std::string(count.what()),
            "nomad.select: field 'count' expected an integer, got the string \"two\"");
  auto policy = s.CallFails(nm::PoolNodesRequest::kType, {{"policy", {{"node_class", 3}}}});
  EXPECT_EQ(policy.code(), bus::ErrorCode::kBadPayload);
  EXPECT_NE(std::string(policy.what()).find("field 'policy.node_class'"), std::string::npos)
      << policy.what();
  auto ids =
      s.CallFails(nm::DrainRequest::kType, {{"policy", WebPolicy()}, {"node_ids", {"a", 1}}}, "d1");
  EXPECT_NE(std::string(ids.what()).find("field 'node_ids[1]'"), std::string::npos) << ids.what();
  // The semantic checks stay: count >= 0, non-empty ids.
  auto negative = s.CallFails(nm::SelectRequest::kType,
                              {{"policy", WebPolicy()}, {"count", -1}, {"candidates", {"web-1"}}});
  EXPECT_EQ(negative.code(), bus::ErrorCode::kBadPayload);
  EXPECT_NE(std::string(negative.what()).find("field 'count' must be >= 0"), std::string::npos)
      << negative.what();
  auto blank = s.CallFails(nm::PurgeRequest::kType, {{"node_ids", {""}}});
  EXPECT_NE(std::string(blank.what()).find("field 'node_ids[0]' must not be empty"),
            std::string::npos)
      << blank.what();
}

TEST(NomadActor, UnknownFieldIsRefused) {
  Served s(ConfigFor("http://127.0.0.1:" + std::to_string(ClosedPort())));
  auto e = s.CallFails(nm::PurgeRequest::kType, {{"node_ids", {"a"}}, {"force", true}});
  EXPECT_EQ(e.code(), bus::ErrorCode::kBadPayload);
  EXPECT_NE(std::string(e.what()).find("field 'force' is not part of the contract"),
            std::string::npos)
      << e.what();
}

namespace {

// A call answered on the client's thread, awaited with a future.
std::future<bus::CallResult> CallAsync(Served& s, std::string_view type, json payload,
                                       std::string key = "") {
  auto done = std::make_shared<std::promise<bus::CallResult>>();
  auto result = done->get_future();
  s.client->Call(std::string(type), std::move(payload), bus::CallOptions{120s, std::move(key)},
                 [done](bus::CallResult r) { done->set_value(std::move(r)); });
  return result;
}

nomad::NomadConnectionConfig LongWaits(const std::string& address) {
  return nomad::FromConfigMap({{"nomad_address", address}, {"nomad_block-query-wait-time", "60s"}},
                              nomad::EnvFromMap({}));
}

// The node table's index once it stops moving (a new node turns ready just
// after it registers; a drain updates its node).
std::uint64_t SettledIndex(Served& s) {
  std::uint64_t index =
      s.Call(nm::PoolNodesRequest::kType, {{"policy", WebPolicy()}, {"index", 0}})["index"];
  for (;;) {
    std::uint64_t next =
        s.Call(nm::PoolNodesRequest::kType,
               {{"policy", WebPolicy()}, {"index", index}, {"wait_ms", 150}})["index"];
    if (next == index) return index;
    index = next;
  }
}

sim::NomadSimOptions LongBlocks() {
  sim::NomadSimOptions o;
  o.max_block = 60s;
  return o;
}

}  // namespace

TEST(NomadActor, StopAnswersABlockingQueryAndADrainInFlightAndEndsTheirWorkers) {
  sim::NomadSim sim(LongBlocks());
  sim.Start();
  auto id = sim.RegisterNode("web-1", "web");
  sim.AddAllocation(id, "service");
  sim.SetNodeMigrationDelay(id, 10min);  // this node cannot drain
  Served s(LongWaits(sim.address()));
  auto drain = CallAsync(
      s, nm::DrainRequest::kType,
      {{"policy", WebPolicy({{"node_drain_deadline", "1h"}})}, {"node_ids", {id}}}, "drain-1");
  for (int i = 0; i < 200 && sim.NodeJson(id)->at("DrainStrategy").is_null(); ++i)
    std::this_thread::sleep_for(10ms);
  ASSERT_FALSE(sim.NodeJson(id)->at("DrainStrategy").is_null());
  // The node table as it is with the drain set: the watch waits for a change.
  auto index = SettledIndex(s);
  auto watch = CallAsync(s, nm::PoolNodesRequest::kType,
                         {{"policy", WebPolicy()}, {"index", index}, {"wait_ms", 60000}});
  ASSERT_EQ(watch.wait_for(300ms), std::future_status::timeout) << "the query should be open";
  ASSERT_EQ(drain.wait_for(0ms), std::future_status::timeout) << "the drain should be waiting";

  auto t0 = std::chrono::steady_clock::now();
  s.service.Stop();
  ASSERT_EQ(watch.wait_for(10s), std::future_status::ready);
  ASSERT_EQ(drain.wait_for(10s), std::future_status::ready);
  std::cout << "both answered "
            << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - t0)
                   .count()
            << " ms after Stop()\n";
  auto w = watch.get();
  ASSERT_TRUE(w.error);
  EXPECT_EQ(w.error->code(), bus::ErrorCode::kShuttingDown) << w.error->what();
  auto d = drain.get();
  ASSERT_TRUE(d.error);
  EXPECT_EQ(d.error->code(), bus::ErrorCode::kShuttingDown) << d.error->what();
  EXPECT_TRUE(s.service.stopped());
  EXPECT_TRUE(s.Events(nm::NodeDrainFailed::kType).empty()) << "a stop is not a failed drain";

  // A request after the stop is refused without reaching Nomad.
  auto late = s.CallFails(nm::PurgeRequest::kType, {{"node_ids", {id}}});
  EXPECT_EQ(late.code(), bus::ErrorCode::kShuttingDown);
  EXPECT_EQ(sim.NodeCount(), 1u);

  // No worker is left for ~actor_system to wait for (the query would hold it 60 s).
  auto took = s.DestroyActorSystem();
  std::cout << "~actor_system took " << took.count() << " ms\n";
  EXPECT_LT(took, 5s);
}

TEST(NomadActor, DestroyingTheServerStopsAServiceWhoseHandleWasDropped) {
  sim::NomadSim sim(LongBlocks());
  sim.Start();
  sim.RegisterNode("web-1", "web");
  Served s(LongWaits(sim.address()));
  s.service = {};  // dropped: the server alone keeps the service running
  auto index = SettledIndex(s);
  auto watch = CallAsync(s, nm::PoolNodesRequest::kType,
                         {{"policy", WebPolicy()}, {"index", index}, {"wait_ms", 60000}});
  ASSERT_EQ(watch.wait_for(300ms), std::future_status::timeout);
  auto took = s.DestroyActorSystem();
  std::cout << "~actor_system took " << took.count() << " ms\n";
  EXPECT_LT(took, 5s) << "the open blocking query held the actor system";
}

TEST(NomadActor, StopAllNomadServicesStopsEveryServiceOfTheProcess) {
  sim::NomadSim sim;
  sim.Start();
  auto id = sim.RegisterNode("web-1", "web");
  Served a(ConfigFor(sim.address()));
  Served b(ConfigFor(sim.address()));
  EXPECT_EQ(a.Call(nm::PoolNodesRequest::kType, {{"policy", WebPolicy()}})["nodes"].size(), 1u);
  nomad::StopAllNomadServices();
  EXPECT_TRUE(a.service.stopped());
  EXPECT_TRUE(b.service.stopped());
  EXPECT_EQ(b.CallFails(nm::PurgeRequest::kType, {{"node_ids", {id}}}).code(),
            bus::ErrorCode::kShuttingDown);
  EXPECT_EQ(sim.NodeCount(), 1u);
}

// Nomad hides the allocations of namespaces the token cannot read: the empty
// selectors and drains refuse such a token instead of trusting the lists.
TEST(NomadActor, TokenBlindToANamespaceIsRefusedByEmptySelectorsAndDrains) {
  sim::NomadSimOptions o;
  o.tokens.push_back(sim::ParseSimAclToken("narrow=default"));
  sim::NomadSim sim(o);
  sim.Start();
  auto busy = sim.RegisterNode("web-1", "web");
  sim.AddAllocation(busy, "service", "running", 100, 256, "secret");
  for (int i = 0; i < 200 && sim.NodeJson(busy)->at("Status") != "ready"; ++i)
    std::this_thread::sleep_for(5ms);
  Served s(nomad::FromConfigMap({{"nomad_address", sim.address()},
                                 {"nomad_token", "narrow"},
                                 {"nomad_block-query-wait-time", "2s"}},
                                nomad::EnvFromMap({})));

  auto select = s.CallFails(nm::SelectRequest::kType,
                            {{"policy", WebPolicy({{"node_selector_strategy", "empty"}})},
                             {"count", 1},
                             {"candidates", {"web-1"}}});
  EXPECT_EQ(AppCodeOf(select), AppCode::kForbidden);
  EXPECT_NE(std::string(select.what()).find("node_selector_strategy empty refuses"),
            std::string::npos)
      << select.what();
  EXPECT_NE(std::string(select.what()).find("namespaces other than default"), std::string::npos)
      << select.what();

  // A strategy that does not rely on emptiness still selects.
  auto newest = s.Call(nm::SelectRequest::kType,
                       {{"policy", WebPolicy({{"node_selector_strategy", "newest_create_index"}})},
                        {"count", 1},
                        {"candidates", {"web-1"}}});
  EXPECT_EQ(newest["selected"].size(), 1u) << newest.dump();

  auto drain = s.CallFails(nm::DrainRequest::kType, {{"policy", WebPolicy()}, {"node_ids", {busy}}},
                           "drain-narrow-1");
  EXPECT_EQ(AppCodeOf(drain), AppCode::kForbidden);
  EXPECT_NE(std::string(drain.what()).find("refusing to drain"), std::string::npos) << drain.what();
  EXPECT_TRUE(sim.NodeJson(busy)->at("DrainStrategy").is_null()) << "nothing may be drained";
}
