#include "cluster_sim/multipass_sim.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>

#include "multipass/multipass.grpc.pb.h"

namespace mps::sim {
namespace {

// multipassd <= 1.16.3 wording; clients should match on the status code.
constexpr const char* kUnauthenticatedMessage =
    "The client is not authenticated with the Multipass service.\n\n"
    "Please use 'multipass authenticate' before proceeding.";

multipass::InstanceStatus::Status ToStatus(InstanceState s) {
  switch (s) {
    case InstanceState::kPreparing:
      return multipass::InstanceStatus::UNKNOWN;
    case InstanceState::kStarting:
      return multipass::InstanceStatus::STARTING;
    case InstanceState::kRunning:
      return multipass::InstanceStatus::RUNNING;
    case InstanceState::kStopped:
      return multipass::InstanceStatus::STOPPED;
    case InstanceState::kDeleted:
      return multipass::InstanceStatus::DELETED;
  }
  return multipass::InstanceStatus::UNKNOWN;
}

grpc::Status ToGrpc(const SimError& e) {
  if (!e.launch_error_codes.empty()) {
    multipass::LaunchError details;
    for (int c : e.launch_error_codes)
      details.add_error_codes(static_cast<multipass::LaunchError::ErrorCodes>(c));
    return grpc::Status(e.code, e.message, details.SerializeAsString());
  }
  if (!e.start_errors.empty()) {
    multipass::StartError details;
    for (const auto& [name, code] : e.start_errors)
      (*details.mutable_instance_errors())[name] =
          static_cast<multipass::StartError::ErrorCode>(code);
    return grpc::Status(e.code, e.message, details.SerializeAsString());
  }
  return grpc::Status(e.code, e.message);
}

std::string ClientCertificate(const grpc::ServerContext* ctx) {
  auto auth = ctx->auth_context();
  if (!auth) return {};
  auto values = auth->FindPropertyValues("x509_pem_cert");
  if (values.empty()) return {};
  return std::string(values.front().data(), values.front().size());
}

std::string ImageId(const std::string& release) {
  // A stable fake image hash per release.
  return std::string(64 - std::min<size_t>(64, release.size()), '0') + release;
}

std::vector<std::string> PairNames(
    const google::protobuf::RepeatedPtrField<multipass::InstanceSnapshotPair>& pairs) {
  std::vector<std::string> names;
  for (const auto& p : pairs) names.push_back(p.instance_name());
  return names;
}

// One service object per listener: auto-accept applies only on the unix socket.
class RpcService final : public multipass::Rpc::Service {
 public:
  RpcService(SimWorld& world, bool on_unix_socket) : world_(world), unix_(on_unix_socket) {}

  template <class Req, class Rep>
  using Stream = grpc::ServerReaderWriter<Rep, Req>;

  grpc::Status create(grpc::ServerContext* ctx,
                      Stream<multipass::LaunchRequest, multipass::LaunchReply>* s) override {
    return launch(ctx, s);  // the simulator does not model created-but-stopped VMs
  }

  grpc::Status launch(grpc::ServerContext* ctx,
                      Stream<multipass::LaunchRequest, multipass::LaunchReply>* s) override {
    SimWorld::Turn turn(world_);
    if (auto denied = Authorize(ctx)) return *denied;
    multipass::LaunchRequest req;
    s->Read(&req);
    LaunchSpec spec;
    spec.name = req.instance_name();
    spec.image = req.image();
    spec.cpus = req.num_cores();
    spec.memory = req.mem_size();
    spec.disk = req.disk_space();
    spec.cloud_init_user_data = req.cloud_init_user_data();
    spec.timeout_seconds = req.timeout();
    auto emit = [&](const LaunchStep& step) {
      multipass::LaunchReply reply;
      switch (step.kind) {
        case LaunchStep::kCreateMessage:
          reply.set_create_message(step.text);
          break;
        case LaunchStep::kReplyMessage:
          reply.set_reply_message(step.text);
          break;
        case LaunchStep::kInstanceName:
          reply.set_vm_instance_name(step.text);
          break;
        case LaunchStep::kProgress:
          reply.mutable_launch_progress()->set_type(
              static_cast<multipass::LaunchProgress::ProgressType>(step.progress_type));
          reply.mutable_launch_progress()->set_percent_complete(step.text);
          break;
      }
      return s->Write(reply);
    };
    auto err = world_.Launch(
        spec, emit, [ctx] { return ctx->IsCancelled(); }, &turn);
    return err ? ToGrpc(*err) : grpc::Status::OK;
  }

  grpc::Status list(grpc::ServerContext* ctx,
                    Stream<multipass::ListRequest, multipass::ListReply>* s) override {
    SimWorld::Turn turn(world_);
    if (auto denied = Authorize(ctx)) return *denied;
    multipass::ListRequest req;
    s->Read(&req);
    multipass::ListReply reply;
    auto* list = reply.mutable_instance_list();
    const auto views = world_.List();
    // request_ipv4: one SSH command in every running VM, on this thread.
    if (req.request_ipv4())
      world_.SshExec(std::count_if(views.begin(), views.end(), [](const InstanceView& v) {
        return v.state == InstanceState::kRunning;
      }));
    for (const auto& v : views) {
      auto* item = list->add_instances();
      item->set_name(v.name);
      item->mutable_instance_status()->set_status(ToStatus(v.state));
      if (req.request_ipv4() && v.state == InstanceState::kRunning) {
        if (v.ssh_reachable)
          item->add_ipv4(v.ipv4);
        else if (world_.VersionAtLeast(1, 16))
          item->add_ipv4("N/A");
      }
      if (v.state == InstanceState::kRunning)
        item->set_current_release("Ubuntu " + v.release + " LTS");
    }
    s->Write(reply);
    return grpc::Status::OK;
  }

  grpc::Status info(grpc::ServerContext* ctx,
                    Stream<multipass::InfoRequest, multipass::InfoReply>* s) override {
    SimWorld::Turn turn(world_);
    if (auto denied = Authorize(ctx)) return *denied;
    multipass::InfoRequest req;
    s->Read(&req);
    std::vector<InstanceView> views;
    if (auto err = world_.Info(PairNames(req.instance_snapshot_pairs()), &views))
      return ToGrpc(*err);
    const bool runtime = !req.no_runtime_information();
    if (runtime) {
      // One composite command plus the address query per running VM; one
      // failed SSH fails the whole call.
      std::size_t running = 0;
      std::string unreachable;
      for (const auto& v : views) {
        if (v.state != InstanceState::kRunning) continue;
        ++running;
        if (!v.ssh_reachable && unreachable.empty()) unreachable = v.name;
      }
      world_.SshExec(2 * running);
      if (!unreachable.empty())
        return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                            "failed to run a command in \"" + unreachable + "\" over SSH");
    }
    multipass::InfoReply reply;
    for (const auto& v : views) {
      auto* d = reply.add_details();
      d->set_name(v.name);
      d->mutable_instance_status()->set_status(ToStatus(v.state));
      auto* details = d->mutable_instance_info();
      details->set_image_release(v.release + " LTS");
      details->set_id(ImageId(v.release));
      auto since_epoch = v.created_at.time_since_epoch();
      auto secs = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
      details->mutable_creation_timestamp()->set_seconds(secs.count());
      details->mutable_creation_timestamp()->set_nanos(static_cast<int>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - secs).count()));
      // Totals, usage and addresses come from SSH: only with runtime information.
      if (v.state == InstanceState::kRunning && runtime) {
        d->set_memory_total(std::to_string(v.memory_bytes));
        d->set_disk_total(std::to_string(v.disk_bytes));
        d->set_cpu_count(std::to_string(v.cpus));
        details->add_ipv4(v.ipv4);
        details->set_current_release("Ubuntu " + v.release + " LTS");
        details->set_load("0.00 0.00 0.00");
        details->set_memory_usage(std::to_string(v.memory_bytes / 4));
        details->set_disk_usage(std::to_string(std::min<std::uint64_t>(v.disk_bytes, 2ull << 30)));
        details->set_uptime("up 1 minute");
      }
    }
    s->Write(reply);
    return grpc::Status::OK;
  }

  grpc::Status delet(grpc::ServerContext* ctx,
                     Stream<multipass::DeleteRequest, multipass::DeleteReply>* s) override {
    SimWorld::Turn turn(world_);
    if (auto denied = Authorize(ctx)) return *denied;
    multipass::DeleteRequest req;
    s->Read(&req);
    std::vector<std::string> purged;
    if (auto err = world_.Delete(PairNames(req.instance_snapshot_pairs()), req.purge(), &purged))
      return ToGrpc(*err);
    multipass::DeleteReply reply;
    for (const auto& n : purged) reply.add_purged_instances(n);
    s->Write(reply);
    return grpc::Status::OK;
  }

  grpc::Status purge(grpc::ServerContext* ctx,
                     Stream<multipass::PurgeRequest, multipass::PurgeReply>* s) override {
    SimWorld::Turn turn(world_);
    if (auto denied = Authorize(ctx)) return *denied;
    multipass::PurgeRequest req;
    s->Read(&req);
    multipass::PurgeReply reply;
    for (const auto& n : world_.PurgeDeleted()) reply.add_purged_instances(n);
    s->Write(reply);
    return grpc::Status::OK;
  }

  grpc::Status start(grpc::ServerContext* ctx,
                     Stream<multipass::StartRequest, multipass::StartReply>* s) override {
    SimWorld::Turn turn(world_);
    if (auto denied = Authorize(ctx)) return *denied;
    multipass::StartRequest req;
    s->Read(&req);
    std::vector<std::string> names(req.instance_names().instance_name().begin(),
                                   req.instance_names().instance_name().end());
    auto err = world_.Start(
        names, req.timeout(), [ctx] { return ctx->IsCancelled(); }, &turn);
    return err ? ToGrpc(*err) : grpc::Status::OK;
  }

  grpc::Status stop(grpc::ServerContext* ctx,
                    Stream<multipass::StopRequest, multipass::StopReply>* s) override {
    SimWorld::Turn turn(world_);
    if (auto denied = Authorize(ctx)) return *denied;
    multipass::StopRequest req;
    s->Read(&req);
    std::vector<std::string> names(req.instance_names().instance_name().begin(),
                                   req.instance_names().instance_name().end());
    auto err = world_.Stop(names);
    return err ? ToGrpc(*err) : grpc::Status::OK;
  }

  grpc::Status version(grpc::ServerContext* ctx,
                       Stream<multipass::VersionRequest, multipass::VersionReply>* s) override {
    SimWorld::Turn turn(world_);
    if (auto denied = Authorize(ctx)) return *denied;
    multipass::VersionRequest req;
    s->Read(&req);
    multipass::VersionReply reply;
    reply.set_version(world_.options().daemon_version);
    s->Write(reply);
    return grpc::Status::OK;
  }

  grpc::Status daemon_info(
      grpc::ServerContext* ctx,
      Stream<multipass::DaemonInfoRequest, multipass::DaemonInfoReply>* s) override {
    SimWorld::Turn turn(world_);
    if (!world_.VersionAtLeast(1, 15))  // the RPC does not exist before 1.15
      return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "");
    if (auto denied = Authorize(ctx)) return *denied;
    multipass::DaemonInfoRequest req;
    s->Read(&req);
    multipass::DaemonInfoReply reply;
    reply.set_cpus(world_.options().host_cpus);
    reply.set_memory(world_.options().host_memory_bytes);
    reply.set_available_space(world_.options().host_disk_bytes);
    s->Write(reply);
    return grpc::Status::OK;
  }

  grpc::Status authenticate(
      grpc::ServerContext* ctx,
      Stream<multipass::AuthenticateRequest, multipass::AuthenticateReply>* s) override {
    SimWorld::Turn turn(world_);
    multipass::AuthenticateRequest req;
    s->Read(&req);
    auto err = world_.Authenticate(req.passphrase(), ClientCertificate(ctx));
    return err ? ToGrpc(*err) : grpc::Status::OK;  // no reply of its own, like the daemon
  }

  grpc::Status ping(grpc::ServerContext* ctx, const multipass::PingRequest*,
                    multipass::PingReply*) override {
    SimWorld::Turn turn(world_);
    if (world_.IsKnownCertificate(ClientCertificate(ctx))) return grpc::Status::OK;
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "");
  }

 private:
  std::optional<grpc::Status> Authorize(grpc::ServerContext* ctx) {
    switch (world_.AuthorizeCall(ClientCertificate(ctx), unix_)) {
      case SimWorld::AuthResult::kAllowed:
        return std::nullopt;
      case SimWorld::AuthResult::kInvalidCertificate:
        return grpc::Status(grpc::StatusCode::INTERNAL, "invalid certificate data");
      case SimWorld::AuthResult::kUnauthenticated:
        break;
    }
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, kUnauthenticatedMessage);
  }

  SimWorld& world_;
  bool unix_;
};

std::filesystem::path FreshTempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "cluster-sim-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr)
    throw SimConfigError("state-dir: cannot create a temporary directory under " +
                         std::filesystem::temp_directory_path().string());
  return tmpl;
}

}  // namespace

LoopbackAddress ParseLoopbackAddress(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos)
    throw SimConfigError("multipass-tls: expected HOST:PORT with HOST 127.0.0.1, got \"" + text +
                         "\"");
  LoopbackAddress a;
  a.host = text.substr(0, colon);
  std::string port = text.substr(colon + 1);
  if (a.host == "localhost") a.host = "127.0.0.1";
  if (a.host != "127.0.0.1")
    throw SimConfigError(
        "multipass-tls: only the loopback address 127.0.0.1 (or localhost) is "
        "allowed, got host \"" +
        text.substr(0, colon) + "\"");
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) > 65535)
    throw SimConfigError("multipass-tls: port must be a number 0-65535, got \"" + port + "\"");
  a.port = std::stoi(port);
  return a;
}

struct MultipassSim::Impl {
  SimOptions options;
  std::unique_ptr<SimWorld> world;
  CertificateAuthority ca;
  KeyCertPair server_cert;
  std::optional<LoopbackAddress> tls;
  std::mutex mutex;  // guards the servers below
  std::vector<std::unique_ptr<RpcService>> services;
  std::vector<std::unique_ptr<grpc::Server>> servers;
  bool running = false;

  std::shared_ptr<grpc::ServerCredentials> Credentials() const {
    grpc::SslServerCredentialsOptions o(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_BUT_DONT_VERIFY);
    o.pem_key_cert_pairs.push_back({server_cert.private_key_pem, server_cert.certificate_pem});
    return grpc::SslServerCredentials(o);
  }

  // One grpc::Server per listener so each service knows which listener it serves.
  void StartLocked() {
    if (options.unix_socket) {
      auto service = std::make_unique<RpcService>(*world, true);
      grpc::ServerBuilder b;
      b.AddListeningPort("unix:" + options.unix_socket->string(), Credentials());
      b.RegisterService(service.get());
      auto server = b.BuildAndStart();
      if (!server)
        throw SimConfigError("multipass-socket: cannot listen on unix:" +
                             options.unix_socket->string());
      services.push_back(std::move(service));
      servers.push_back(std::move(server));
    }
    if (tls) {
      auto service = std::make_unique<RpcService>(*world, false);
      grpc::ServerBuilder b;
      int port = 0;
      b.AddListeningPort(tls->host + ":" + std::to_string(tls->port), Credentials(), &port);
      b.RegisterService(service.get());
      auto server = b.BuildAndStart();
      if (!server || port == 0)
        throw SimConfigError("multipass-tls: cannot listen on " + tls->host + ":" +
                             std::to_string(tls->port));
      tls->port = port;  // a restart reuses the port first handed out
      services.push_back(std::move(service));
      servers.push_back(std::move(server));
    }
    running = true;
  }

  void StopLocked() {
    // In-flight calls (a hanging launch) are cancelled after a short grace.
    for (auto& s : servers)
      s->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
    for (auto& s : servers) s->Wait();
    servers.clear();
    services.clear();
    if (options.unix_socket) {
      std::error_code ec;
      std::filesystem::remove(*options.unix_socket, ec);
    }
    running = false;
  }
};

MultipassSim::MultipassSim(SimOptions options) : impl_(std::make_unique<Impl>()) {
  if (!options.unix_socket && !options.tls_address)
    throw SimConfigError("multipass sim: give a unix socket and/or a TLS address to listen on");
  if (options.world.state_dir.empty()) options.world.state_dir = FreshTempDir();
  std::error_code ec;
  std::filesystem::create_directories(options.world.state_dir, ec);
  if (ec)
    throw SimConfigError("state-dir: cannot create " + options.world.state_dir.string() + ": " +
                         ec.message());
  if (options.tls_address) impl_->tls = ParseLoopbackAddress(*options.tls_address);
  impl_->options = options;
  impl_->server_cert = impl_->ca.IssueServerCertificate("localhost", {"localhost"}, {"127.0.0.1"});
  {
    std::ofstream out(root_cert_path(), std::ios::trunc);
    out << impl_->ca.root_certificate_pem();
    if (!out) throw SimConfigError("state-dir: cannot write " + root_cert_path().string());
  }
  std::filesystem::permissions(root_cert_path(), std::filesystem::perms(0644), ec);
  impl_->world = std::make_unique<SimWorld>(options.world);
  std::lock_guard lock(impl_->mutex);
  impl_->StartLocked();
}

MultipassSim::~MultipassSim() {
  Shutdown();
}

void MultipassSim::Restart() {
  std::lock_guard lock(impl_->mutex);
  impl_->StopLocked();
  impl_->world->CountRestart();
  impl_->StartLocked();
  spdlog::info("multipass sim: restarted; all connections dropped, state kept");
}

void MultipassSim::Shutdown() {
  std::lock_guard lock(impl_->mutex);
  if (impl_->running) impl_->StopLocked();
}

void MultipassSim::Resume() {
  std::lock_guard lock(impl_->mutex);
  if (impl_->running) return;
  impl_->StartLocked();
  spdlog::info("multipass sim: listening again; instances kept");
}

std::string MultipassSim::unix_target() const {
  return impl_->options.unix_socket ? "unix:" + impl_->options.unix_socket->string() : "";
}

std::string MultipassSim::tls_address() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->tls ? impl_->tls->host + ":" + std::to_string(impl_->tls->port) : "";
}

int MultipassSim::tls_port() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->tls ? impl_->tls->port : 0;
}

const std::filesystem::path& MultipassSim::state_dir() const {
  return impl_->options.world.state_dir;
}

std::filesystem::path MultipassSim::root_cert_path() const {
  return state_dir() / "multipass_root_cert.pem";
}

const std::string& MultipassSim::root_cert_pem() const {
  return impl_->ca.root_certificate_pem();
}

const CertificateAuthority& MultipassSim::certificate_authority() const {
  return impl_->ca;
}

void MultipassSim::OnInstanceRunning(SimWorld::RunningHook hook) {
  impl_->world->OnInstanceRunning(std::move(hook));
}

void MultipassSim::OnInstanceStopped(std::function<void(const std::string&)> hook) {
  impl_->world->OnInstanceStopped(std::move(hook));
}

void MultipassSim::OnInstanceDeleted(std::function<void(const std::string&)> hook) {
  impl_->world->OnInstanceDeleted(std::move(hook));
}

WorldSnapshot MultipassSim::Snapshot() const {
  return impl_->world->Snapshot();
}
void MultipassSim::SetFailEveryNthLaunch(unsigned n) {
  impl_->world->SetFailEveryNthLaunch(n);
}
void MultipassSim::SetHangLaunches(bool hang) {
  impl_->world->SetHangLaunches(hang);
}
SimWorld& MultipassSim::world() {
  return *impl_->world;
}

}  // namespace mps::sim
