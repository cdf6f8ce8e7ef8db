#include <gtest/gtest.h>

#include <future>
#include <vector>

#include "bus/caf_bridge.h"

using namespace mps::bus;
using namespace std::chrono_literals;

namespace {

ClientOptions Local(std::string endpoint) {
  ClientOptions o;
  o.endpoint = std::move(endpoint);
  o.name = "test";
  return o;
}

caf::behavior Adder(caf::event_based_actor*) {
  return {
      [](bus_request_atom, const Envelope& request) -> BusAnswer {
        const auto& p = request.payload;
        if (!p.contains("a") || !p["a"].is_number_integer())
          return BusAnswer::Fail(BusError(ErrorCode::kBadPayload, "field 'a' must be an integer"));
        return BusAnswer::Ok({{"sum", p["a"].get<int>() + p.value("b", 0)}});
      },
  };
}

// Answers later through a response promise, as real actors doing I/O do.
caf::behavior SlowAdder(caf::event_based_actor* self) {
  return {
      [=](bus_request_atom, const Envelope& request) -> caf::result<BusAnswer> {
        auto rp = self->make_response_promise<BusAnswer>();
        int delay = request.payload.value("delay_ms", 0);
        self->delayed_send(self, std::chrono::milliseconds(delay), caf::ok_atom::value,
                           request.payload.value("a", 0));
        self->become(caf::keep_behavior, [=](caf::ok_atom, int a) mutable {
          rp.deliver(BusAnswer::Ok({{"sum", a}}));
          self->unbecome();
        });
        return rp;
      },
  };
}

}  // namespace

TEST(CafBridge, ActorsServeAndCallBusMessageTypes) {
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 2);
  {
    caf::actor_system sys{cfg};
    {
      BusContext ctx;
      ServerOptions so;
      so.endpoint = "inproc://caf-bridge";
      so.name = "adders";
      BusServer server(ctx, so);
      ServeWithActor(server, sys, "math.add", sys.spawn(Adder));
      ServeWithActor(server, sys, "math.slow_add", sys.spawn(SlowAdder));
      server.Start();

      // A plain bus client reaches the actor.
      auto client = std::make_shared<BusClient>(ctx, Local("inproc://caf-bridge"));
      EXPECT_EQ(client->CallSync("math.add", {{"a", 2}, {"b", 3}})["sum"], 5);
      try {
        client->CallSync("math.add", {{"a", "two"}});
        FAIL();
      } catch (const BusError& e) {
        EXPECT_EQ(e.code(), ErrorCode::kBadPayload);
      }

      // An actor calls over the bus and gets the reply as a CAF message.
      auto caller = SpawnBusCaller(sys, client);
      caf::scoped_actor self{sys};
      BusAnswer answer;
      self->request(caller, 5s, bus_call_atom::value,
                    BusCall{"math.slow_add", {{"a", 7}, {"delay_ms", 50}}, CallOptions{2s, {}}})
          .receive([&](BusAnswer& a) { answer = std::move(a); },
                   [&](caf::error& e) { FAIL() << sys.render(e); });
      ASSERT_FALSE(answer.error);
      EXPECT_EQ(answer.payload["sum"], 7);

      // The handler's deadline is the bus deadline: too slow -> timeout.
      self->request(caller, 5s, bus_call_atom::value,
                    BusCall{"math.slow_add", {{"a", 1}, {"delay_ms", 700}}, CallOptions{300ms, {}}})
          .receive([&](BusAnswer& a) { answer = std::move(a); },
                   [&](caf::error& e) { FAIL() << sys.render(e); });
      ASSERT_TRUE(answer.error);
      EXPECT_EQ(answer.error->code(), ErrorCode::kTimeout);
      self->send_exit(caller, caf::exit_reason::user_shutdown);
    }
  }  // ~actor_system: every request was answered, so it waits for no deadline
     // (how long it takes is measured by bus_roundtrip_bench)
}

// The bridge's message types are announced CAF types: they serialize and
// come back whole (an actor system could send them anywhere), json payloads
// (binary values too) and errors included.
TEST(CafBridge, MessageTypesAreInspectableAndRoundTrip) {
  static_assert(!caf::allowed_unsafe_message_type<Envelope>::value);
  static_assert(caf::detail::is_serializable<Envelope>::value);
  static_assert(caf::detail::is_serializable<BusAnswer>::value);
  static_assert(caf::detail::is_serializable<CallResult>::value);
  static_assert(caf::detail::is_serializable<CallOptions>::value);
  static_assert(caf::detail::is_serializable<BusCall>::value);
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto round_trip = [&](auto value) {
    std::vector<char> buf;
    caf::binary_serializer sink{sys, buf};
    EXPECT_FALSE(static_cast<bool>(sink(value)));
    decltype(value) back;
    caf::binary_deserializer source{sys, buf};
    EXPECT_FALSE(static_cast<bool>(source(back)));
    return back;
  };

  Envelope e;
  e.type = "multipass.launch";
  e.correlation_id = 42;
  e.sender = "plugin";
  e.deadline_ms = 1'700'000'000'000;
  e.idempotency_key = "launch:web-1";
  e.seq = 7;
  e.stream = "s-1";
  e.time_ms = -3;
  e.payload = {{"name", "web-1"},
               {"cpus", 2},
               {"tags", {"a", "b"}},
               {"blob", nlohmann::json::binary({1, 2, 255})}};
  auto back = round_trip(e);
  EXPECT_EQ(back.version, e.version);
  EXPECT_EQ(back.type, e.type);
  EXPECT_EQ(back.correlation_id, 42u);
  EXPECT_EQ(back.sender, "plugin");
  EXPECT_EQ(back.deadline_ms, e.deadline_ms);
  EXPECT_EQ(back.idempotency_key, e.idempotency_key);
  EXPECT_EQ(back.seq, 7u);
  EXPECT_EQ(back.stream, "s-1");
  EXPECT_EQ(back.time_ms, -3);
  EXPECT_EQ(back.payload, e.payload);

  auto failed =
      round_trip(BusAnswer::Fail(BusError(ErrorCode::kHandlerFailed, "boom", "name_taken")));
  ASSERT_TRUE(failed.error);
  EXPECT_EQ(failed.error->code(), ErrorCode::kHandlerFailed);
  EXPECT_STREQ(failed.error->what(), "boom");
  EXPECT_EQ(failed.error->app_code(), "name_taken");
  auto ok = round_trip(BusAnswer::Ok({{"sum", 5}}));
  EXPECT_FALSE(ok.error);
  EXPECT_EQ(ok.payload["sum"], 5);

  auto result = round_trip(CallResult{BusError(ErrorCode::kTimeout, "late"), e});
  ASSERT_TRUE(result.error);
  EXPECT_EQ(result.error->code(), ErrorCode::kTimeout);
  EXPECT_EQ(result.reply.payload, e.payload);

  auto call = round_trip(BusCall{"math.add", {{"a", 1}}, CallOptions{1500ms, "k-1"}});
  EXPECT_EQ(call.type, "math.add");
  EXPECT_EQ(call.payload["a"], 1);
  EXPECT_EQ(call.options.timeout, 1500ms);
  EXPECT_EQ(call.options.idempotency_key, "k-1");

  // Logs show the payload as json text.
  EXPECT_NE(caf::deep_to_string(e).find("web-1"), std::string::npos) << caf::deep_to_string(e);
}

// ServeWithResponders: the actor gets a ticket, never the Responder itself.
TEST(CafBridge, ActorsAnswerThroughParkedResponders) {
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 2);
  caf::actor_system sys{cfg};
  auto table = std::make_shared<ResponderTable>();
  auto held = std::make_shared<std::promise<void>>();
  auto echo = sys.spawn([table](caf::event_based_actor*) -> caf::behavior {
    return {[table](bus_serve_atom, std::uint64_t ticket, const Envelope& request) {
      if (auto responder = table->Claim(ticket)) responder->Reply(request.payload);
    }};
  });
  // Takes its requests and never answers them.
  auto sink = sys.spawn([held](caf::event_based_actor*) -> caf::behavior {
    return {[held](bus_serve_atom, std::uint64_t, const Envelope&) { held->set_value(); }};
  });
  {
    BusContext ctx;
    ServerOptions so;
    so.endpoint = "inproc://caf-responders";
    BusServer server(ctx, so);
    ServeWithResponders(server, "echo", echo, table);
    ServeWithResponders(server, "sink", sink, table);
    server.Start();
    BusClient client(ctx, Local(so.endpoint));
    EXPECT_EQ(client.CallSync("echo", {{"x", 1}})["x"], 1);

    std::promise<CallResult> parked;
    client.Call("sink", nlohmann::json::object(), {5s, {}},
                [&parked](CallResult r) { parked.set_value(std::move(r)); });
    ASSERT_EQ(held->get_future().wait_for(5s), std::future_status::ready);
    // The actor stops: what it held is answered, later requests at once.
    table->Close(BusError(ErrorCode::kShuttingDown, "stopping"));
    auto answered = parked.get_future();
    ASSERT_EQ(answered.wait_for(5s), std::future_status::ready);
    auto r = answered.get();
    ASSERT_TRUE(r.error);
    EXPECT_EQ(r.error->code(), ErrorCode::kShuttingDown);
    EXPECT_STREQ(r.error->what(), "stopping");
    try {
      client.CallSync("echo", {{"x", 2}}, {2s, {}});
      FAIL() << "a closed table still served";
    } catch (const BusError& e) {
      EXPECT_EQ(e.code(), ErrorCode::kShuttingDown);
    }
    server.Stop();
  }
  caf::anon_send_exit(echo, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(sink, caf::exit_reason::user_shutdown);
}
