#include "test_pki.h"

#include <fstream>
#include <stdexcept>

namespace mps::multipass::testing {

TestPki MakeTestPki() {
  x509::CertificateSpec ca_spec;
  ca_spec.common_name = "Test Root CA";
  ca_spec.valid_days = 1;
  ca_spec.ca = true;
  ca_spec.key_usage = "critical,keyCertSign,cRLSign";
  x509::PrivateKey ca_key;
  auto ca = x509::Certificate::SelfSigned(ca_spec, ca_key);

  x509::CertificateSpec server_spec;
  server_spec.common_name = "localhost";
  server_spec.valid_days = 1;
  server_spec.extended_key_usage = "serverAuth";
  server_spec.dns_names = {"localhost"};
  server_spec.ip_addresses = {"127.0.0.1"};
  x509::PrivateKey server_key;
  auto server = x509::Certificate::Issued(server_spec, server_key, ca, ca_key);
  return TestPki{{ca.Pem(), ca_key.Pem()}, {server.Pem(), server_key.Pem()}};
}

KeyPair MakeClientPair(KeyType type, KeyForm form) {
  x509::CertificateSpec spec;
  spec.common_name = "test-client";
  spec.valid_days = 1;
  x509::PrivateKey key(type);
  return KeyPair{x509::Certificate::SelfSigned(spec, key).Pem(), key.Pem(form)};
}

void WriteFile(const std::filesystem::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out.flush()) throw std::runtime_error("test PKI: cannot write " + file.string());
}

}  // namespace mps::multipass::testing
