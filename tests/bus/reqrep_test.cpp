#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <future>
#include <thread>
#include <zmq_addon.hpp>

#include "bus/client.h"
#include "bus/keys.h"
#include "bus/server.h"
#include "support/child_process.h"
#include "support/temp_dir.h"

using namespace mps::bus;
using namespace std::chrono_literals;
using mps::testing::BinDir;
using mps::testing::ChildProcess;
using mps::testing::TempDir;

namespace {

ClientOptions Local(std::string endpoint) {
  ClientOptions o;
  o.endpoint = std::move(endpoint);
  o.name = "test";
  return o;
}

std::unique_ptr<BusServer> EchoServer(BusContext& ctx, const std::string& endpoint) {
  ServerOptions o;
  o.endpoint = endpoint;
  o.name = "echo";
  o.limits.max_message_bytes = 64 * 1024;
  auto s = std::make_unique<BusServer>(ctx, o);
  s->Handle("echo", [](const Request& req, Responder r) { r.Reply(req.envelope.payload); });
  s->Handle("drop", [](const Request&, Responder) {});
  s->Handle("never", [](const Request&, Responder r) {
    std::thread([r] {
      std::this_thread::sleep_for(1500ms);
      r.Reply({});
    }).detach();
  });
  s->Handle("throw", [](const Request&, Responder) {
    throw BusError(ErrorCode::kHandlerFailed, "instance web-1 is not in this pool",
                   "invalid_argument");
  });
  s->Start();
  return s;
}

ErrorCode CallError(BusClient& c, const std::string& type, nlohmann::json payload,
                    CallOptions o = {}) {
  try {
    c.CallSync(type, std::move(payload), o);
  } catch (const BusError& e) {
    return e.code();
  }
  ADD_FAILURE() << type << " succeeded, expected an error";
  return ErrorCode::kHandlerFailed;
}

}  // namespace

TEST(BusRequestReply, SameApiOverInprocAndIpc) {
  TempDir dir;
  BusContext ctx;
  for (std::string ep : {std::string("inproc://echo-test"), "ipc://" + dir.path() + "/echo.sock"}) {
    auto server = EchoServer(ctx, ep);
    BusClient client(ctx, Local(ep));
    auto reply = client.CallSync("echo", {{"hello", "world"}, {"n", 3}});
    EXPECT_EQ(reply["hello"], "world") << ep;
    EXPECT_EQ(reply["n"], 3) << ep;
  }
}

TEST(BusRequestReply, ErrorsComeBackTypedAndServerKeepsServing) {
  BusContext ctx;
  auto server = EchoServer(ctx, "inproc://errors");
  BusClient client(ctx, Local("inproc://errors"));
  EXPECT_EQ(CallError(client, "nope", {}), ErrorCode::kUnknownType);
  EXPECT_EQ(CallError(client, "drop", {}), ErrorCode::kHandlerFailed);
  EXPECT_EQ(CallError(client, "never", {}, {300ms, {}}), ErrorCode::kTimeout);
  try {
    client.CallSync("throw", {});
    FAIL();
  } catch (const BusError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kHandlerFailed);
    EXPECT_EQ(e.app_code(), "invalid_argument");
    EXPECT_STREQ(e.what(), "instance web-1 is not in this pool");
  }
  // Oversized: answered with too_large, not a dropped connection.
  std::string big(100 * 1024, 'x');
  EXPECT_EQ(CallError(client, "echo", {{"big", big}}), ErrorCode::kTooLarge);
  EXPECT_EQ(client.CallSync("echo", {{"still", "alive"}})["still"], "alive");
  EXPECT_GE(server->stats().rejected["unknown_type"], 1u);
  EXPECT_GE(server->stats().rejected["too_large"], 1u);
}

// A failure that did nothing because the peer behind the handler could not be
// reached must not be replayed to the retry: the retry of a launch after
// multipassd came back got the stale "unreachable" for ten minutes.
TEST(BusRequestReply, RetryableFailuresAreNotReplayedToRepeatsOfTheirKey) {
  BusContext ctx;
  ServerOptions o;
  o.endpoint = "inproc://retryable";
  o.name = "flaky";
  o.retry_app_codes = {"unreachable"};
  BusServer server(ctx, o);
  std::atomic<int> runs{0};
  server.Handle("flaky", [&](const Request& req, Responder r) {
    int run = ++runs;
    if (run == 1) {
      r.Fail(BusError(ErrorCode::kHandlerFailed, "daemon unreachable", "unreachable"));
    } else if (req.envelope.payload.value("refuse", false)) {
      r.Fail(BusError(ErrorCode::kHandlerFailed, "bad name", "invalid_argument"));
    } else {
      r.Reply({{"run", run}});
    }
  });
  server.Start();
  BusClient client(ctx, Local(o.endpoint));
  CallOptions key{2s, "launch:web-1"};
  EXPECT_EQ(CallError(client, "flaky", {}, key), ErrorCode::kHandlerFailed);
  // Run again, not answered from the cache; then the success is kept.
  EXPECT_EQ(client.CallSync("flaky", {}, key)["run"], 2);
  EXPECT_EQ(client.CallSync("flaky", {}, key)["run"], 2);
  EXPECT_EQ(runs.load(), 2);
  // Any other failure is an answer like a success: kept for repeats.
  CallOptions other{2s, "launch:web-2"};
  EXPECT_EQ(CallError(client, "flaky", {{"refuse", true}}, other), ErrorCode::kHandlerFailed);
  EXPECT_EQ(CallError(client, "flaky", {{"refuse", true}}, other), ErrorCode::kHandlerFailed);
  EXPECT_EQ(runs.load(), 3);
}

TEST(BusRequestReply, UnreachableEndpointFailsAtTheDeadline) {
  TempDir dir;
  BusContext ctx;
  BusClient client(ctx, Local("ipc://" + dir.path() + "/nobody.sock"));
  // Unreachable, not timeout: nobody ever answered. (When it is reported,
  // at the deadline, is measured by bus_roundtrip_bench.)
  EXPECT_EQ(CallError(client, "echo", {}, {200ms, {}}), ErrorCode::kUnreachable);
}

TEST(BusRequestReply, MalformedEndpointIsRefusedAtConstruction) {
  BusContext ctx;
  ClientOptions o;
  o.endpoint = "tcp://127.0.0.1:*";  // a wildcard port can be bound, not connected to
  auto keys = GenerateKeyPair();
  o.curve = CurveClientConfig{keys.secret_z85, keys.public_z85};
  try {
    BusClient client(ctx, o);
    FAIL() << "constructed";
  } catch (const BusError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnreachable);
    EXPECT_NE(std::string(e.what()).find("tcp://127.0.0.1:*"), std::string::npos) << e.what();
  }
  // The process is still here, and a later client works.
  o.endpoint = "inproc://after-bad-endpoint";
  o.curve.reset();
  BusClient fine(ctx, o);
}

TEST(BusRequestReply, GarbageAndExpiredFramesAreAnsweredNotExecuted) {
  BusContext ctx;
  ServerOptions o;
  o.endpoint = "inproc://raw";
  o.name = "raw";
  BusServer server(ctx, o);
  std::atomic<int> ran{0};
  server.Handle("work", [&](const Request&, Responder r) {
    ++ran;
    r.Reply({});
  });
  server.Start();

  zmq::socket_t dealer(ctx.zmq(), zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.set(zmq::sockopt::rcvtimeo, 2000);
  dealer.connect("inproc://raw");
  auto roundtrip = [&](const std::string& frame) {
    dealer.send(zmq::buffer(frame));
    zmq::message_t m;
    EXPECT_TRUE(dealer.recv(m));
    return Decode(m.to_string_view());
  };
  // Issue 16 defect 11: a request in two frames was dropped without an answer.
  {
    Envelope two;
    two.type = "work";
    two.correlation_id = 42;
    two.deadline_ms = NowUnixMs() + 5000;
    dealer.send(zmq::buffer(Encode(two)), zmq::send_flags::sndmore);
    dealer.send(zmq::buffer(std::string("tail")));
    zmq::message_t m;
    ASSERT_TRUE(dealer.recv(m));
    auto answer = Decode(m.to_string_view());
    EXPECT_EQ(answer.correlation_id, 42u);
    EXPECT_EQ(answer.payload["code"], "bad_frame");
    EXPECT_NE(answer.payload.dump().find("one frame"), std::string::npos) << answer.payload;
  }
  auto garbage = roundtrip(std::string("\xc1\xc1\xc1", 3));
  EXPECT_EQ(garbage.type, kErrorType);
  EXPECT_EQ(garbage.payload["code"], "bad_frame");

  Envelope expired;
  expired.type = "work";
  expired.correlation_id = 9;
  expired.deadline_ms = NowUnixMs() - 1000;
  auto answer = roundtrip(Encode(expired));
  EXPECT_EQ(answer.correlation_id, 9u);
  EXPECT_EQ(answer.payload["code"], "deadline_expired");

  Envelope v2 = expired;
  v2.version = 7;
  v2.deadline_ms = NowUnixMs() + 5000;
  EXPECT_EQ(roundtrip(Encode(v2)).payload["code"], "bad_version");
  EXPECT_EQ(ran.load(), 0);

  Envelope good = v2;
  good.version = kProtocolVersion;
  EXPECT_EQ(roundtrip(Encode(good)).type, "work.reply");
  EXPECT_EQ(ran.load(), 1);
  auto stats = server.stats();
  EXPECT_EQ(stats.rejected["bad_frame"], 2u);
  EXPECT_EQ(stats.rejected["deadline_expired"], 1u);
  EXPECT_EQ(stats.rejected["bad_version"], 1u);
}

class TcpCurveBetweenProcesses : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server_keys = GenerateKeyPair();
    client_keys = GenerateKeyPair();
    auto dir = std::filesystem::path(keys.path());
    WriteKeyPair(dir / "server", "hostd", server_keys);
    WriteKeyPair(dir / "authorized", "plugin", client_keys);
    server_public = server_keys.public_z85;
    server = std::make_unique<ChildProcess>(
        std::vector<std::string>{BinDir() + "/bus-test-server", "--bind", "tcp://127.0.0.1:*",
                                 "--secret-key", (dir / "server" / "hostd.key").string(),
                                 "--authorized-keys", (dir / "authorized").string()});
    auto line = server->WaitForLine("ready ", 10s);
    ASSERT_TRUE(line) << server->stderr_text();
    endpoint = line->substr(6);
  }
  ClientOptions Options(const CurveKeyPair& mine) {
    ClientOptions o;
    o.endpoint = endpoint;
    o.name = "plugin";
    o.curve = CurveClientConfig{mine.secret_z85, server_public};
    return o;
  }

  TempDir keys;
  CurveKeyPair client_keys;
  std::string server_public, endpoint;
  std::unique_ptr<ChildProcess> server;
};

TEST_F(TcpCurveBetweenProcesses, ListedKeyIsServed) {
  BusContext ctx;
  BusClient client(ctx, Options(client_keys));
  EXPECT_EQ(client.CallSync("echo", {{"x", 1}}, {5s, {}})["x"], 1);
}

TEST_F(TcpCurveBetweenProcesses, UnlistedKeyAndPlainClientsAreRefused) {
  BusContext ctx;
  BusClient stranger(ctx, Options(GenerateKeyPair()));
  EXPECT_EQ(CallError(stranger, "echo", {}, {1500ms, {}}), ErrorCode::kRefused);
  ClientOptions plain;
  plain.endpoint = endpoint;
  try {
    BusClient c(ctx, plain);
    FAIL() << "a tcp client without Curve must be refused";
  } catch (const BusError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kRefused);
  }
  // A raw socket without Curve gets no service either.
  zmq::socket_t raw(ctx.zmq(), zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  raw.set(zmq::sockopt::rcvtimeo, 500);
  raw.connect(endpoint);
  Envelope e;
  e.type = "echo";
  e.deadline_ms = NowUnixMs() + 5000;
  (void)raw.send(zmq::buffer(Encode(e)), zmq::send_flags::dontwait);
  zmq::message_t m;
  EXPECT_FALSE(raw.recv(m));
}

TEST_F(TcpCurveBetweenProcesses, RepeatedIdempotentRequestRunsOnce) {
  BusContext ctx;
  auto opts = Options(client_keys);
  opts.max_attempts = 3;
  BusClient client(ctx, opts);
  // The handler takes 1 s; attempts go out at 0, ~0.8 s and ~1.6 s, so the
  // retries meet the request in progress and then completed.
  auto first = client.CallSync("count", {{"delay_ms", 1000}}, {2400ms, "scale-1/launch-a"});
  auto again = client.CallSync("count", {{"delay_ms", 1000}}, {2400ms, "scale-1/launch-a"});
  EXPECT_EQ(first["execution"], 1);
  EXPECT_EQ(again["execution"], 1);
  auto executed = client.CallSync("executed", {});
  EXPECT_EQ(executed["count"], 1);
  // At least one retry joined the running execution, and the second call was
  // answered from the cache.
  EXPECT_GE(executed["replays"].get<int>(), 2);
  // A different key is a different request.
  EXPECT_EQ(client.CallSync("count", {}, {2s, "scale-1/launch-b"})["execution"], 2);
}

TEST_F(TcpCurveBetweenProcesses, StoppedServerIsReportedUnreachable) {
  BusContext ctx;
  BusClient client(ctx, Options(client_keys));
  EXPECT_EQ(client.CallSync("echo", {{"n", 1}})["n"], 1);
  server->Signal(SIGTERM);
  ASSERT_TRUE(server->Wait(5s));
  EXPECT_EQ(CallError(client, "echo", {}, {300ms, {}}), ErrorCode::kUnreachable);
}

// Issue 16, defect 4: a launch sent to a hostd that was then killed waited
// for its next scheduled attempt (a third of a long deadline) before going to
// the restarted hostd. Now it goes again as soon as the connection is back.
namespace {

// bus-test-server on `endpoint`; --no-delay 1 answers "count" at once.
std::unique_ptr<ChildProcess> StartTestServer(const std::string& endpoint, const char* no_delay) {
  auto s = std::make_unique<ChildProcess>(std::vector<std::string>{
      BinDir() + "/bus-test-server", "--bind", endpoint, "--no-delay", no_delay});
  EXPECT_TRUE(s->WaitForLine("ready ", 10s)) << s->stderr_text();
  return s;
}

// Sends an idempotent "count" the server answers only after a minute (the
// call's deadline), then kills the server with it in flight.
std::future<CallResult> CallThenKillItsServer(BusClient& client, ChildProcess& server) {
  auto answered = std::make_shared<std::promise<CallResult>>();
  client.Call("count", {{"delay_ms", 60000}}, {60s, "scale-1/launch-a"},
              [answered](CallResult r) { answered->set_value(std::move(r)); });
  std::this_thread::sleep_for(300ms);  // received and running
  server.Signal(SIGKILL);
  EXPECT_TRUE(server.Wait(5s));
  return answered->get_future();
}

}  // namespace

TEST(BusRequestReply, IdempotentRequestLostWithItsServerGoesAgainOnReconnect) {
  TempDir dir;
  std::string endpoint = "ipc://" + dir.path() + "/server.sock";
  auto server = StartTestServer(endpoint, "0");
  BusContext ctx;
  auto opts = Local(endpoint);
  opts.max_attempts = 3;
  BusClient client(ctx, opts);
  // The retry of the first attempt would be due after 20 s.
  auto result = CallThenKillItsServer(client, *server);
  auto restarted_at = std::chrono::steady_clock::now();
  server = StartTestServer(endpoint, "1");  // knows nothing of the request: runs it at once
  ASSERT_EQ(result.wait_for(10s), std::future_status::ready);
  auto r = result.get();
  ASSERT_FALSE(r.error) << r.error->what();
  EXPECT_EQ(r.reply.payload["execution"], 1);
  EXPECT_LT(std::chrono::steady_clock::now() - restarted_at, 5s);
}

// Issue 13: a launch sent to a hostd that then died and stays dead waited out
// its deadline (image download + 2 x startup timeout: half an hour with the
// defaults). A connection gone for lost_link_grace fails it at once, as
// "outcome unknown".
TEST(BusRequestReply, ACallInFlightFailsSoonAfterItsServerIsGoneForGood) {
  TempDir dir;
  std::string endpoint = "ipc://" + dir.path() + "/server.sock";
  auto server = StartTestServer(endpoint, "0");
  BusContext ctx;
  auto opts = Local(endpoint);
  opts.lost_link_grace = 300ms;
  BusClient client(ctx, opts);
  auto result = CallThenKillItsServer(client, *server);
  ASSERT_EQ(result.wait_for(10s), std::future_status::ready) << "waited for the 60 s deadline";
  auto r = result.get();
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code(), ErrorCode::kTimeout);  // it may have been done: outcome unknown
  EXPECT_NE(std::string(r.error->what()).find("was lost with 'count' in flight"), std::string::npos)
      << r.error->what();
  // While it stays down, a new call is not even sent: nothing was done.
  EXPECT_EQ(CallError(client, "echo", {}, {30s, "scale-1/launch-b"}), ErrorCode::kUnreachable);
}

// A server that stops answering without closing the connection (a host that
// froze or lost its network) is found by the ZMTP heartbeat.
TEST(BusRequestReply, AServerThatFallsSilentIsLostByTheHeartbeat) {
  TempDir dir;
  std::string endpoint = "ipc://" + dir.path() + "/server.sock";
  auto server = StartTestServer(endpoint, "0");
  BusContext ctx;
  auto opts = Local(endpoint);
  opts.heartbeat_interval = 100ms;
  opts.heartbeat_timeout = 500ms;
  opts.lost_link_grace = 200ms;
  BusClient client(ctx, opts);
  EXPECT_EQ(client.CallSync("echo", {{"n", 1}})["n"], 1);
  server->Signal(SIGSTOP);  // the connection stays open; nothing answers
  std::promise<CallResult> answered;
  client.Call("echo", {{"n", 2}}, {60s, "scale-1/launch-a"},
              [&](CallResult r) { answered.set_value(std::move(r)); });
  auto result = answered.get_future();
  bool ready = result.wait_for(10s) == std::future_status::ready;
  server->Signal(SIGCONT);
  ASSERT_TRUE(ready) << "waited for the 60 s deadline";
  auto r = result.get();
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code(), ErrorCode::kTimeout) << r.error->what();
}
