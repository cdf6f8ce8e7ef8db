#pragma once

#include <filesystem>
#include <string>

#include "support/temp_dir.h"
#include "x509/certificates.h"

// Test-only PKI made at test start (lib/x509): a CA, a server certificate it
// signs (SAN localhost + 127.0.0.1), and keys in the forms a user may give.
namespace mps::multipass::testing {

using x509::KeyForm;
using x509::KeyType;

struct KeyPair {
  std::string cert_pem;
  std::string key_pem;  // PKCS#8 unless asked otherwise
};

struct TestPki {
  KeyPair ca;
  KeyPair server;  // signed by ca, DNS:localhost, IP:127.0.0.1
};
TestPki MakeTestPki();

// A self-signed client certificate and its key in the requested form.
KeyPair MakeClientPair(KeyType type, KeyForm form);

using TempDir = ::mps::testing::TempDir;

void WriteFile(const std::filesystem::path& file, const std::string& text);

}  // namespace mps::multipass::testing
