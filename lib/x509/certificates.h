#pragma once
// X.509 keys and certificates made with OpenSSL, in PEM. One place for every
// certificate the project makes: the client identity multipass-target and
// multipass-hostd present to multipassd, the root CA and server certificate
// of the simulated multipassd, and what the tests need besides.
#include <openssl/types.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace mps::x509 {

// An OpenSSL step failed; the message names the step and OpenSSL's reason.
class X509Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class KeyType { ec_p256, rsa_2048 };
// PEM "PRIVATE KEY" (PKCS#8, what gRPC takes) or "EC/RSA PRIVATE KEY".
enum class KeyForm { pkcs8, traditional };

class PrivateKey {
 public:
  explicit PrivateKey(KeyType type = KeyType::ec_p256);  // a fresh key
  ~PrivateKey();
  PrivateKey(PrivateKey&&) noexcept;
  PrivateKey& operator=(PrivateKey&&) noexcept;

  std::string Pem(KeyForm form = KeyForm::pkcs8) const;
  EVP_PKEY* get() const { return key_.get(); }

 private:
  struct Free {
    void operator()(EVP_PKEY* key) const;
  };
  std::unique_ptr<EVP_PKEY, Free> key_;
};

// What a certificate says. Every certificate gets a random positive 128-bit
// serial, validity from now, a critical basicConstraints and a subject key
// identifier; one issued by a CA also names the CA's key.
struct CertificateSpec {
  std::string common_name;
  std::string organization;  // subject O; none when empty
  long valid_days = 365;
  bool ca = false;                        // CA:TRUE, else CA:FALSE
  std::string key_usage;                  // e.g. "critical,keyCertSign,cRLSign"; none when empty
  std::string extended_key_usage;         // e.g. "serverAuth", "clientAuth"; none when empty
  std::vector<std::string> dns_names;     // subjectAltName DNS entries
  std::vector<std::string> ip_addresses;  // subjectAltName IP entries
};

class Certificate {
 public:
  // A certificate for `key`, signed with `key` itself.
  static Certificate SelfSigned(const CertificateSpec& spec, const PrivateKey& key);
  // A certificate for `key`, signed by the CA `issuer` with `issuer_key`.
  static Certificate Issued(const CertificateSpec& spec, const PrivateKey& key,
                            const Certificate& issuer, const PrivateKey& issuer_key);
  ~Certificate();
  Certificate(Certificate&&) noexcept;
  Certificate& operator=(Certificate&&) noexcept;

  std::string Pem() const;

 private:
  struct Free {
    void operator()(X509* cert) const;
  };
  explicit Certificate(X509* cert);
  std::unique_ptr<X509, Free> cert_;
};

}  // namespace mps::x509
