#include "multipass/multipass_client.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <utility>

#include <spdlog/spdlog.h>

#include "multipass/client_identity.h"
#include "multipass/launch_validation.h"
#include "multipass/multipass.grpc.pb.h"

namespace mps::multipass {
namespace {

namespace pb = ::multipass;
using Kind = MultipassError::Kind;
using Clock = std::chrono::system_clock;

// Only error-level daemon log lines would be streamed; we ignore log lines.
constexpr int kVerbosity = 0;

InstanceState FromProto(pb::InstanceStatus::Status s) {
  switch (s) {
    case pb::InstanceStatus::RUNNING:
      return InstanceState::running;
    case pb::InstanceStatus::STARTING:
      return InstanceState::starting;
    case pb::InstanceStatus::RESTARTING:
      return InstanceState::restarting;
    case pb::InstanceStatus::STOPPED:
      return InstanceState::stopped;
    case pb::InstanceStatus::DELETED:
      return InstanceState::deleted;
    case pb::InstanceStatus::DELAYED_SHUTDOWN:
      return InstanceState::delayed_shutdown;
    case pb::InstanceStatus::SUSPENDING:
      return InstanceState::suspending;
    case pb::InstanceStatus::SUSPENDED:
      return InstanceState::suspended;
    case pb::InstanceStatus::UNAVAILABLE:
      return InstanceState::unavailable;
    default:
      return InstanceState::unknown;
  }
}

template <class Int>
Int ParseNumber(const std::string& text) {
  Int value{};
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;  // empty or malformed: 0 (the daemon leaves fields empty when it does not know)
}

std::string ReadTextFile(const std::string& file, std::string_view what) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw MultipassError(Kind::invalid_config, file + ": cannot read " + std::string(what));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Seconds(std::chrono::milliseconds d) {
  std::ostringstream s;
  s << static_cast<double>(d.count()) / 1000.0 << "s";
  return s.str();
}

// multipassd 1.16 answers "N/A" for a running VM whose address it could not get.
std::vector<std::string> Addresses(const google::protobuf::RepeatedPtrField<std::string>& ipv4) {
  std::vector<std::string> out;
  for (const auto& a : ipv4)
    if (!a.empty() && a != "N/A") out.push_back(a);
  return out;
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

std::string_view StateName(InstanceState state) {
  switch (state) {
    case InstanceState::unknown:
      return "unknown";
    case InstanceState::running:
      return "running";
    case InstanceState::starting:
      return "starting";
    case InstanceState::restarting:
      return "restarting";
    case InstanceState::stopped:
      return "stopped";
    case InstanceState::deleted:
      return "deleted";
    case InstanceState::delayed_shutdown:
      return "delayed_shutdown";
    case InstanceState::suspending:
      return "suspending";
    case InstanceState::suspended:
      return "suspended";
    case InstanceState::unavailable:
      return "unavailable";
  }
  return "unknown";
}

struct MultipassClient::Impl {
  MultipassClientOptions options;
  DaemonEndpoint endpoint;
  ClientIdentity identity;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::Rpc::Stub> stub;
  std::mutex auth_mutex;
  std::atomic<std::uint64_t> auth_generation{0};
  // Calls in flight, for CancelAll.
  std::mutex calls_mutex;
  std::set<grpc::ClientContext*> calls;
  std::atomic<bool> cancelled{false};

  explicit Impl(MultipassClientOptions opts)
      : options(std::move(opts)), endpoint(DaemonEndpoint::Parse(options.address)) {
    identity = LoadIdentity();
    std::shared_ptr<grpc::ChannelCredentials> creds;
    grpc::ChannelArguments args;
    if (!options.root_ca_file.empty()) {
      grpc::SslCredentialsOptions ssl;
      ssl.pem_root_certs = ReadTextFile(options.root_ca_file, "root CA certificate");
      ssl.pem_cert_chain = identity.cert_pem;
      ssl.pem_private_key = identity.key_pem;
      creds = grpc::SslCredentials(ssl);
      // The daemon's certificate names `localhost` (or its --address host),
      // not the socket path or the address we dial.
      args.SetSslTargetNameOverride(options.server_name);
    } else {
      namespace gx = grpc::experimental;
      gx::TlsChannelCredentialsOptions tls;
      tls.set_certificate_provider(std::make_shared<gx::StaticDataCertificateProvider>(
          std::vector<gx::IdentityKeyCertPair>{{identity.key_pem, identity.cert_pem}}));
      tls.watch_identity_key_cert_pairs();
      // All three are needed to skip verification with gRPC 1.51: without
      // the no-op verifier the default hostname check still runs, and without
      // check_call_host(false) calls fail with "call host does not match SSL
      // server name".
      tls.set_verify_server_certs(false);
      tls.set_certificate_verifier(std::make_shared<gx::NoOpCertificateVerifier>());
      tls.set_check_call_host(false);
      creds = gx::TlsCredentials(tls);
      spdlog::warn(
          "multipassd at {}: no root CA configured, the daemon's certificate is NOT verified",
          endpoint.address);
    }
    // Reconnect quickly after a daemon restart instead of backing off for
    // minutes. The "min" backoff is also each connection attempt's minimum
    // timeout, TLS handshake included: at 200 ms a busy host failed every
    // handshake ("Handshake read failed"), so it keeps a generous value.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 10000);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
    channel = grpc::CreateCustomChannel(endpoint.grpc_target, creds, args);
    stub = pb::Rpc::NewStub(channel);
  }

  ClientIdentity LoadIdentity() const {
    const bool has_cert = !options.client_cert_file.empty();
    const bool has_key = !options.client_key_file.empty();
    if (has_cert != has_key) {
      throw MultipassError(Kind::invalid_config,
                           "client_cert and client_key must be given together (got only " +
                               std::string(has_cert ? "client_cert" : "client_key") + ")");
    }
    if (has_cert)
      return ClientIdentity::FromFiles(options.client_cert_file, options.client_key_file);
    if (!options.state_dir.empty()) return ClientIdentity::LoadOrCreate(options.state_dir);
    spdlog::warn(
        "no client certificate and no state directory: using an in-memory certificate that "
        "multipassd will not recognise after a restart of this process");
    return ClientIdentity::Generate();
  }

  MultipassError Cancelled(std::string_view op, std::string instance = {}) const {
    return MultipassError(Kind::cancelled,
                          std::string(op) + ": cancelled, the client of multipassd at " +
                              endpoint.address + " is stopping",
                          std::move(instance));
  }

  void CancelAll() {
    std::lock_guard lock(calls_mutex);
    cancelled = true;
    for (auto* ctx : calls) ctx->TryCancel();
  }

  // Write one request, read replies until the daemon ends the stream, then
  // take the status; like the multipass CLI we do not half-close first,
  // because some daemon flows read a second request. The context is listed
  // in `calls` meanwhile, so CancelAll ends the call.
  template <class Req, class Rep, class Open, class OnReply>
  grpc::Status Exchange(Open open, const Req& request, std::chrono::milliseconds timeout,
                        OnReply on_reply) {
    grpc::ClientContext ctx;
    ctx.set_deadline(Clock::now() + timeout);
    {
      std::lock_guard lock(calls_mutex);
      if (cancelled) return grpc::Status(grpc::StatusCode::CANCELLED, "the client is stopping");
      calls.insert(&ctx);
    }
    struct Untrack {
      Impl& impl;
      grpc::ClientContext* ctx;
      ~Untrack() {
        std::lock_guard lock(impl.calls_mutex);
        impl.calls.erase(ctx);
      }
    } untrack{*this, &ctx};
    auto stream = open(&ctx);
    stream->Write(request);  // a failed write shows up in Finish()
    Rep reply;
    while (stream->Read(&reply)) on_reply(reply);
    return stream->Finish();
  }

  MultipassError Unreachable(const std::string& detail) const {
    return MultipassError(Kind::unreachable,
                          "multipassd unreachable at " + endpoint.address + ": " + detail);
  }

  // Fail fast instead of queueing calls while the channel is still connecting.
  // Waits in short steps so that CancelAll is seen within one of them.
  void AwaitConnection() {
    constexpr auto kStep = std::chrono::milliseconds(20);
    if (cancelled) throw Cancelled("connect");
    auto state = channel->GetState(true);
    const auto deadline = Clock::now() + options.connect_timeout;
    while (state == GRPC_CHANNEL_IDLE || state == GRPC_CHANNEL_CONNECTING) {
      const auto now = Clock::now();
      if (now >= deadline) {
        throw Unreachable("no connection within " + Seconds(options.connect_timeout));
      }
      channel->WaitForStateChange(state, std::min(deadline, now + kStep));
      if (cancelled) throw Cancelled("connect");
      state = channel->GetState(true);
    }
    // READY, or TRANSIENT_FAILURE: the call then fails at once with the reason.
  }

  MultipassError FromStatus(const grpc::Status& s, std::string_view op, std::string instance = {},
                            std::chrono::milliseconds timeout = {}) const {
    if (cancelled && s.error_code() == grpc::StatusCode::CANCELLED) {
      return Cancelled(op, std::move(instance));
    }
    const std::string text = std::string(op) + ": " + s.error_message();
    switch (s.error_code()) {
      case grpc::StatusCode::UNAVAILABLE:
        return Unreachable(s.error_message());
      case grpc::StatusCode::UNAUTHENTICATED:
        return MultipassError(
            Kind::unauthenticated,
            std::string(op) + ": multipassd does not accept our client certificate (" +
                (options.passphrase ? "even after authenticating with the passphrase"
                                    : "no passphrase configured to authenticate with") +
                "): " + s.error_message(),
            std::move(instance));
      case grpc::StatusCode::DEADLINE_EXCEEDED:
        return MultipassError(Kind::timeout,
                              std::string(op) + ": no answer from multipassd at " +
                                  endpoint.address + " within " + Seconds(timeout),
                              std::move(instance));
      case grpc::StatusCode::NOT_FOUND:
        return MultipassError(Kind::not_found, text, std::move(instance));
      case grpc::StatusCode::INVALID_ARGUMENT:
        return MultipassError(Kind::invalid_argument, text, std::move(instance));
      case grpc::StatusCode::ALREADY_EXISTS:
        return MultipassError(Kind::name_taken, text, std::move(instance));
      case grpc::StatusCode::RESOURCE_EXHAUSTED:
        return MultipassError(Kind::out_of_resources, text, std::move(instance));
      case grpc::StatusCode::FAILED_PRECONDITION:
      case grpc::StatusCode::ABORTED:
      case grpc::StatusCode::CANCELLED:
        return MultipassError(Kind::aborted, text, std::move(instance));
      default:
        return MultipassError(Kind::internal, text, std::move(instance));
    }
  }

  // Runs attempt(); on UNAUTHENTICATED with a passphrase configured,
  // authenticates (once across concurrent callers) and runs it once more.
  template <class Attempt>
  grpc::Status Call(Attempt attempt) {
    AwaitConnection();
    const auto generation = auth_generation.load();
    grpc::Status status = attempt();
    if (status.error_code() != grpc::StatusCode::UNAUTHENTICATED || !options.passphrase) {
      return status;
    }
    {
      std::lock_guard lock(auth_mutex);
      if (auth_generation.load() == generation) {
        spdlog::info("multipassd at {} does not know our certificate yet; authenticating",
                     endpoint.address);
        DoAuthenticate(*options.passphrase);
        ++auth_generation;
      }
    }
    return attempt();
  }

  void DoAuthenticate(const std::string& passphrase) {
    pb::AuthenticateRequest request;
    request.set_passphrase(passphrase);
    request.set_verbosity_level(kVerbosity);
    const auto status = Exchange<pb::AuthenticateRequest, pb::AuthenticateReply>(
        [&](grpc::ClientContext* c) { return stub->authenticate(c); }, request,
        options.call_timeout, [](const pb::AuthenticateReply&) {});
    if (status.ok()) return;
    switch (status.error_code()) {
      case grpc::StatusCode::INVALID_ARGUMENT:
        throw MultipassError(
            Kind::wrong_passphrase,
            "authenticate: multipassd rejected the passphrase: " + status.error_message());
      case grpc::StatusCode::FAILED_PRECONDITION:
        throw MultipassError(Kind::passphrase_not_set,
                             "authenticate: multipassd has no passphrase set (local.passphrase): " +
                                 status.error_message());
      default:
        throw FromStatus(status, "authenticate", {}, options.call_timeout);
    }
  }

  MultipassError LaunchFailure(const grpc::Status& s, const LaunchSpec& spec,
                               const std::string& launched, std::chrono::milliseconds timeout,
                               bool starting) {
    const std::string who = launched.empty() ? spec.name : launched;
    if (cancelled && s.error_code() == grpc::StatusCode::CANCELLED) {
      // multipassd may have made part of the instance: the next listing decides.
      return Cancelled("launch " + who, who);
    }
    const std::string text =
        "launch " + (who.empty() ? std::string("(unnamed)") : who) + ": " + s.error_message();
    if (!launched.empty()) {
      // The daemon reports the failed wait for SSH/cloud-init after naming the
      // instance, and leaves the instance in place.
      return MultipassError(Kind::launch_timeout, text, launched, launched);
    }
    if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      return MultipassError(Kind::launch_timeout,
                            "launch " + who + ": no result from multipassd within " +
                                Seconds(timeout) + "; the instance may exist",
                            who, who.empty() ? std::nullopt : std::optional<std::string>(who));
    }
    pb::LaunchError details;
    if (!s.error_details().empty() && details.ParseFromString(s.error_details()) &&
        details.error_codes_size() > 0) {
      Kind kind = Kind::invalid_argument;
      for (int code : details.error_codes()) {
        if (code == pb::LaunchError::INVALID_HOSTNAME) {
          kind = Kind::invalid_name;
          break;
        }
        if (code == pb::LaunchError::ZONE_UNAVAILABLE) kind = Kind::out_of_resources;
      }
      return MultipassError(kind, text, who);
    }
    // A start failure arrives as FAILED_PRECONDITION after "Starting NAME";
    // multipassd has removed the instance.
    if (starting && s.error_code() == grpc::StatusCode::FAILED_PRECONDITION)
      return MultipassError(Kind::start_failed, text, who);
    switch (s.error_code()) {
      // Without LaunchError details the daemon's only INVALID_ARGUMENT before
      // the stream starts is the name check ("already exists"/"being prepared").
      case grpc::StatusCode::INVALID_ARGUMENT:
      case grpc::StatusCode::ALREADY_EXISTS:
        return MultipassError(Kind::name_taken, text, who);
      // Image lookup/preparation failures (incl. disk below the image minimum).
      case grpc::StatusCode::FAILED_PRECONDITION:
      case grpc::StatusCode::NOT_FOUND:
        return MultipassError(Kind::image_not_found, text, who);
      default:
        return FromStatus(s, "launch " + who, who, timeout);
    }
  }

  MultipassError StartFailure(const grpc::Status& s, std::chrono::milliseconds timeout,
                              const std::string& names_text) {
    pb::StartError details;
    if (!s.error_details().empty() && details.ParseFromString(s.error_details())) {
      for (const auto& [name, code] : details.instance_errors()) {
        const std::string text = "start " + name + ": " + s.error_message();
        if (code == pb::StartError::DOES_NOT_EXIST || code == pb::StartError::INSTANCE_DELETED) {
          return MultipassError(Kind::not_found, text, name);
        }
        if (code == pb::StartError::OTHER) return MultipassError(Kind::aborted, text, name);
      }
    }
    // Not up within the daemon's timeout: INVALID_ARGUMENT, the instance stays.
    if (s.error_code() == grpc::StatusCode::INVALID_ARGUMENT)
      return MultipassError(Kind::start_timeout, "start: " + s.error_message(), names_text);
    return FromStatus(s, "start", {}, timeout);
  }
};

MultipassClient::MultipassClient(MultipassClientOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

MultipassClient::~MultipassClient() = default;

const DaemonEndpoint& MultipassClient::endpoint() const {
  return impl_->endpoint;
}

const std::string& MultipassClient::client_cert_pem() const {
  return impl_->identity.cert_pem;
}

std::string MultipassClient::Version() {
  auto& d = *impl_;
  pb::VersionRequest request;
  request.set_verbosity_level(kVerbosity);
  std::string version;
  const auto status = d.Call([&] {
    version.clear();
    return d.Exchange<pb::VersionRequest, pb::VersionReply>(
        [&](grpc::ClientContext* c) { return d.stub->version(c); }, request, d.options.call_timeout,
        [&](const pb::VersionReply& r) {
          if (!r.version().empty()) version = r.version();
        });
  });
  if (!status.ok()) throw d.FromStatus(status, "version", {}, d.options.call_timeout);
  return version;
}

std::optional<DaemonTotals> MultipassClient::DaemonInfo() {
  auto& d = *impl_;
  pb::DaemonInfoRequest request;
  request.set_verbosity_level(kVerbosity);
  DaemonTotals totals;
  const auto status = d.Call([&] {
    return d.Exchange<pb::DaemonInfoRequest, pb::DaemonInfoReply>(
        [&](grpc::ClientContext* c) { return d.stub->daemon_info(c); }, request,
        d.options.call_timeout,
        [&](const pb::DaemonInfoReply& r) {
          if (r.cpus() == 0 && r.memory() == 0 && r.available_space() == 0) return;  // a log line
          totals.cpus = static_cast<std::int64_t>(r.cpus());
          totals.memory_bytes = static_cast<std::int64_t>(r.memory());
          totals.disk_bytes = static_cast<std::int64_t>(r.available_space());
        });
  });
  if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) return std::nullopt;
  if (!status.ok()) throw d.FromStatus(status, "daemon_info", {}, d.options.call_timeout);
  return totals;
}

std::vector<InstanceInfo> MultipassClient::List(std::string_view name_prefix, bool addresses) {
  auto& d = *impl_;
  pb::ListRequest request;
  request.set_verbosity_level(kVerbosity);
  request.set_request_ipv4(addresses);
  std::vector<InstanceInfo> out;
  const auto status = d.Call([&] {
    out.clear();
    return d.Exchange<pb::ListRequest, pb::ListReply>(
        [&](grpc::ClientContext* c) { return d.stub->list(c); }, request, d.options.call_timeout,
        [&](const pb::ListReply& r) {
          if (!r.has_instance_list()) return;  // log lines, update info
          out.clear();                         // the last list is the answer
          for (const auto& vm : r.instance_list().instances()) {
            if (!vm.name().starts_with(name_prefix)) continue;
            out.push_back(InstanceInfo{vm.name(), FromProto(vm.instance_status().status()),
                                       Addresses(vm.ipv4()), vm.current_release()});
          }
        });
  });
  if (!status.ok()) throw d.FromStatus(status, "list", {}, d.options.call_timeout);
  return out;
}

std::vector<InstanceDetail> MultipassClient::Info(const std::vector<std::string>& names,
                                                  bool runtime_information) {
  auto& d = *impl_;
  pb::InfoRequest request;
  request.set_verbosity_level(kVerbosity);
  request.set_no_runtime_information(!runtime_information);
  for (const auto& n : names) request.add_instance_snapshot_pairs()->set_instance_name(n);
  std::vector<InstanceDetail> out;
  const auto status = d.Call([&] {
    out.clear();
    return d.Exchange<pb::InfoRequest, pb::InfoReply>(
        [&](grpc::ClientContext* c) { return d.stub->info(c); }, request, d.options.call_timeout,
        [&](const pb::InfoReply& r) {
          if (r.details_size() == 0) return;
          out.clear();
          for (const auto& item : r.details()) {
            if (item.has_snapshot_info()) continue;
            InstanceDetail detail;
            detail.name = item.name();
            detail.state = FromProto(item.instance_status().status());
            detail.cpu_count = ParseNumber<int>(item.cpu_count());
            detail.memory_total = ParseNumber<std::uint64_t>(item.memory_total());
            detail.disk_total = ParseNumber<std::uint64_t>(item.disk_total());
            const auto& vm = item.instance_info();
            detail.image_release = vm.image_release();
            detail.ipv4 = Addresses(vm.ipv4());
            out.push_back(std::move(detail));
          }
        });
  });
  if (!status.ok()) {
    throw d.FromStatus(status, "info " + JoinNames(names), names.size() == 1 ? names[0] : "",
                       d.options.call_timeout);
  }
  return out;
}

std::string MultipassClient::Launch(const LaunchSpec& spec,
                                    const LaunchProgressCallback& progress) {
  auto& d = *impl_;
  if (!spec.name.empty()) ValidateInstanceName(spec.name);
  if (!spec.memory.empty()) ValidateMemorySize(spec.memory);
  if (!spec.disk.empty()) ValidateDiskSize(spec.disk);
  if (spec.cpus < 0) {
    throw MultipassError(Kind::invalid_argument,
                         "cpus " + std::to_string(spec.cpus) + ": expected at least 1", spec.name);
  }
  pb::LaunchRequest request;
  request.set_instance_name(spec.name);
  request.set_image(spec.image);
  request.set_num_cores(spec.cpus);
  request.set_mem_size(spec.memory);
  request.set_disk_space(spec.disk);
  request.set_cloud_init_user_data(spec.cloud_init_user_data);
  request.set_timeout(static_cast<std::int32_t>(spec.timeout.count()));
  request.set_verbosity_level(kVerbosity);
  // The daemon's timeout runs twice (SSH-up, cloud-init), after the download.
  const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
      2 * (spec.timeout.count() > 0 ? spec.timeout : std::chrono::seconds(300)) +
      d.options.launch_overhead);

  auto report = [&](LaunchProgress::Phase phase, std::string text, double percent) {
    if (progress) progress(LaunchProgress{phase, std::move(text), percent});
  };
  std::string launched;
  bool starting = false;  // the daemon said "Starting NAME": the VM exists
  const auto status = d.Call([&] {
    launched.clear();
    starting = false;
    return d.Exchange<pb::LaunchRequest, pb::LaunchReply>(
        [&](grpc::ClientContext* c) { return d.stub->launch(c); }, request, timeout,
        [&](const pb::LaunchReply& r) {
          switch (r.create_oneof_case()) {
            case pb::LaunchReply::kVmInstanceName:
              launched = r.vm_instance_name();
              break;
            case pb::LaunchReply::kCreateMessage:
              // Stable from 1.13 to HEAD; sent right before the VM is started.
              if (r.create_message().starts_with("Starting ")) starting = true;
              report(LaunchProgress::Phase::message, r.create_message(), -1);
              break;
            case pb::LaunchReply::kLaunchProgress: {
              const auto& p = r.launch_progress();
              double percent = -1;
              try {
                percent = std::stod(p.percent_complete());
              } catch (const std::exception&) {
              }
              LaunchProgress::Phase phase = LaunchProgress::Phase::download;
              if (p.type() == pb::LaunchProgress::EXTRACT) phase = LaunchProgress::Phase::extract;
              if (p.type() == pb::LaunchProgress::VERIFY) phase = LaunchProgress::Phase::verify;
              if (p.type() == pb::LaunchProgress::WAITING) phase = LaunchProgress::Phase::waiting;
              report(phase, {}, percent);
              break;
            }
            default:
              break;
          }
          if (!r.reply_message().empty()) {
            report(LaunchProgress::Phase::message, r.reply_message(), -1);
          }
        });
  });
  if (!status.ok()) throw d.LaunchFailure(status, spec, launched, timeout, starting);
  if (launched.empty()) {
    throw MultipassError(
        Kind::internal, "launch " + spec.name + ": multipassd ended without naming the instance",
        spec.name, spec.name.empty() ? std::nullopt : std::optional<std::string>(spec.name));
  }
  return launched;
}

std::vector<std::string> MultipassClient::Delete(const std::vector<std::string>& names) {
  auto& d = *impl_;
  if (names.empty()) {
    throw MultipassError(Kind::invalid_argument,
                         "delete: no instance names given (multipassd would delete EVERY "
                         "instance on the host for an empty list)");
  }
  pb::DeleteRequest request;
  request.set_purge(true);
  request.set_verbosity_level(kVerbosity);
  for (const auto& n : names) {
    if (n.empty()) {
      throw MultipassError(Kind::invalid_name, "delete: an instance name is empty");
    }
    request.add_instance_snapshot_pairs()->set_instance_name(n);
  }
  auto attempt = [&](const pb::DeleteRequest& req, std::vector<std::string>& purged) {
    return d.Call([&] {
      purged.clear();
      return d.Exchange<pb::DeleteRequest, pb::DeleteReply>(
          [&](grpc::ClientContext* c) { return d.stub->delet(c); }, req, d.options.call_timeout,
          [&](const pb::DeleteReply& r) {
            purged.insert(purged.end(), r.purged_instances().begin(), r.purged_instances().end());
          });
    });
  };
  std::vector<std::string> purged;
  auto status = attempt(request, purged);
  if (status.error_code() == grpc::StatusCode::NOT_FOUND && names.size() > 1) {
    // One unknown name fails the whole batch and nothing is deleted: delete
    // the ones that still exist (the others are gone already).
    std::set<std::string> existing;
    for (const auto& i : List({}, /*addresses=*/false)) existing.insert(i.name);
    pb::DeleteRequest retry = request;
    retry.clear_instance_snapshot_pairs();
    for (const auto& n : names)
      if (existing.count(n) > 0) retry.add_instance_snapshot_pairs()->set_instance_name(n);
    if (retry.instance_snapshot_pairs_size() > 0) {
      spdlog::info("delete {}: some are gone already; deleting the {} left", JoinNames(names),
                   retry.instance_snapshot_pairs_size());
      status = attempt(retry, purged);
    }
  }
  if (!status.ok()) {
    throw d.FromStatus(status, "delete " + JoinNames(names), names.size() == 1 ? names[0] : "",
                       d.options.call_timeout);
  }
  return purged;
}

void MultipassClient::Start(const std::vector<std::string>& names) {
  auto& d = *impl_;
  if (names.empty()) {
    throw MultipassError(Kind::invalid_argument,
                         "start: no instance names given (an empty list means every instance)");
  }
  pb::StartRequest request;
  for (const auto& n : names) request.mutable_instance_names()->add_instance_name(n);
  request.set_verbosity_level(kVerbosity);
  request.set_timeout(static_cast<std::int32_t>(d.options.start_timeout.count()));
  const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
      2 * d.options.start_timeout + std::chrono::minutes(1));
  const auto status = d.Call([&] {
    return d.Exchange<pb::StartRequest, pb::StartReply>(
        [&](grpc::ClientContext* c) { return d.stub->start(c); }, request, timeout,
        [](const pb::StartReply&) {});
  });
  if (!status.ok()) throw d.StartFailure(status, timeout, names.size() == 1 ? names[0] : "");
}

void MultipassClient::Stop(const std::vector<std::string>& names) {
  auto& d = *impl_;
  if (names.empty()) {
    throw MultipassError(Kind::invalid_argument,
                         "stop: no instance names given (an empty list means every instance)");
  }
  pb::StopRequest request;
  for (const auto& n : names) request.mutable_instance_names()->add_instance_name(n);
  request.set_verbosity_level(kVerbosity);
  const auto status = d.Call([&] {
    return d.Exchange<pb::StopRequest, pb::StopReply>(
        [&](grpc::ClientContext* c) { return d.stub->stop(c); }, request, d.options.call_timeout,
        [](const pb::StopReply&) {});
  });
  if (!status.ok()) {
    throw d.FromStatus(status, "stop " + JoinNames(names), names.size() == 1 ? names[0] : "",
                       d.options.call_timeout);
  }
}

void MultipassClient::CancelAll() {
  impl_->CancelAll();
}

bool MultipassClient::cancelled() const {
  return impl_->cancelled;
}

void MultipassClient::Authenticate(const std::string& passphrase) {
  impl_->AwaitConnection();
  std::lock_guard lock(impl_->auth_mutex);
  impl_->DoAuthenticate(passphrase);
  ++impl_->auth_generation;
}

}  // namespace mps::multipass
