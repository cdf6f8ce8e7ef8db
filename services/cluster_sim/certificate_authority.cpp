#include "cluster_sim/certificate_authority.h"

namespace mps::sim {

struct CertificateAuthority::Impl {
  x509::PrivateKey key;
  x509::Certificate cert;
  std::string cert_pem;
};

namespace {

KeyCertPair Pem(const x509::PrivateKey& key, const x509::Certificate& cert) {
  return {key.Pem(), cert.Pem()};
}

}  // namespace

CertificateAuthority::CertificateAuthority(const std::string& common_name) {
  x509::CertificateSpec spec;
  spec.common_name = common_name;
  spec.organization = "Canonical";
  spec.valid_days = 3650;
  spec.ca = true;
  spec.key_usage = "critical,keyCertSign,cRLSign,digitalSignature";
  x509::PrivateKey key;
  auto cert = x509::Certificate::SelfSigned(spec, key);
  std::string pem = cert.Pem();
  impl_ = std::make_unique<Impl>(Impl{std::move(key), std::move(cert), std::move(pem)});
}

CertificateAuthority::~CertificateAuthority() = default;
CertificateAuthority::CertificateAuthority(CertificateAuthority&&) noexcept = default;
CertificateAuthority& CertificateAuthority::operator=(CertificateAuthority&&) noexcept = default;

const std::string& CertificateAuthority::root_certificate_pem() const {
  return impl_->cert_pem;
}

KeyCertPair CertificateAuthority::IssueServerCertificate(
    const std::string& common_name, const std::vector<std::string>& dns_names,
    const std::vector<std::string>& ip_addresses) const {
  x509::CertificateSpec spec;
  spec.common_name = common_name;
  spec.organization = "Canonical";
  spec.valid_days = 825;
  spec.key_usage = "critical,digitalSignature,keyEncipherment";
  spec.extended_key_usage = "serverAuth";
  spec.dns_names = dns_names;
  spec.ip_addresses = ip_addresses;
  x509::PrivateKey key;
  return Pem(key, x509::Certificate::Issued(spec, key, impl_->cert, impl_->key));
}

KeyCertPair CertificateAuthority::SelfSignedClientCertificate(const std::string& common_name) {
  x509::CertificateSpec spec;
  spec.common_name = common_name;
  spec.organization = "Canonical";
  spec.extended_key_usage = "clientAuth";
  x509::PrivateKey key;
  return Pem(key, x509::Certificate::SelfSigned(spec, key));
}

}  // namespace mps::sim
