#pragma once
// Fake Multipass session and fake Nomad actor, served on inproc:// with the
// real bus and the real contracts, so the pool controller and the watcher
// are tested without processes. Each fake keeps a little world (instances,
// nodes) and can be told to fail, to hold answers until released, or never
// to answer a request type.
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bus/client.h"
#include "bus/context.h"
#include "bus/server.h"
#include "contracts/app_code.h"
#include "contracts/multipass.h"
#include "contracts/nomad.h"

namespace mps::testing {

// How a fake answers one request type.
enum class Answering {
  kNormally,
  kHold,   // keeps the request until Release() (or forever)
  kNever,  // never answers (the caller's deadline decides)
};

class FakePeer {
 public:
  FakePeer(bus::BusContext& context, std::string endpoint);
  virtual ~FakePeer();

  const std::string& endpoint() const { return endpoint_; }
  // A client of this fake (no retries: tests count requests).
  std::shared_ptr<bus::BusClient> Client(bus::BusContext& context) const;
  void Set(const std::string& type, Answering how);
  // Fails every later request of `type` with this domain error.
  void FailWith(const std::string& type, contracts::AppCode code, std::string message);
  void ClearFailure(const std::string& type);
  // Waits until `n` requests of `type` are held; false after `timeout`.
  bool WaitHeld(const std::string& type, std::size_t n,
                std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Answers the held requests of `type` as they would have been answered;
  // later requests are answered at once, or held again with keep_holding.
  void Release(const std::string& type, bool keep_holding = false);
  int count(const std::string& type) const;
  int max_in_flight(const std::string& type) const;
  // The requests of `type` held right now, oldest first.
  std::vector<bus::Envelope> held(const std::string& type) const;

 protected:
  using Work = std::function<nlohmann::json(const bus::Envelope&)>;
  void Serve(const std::string& type, Work work);
  // A handler of its own (it answers through the Responder when it likes).
  void ServeRaw(const std::string& type, bus::Handler handler);
  void Start();
  // Called (without mutex_) before a request is failed by FailWith.
  virtual void BeforeFailing(const std::string&, const bus::Envelope&) {}
  // Derived fakes stop serving before their world is destroyed.
  void StopServing();
  mutable std::mutex mutex_;

 private:
  struct Held {
    bus::Envelope request;
    bus::Responder responder;
  };
  void Answer(const std::string& type, const bus::Envelope& request, const bus::Responder& r);

  std::string endpoint_;
  bus::BusServer server_;
  std::map<std::string, Work> work_;
  std::map<std::string, Answering> how_;
  std::map<std::string, bus::BusError> failures_;
  std::map<std::string, std::vector<Held>> held_;
  std::vector<bus::Responder> never_;  // kept unanswered until shutdown
  std::map<std::string, int> counts_;
  std::map<std::string, int> in_flight_;
  std::map<std::string, int> max_in_flight_;
  std::condition_variable changed_;
};

// multipass.list / launch / delete / start / stop / info over an in-memory host.
class FakeMultipass : public FakePeer {
 public:
  // After a launch, start, stop or delete changed an instance: (request
  // type, instance). Tests tie the fake Nomad to it (a started VM's node
  // comes back, a stopped one's goes down).
  using ChangeHook = std::function<void(const std::string&, const std::string&)>;

  FakeMultipass(bus::BusContext& context, std::string endpoint);
  ~FakeMultipass() override { StopServing(); }
  void OnChange(ChangeHook hook);
  // name -> state ("running", "stopped", ...)
  void Put(const std::string& name, const std::string& state);
  std::map<std::string, std::string> instances() const;
  // What multipass.list answers for every instance.
  contracts::multipass::ListReply Listing() const;
  // Nomad's view of a world where every listed instance has a ready node
  // ("node-<instance>"), as the watcher would report it.
  static contracts::nomad::PoolNodesReply ReadyNodesOf(const contracts::multipass::ListReply& list);
  // A failing launch leaves its instance behind in this state (empty: none).
  std::string leftover_state;

 protected:
  void BeforeFailing(const std::string& type, const bus::Envelope& request) override;

 private:
  std::map<std::string, std::string> instances_;
  ChangeHook on_change_;
  void Changed(const std::string& type, const std::vector<std::string>& names);
};

// nomad.pool_nodes / select / drain / purge / mark_eligible over in-memory
// nodes named after their instances (node id "node-<instance>").
class FakeNomad : public FakePeer {
 public:
  FakeNomad(bus::BusContext& context, std::string endpoint);
  ~FakeNomad() override;
  void PutNode(const std::string& instance, const std::string& status = "ready");
  // The node's eligibility as last set by nomad.mark_eligible (absent: never set).
  std::optional<bool> eligible(const std::string& instance) const;
  std::set<std::string> purged() const;
  std::set<std::string> drained() const;
  // nomad.pool_nodes requests without an index (not blocking queries).
  int unindexed_queries() const;
  // nodes whose drain reports drain_failed
  std::set<std::string> undrainable;

 private:
  std::map<std::string, std::string> nodes_;  // instance -> status
  std::map<std::string, bool> eligible_;      // node id -> eligible
  std::set<std::string> purged_;
  std::set<std::string> drained_;
  nlohmann::json PoolNodes() const;  // the reply, under mutex_
  void Changed();                    // answers the waiting blocking queries, under mutex_
  std::uint64_t index_ = 1;
  int unindexed_queries_ = 0;
  // Blocking queries at the current index, with when their wait_ms ends.
  struct Waiting {
    bus::Responder responder;
    std::chrono::steady_clock::time_point until;
  };
  std::vector<Waiting> waiting_;
  // Answers the blocking queries whose wait ran out, as Nomad does.
  std::thread waits_;
  std::condition_variable waits_changed_;
  bool stopping_ = false;
};

}  // namespace mps::testing
