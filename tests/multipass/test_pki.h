#pragma once

#include <filesystem>
#include <string>

// Test-only PKI built with OpenSSL at test start: a CA, a server certificate
// it signs (SAN localhost + 127.0.0.1), and keys in the forms a user may give.
namespace mps::multipass::testing {

struct KeyPair {
  std::string cert_pem;
  std::string key_pem;  // PKCS#8
};

struct TestPki {
  KeyPair ca;
  KeyPair server;  // signed by ca, DNS:localhost, IP:127.0.0.1
};
TestPki MakeTestPki();

enum class KeyAlgo { ec, rsa };
enum class KeyForm { pkcs8, traditional };
// A self-signed client certificate and its key in the requested form.
KeyPair MakeClientPair(KeyAlgo algo, KeyForm form);

// A fresh directory under /tmp, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

void WriteFile(const std::filesystem::path& file, const std::string& text);

}  // namespace mps::multipass::testing
