#include "plugin/plugin_process.h"

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <thread>

#include <grpc/support/log.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include "plugin/grpc_services.h"
#include "plugin/hclog_format.h"

namespace mps::plugin {
namespace {

constexpr const char* kHealthService = "plugin";

// Watches for SIGTERM (blocked in every thread, so only sigtimedwait sees
// it) and for the parent going away, until the stop is requested.
void WatchSignalsAndParent(StopSignal& stop, pid_t parent) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  const timespec tick{0, 100 * 1000 * 1000};
  while (!stop.requested()) {
    int sig = ::sigtimedwait(&set, nullptr, &tick);
    if (sig == SIGTERM) {
      stop.Request("SIGTERM");
    } else if (::getppid() != parent) {
      stop.Request("parent process exited");
    }
  }
}

// gRPC core writes its own log lines to stderr; as plain text the host
// would re-log them raw, so they go through the hclog logger instead.
void GrpcLogToHclog(gpr_log_func_args* args) {
  auto level = args->severity == GPR_LOG_SEVERITY_ERROR  ? spdlog::level::err
               : args->severity == GPR_LOG_SEVERITY_INFO ? spdlog::level::info
                                                         : spdlog::level::debug;
  LogFields(level, args->message != nullptr ? args->message : "",
            {{"component", "grpc"},
             {"grpc_file", args->file ? args->file : ""},
             {"grpc_line", args->line}});
}

void RemoveListenerFiles(const ListenerPlan& plan) {
  if (plan.network != ListenerPlan::Network::unix) return;
  std::error_code ec;
  std::filesystem::remove(plan.socket_path, ec);
  if (plan.private_dir) std::filesystem::remove(*plan.private_dir, ec);
}

}  // namespace

int RunPluginProcess(TargetBackend& backend, const PluginProcessOptions& options,
                     const GetEnv& env) {
  if (!MagicCookieValid(env)) {
    std::fputs(NotAPluginMessage(), stderr);
    std::fflush(stderr);
    return 1;
  }
  const pid_t parent = ::getppid();
  std::signal(SIGINT, SIG_IGN);
  std::signal(SIGPIPE, SIG_IGN);  // a closed stderr pipe must not kill us mid-stop
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  // Before any thread exists, so every thread inherits the mask.
  pthread_sigmask(SIG_BLOCK, &term, nullptr);
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);

  InstallHclogStderrLogger(options.module);
  gpr_set_log_function(GrpcLogToHclog);

  ListenerPlan plan;
  int handshake_fd = -1;
  try {
    handshake_fd = IsolateStdout();
    plan = PlanListener(env);
  } catch (const std::exception& e) {
    LogFields(spdlog::level::err, "cannot prepare the plugin listener", {{"error", e.what()}});
    return 1;
  }

  std::vector<std::string> skipped;
  int app_version = NegotiateAppProtocol(env("PLUGIN_PROTOCOL_VERSIONS"), &skipped);
  for (const auto& s : skipped) {
    LogFields(spdlog::level::warn, "ignoring bad PLUGIN_PROTOCOL_VERSIONS entry", {{"entry", s}});
  }

  StopSignal stop;
  BasePluginServiceImpl base(backend);
  TargetPluginServiceImpl target(backend);
  ControllerServiceImpl controller(stop);
  StdioServiceImpl stdio(stop);
  BrokerServiceImpl broker(stop);

  std::unique_ptr<grpc::Server> server;
  int tcp_port = 0;
  try {
    if (plan.network == ListenerPlan::Network::tcp) {
      tcp_port = FindFreeLoopbackPort(plan.min_port, plan.max_port);
    }
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    // Without this gRPC binds with SO_REUSEPORT and could share a port that
    // another process already serves.
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    builder.SetMaxReceiveMessageSize(64 * 1024 * 1024);
    builder.AddListeningPort(GrpcListenUri(plan, tcp_port), grpc::InsecureServerCredentials());
    builder.RegisterService(&base);
    builder.RegisterService(&target);
    builder.RegisterService(&controller);
    builder.RegisterService(&stdio);
    builder.RegisterService(&broker);
    server = builder.BuildAndStart();
    if (!server) throw ListenerError("cannot listen on " + GrpcListenUri(plan, tcp_port));
    ApplySocketGroup(plan);
    server->GetHealthCheckService()->SetServingStatus(kHealthService, true);
    WriteHandshake(handshake_fd, HandshakeLine(app_version, plan, tcp_port));
  } catch (const std::exception& e) {
    LogFields(spdlog::level::err, "cannot start serving", {{"error", e.what()}});
    if (server) server->Shutdown(std::chrono::system_clock::now());
    RemoveListenerFiles(plan);
    return 1;
  }
  LogFields(spdlog::level::debug, "plugin serving",
            {{"address", GrpcListenUri(plan, tcp_port)}, {"protocol_version", app_version}});

  std::thread watcher(WatchSignalsAndParent, std::ref(stop), parent);
  stop.Wait();
  LogFields(spdlog::level::debug, "plugin stopping", {{"reason", stop.reason()}});
  server->GetHealthCheckService()->SetServingStatus(kHealthService, false);
  if (options.on_stop) options.on_stop();
  server->Shutdown(std::chrono::system_clock::now() + options.grace);
  server->Wait();
  // Wake the watcher out of its sigtimedwait tick instead of waiting for it.
  pthread_kill(watcher.native_handle(), SIGTERM);
  watcher.join();
  RemoveListenerFiles(plan);
  spdlog::debug("plugin stopped");
  return 0;
}

}  // namespace mps::plugin
