#include "x509/certificates.h"

#include "x509/openssl_handles.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <array>

namespace mps::x509 {
namespace {

[[noreturn]] void Fail(const std::string& step) {
  std::string reason;
  while (unsigned long code = ERR_get_error()) {
    std::array<char, 256> buf{};
    ERR_error_string_n(code, buf.data(), buf.size());
    reason += (reason.empty() ? "" : "; ") + std::string(buf.data());
  }
  throw X509Error("X.509: " + step +
                  " failed: " + (reason.empty() ? "no OpenSSL error queued" : reason));
}

void Check(int ok, const std::string& step) {
  if (ok != 1) Fail(step);
}

BioPtr MemoryBio() {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) Fail("BIO_new");
  return bio;
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(len));
}

void AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext) Fail("extension " + std::string(OBJ_nid2sn(nid)) + "=" + value);
  Check(X509_add_ext(cert, ext.get(), -1), "X509_add_ext");
}

void AddNameEntry(X509_NAME* name, const char* field, const std::string& value) {
  Check(
      X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1, 0),
      std::string("subject ") + field);
}

// Everything but the issuer's part: version, serial, validity, subject, key.
X509* NewUnsigned(const CertificateSpec& spec, EVP_PKEY* key) {
  ERR_clear_error();
  CertificatePtr cert(X509_new());
  if (!cert) Fail("X509_new");
  Check(X509_set_version(cert.get(), X509_VERSION_3), "X509_set_version");
  std::array<unsigned char, 16> serial{};
  Check(RAND_bytes(serial.data(), static_cast<int>(serial.size())), "RAND_bytes");
  serial[0] &= 0x7f;  // positive
  BignumPtr bn(BN_bin2bn(serial.data(), static_cast<int>(serial.size()), nullptr));
  if (!bn) Fail("BN_bin2bn");
  if (BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get())) == nullptr)
    Fail("BN_to_ASN1_INTEGER");
  if (X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0) == nullptr) Fail("notBefore");
  if (X509_gmtime_adj(X509_getm_notAfter(cert.get()), spec.valid_days * 24 * 3600) == nullptr)
    Fail("notAfter");
  Check(X509_set_pubkey(cert.get(), key), "X509_set_pubkey");
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (!spec.organization.empty()) AddNameEntry(name, "O", spec.organization);
  AddNameEntry(name, "CN", spec.common_name);
  return cert.release();
}

// The extensions, the issuer name and the signature. `issuer` is `cert`
// itself for a self-signed certificate.
void Finish(X509* cert, const CertificateSpec& spec, X509* issuer, EVP_PKEY* issuer_key) {
  AddExtension(cert, issuer, NID_basic_constraints,
               spec.ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  if (!spec.key_usage.empty()) AddExtension(cert, issuer, NID_key_usage, spec.key_usage);
  if (!spec.extended_key_usage.empty())
    AddExtension(cert, issuer, NID_ext_key_usage, spec.extended_key_usage);
  std::string san;
  for (const auto& d : spec.dns_names) san += (san.empty() ? "DNS:" : ",DNS:") + d;
  for (const auto& ip : spec.ip_addresses) san += (san.empty() ? "IP:" : ",IP:") + ip;
  if (!san.empty()) AddExtension(cert, issuer, NID_subject_alt_name, san);
  AddExtension(cert, issuer, NID_subject_key_identifier, "hash");
  if (issuer != cert) AddExtension(cert, issuer, NID_authority_key_identifier, "keyid");
  Check(X509_set_issuer_name(cert, X509_get_subject_name(issuer)), "X509_set_issuer_name");
  if (X509_sign(cert, issuer_key, EVP_sha256()) <= 0) Fail("X509_sign");
}

}  // namespace

void PrivateKey::Free::operator()(EVP_PKEY* key) const {
  EVP_PKEY_free(key);
}

PrivateKey::PrivateKey(KeyType type)
    : key_(
          (ERR_clear_error(), type == KeyType::ec_p256 ? EVP_EC_gen("P-256") : EVP_RSA_gen(2048))) {
  if (!key_) Fail(type == KeyType::ec_p256 ? "EVP_EC_gen(P-256)" : "EVP_RSA_gen(2048)");
}

PrivateKey::~PrivateKey() = default;
PrivateKey::PrivateKey(PrivateKey&&) noexcept = default;
PrivateKey& PrivateKey::operator=(PrivateKey&&) noexcept = default;

std::string PrivateKey::Pem(KeyForm form) const {
  BioPtr bio = MemoryBio();
  const int ok =
      form == KeyForm::pkcs8
          ? PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr)
          : PEM_write_bio_PrivateKey_traditional(bio.get(), key_.get(), nullptr, nullptr, 0,
                                                 nullptr, nullptr);
  Check(ok, "PEM_write_bio_PrivateKey");
  return BioText(bio.get());
}

void Certificate::Free::operator()(X509* cert) const {
  X509_free(cert);
}

Certificate::Certificate(X509* cert) : cert_(cert) {}
Certificate::~Certificate() = default;
Certificate::Certificate(Certificate&&) noexcept = default;
Certificate& Certificate::operator=(Certificate&&) noexcept = default;

Certificate Certificate::SelfSigned(const CertificateSpec& spec, const PrivateKey& key) {
  Certificate cert(NewUnsigned(spec, key.get()));
  Finish(cert.cert_.get(), spec, cert.cert_.get(), key.get());
  return cert;
}

Certificate Certificate::Issued(const CertificateSpec& spec, const PrivateKey& key,
                                const Certificate& issuer, const PrivateKey& issuer_key) {
  Certificate cert(NewUnsigned(spec, key.get()));
  Finish(cert.cert_.get(), spec, issuer.cert_.get(), issuer_key.get());
  return cert;
}

std::string Certificate::Pem() const {
  BioPtr bio = MemoryBio();
  Check(PEM_write_bio_X509(bio.get(), cert_.get()), "PEM_write_bio_X509");
  return BioText(bio.get());
}

}  // namespace mps::x509
