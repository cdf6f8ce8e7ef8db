#include <gtest/gtest.h>

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
      self->request(caller, 5s, bus_call_atom::value, std::string("math.slow_add"),
                    nlohmann::json{{"a", 7}, {"delay_ms", 50}}, CallOptions{2s, {}})
          .receive([&](BusAnswer& a) { answer = std::move(a); },
                   [&](caf::error& e) { FAIL() << sys.render(e); });
      ASSERT_FALSE(answer.error);
      EXPECT_EQ(answer.payload["sum"], 7);

      // The handler's deadline is the bus deadline: too slow -> timeout.
      self->request(caller, 5s, bus_call_atom::value, std::string("math.slow_add"),
                    nlohmann::json{{"a", 1}, {"delay_ms", 700}}, CallOptions{300ms, {}})
          .receive([&](BusAnswer& a) { answer = std::move(a); },
                   [&](caf::error& e) { FAIL() << sys.render(e); });
      ASSERT_TRUE(answer.error);
      EXPECT_EQ(answer.error->code(), ErrorCode::kTimeout);
      self->send_exit(caller, caf::exit_reason::user_shutdown);
    }
  }  // ~actor_system: every request was answered, so it waits for no deadline
     // (how long it takes is measured by bus_roundtrip_bench)
}
