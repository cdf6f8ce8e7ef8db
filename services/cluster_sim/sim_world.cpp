#include "cluster_sim/sim_world.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "cluster_sim/certificate_authority.h"
#include "cluster_sim/launch_validation.h"

namespace mps::sim {
namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(20);
constexpr int kDefaultTimeoutSeconds = 300;
// LaunchError.ErrorCodes and LaunchProgress.ProgressType numbers (reference §6).
constexpr int kInvalidMemSize = 1;
constexpr int kInvalidDiskSize = 2;
constexpr int kInvalidHostname = 3;
constexpr int kProgressImage = 0;
constexpr int kProgressWaiting = 3;
// StartError.ErrorCode numbers.
constexpr int kStartDoesNotExist = 1;
constexpr int kStartInstanceDeleted = 2;

SimError Error(grpc::StatusCode code, std::string message) {
  SimError e;
  e.code = code;
  e.message = std::move(message);
  return e;
}

std::string ManyErrors(const std::vector<std::string>& lines) {
  std::string text = "The following errors occurred:";
  for (const auto& l : lines) text += "\n" + l;
  return text;
}

bool IsOperative(InstanceState s) {
  return s == InstanceState::kStarting || s == InstanceState::kRunning ||
         s == InstanceState::kStopped;
}

bool UsesHost(InstanceState s) {
  return s == InstanceState::kStarting || s == InstanceState::kRunning;
}

}  // namespace

const char* ToString(InstanceState s) {
  switch (s) {
    case InstanceState::kPreparing:
      return "PREPARING";
    case InstanceState::kStarting:
      return "STARTING";
    case InstanceState::kRunning:
      return "RUNNING";
    case InstanceState::kStopped:
      return "STOPPED";
    case InstanceState::kDeleted:
      return "DELETED";
  }
  return "UNKNOWN";
}

SimWorld::SimWorld(WorldOptions options) : options_(std::move(options)) {
  if (!options_.empty_cert_store) {
    // A real host where someone has used the multipass CLI: its certificate
    // is in the store, so nobody else is auto-accepted.
    certificates_.insert(
        CertificateAuthority::SelfSignedClientCertificate("multipass-cli").certificate_pem);
    SaveCertificatesLocked();
  }
  ticker_ = std::thread([this] { TickerLoop(); });
}

SimWorld::Turn::Turn(SimWorld& world) : world_(world) {
  world_.rpc_thread_.lock();
  started_ = Clock::now();
}

SimWorld::Turn::~Turn() {
  Release();
}

void SimWorld::Turn::Release() {
  if (!held_) return;
  held_ = false;
  auto busy = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - started_);
  // Atomics, not mutex_: a launch releases its turn while holding mutex_.
  ++world_.rpc_calls_;
  world_.rpc_busy_ns_ += static_cast<std::uint64_t>(busy.count());
  world_.rpc_thread_.unlock();
}

void SimWorld::SshExec(std::size_t count) {
  if (count == 0) return;
  ssh_commands_ += count;
  if (options_.ssh_delay > Clock::duration::zero())
    std::this_thread::sleep_for(options_.ssh_delay * static_cast<long>(count));
}

bool SimWorld::VersionAtLeast(int major, int minor) const {
  int have_major = 0, have_minor = 0;
  if (std::sscanf(options_.daemon_version.c_str(), "%d.%d", &have_major, &have_minor) != 2)
    return true;
  return have_major > major || (have_major == major && have_minor >= minor);
}

void SimWorld::SetSshReachable(const std::string& name, bool reachable) {
  std::lock_guard lock(mutex_);
  if (auto it = instances_.find(name); it != instances_.end())
    it->second.view.ssh_reachable = reachable;
}

SimWorld::~SimWorld() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  ticker_.join();
}

// ---------------------------------------------------------------- auth

SimWorld::AuthResult SimWorld::AuthorizeCall(const std::string& cert, bool on_unix_socket) {
  std::lock_guard lock(mutex_);
  if (on_unix_socket && certificates_.empty()) {
    if (cert.empty()) return AuthResult::kInvalidCertificate;
    certificates_.insert(cert);
    ++stats_.auto_accepted_certificates;
    SaveCertificatesLocked();
    spdlog::info("multipass sim: first client on the unix socket auto-accepted");
    return AuthResult::kAllowed;
  }
  if (!cert.empty() && certificates_.count(cert) > 0) return AuthResult::kAllowed;
  ++stats_.unauthenticated_calls;
  return AuthResult::kUnauthenticated;
}

std::optional<SimError> SimWorld::Authenticate(const std::string& passphrase,
                                               const std::string& cert) {
  std::lock_guard lock(mutex_);
  if (!options_.passphrase || options_.passphrase->empty())
    return Error(grpc::StatusCode::FAILED_PRECONDITION,
                 "Passphrase is not set. Please `multipass set local.passphrase` with a trusted "
                 "client.");
  if (passphrase != *options_.passphrase)
    return Error(grpc::StatusCode::INVALID_ARGUMENT,
                 "Passphrase is not correct. Please try again.");
  if (cert.empty()) return Error(grpc::StatusCode::INTERNAL, "invalid certificate data");
  certificates_.insert(cert);
  SaveCertificatesLocked();
  return std::nullopt;
}

bool SimWorld::IsKnownCertificate(const std::string& cert) const {
  std::lock_guard lock(mutex_);
  return !cert.empty() && certificates_.count(cert) > 0;
}

void SimWorld::SaveCertificatesLocked() const {
  if (options_.state_dir.empty()) return;
  std::error_code ec;
  auto dir = options_.state_dir / "authenticated-certs";
  std::filesystem::create_directories(dir, ec);
  std::ofstream out(dir / "multipass_client_certs.pem", std::ios::trunc);
  for (const auto& c : certificates_) out << c;
  if (!out)
    spdlog::warn("multipass sim: cannot write {}", (dir / "multipass_client_certs.pem").string());
}

// ---------------------------------------------------------------- launch

std::optional<SimError> SimWorld::ValidateLaunchLocked(LaunchSpec& spec, std::uint64_t* memory,
                                                       std::uint64_t* disk, std::string* release) {
  if (spec.name.empty()) spec.name = NewPetNameLocked();
  std::vector<int> codes;
  auto mem = ParseSizeBytes(spec.memory.empty() ? "1G" : spec.memory);
  if (!mem || *mem < kMinMemoryBytes) codes.push_back(kInvalidMemSize);
  auto dsk = ParseSizeBytes(spec.disk.empty() ? "5G" : spec.disk);
  if (!dsk || *dsk < kMinDiskBytes) codes.push_back(kInvalidDiskSize);
  if (!IsValidInstanceName(spec.name)) codes.push_back(kInvalidHostname);
  if (!codes.empty()) {
    SimError e = Error(grpc::StatusCode::INVALID_ARGUMENT, "Invalid arguments supplied");
    e.launch_error_codes = std::move(codes);
    return e;
  }
  if (auto it = instances_.find(spec.name); it != instances_.end()) {
    bool preparing = it->second.view.state == InstanceState::kPreparing;
    return Error(
        grpc::StatusCode::INVALID_ARGUMENT,
        "instance \"" + spec.name + (preparing ? "\" is being prepared" : "\" already exists"));
  }
  auto image = options_.images.find(spec.image);
  if (image == options_.images.end())
    return Error(grpc::StatusCode::FAILED_PRECONDITION,
                 "Unable to find an image matching \"" + spec.image + "\"");
  *memory = *mem;
  *disk = *dsk;
  *release = image->second;
  if (spec.cpus < 1) spec.cpus = 1;
  return std::nullopt;
}

// multipassd itself does not check host capacity: the hypervisor fails to
// start the VM, and a start failure during launch is reported as ABORTED with
// the half-made instance removed (reference §7). We reproduce that outcome.
std::optional<SimError> SimWorld::CheckCapacityLocked(const Instance& candidate) const {
  std::uint64_t cpus = candidate.view.cpus;
  std::uint64_t memory = candidate.view.memory_bytes;
  for (const auto& [name, inst] : instances_) {
    if (name == candidate.view.name || !UsesHost(inst.view.state)) continue;
    cpus += inst.view.cpus;
    memory += inst.view.memory_bytes;
  }
  if (cpus <= options_.host_cpus && memory <= options_.host_memory_bytes) return std::nullopt;
  return Error(grpc::StatusCode::ABORTED,
               "failed to start \"" + candidate.view.name +
                   "\": not enough host resources (would use " + std::to_string(cpus) + " of " +
                   std::to_string(options_.host_cpus) + " CPUs and " + std::to_string(memory) +
                   " of " + std::to_string(options_.host_memory_bytes) + " bytes of memory)");
}

void SimWorld::BeginBootLocked(Instance& inst, Clock::duration delay) {
  inst.view.state = InstanceState::kStarting;
  if (inst.view.ipv4.empty()) inst.view.ipv4 = NextIpv4Locked();
  inst.ready_at = options_.hang_launches ? Clock::time_point::max() : Clock::now() + delay;
  changed_.notify_all();
}

std::optional<SimError> SimWorld::Launch(const LaunchSpec& request, const StepSink& emit,
                                         const CancelledFn& cancelled, Turn* turn) {
  LaunchSpec spec = request;
  // Applies to SSH-up and then again to cloud-init; the download is not counted.
  const auto timeout = std::chrono::seconds(spec.timeout_seconds > 0 ? spec.timeout_seconds
                                                                     : kDefaultTimeoutSeconds);
  std::unique_lock lock(mutex_);
  ++stats_.launch_requests;
  auto failed = [&](SimError e) -> std::optional<SimError> {
    ++stats_.launches_failed;
    return e;
  };
  // Removes the half-made instance, as the daemon does when preparation fails.
  auto abandon = [&](SimError e) -> std::optional<SimError> {
    instances_.erase(spec.name);
    changed_.notify_all();
    return failed(std::move(e));
  };
  auto gone = [&] { return abandon(Error(grpc::StatusCode::CANCELLED, "launch cancelled")); };

  std::uint64_t memory = 0, disk = 0;
  std::string release;
  if (auto err = ValidateLaunchLocked(spec, &memory, &disk, &release)) return failed(*err);

  Instance inst;
  inst.view.name = spec.name;
  inst.view.image = spec.image;
  inst.view.release = release;
  inst.view.cpus = static_cast<unsigned>(spec.cpus);
  inst.view.memory_bytes = memory;
  inst.view.disk_bytes = disk;
  inst.view.cloud_init_user_data = spec.cloud_init_user_data;
  inst.view.created_at = std::chrono::system_clock::now();
  instances_[spec.name] = inst;
  ++stats_.launches_created;
  // The request is taken: the rest runs asynchronously, off the RPC thread.
  if (turn != nullptr) turn->Release();
  const bool inject_failure =
      options_.fail_every_nth_launch > 0 && ++launch_counter_ % options_.fail_every_nth_launch == 0;
  const std::string& name = spec.name;

  // Streams one reply without holding the lock (a slow client must not stall the world).
  auto send = [&](LaunchStep step) {
    lock.unlock();
    bool ok = emit(step) && !cancelled();
    lock.lock();
    return ok;
  };

  if (!send({LaunchStep::kCreateMessage, "Creating " + name})) return gone();

  // Image cache: the first launch of a release downloads it; launches of the
  // same release meanwhile wait for that one download (default_vm_image_vault).
  {
    ImageCacheEntry& image = image_cache_[release];
    if (!image.cached && !image.downloading) {
      image.downloading = true;
      image.started = Clock::now();
      image.done_at = image.started + options_.image_download_delay;
      ++stats_.image_downloads;
    }
  }
  if (!image_cache_[release].cached) {
    int reported = -1;
    while (true) {
      ImageCacheEntry& image = image_cache_[release];
      auto now = Clock::now();
      if (now >= image.done_at) image = {true, false, image.started, image.done_at};
      const auto total = std::max(image.done_at - image.started, Clock::duration(1));
      int percent = image.cached ? 100 : static_cast<int>(100 * (now - image.started) / total);
      if (percent / 25 != reported / 25 || percent == 100) {
        reported = percent;
        if (!send({LaunchStep::kProgress, std::to_string(percent), kProgressImage})) return gone();
      }
      if (percent >= 100) break;
      const auto done_at = image_cache_[release].done_at;
      WaitLocked(lock, std::min(done_at, Clock::now() + total / 4), cancelled,
                 [] { return false; });
      if (cancelled()) return gone();
    }
  }

  if (!send({LaunchStep::kProgress, "-1", kProgressWaiting})) return gone();
  WaitLocked(lock, Clock::now() + options_.prep_delay, cancelled, [] { return false; });
  if (cancelled()) return gone();

  if (!send({LaunchStep::kCreateMessage, "Configuring " + name})) return gone();

  auto it = instances_.find(name);
  if (it == instances_.end()) return failed(Error(grpc::StatusCode::ABORTED, "instance vanished"));
  // multipassd says "Starting NAME", then asks the hypervisor to start the VM;
  // a failure there is FAILED_PRECONDITION and the instance is removed.
  auto cannot_start = CheckCapacityLocked(it->second);
  if (inject_failure) {
    ++stats_.injected_launch_failures;
    spdlog::info("multipass sim: injected start failure for {}", name);
    cannot_start = Error(
        grpc::StatusCode::FAILED_PRECONDITION,
        "failed to start \"" + name + "\": simulated hypervisor failure (--fail-every-nth-launch)");
  }
  if (cannot_start) {
    it->second.view.state = InstanceState::kStarting;  // never boots
    send({LaunchStep::kCreateMessage, "Starting " + name});
    cannot_start->code = grpc::StatusCode::FAILED_PRECONDITION;
    return abandon(*cannot_start);
  }
  // STARTING (and listed) before the client hears "Starting NAME".
  BeginBootLocked(it->second, options_.boot_delay);
  if (!send({LaunchStep::kCreateMessage, "Starting " + name}))
    return failed(Error(grpc::StatusCode::CANCELLED, "launch cancelled"));

  auto state = [&] {
    auto i = instances_.find(name);
    return i == instances_.end() ? InstanceState::kDeleted : i->second.view.state;
  };
  bool running = WaitLocked(lock, Clock::now() + timeout, cancelled,
                            [&] { return state() != InstanceState::kStarting; });
  if (cancelled()) return failed(Error(grpc::StatusCode::CANCELLED, "launch cancelled"));
  if (running && state() != InstanceState::kRunning)
    return failed(Error(grpc::StatusCode::ABORTED,
                        "instance \"" + name + "\" was deleted or stopped while starting"));
  // The daemon names the instance, then reports the timeout; the VM stays.
  auto timed_out = [&](const std::string& what) {
    send({LaunchStep::kInstanceName, name});
    return failed(Error(grpc::StatusCode::INVALID_ARGUMENT, ManyErrors({name + ": " + what})));
  };
  if (!running) return timed_out("timed out waiting for response");
  if (!send({LaunchStep::kReplyMessage, "Waiting for initialization to complete"}))
    return failed(Error(grpc::StatusCode::CANCELLED, "launch cancelled"));
  // cloud-init, with the timeout again.
  const auto now = Clock::now();
  const bool initialized = options_.cloud_init_delay <= timeout;
  WaitLocked(lock, now + std::min<Clock::duration>(options_.cloud_init_delay, timeout), cancelled,
             [] { return false; });
  if (cancelled()) return failed(Error(grpc::StatusCode::CANCELLED, "launch cancelled"));
  if (!initialized) return timed_out("timed out waiting for initialization to complete");
  if (!send({LaunchStep::kInstanceName, name}))
    return failed(Error(grpc::StatusCode::CANCELLED, "launch cancelled"));
  ++stats_.launches_succeeded;
  return std::nullopt;
}

bool SimWorld::WaitLocked(std::unique_lock<std::mutex>& lock, Clock::time_point deadline,
                          const CancelledFn& cancelled, const std::function<bool()>& pred) {
  while (!pred()) {
    if (stopping_ || cancelled()) return false;
    auto now = Clock::now();
    if (now >= deadline) return false;
    // Cancellation is only visible by polling the call context.
    changed_.wait_until(lock, std::min(deadline, now + kPollInterval));
  }
  return true;
}

void SimWorld::TickerLoop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    auto next = Clock::time_point::max();
    struct Due {
      std::string name, user_data;
      bool first_boot;
    };
    std::vector<Due> due;
    const auto now = Clock::now();
    for (auto& [name, inst] : instances_) {
      if (inst.view.state != InstanceState::kStarting) continue;
      if (inst.ready_at <= now)
        due.push_back({name, inst.view.cloud_init_user_data, inst.view.boots == 0});
      else
        next = std::min(next, inst.ready_at);
    }
    if (!due.empty()) {
      // The hook runs before RUNNING becomes visible, so whoever sees RUNNING
      // (a launch call returning OK) also sees the hook's effect.
      RunningHook hook = on_running_;
      lock.unlock();
      for (const auto& d : due)
        if (hook) hook(d.name, d.user_data, d.first_boot);
      lock.lock();
      for (const auto& d : due) {
        auto it = instances_.find(d.name);
        if (it == instances_.end() || it->second.view.state != InstanceState::kStarting) continue;
        it->second.view.state = InstanceState::kRunning;
        ++it->second.view.boots;
        const auto& name = d.name;
        spdlog::info("multipass sim: {} is RUNNING", name);
      }
      changed_.notify_all();
      continue;
    }
    if (next == Clock::time_point::max())
      changed_.wait(lock);
    else
      changed_.wait_until(lock, next);
  }
}

// ---------------------------------------------------------------- list / info

std::vector<InstanceView> SimWorld::List() const {
  std::lock_guard lock(mutex_);
  std::vector<InstanceView> out;
  for (const auto& [name, inst] : instances_)
    if (IsOperative(inst.view.state)) out.push_back(inst.view);
  for (const auto& [name, inst] : instances_)
    if (inst.view.state == InstanceState::kDeleted) out.push_back(inst.view);
  return out;
}

std::optional<SimError> SimWorld::Info(const std::vector<std::string>& names,
                                       std::vector<InstanceView>* out) const {
  if (names.empty()) {
    *out = List();
    return std::nullopt;
  }
  std::lock_guard lock(mutex_);
  std::vector<std::string> missing;
  for (const auto& n : names) {
    auto it = instances_.find(n);
    if (it == instances_.end() || it->second.view.state == InstanceState::kPreparing)
      missing.push_back("instance \"" + n + "\" does not exist");
    else
      out->push_back(it->second.view);
  }
  if (!missing.empty()) {
    out->clear();
    return Error(grpc::StatusCode::NOT_FOUND, ManyErrors(missing));
  }
  return std::nullopt;
}

// ---------------------------------------------------------------- delete / purge

std::optional<SimError> SimWorld::Delete(const std::vector<std::string>& names, bool purge,
                                         std::vector<std::string>* purged) {
  std::vector<std::string> left_nomad;
  {
    std::lock_guard lock(mutex_);
    ++stats_.delete_requests;
    std::vector<std::string> selected;
    if (names.empty()) {
      // Exactly like multipassd: no names selects every instance.
      ++stats_.empty_delete_requests;
      for (const auto& [name, inst] : instances_)
        if (inst.view.state != InstanceState::kPreparing) selected.push_back(name);
    } else {
      std::vector<std::string> missing;
      for (const auto& n : names) {
        auto it = instances_.find(n);
        if (it == instances_.end() || it->second.view.state == InstanceState::kPreparing)
          missing.push_back("instance \"" + n + "\" does not exist");
        else if (std::find(selected.begin(), selected.end(), n) == selected.end())
          selected.push_back(n);
      }
      // Names are checked before anything is deleted.
      if (!missing.empty()) return Error(grpc::StatusCode::NOT_FOUND, ManyErrors(missing));
    }
    for (const auto& n : selected) {
      auto it = instances_.find(n);
      if (it->second.view.state != InstanceState::kDeleted) left_nomad.push_back(n);
      if (purge) {
        instances_.erase(it);
        purged->push_back(n);
      } else {
        it->second.view.state = InstanceState::kDeleted;
        it->second.ready_at = Clock::time_point::max();
      }
    }
    changed_.notify_all();
  }
  DeletedHook hook;
  {
    std::lock_guard lock(mutex_);
    hook = on_deleted_;
  }
  for (const auto& n : left_nomad) {
    spdlog::info("multipass sim: {} deleted{}", n, purge ? " and purged" : "");
    if (hook) hook(n);
  }
  return std::nullopt;
}

std::vector<std::string> SimWorld::PurgeDeleted() {
  std::lock_guard lock(mutex_);
  ++stats_.purge_requests;
  std::vector<std::string> purged;
  for (auto it = instances_.begin(); it != instances_.end();) {
    if (it->second.view.state == InstanceState::kDeleted) {
      purged.push_back(it->first);
      it = instances_.erase(it);
    } else {
      ++it;
    }
  }
  return purged;
}

// ---------------------------------------------------------------- start / stop

std::optional<SimError> SimWorld::Start(const std::vector<std::string>& names, int timeout_seconds,
                                        const CancelledFn& cancelled, Turn* turn) {
  const auto deadline =
      Clock::now() +
      std::chrono::seconds(timeout_seconds > 0 ? timeout_seconds : kDefaultTimeoutSeconds);
  std::unique_lock lock(mutex_);
  std::vector<std::string> selected = names;
  if (selected.empty())
    for (const auto& [name, inst] : instances_)
      if (IsOperative(inst.view.state)) selected.push_back(name);
  // multipassd answers a missing or deleted name with this one message; the
  // names are in the StartError details.
  SimError err = Error(grpc::StatusCode::ABORTED, "instance(s) missing");
  for (const auto& n : selected) {
    auto it = instances_.find(n);
    if (it == instances_.end() || it->second.view.state == InstanceState::kPreparing)
      err.start_errors[n] = kStartDoesNotExist;
    else if (it->second.view.state == InstanceState::kDeleted)
      err.start_errors[n] = kStartInstanceDeleted;
  }
  if (!err.start_errors.empty()) return err;
  for (const auto& n : selected) {
    Instance& inst = instances_[n];
    if (inst.view.state != InstanceState::kStopped) continue;
    if (auto cap = CheckCapacityLocked(inst)) {
      // StartError::OTHER is never sent: the failure is FAILED_PRECONDITION.
      cap->code = grpc::StatusCode::FAILED_PRECONDITION;
      return cap;
    }
    if (options_.fail_every_nth_start > 0 &&
        ++start_counter_ % options_.fail_every_nth_start == 0) {
      ++stats_.injected_start_failures;
      spdlog::info("multipass sim: injected start failure for {}", n);
      return Error(
          grpc::StatusCode::FAILED_PRECONDITION,
          "failed to start \"" + n + "\": simulated hypervisor failure (fail_every_nth_start)");
    }
    BeginBootLocked(inst, options_.start_delay);
  }
  if (turn != nullptr) turn->Release();
  bool done = WaitLocked(lock, deadline, cancelled, [&] {
    for (const auto& n : selected) {
      auto it = instances_.find(n);
      if (it != instances_.end() && it->second.view.state == InstanceState::kStarting) return false;
    }
    return true;
  });
  if (!done && cancelled()) return Error(grpc::StatusCode::CANCELLED, "start cancelled");
  if (!done) {
    // As multipassd: INVALID_ARGUMENT, and the instances stay (starting).
    std::vector<std::string> late;
    for (const auto& n : selected) {
      auto it = instances_.find(n);
      if (it != instances_.end() && it->second.view.state == InstanceState::kStarting)
        late.push_back(n + ": timed out waiting for response");
    }
    return Error(grpc::StatusCode::INVALID_ARGUMENT, ManyErrors(late));
  }
  return std::nullopt;
}

std::optional<SimError> SimWorld::Stop(const std::vector<std::string>& names) {
  std::vector<std::string> stopped;
  std::optional<SimError> refusal;
  StoppedHook hook;
  {
    std::lock_guard lock(mutex_);
    std::vector<std::string> selected = names;
    if (selected.empty())
      for (const auto& [name, inst] : instances_)
        if (IsOperative(inst.view.state)) selected.push_back(name);
    // Every bad name is reported; the code is the last kind found (deleted
    // names are listed before missing ones, as the daemon's selection does).
    std::vector<std::string> deleted, missing;
    for (const auto& n : selected) {
      auto it = instances_.find(n);
      if (it == instances_.end() || it->second.view.state == InstanceState::kPreparing)
        missing.push_back("instance \"" + n + "\" does not exist");
      else if (it->second.view.state == InstanceState::kDeleted)
        deleted.push_back("instance \"" + n + "\" is deleted");
    }
    if (!deleted.empty() || !missing.empty()) {
      std::vector<std::string> lines = deleted;
      lines.insert(lines.end(), missing.begin(), missing.end());
      return Error(
          missing.empty() ? grpc::StatusCode::INVALID_ARGUMENT : grpc::StatusCode::NOT_FOUND,
          ManyErrors(lines));
    }
    // The daemon shuts the selected VMs down one by one and stops at the
    // first that refuses: those before it are stopped.
    for (const auto& n : selected) {
      Instance& inst = instances_[n];
      if (inst.view.state == InstanceState::kStopped) continue;
      if (inst.view.state == InstanceState::kStarting) {
        refusal = Error(grpc::StatusCode::FAILED_PRECONDITION,
                        "Cannot shut down instance " + n + " while starting.");
        break;
      }
      inst.view.state = InstanceState::kStopped;
      inst.ready_at = Clock::time_point::max();
      stopped.push_back(n);
    }
    changed_.notify_all();
    hook = on_stopped_;
  }
  for (const auto& n : stopped) {
    spdlog::info("multipass sim: {} stopped", n);
    if (hook) hook(n);
  }
  return refusal;
}

// ---------------------------------------------------------------- misc

void SimWorld::OnInstanceRunning(RunningHook hook) {
  std::lock_guard lock(mutex_);
  on_running_ = std::move(hook);
}

void SimWorld::OnInstanceDeleted(DeletedHook hook) {
  std::lock_guard lock(mutex_);
  on_deleted_ = std::move(hook);
}

void SimWorld::OnInstanceStopped(StoppedHook hook) {
  std::lock_guard lock(mutex_);
  on_stopped_ = std::move(hook);
}

void SimWorld::SetFailEveryNthLaunch(unsigned n) {
  std::lock_guard lock(mutex_);
  options_.fail_every_nth_launch = n;
  launch_counter_ = 0;
}

void SimWorld::SetFailEveryNthStart(unsigned n) {
  std::lock_guard lock(mutex_);
  options_.fail_every_nth_start = n;
  start_counter_ = 0;
}

void SimWorld::SetHangLaunches(bool hang) {
  std::lock_guard lock(mutex_);
  options_.hang_launches = hang;
}

void SimWorld::CountRestart() {
  std::lock_guard lock(mutex_);
  ++stats_.restarts;
}

WorldSnapshot SimWorld::Snapshot() const {
  std::lock_guard lock(mutex_);
  WorldSnapshot snap;
  for (const auto& [name, inst] : instances_) snap.instances.push_back(inst.view);
  snap.stats = stats_;
  snap.stats.rpc_calls = rpc_calls_;
  snap.stats.rpc_busy_ns = rpc_busy_ns_;
  snap.stats.ssh_commands = ssh_commands_;
  snap.authorized_certificates = certificates_.size();
  return snap;
}

std::string SimWorld::NextIpv4Locked() {
  std::uint64_t n = ip_counter_++;
  return "10.0." + std::to_string(n / 250) + "." + std::to_string(n % 250 + 2);
}

std::string SimWorld::NewPetNameLocked() {
  static const char* const kAdjectives[] = {"brave", "calm",  "eager", "gentle", "jolly",
                                            "keen",  "lucid", "merry", "nimble", "proud"};
  static const char* const kAnimals[] = {"otter", "heron", "lynx",  "marten", "ibex",
                                         "finch", "bison", "gecko", "koala",  "puffin"};
  while (true) {
    std::uint64_t n = pet_counter_++;
    std::string name = std::string(kAdjectives[n % 10]) + "-" + kAnimals[(n / 10) % 10];
    if (n >= 100) name += "-" + std::to_string(n / 100);
    if (instances_.count(name) == 0) return name;
  }
}

}  // namespace mps::sim
