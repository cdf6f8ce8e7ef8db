#pragma once

#include <filesystem>
#include <string>

namespace mps::multipass {

// The TLS client certificate multipassd knows us by (its cert store matches the
// exact certificate). key_pem is always PKCS#8 PEM, the form gRPC accepts.
struct ClientIdentity {
  std::string cert_pem;
  std::string key_pem;

  // Reads a PEM certificate (chain allowed; the first is ours) and a PEM EC or
  // RSA private key in PKCS#8 or traditional form; checks the key matches the
  // certificate. Throws MultipassError(invalid_config) naming the file.
  static ClientIdentity FromFiles(const std::filesystem::path& cert_file,
                                  const std::filesystem::path& key_file);

  // A fresh self-signed EC P-256 client certificate (CN = random UUID,
  // clientAuth, valid one year), as the multipass CLI makes for itself.
  static ClientIdentity Generate();

  // The identity kept in state_dir (multipass_client_cert.pem +
  // multipass_client_key.pem), generated and written (key 0600) on first use,
  // so the daemon's cert store keeps recognising us across restarts.
  static ClientIdentity LoadOrCreate(const std::filesystem::path& state_dir);
};

}  // namespace mps::multipass
