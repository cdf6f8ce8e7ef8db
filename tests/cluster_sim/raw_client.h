#pragma once
// A bare multipass.Rpc client built from the generated stubs, the way the
// multipass CLI talks to its daemon: TLS with the daemon's root CA (authority
// "localhost") and a client certificate; one request per stream, replies
// until the status.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cluster_sim/certificate_authority.h"
#include "multipass/multipass.grpc.pb.h"

namespace mps::sim::testing {

template <class Reply>
struct CallResult {
  grpc::Status status;
  std::vector<Reply> replies;
};

class RawClient {
 public:
  // `identity` empty → the client presents no certificate.
  RawClient(const std::string& target, const std::string& root_pem,
            const std::optional<KeyCertPair>& identity) {
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = root_pem;
    if (identity) {
      o.pem_cert_chain = identity->certificate_pem;
      o.pem_private_key = identity->private_key_pem;
    }
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("localhost");
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 100);
    channel_ = grpc::CreateCustomChannel(target, grpc::SslCredentials(o), args);
    stub_ = multipass::Rpc::NewStub(channel_);
  }

  multipass::Rpc::Stub& stub() { return *stub_; }

  // Writes `request`, reads every reply, returns them with the final status.
  // `on_reply` sees each reply as it arrives (e.g. to probe the world mid-stream).
  template <class Request, class Reply>
  CallResult<Reply> Call(std::unique_ptr<grpc::ClientReaderWriter<Request, Reply>> (
                             multipass::Rpc::Stub::*method)(grpc::ClientContext*),
                         const Request& request,
                         std::chrono::milliseconds deadline = std::chrono::seconds(8),
                         const std::function<void(const Reply&)>& on_reply = {}) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadline);
    ctx.set_wait_for_ready(true);
    auto stream = ((*stub_).*method)(&ctx);
    stream->Write(request);
    CallResult<Reply> result;
    Reply reply;
    while (stream->Read(&reply)) {
      if (on_reply) on_reply(reply);
      result.replies.push_back(reply);
    }
    result.status = stream->Finish();
    return result;
  }

  grpc::Status Ping() {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    ctx.set_wait_for_ready(true);
    multipass::PingReply reply;
    return stub_->ping(&ctx, multipass::PingRequest{}, &reply);
  }

  CallResult<multipass::VersionReply> Version() {
    return Call(&multipass::Rpc::Stub::version, multipass::VersionRequest{});
  }

  CallResult<multipass::ListReply> List(bool ipv4 = false) {
    multipass::ListRequest req;
    req.set_request_ipv4(ipv4);
    return Call(&multipass::Rpc::Stub::list, req);
  }

  CallResult<multipass::LaunchReply> Launch(
      const multipass::LaunchRequest& req,
      std::chrono::milliseconds deadline = std::chrono::seconds(8),
      const std::function<void(const multipass::LaunchReply&)>& on_reply = {}) {
    return Call(&multipass::Rpc::Stub::launch, req, deadline, on_reply);
  }

  CallResult<multipass::DeleteReply> Delete(const std::vector<std::string>& names, bool purge) {
    multipass::DeleteRequest req;
    for (const auto& n : names) req.add_instance_snapshot_pairs()->set_instance_name(n);
    req.set_purge(purge);
    return Call(&multipass::Rpc::Stub::delet, req);
  }

  grpc::Status Authenticate(const std::string& passphrase) {
    multipass::AuthenticateRequest req;
    req.set_passphrase(passphrase);
    auto r = Call(&multipass::Rpc::Stub::authenticate, req);
    return r.status;
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<multipass::Rpc::Stub> stub_;
};

inline multipass::LaunchRequest LaunchOf(const std::string& name, const std::string& image = "",
                                         int timeout_seconds = 0) {
  multipass::LaunchRequest req;
  req.set_instance_name(name);
  req.set_image(image);
  req.set_timeout(timeout_seconds);
  return req;
}

}  // namespace mps::sim::testing
