// mpscale: operator CLI. `keygen` writes a Curve key pair; `instances` asks a
// multipass-hostd for its instances over the bus.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iomanip>
#include <iostream>

#include "bus/client.h"
#include "bus/keys.h"
#include "multipass/bus_protocol.h"

namespace {

int Keygen(const std::string& out, const std::string& name) {
  std::filesystem::create_directories(out);
  mps::bus::WriteKeyPair(out, name, mps::bus::GenerateKeyPair());
  std::cout << "wrote " << (std::filesystem::path(out) / (name + ".key")).string()
            << " (secret, 0600) and " << (std::filesystem::path(out) / (name + ".pub")).string()
            << "\n";
  return 0;
}

std::string Join(const nlohmann::json& list) {
  std::string out;
  for (const auto& v : list) out += (out.empty() ? "" : ",") + v.get<std::string>();
  return out.empty() ? "-" : out;
}

void PrintTable(const nlohmann::json& reply) {
  auto row = [](const std::string& a, const std::string& b, const std::string& c,
                const std::string& d) {
    std::cout << std::left << std::setw(24) << a << " " << std::setw(10) << b << " "
              << std::setw(16) << c << " " << d << "\n";
  };
  row("NAME", "STATE", "IPV4", "RELEASE");
  for (const auto& i : reply.value("instances", nlohmann::json::array()))
    row(i.value("name", ""), i.value("state", ""), Join(i.value("ipv4", nlohmann::json::array())),
        i.value("release", "").empty() ? "-" : i.value("release", ""));
  for (const auto& f : reply.value("in_flight", nlohmann::json::array()))
    row(f.value("name", ""), "launching", "-",
        f.value("image", "").empty() ? "-" : f.value("image", ""));
}

int Instances(const std::string& hostd, const std::string& server_key, const std::string& key,
              const std::string& prefix, bool json, int timeout_s) {
  mps::bus::ClientOptions options;
  options.endpoint = hostd;
  options.name = "mpscale";
  if (!server_key.empty() || !key.empty()) {
    if (server_key.empty() || key.empty()) {
      std::cerr << "mpscale: --server-key and --key go together\n";
      return 2;
    }
    mps::bus::CurveClientConfig curve;
    try {
      curve.server_public_z85 = mps::bus::ReadKeyFile(server_key);
    } catch (const std::exception& e) {
      std::cerr << "mpscale: --server-key: " << e.what() << "\n";
      return 2;
    }
    try {
      curve.secret_z85 = mps::bus::ReadSecretKeyFile(key).secret_z85;
    } catch (const std::exception& e) {
      std::cerr << "mpscale: --key: " << e.what() << "\n";
      return 2;
    }
    options.curve = curve;
  }
  mps::bus::BusContext context;
  mps::bus::BusClient client(context, options);
  try {
    auto reply = client.CallSync(std::string(mps::multipass::bus_protocol::kList),
                                 {{"prefix", prefix}}, {std::chrono::seconds(timeout_s), {}});
    if (json)
      std::cout << reply.dump(2) << "\n";
    else
      PrintTable(reply);
    return 0;
  } catch (const mps::bus::BusError& e) {
    switch (e.code()) {
      case mps::bus::ErrorCode::kUnreachable:
      case mps::bus::ErrorCode::kTimeout:
        std::cerr << "mpscale: multipass-hostd unreachable at " << hostd << ": " << e.what()
                  << "\n";
        break;
      case mps::bus::ErrorCode::kRefused:
        std::cerr << "mpscale: multipass-hostd at " << hostd
                  << " refused our key: add the .pub of --key " << key
                  << " to its --authorized-keys directory (" << e.what() << ")\n";
        break;
      default:
        std::cerr << "mpscale: " << hostd << ": " << e.what()
                  << (e.app_code().empty() ? "" : " [" + e.app_code() + "]") << "\n";
    }
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Multipass autoscaler operator tool"};
  app.require_subcommand(1);
  std::string out, name, hostd, server_key, key, prefix;
  bool json = false;
  int timeout_s = 5;
  auto* keygen = app.add_subcommand("keygen", "Write a Curve key pair (NAME.key 0600, NAME.pub)");
  keygen->add_option("--out", out, "Directory to write into")->required();
  keygen->add_option("--name", name, "Base name of the key files")->required();
  auto* instances = app.add_subcommand("instances", "List the instances a multipass-hostd manages");
  instances->add_option("--hostd", hostd, "hostd bus endpoint, e.g. tcp://10.1.2.1:7400")
      ->required();
  instances->add_option("--server-key", server_key, "hostd's Curve public key file (.pub)");
  instances->add_option("--key", key, "Our Curve secret key file (.key)");
  instances->add_option("--prefix", prefix, "Only instances named PREFIX-...");
  instances->add_flag("--json", json, "Print the reply as JSON");
  instances->add_option("--timeout", timeout_s, "Seconds to wait for hostd")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  spdlog::set_level(spdlog::level::warn);
  try {
    if (keygen->parsed()) return Keygen(out, name);
    return Instances(hostd, server_key, key, prefix, json, timeout_s);
  } catch (const std::exception& e) {
    std::cerr << "mpscale: " << e.what() << "\n";
    return 1;
  }
}
