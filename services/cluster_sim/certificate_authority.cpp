#include "cluster_sim/certificate_authority.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace mps::sim {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using BioPtr = std::unique_ptr<BIO, BioFree>;

[[noreturn]] void Fail(const std::string& step) {
  char buf[256] = "no OpenSSL error queued";
  if (unsigned long e = ERR_get_error(); e != 0) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  throw CertificateError("certificate: " + step + " failed: " + buf);
}

void Check(int ok, const std::string& step) {
  if (ok != 1) Fail(step);
}

PkeyPtr NewEcKey() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) Fail("EVP_EC_gen(P-256)");
  return key;
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len));
}

std::string KeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) Fail("BIO_new");
  Check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr),
        "PEM_write_bio_PrivateKey");
  return BioText(bio.get());
}

std::string CertPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) Fail("BIO_new");
  Check(PEM_write_bio_X509(bio.get(), cert), "PEM_write_bio_X509");
  return BioText(bio.get());
}

void AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) Fail("extension " + std::string(OBJ_nid2sn(nid)) + "=" + value);
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  Check(ok, "X509_add_ext");
}

// A certificate for `key` with a random serial and the given validity, not yet signed.
X509Ptr NewCertificate(EVP_PKEY* key, const std::string& common_name, long valid_days,
                       bool with_organization) {
  X509Ptr cert(X509_new());
  if (!cert) Fail("X509_new");
  Check(X509_set_version(cert.get(), 2), "X509_set_version");
  unsigned char serial_bytes[16];
  Check(RAND_bytes(serial_bytes, sizeof serial_bytes), "RAND_bytes");
  serial_bytes[0] &= 0x7f;  // keep the serial positive
  BIGNUM* bn = BN_bin2bn(serial_bytes, sizeof serial_bytes, nullptr);
  if (bn == nullptr) Fail("BN_bin2bn");
  ASN1_INTEGER* serial = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  if (serial == nullptr) Fail("BN_to_ASN1_INTEGER");
  if (X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0) == nullptr) Fail("notBefore");
  if (X509_gmtime_adj(X509_getm_notAfter(cert.get()), valid_days * 24 * 3600) == nullptr)
    Fail("notAfter");
  Check(X509_set_pubkey(cert.get(), key), "X509_set_pubkey");
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (with_organization)
    Check(
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>("Canonical"), -1, -1, 0),
        "subject O");
  Check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                                   -1, 0),
        "subject CN");
  return cert;
}

void Sign(X509* cert, X509* issuer, EVP_PKEY* issuer_key) {
  Check(X509_set_issuer_name(cert, X509_get_subject_name(issuer)), "X509_set_issuer_name");
  if (X509_sign(cert, issuer_key, EVP_sha256()) <= 0) Fail("X509_sign");
}

}  // namespace

struct CertificateAuthority::Impl {
  PkeyPtr key;
  X509Ptr cert;
  std::string cert_pem;
};

CertificateAuthority::CertificateAuthority(const std::string& common_name)
    : impl_(std::make_unique<Impl>()) {
  impl_->key = NewEcKey();
  impl_->cert = NewCertificate(impl_->key.get(), common_name, 3650, true);
  X509* c = impl_->cert.get();
  AddExtension(c, c, NID_basic_constraints, "critical,CA:TRUE");
  AddExtension(c, c, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
  AddExtension(c, c, NID_subject_key_identifier, "hash");
  Sign(c, c, impl_->key.get());
  impl_->cert_pem = CertPem(c);
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
  PkeyPtr key = NewEcKey();
  X509Ptr cert = NewCertificate(key.get(), common_name, 825, true);
  std::string san;
  for (const auto& d : dns_names) san += (san.empty() ? "DNS:" : ",DNS:") + d;
  for (const auto& ip : ip_addresses) san += (san.empty() ? "IP:" : ",IP:") + ip;
  AddExtension(cert.get(), impl_->cert.get(), NID_basic_constraints, "critical,CA:FALSE");
  AddExtension(cert.get(), impl_->cert.get(), NID_key_usage,
               "critical,digitalSignature,keyEncipherment");
  AddExtension(cert.get(), impl_->cert.get(), NID_ext_key_usage, "serverAuth");
  if (!san.empty()) AddExtension(cert.get(), impl_->cert.get(), NID_subject_alt_name, san);
  AddExtension(cert.get(), impl_->cert.get(), NID_authority_key_identifier, "keyid:always");
  Sign(cert.get(), impl_->cert.get(), impl_->key.get());
  return {KeyPem(key.get()), CertPem(cert.get())};
}

KeyCertPair CertificateAuthority::IssueClientCertificate(const std::string& common_name) const {
  PkeyPtr key = NewEcKey();
  X509Ptr cert = NewCertificate(key.get(), common_name, 365, true);
  AddExtension(cert.get(), impl_->cert.get(), NID_basic_constraints, "critical,CA:FALSE");
  AddExtension(cert.get(), impl_->cert.get(), NID_ext_key_usage, "clientAuth");
  Sign(cert.get(), impl_->cert.get(), impl_->key.get());
  return {KeyPem(key.get()), CertPem(cert.get())};
}

KeyCertPair CertificateAuthority::SelfSignedClientCertificate(const std::string& common_name) {
  PkeyPtr key = NewEcKey();
  X509Ptr cert = NewCertificate(key.get(), common_name, 365, true);
  AddExtension(cert.get(), cert.get(), NID_ext_key_usage, "clientAuth");
  Sign(cert.get(), cert.get(), key.get());
  return {KeyPem(key.get()), CertPem(cert.get())};
}

}  // namespace mps::sim
