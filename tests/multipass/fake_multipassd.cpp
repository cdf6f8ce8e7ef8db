#include "fake_multipassd.h"

#include <stdexcept>

namespace mps::multipass::testing {

namespace pb = ::multipass;

FakeMultipassd::FakeMultipassd(KeyPair server_identity) : identity_(std::move(server_identity)) {}

FakeMultipassd::~FakeMultipassd() {
  Stop();
}

std::string FakeMultipassd::Start(const std::string& listen_address) {
  grpc::SslServerCredentialsOptions tls(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_BUT_DONT_VERIFY);
  tls.pem_key_cert_pairs.push_back({identity_.key_pem, identity_.cert_pem});
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen_address, grpc::SslServerCredentials(tls), &port);
  builder.RegisterService(this);
  server_ = builder.BuildAndStart();
  if (!server_) throw std::runtime_error("fake multipassd cannot listen on " + listen_address);
  if (listen_address.starts_with("unix:")) return listen_address;
  return "127.0.0.1:" + std::to_string(port);
}

void FakeMultipassd::Stop() {
  ReleaseAll();
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    server_->Wait();
    server_.reset();
  }
}

void FakeMultipassd::Release(const std::string& name) {
  With([&](State& s) { s.released.insert(name); });
}

void FakeMultipassd::ReleaseAll() {
  With([](State& s) { s.release_all = true; });
}

grpc::Status FakeMultipassd::CheckClient(Ctx* ctx) {
  const auto values = ctx->auth_context()->FindPropertyValues("x509_pem_cert");
  const std::string cert =
      values.empty() ? std::string() : std::string(values.front().data(), values.front().size());
  return With([&](State& s) {
    s.presented_certs.push_back(cert);
    if (s.require_auth && !s.accepted_certs.contains(cert)) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "The client is not authenticated with the Multipass service.");
    }
    return grpc::Status::OK;
  });
}

grpc::Status FakeMultipassd::launch(Ctx* ctx, Stream<pb::LaunchReply, pb::LaunchRequest>* stream) {
  if (auto s = CheckClient(ctx); !s.ok()) return s;
  pb::LaunchRequest request;
  stream->Read(&request);
  const std::string name = request.instance_name();
  const std::string image = request.image();
  std::optional<grpc::Status> early = With([&](State& s) -> std::optional<grpc::Status> {
    s.launch_requests.push_back(request);
    if (s.instances.contains(name)) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "instance \"" + name + "\" already exists");
    }
    ++s.running_launches;
    s.max_running_launches = std::max(s.max_running_launches, s.running_launches);
    ++s.running_by_image[image];
    s.running_names.insert(name);
    return std::nullopt;
  });
  if (early) return *early;

  pb::LaunchReply reply;
  reply.set_create_message("Creating " + name);
  stream->Write(reply);
  reply.Clear();
  for (const char* percent : {"-1", "50", "100"}) {
    reply.mutable_launch_progress()->set_type(pb::LaunchProgress::IMAGE);
    reply.mutable_launch_progress()->set_percent_complete(percent);
    stream->Write(reply);
  }
  if (With([&](State& s) { return s.announce_start.contains(name); })) {
    reply.Clear();
    reply.set_create_message("Starting " + name);
    stream->Write(reply);
  }
  reply.Clear();
  reply.set_reply_message("Waiting for initialization to complete");
  stream->Write(reply);

  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] {
    return !state_.hold_launches || state_.release_all || state_.released.contains(name) ||
           ctx->IsCancelled();
  });
  --state_.running_launches;
  --state_.running_by_image[image];
  state_.running_names.erase(name);
  changed_.notify_all();
  if (auto it = state_.launch_failures.find(name); it != state_.launch_failures.end()) {
    return it->second;
  }
  const bool timeout = state_.timeout_after_name.contains(name);
  state_.instances[name] = Instance{pb::InstanceStatus::RUNNING, {"10.1.2.3"}};
  lock.unlock();

  reply.Clear();
  reply.set_vm_instance_name(name);
  stream->Write(reply);
  if (timeout) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "The following errors occurred:\ntimed out waiting for initialization "
                        "to complete");
  }
  return grpc::Status::OK;
}

grpc::Status FakeMultipassd::list(Ctx* ctx, Stream<pb::ListReply, pb::ListRequest>* stream) {
  if (auto s = CheckClient(ctx); !s.ok()) return s;
  pb::ListRequest request;
  stream->Read(&request);
  pb::ListReply reply;
  With([&](State& s) {
    ++s.list_calls;
    s.list_requests.push_back(request);
    auto* list = reply.mutable_instance_list();
    for (const auto& [name, vm] : s.instances) {
      auto* item = list->add_instances();
      item->set_name(name);
      item->mutable_instance_status()->set_status(vm.status);
      item->set_current_release(vm.release);
      if (request.request_ipv4() && vm.status == pb::InstanceStatus::RUNNING) {
        for (const auto& ip : vm.ipv4) item->add_ipv4(ip);
      }
    }
  });
  pb::ListReply log;
  log.set_log_line("[debug] listing\n");
  stream->Write(log);
  stream->Write(reply);
  return grpc::Status::OK;
}

grpc::Status FakeMultipassd::info(Ctx* ctx, Stream<pb::InfoReply, pb::InfoRequest>* stream) {
  if (auto s = CheckClient(ctx); !s.ok()) return s;
  pb::InfoRequest request;
  stream->Read(&request);
  pb::InfoReply reply;
  const auto status = With([&](State& s) {
    s.info_requests.push_back(request);
    for (const auto& pair : request.instance_snapshot_pairs()) {
      auto it = s.instances.find(pair.instance_name());
      if (it == s.instances.end()) {
        return grpc::Status(grpc::StatusCode::NOT_FOUND,
                            "instance \"" + pair.instance_name() + "\" does not exist");
      }
      auto* item = reply.add_details();
      item->set_name(it->first);
      item->mutable_instance_status()->set_status(it->second.status);
      item->set_cpu_count("2");
      item->set_memory_total("2147483648");
      item->set_disk_total("10737418240");
      item->mutable_instance_info()->set_image_release(it->second.image_release);
      if (!request.no_runtime_information()) {
        for (const auto& ip : it->second.ipv4) item->mutable_instance_info()->add_ipv4(ip);
      }
    }
    return grpc::Status::OK;
  });
  if (!status.ok()) return status;
  stream->Write(reply);
  return grpc::Status::OK;
}

grpc::Status FakeMultipassd::delet(Ctx* ctx, Stream<pb::DeleteReply, pb::DeleteRequest>* stream) {
  if (auto s = CheckClient(ctx); !s.ok()) return s;
  pb::DeleteRequest request;
  stream->Read(&request);
  pb::DeleteReply reply;
  const auto status = With([&](State& s) {
    ++s.delete_calls;
    s.delete_requests.push_back(request);
    if (request.instance_snapshot_pairs().empty()) {  // the daemon's "all" behaviour
      for (const auto& [name, vm] : s.instances) reply.add_purged_instances(name);
      s.instances.clear();
      return grpc::Status::OK;
    }
    for (const auto& pair : request.instance_snapshot_pairs()) {
      if (!s.instances.contains(pair.instance_name())) {
        return grpc::Status(grpc::StatusCode::NOT_FOUND,
                            "The following errors occurred:\ninstance \"" + pair.instance_name() +
                                "\" does not exist");
      }
    }
    for (const auto& pair : request.instance_snapshot_pairs()) {
      s.instances.erase(pair.instance_name());
      if (request.purge()) reply.add_purged_instances(pair.instance_name());
    }
    return grpc::Status::OK;
  });
  if (!status.ok()) return status;
  stream->Write(reply);
  return grpc::Status::OK;
}

grpc::Status FakeMultipassd::start(Ctx* ctx, Stream<pb::StartReply, pb::StartRequest>* stream) {
  if (auto s = CheckClient(ctx); !s.ok()) return s;
  pb::StartRequest request;
  stream->Read(&request);
  return With([&](State& s) {
    pb::StartError details;
    for (const auto& name : request.instance_names().instance_name()) {
      if (auto it = s.start_failures.find(name); it != s.start_failures.end()) return it->second;
      if (!s.instances.contains(name)) {
        (*details.mutable_instance_errors())[name] = pb::StartError::DOES_NOT_EXIST;
      }
    }
    if (!details.instance_errors().empty()) {
      return grpc::Status(grpc::StatusCode::ABORTED, "instance does not exist",
                          details.SerializeAsString());
    }
    for (const auto& name : request.instance_names().instance_name()) {
      s.instances[name].status = pb::InstanceStatus::RUNNING;
    }
    return grpc::Status::OK;
  });
}

grpc::Status FakeMultipassd::stop(Ctx* ctx, Stream<pb::StopReply, pb::StopRequest>* stream) {
  if (auto s = CheckClient(ctx); !s.ok()) return s;
  pb::StopRequest request;
  stream->Read(&request);
  return With([&](State& s) {
    for (const auto& name : request.instance_names().instance_name()) {
      if (!s.instances.contains(name)) {
        return grpc::Status(grpc::StatusCode::NOT_FOUND, "instance does not exist");
      }
      s.instances[name].status = pb::InstanceStatus::STOPPED;
    }
    return grpc::Status::OK;
  });
}

grpc::Status FakeMultipassd::version(Ctx* ctx,
                                     Stream<pb::VersionReply, pb::VersionRequest>* stream) {
  if (auto s = CheckClient(ctx); !s.ok()) return s;
  pb::VersionRequest request;
  stream->Read(&request);
  pb::VersionReply reply;
  reply.set_version("1.16.3");
  stream->Write(reply);
  return grpc::Status::OK;
}

grpc::Status FakeMultipassd::authenticate(
    Ctx* ctx, Stream<pb::AuthenticateReply, pb::AuthenticateRequest>* stream) {
  pb::AuthenticateRequest request;
  stream->Read(&request);
  const auto values = ctx->auth_context()->FindPropertyValues("x509_pem_cert");
  const std::string cert =
      values.empty() ? std::string() : std::string(values.front().data(), values.front().size());
  return With([&](State& s) {
    ++s.authenticate_calls;
    if (!s.passphrase) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "Passphrase is not set.");
    }
    if (request.passphrase() != *s.passphrase) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "Passphrase is not correct. Please try again.");
    }
    s.accepted_certs.insert(cert);
    return grpc::Status::OK;
  });
}

grpc::Status FakeMultipassd::ping(Ctx* ctx, const pb::PingRequest*, pb::PingReply*) {
  const auto values = ctx->auth_context()->FindPropertyValues("x509_pem_cert");
  const std::string cert =
      values.empty() ? std::string() : std::string(values.front().data(), values.front().size());
  return With([&](State& s) {
    return !cert.empty() && s.accepted_certs.contains(cert)
               ? grpc::Status::OK
               : grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "");
  });
}

}  // namespace mps::multipass::testing
