#pragma once
// Certificates the way multipassd >= 1.16 makes them: a root CA signs the
// server certificate, and clients present certificates of their own. Tests
// reuse this to mint client certificates. Built on lib/x509.
#include <memory>
#include <string>
#include <vector>

#include "x509/certificates.h"

namespace mps::sim {

// An OpenSSL step failed; the message names the step and OpenSSL's reason.
using CertificateError = x509::X509Error;

struct KeyCertPair {
  std::string private_key_pem;  // PKCS#8
  std::string certificate_pem;
};

class CertificateAuthority {
 public:
  // A fresh EC P-256 root (CA:TRUE, 10 years) named `common_name`.
  explicit CertificateAuthority(const std::string& common_name = "Multipass Root CA");
  ~CertificateAuthority();
  CertificateAuthority(CertificateAuthority&&) noexcept;
  CertificateAuthority& operator=(CertificateAuthority&&) noexcept;

  const std::string& root_certificate_pem() const;

  // EKU serverAuth, SAN = the DNS names and IP addresses given.
  KeyCertPair IssueServerCertificate(const std::string& common_name,
                                     const std::vector<std::string>& dns_names,
                                     const std::vector<std::string>& ip_addresses) const;

  // Self-signed client certificate, as the multipass CLI makes for itself.
  static KeyCertPair SelfSignedClientCertificate(const std::string& common_name);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mps::sim
