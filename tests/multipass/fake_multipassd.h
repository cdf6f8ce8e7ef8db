#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "multipass/multipass.grpc.pb.h"
#include "test_pki.h"

namespace mps::multipass::testing {

// A small in-test multipassd: TLS that requests but does not verify client
// certificates (like the daemon), the cert-store/passphrase rules, and
// scripted launch outcomes. Everything it saw is recorded in State.
class FakeMultipassd final : public ::multipass::Rpc::Service {
 public:
  struct Instance {
    ::multipass::InstanceStatus::Status status = ::multipass::InstanceStatus::RUNNING;
    std::vector<std::string> ipv4;
    std::string release = "Ubuntu 24.04 LTS";
    std::string image_release = "24.04 LTS";
  };
  enum class LaunchOutcome { ok, timeout_after_name };

  struct State {
    std::map<std::string, Instance> instances;
    bool require_auth = false;
    std::optional<std::string> passphrase;
    std::set<std::string> accepted_certs;
    std::vector<std::string> presented_certs;  // x509_pem_cert of every call
    // launch behaviour
    bool hold_launches = false;  // launches wait for Release() before finishing
    std::set<std::string> released;
    bool release_all = false;
    std::map<std::string, grpc::Status> launch_failures;  // by instance name
    std::set<std::string> timeout_after_name;
    // Send "Starting NAME" (the VM exists) before the launch's outcome.
    std::set<std::string> announce_start;
    std::map<std::string, grpc::Status> start_failures;  // by first instance name
    // recordings
    int authenticate_calls = 0;
    int delete_calls = 0;
    int list_calls = 0;
    std::vector<::multipass::DeleteRequest> delete_requests;
    std::vector<::multipass::InfoRequest> info_requests;
    std::vector<::multipass::ListRequest> list_requests;
    std::vector<::multipass::LaunchRequest> launch_requests;
    int running_launches = 0;
    int max_running_launches = 0;
    std::map<std::string, int> running_by_image;
    std::set<std::string> running_names;
  };

  explicit FakeMultipassd(KeyPair server_identity);
  ~FakeMultipassd() override;

  // Listens on "unix:/path" or "127.0.0.1:0"; returns the address to dial
  // (with the chosen port for TCP).
  std::string Start(const std::string& listen_address);
  void Stop();

  // Runs f on the state under the lock and wakes waiters.
  template <class F>
  auto With(F f) {
    std::lock_guard lock(mutex_);
    struct Notify {
      std::condition_variable& cv;
      ~Notify() { cv.notify_all(); }
    } notify{changed_};
    return f(state_);
  }
  // Waits until pred(state) holds; false on timeout.
  template <class P>
  bool WaitUntil(P pred, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return pred(state_); });
  }
  void Release(const std::string& name);
  void ReleaseAll();

  using Ctx = grpc::ServerContext;
  template <class W, class R>
  using Stream = grpc::ServerReaderWriter<W, R>;

  grpc::Status launch(Ctx*, Stream<::multipass::LaunchReply, ::multipass::LaunchRequest>*) override;
  grpc::Status list(Ctx*, Stream<::multipass::ListReply, ::multipass::ListRequest>*) override;
  grpc::Status info(Ctx*, Stream<::multipass::InfoReply, ::multipass::InfoRequest>*) override;
  grpc::Status delet(Ctx*, Stream<::multipass::DeleteReply, ::multipass::DeleteRequest>*) override;
  grpc::Status start(Ctx*, Stream<::multipass::StartReply, ::multipass::StartRequest>*) override;
  grpc::Status stop(Ctx*, Stream<::multipass::StopReply, ::multipass::StopRequest>*) override;
  grpc::Status version(Ctx*,
                       Stream<::multipass::VersionReply, ::multipass::VersionRequest>*) override;
  grpc::Status authenticate(
      Ctx*, Stream<::multipass::AuthenticateReply, ::multipass::AuthenticateRequest>*) override;
  grpc::Status ping(Ctx*, const ::multipass::PingRequest*, ::multipass::PingReply*) override;

 private:
  // Records the presented cert; UNAUTHENTICATED unless it is accepted.
  grpc::Status CheckClient(Ctx* ctx);

  KeyPair identity_;
  std::mutex mutex_;
  std::condition_variable changed_;
  State state_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace mps::multipass::testing
