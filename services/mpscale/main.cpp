// mpscale: operator CLI. `keygen` writes a Curve key pair; `instances` asks a
// multipass-hostd for its instances; `hosts` asks hostds for their capacity; `status` and `events`
// read multipass-target's status endpoint; `doctor` checks the way to multipassd and Nomad step by
// step.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>

#include "bus/keys.h"
#include "mpscale/commands.h"
#include "mpscale/doctor.h"

namespace {

int Keygen(const std::string& out, const std::string& name) {
  std::filesystem::create_directories(out);
  mps::bus::WriteKeyPair(out, name, mps::bus::GenerateKeyPair());
  std::cout << "wrote " << (std::filesystem::path(out) / (name + ".key")).string()
            << " (secret, 0600) and " << (std::filesystem::path(out) / (name + ".pub")).string()
            << "\n";
  return 0;
}

// The endpoint, key and timeout flags every talking command has.
void AddEndpointFlags(CLI::App* command, mps::mpscale::EndpointFlags& flags,
                      const std::string& address_flag, const std::string& address_help,
                      const std::string& peer) {
  command->add_option(address_flag, flags.address, address_help)->required();
  command->add_option("--server-key", flags.keys.server_key,
                      peer + "'s Curve public key file (.pub)");
  command->add_option("--key", flags.keys.key, "Our Curve secret key file (.key)");
  command->add_option("--timeout", flags.timeout_s, "Seconds to wait for " + peer)
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Multipass autoscaler operator tool"};
  app.require_subcommand(1);
  std::string out, name, prefix, pool;
  bool json = false, follow = false;
  std::uint64_t since = 0;
  mps::mpscale::EndpointFlags flags;

  auto* keygen = app.add_subcommand("keygen", "Write a Curve key pair (NAME.key 0600, NAME.pub)");
  keygen->add_option("--out", out, "Directory to write into")->required();
  keygen->add_option("--name", name, "Base name of the key files")->required();

  auto* instances = app.add_subcommand("instances", "List the instances a multipass-hostd manages");
  AddEndpointFlags(instances, flags, "--hostd", "hostd bus endpoint, e.g. tcp://10.1.2.1:7400",
                   "hostd");
  instances->add_option("--prefix", prefix, "Only instances named PREFIX-...");
  instances->add_flag("--json", json, "Print the reply as JSON");

  std::vector<std::string> hostd_addresses;
  std::string hosts_file;
  auto* hosts = app.add_subcommand(
      "hosts", "List Multipass hosts with their capacity, allocation, headroom and health");
  hosts->add_option("--hostd", hostd_addresses,
                    "hostd bus endpoint, e.g. tcp://10.1.2.1:7400 (repeatable; every one with "
                    "--server-key)");
  auto* hosts_file_option = hosts->add_option(
      "--hosts-file", hosts_file, "The plugin's hosts_file: every host with its own server key");
  hosts->add_option("--server-key", flags.keys.server_key,
                    "hostd's Curve public key file (.pub), with --hostd");
  hosts->add_option("--key", flags.keys.key, "Our Curve secret key file (.key)");
  hosts->add_option("--timeout", flags.timeout_s, "Seconds to wait for the hosts")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  hosts->add_flag("--json", json, "Print the hosts as JSON");

  const std::string status_help = "multipass-target's status_address, e.g. tcp://10.1.2.1:7500";
  auto* status = app.add_subcommand("status", "Show multipass-target's pools");
  AddEndpointFlags(status, flags, "--address", status_help, "multipass-target");
  auto* status_pool = status->add_option("--pool", pool, "Only this pool");
  status->add_flag("--json", json, "Print the reply as JSON");

  auto* events = app.add_subcommand("events", "Print multipass-target's scaling events");
  AddEndpointFlags(events, flags, "--address", status_help, "multipass-target");
  events->add_flag("--follow", follow, "Keep printing new events until SIGINT/SIGTERM");
  auto* since_option =
      events
          ->add_option("--since", since,
                       "Only events after this sequence number (default: all retained; "
                       "with --follow: only new ones)")
          ->check(CLI::Range(std::uint64_t{0}, std::uint64_t{1} << 62));
  auto* events_pool = events->add_option("--pool", pool, "Only events of this pool");
  events->add_flag("--json", json, "One JSON object per line");
  mps::mpscale::DoctorOptions doctor_options;
  std::string nomad_address, node_class, datacenter, node_pool;
  bool skip_multipass = false;
  auto* doctor = app.add_subcommand(
      "doctor",
      "Check step by step that multipassd and Nomad accept us as hostd and the plugin need, "
      "printing the fix for what fails (exit 1)");
  auto& mp = doctor_options.multipass;
  doctor->add_option("--multipass-address", mp.address,
                     "multipassd, unix:/path or host:port (default: the snap's socket)");
  doctor->add_option("--multipass-cert", mp.client_cert_file,
                     "hostd's client certificate PEM (with --multipass-key)");
  doctor->add_option("--multipass-key", mp.client_key_file, "its private key PEM");
  doctor->add_option("--multipass-ca", mp.root_ca_file, "CA to verify multipassd's certificate");
  doctor
      ->add_option("--multipass-server-name", mp.server_name,
                   "name expected in multipassd's certificate")
      ->capture_default_str();
  doctor->add_option("--multipass-passphrase-file", doctor_options.passphrase_file,
                     "file holding multipassd's local.passphrase (as given to hostd)");
  doctor->add_option("--state-dir", mp.state_dir,
                     "hostd's --state-dir, where its generated client certificate is kept");
  doctor->add_flag("--skip-multipass", skip_multipass, "Check only Nomad");
  auto* nomad_address_option = doctor->add_option(
      "--nomad-address", nomad_address, "Nomad's HTTP API (default: NOMAD_ADDR; unset: skipped)");
  doctor->add_option("--nomad-token-file", doctor_options.nomad_token_file,
                     "file holding the autoscaler's Nomad token (default: NOMAD_TOKEN)");
  doctor->add_option("--nomad-region", doctor_options.nomad_region, "Nomad region");
  doctor->add_option("--nomad-ca-cert", doctor_options.nomad_ca_cert, "CA bundle for Nomad's TLS");
  doctor->add_flag("--nomad-skip-verify", doctor_options.nomad_skip_verify,
                   "Do not verify Nomad's certificate");
  auto* node_class_option = doctor->add_option(
      "--node-class", node_class, "The pool's node_class: probe its allocations' namespaces");
  auto* datacenter_option = doctor->add_option("--datacenter", datacenter, "The pool's datacenter");
  auto* node_pool_option = doctor->add_option("--node-pool", node_pool, "The pool's node_pool");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Usage errors exit 2 (CLI11's own codes say nothing to scripts); --help exits 0.
    return app.exit(e) == 0 ? 0 : 2;
  }
  spdlog::set_level(spdlog::level::warn);
  try {
    if (keygen->parsed()) return Keygen(out, name);
    if (doctor->parsed()) {
      doctor_options.check_multipass = !skip_multipass;
      if (nomad_address_option->count()) doctor_options.nomad_address = nomad_address;
      if (node_class_option->count()) doctor_options.node_class = node_class;
      if (datacenter_option->count()) doctor_options.datacenter = datacenter;
      if (node_pool_option->count()) doctor_options.node_pool = node_pool;
      spdlog::set_level(spdlog::level::err);  // the doctor reports warnings itself
      return mps::mpscale::RunDoctor(doctor_options, std::cout);
    }
    if (instances->parsed()) return mps::mpscale::RunInstances(flags, prefix, json);
    if (hosts->parsed())
      return mps::mpscale::RunHosts(
          hostd_addresses, hosts_file_option->count() ? std::optional(hosts_file) : std::nullopt,
          flags, json);
    if (status->parsed())
      return mps::mpscale::RunStatus(
          flags, status_pool->count() ? std::optional(pool) : std::nullopt, json);
    return mps::mpscale::RunEvents(
        flags, since_option->count() ? std::optional(since) : std::nullopt, follow,
        events_pool->count() ? std::optional(pool) : std::nullopt, json);
  } catch (const std::exception& e) {
    std::cerr << "mpscale: " << e.what() << "\n";
    return 1;
  }
}
