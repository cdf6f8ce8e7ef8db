#include "test_pki.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <stdexcept>

namespace mps::multipass::testing {
namespace {

struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CertFree {
  void operator()(X509* x) const { X509_free(x); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free_all(b); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;
using Cert = std::unique_ptr<X509, CertFree>;
using Bio = std::unique_ptr<BIO, BioFree>;

void Check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test PKI: ") + what);
}

std::string Drain(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(len));
}

Key NewKey(KeyAlgo algo) {
  Key key(algo == KeyAlgo::ec ? EVP_EC_gen("P-256") : EVP_RSA_gen(2048));
  Check(key != nullptr, "key generation");
  return key;
}

std::string KeyPem(EVP_PKEY* key, KeyForm form) {
  Bio bio(BIO_new(BIO_s_mem()));
  const int ok =
      form == KeyForm::pkcs8
          ? PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)
          : PEM_write_bio_PrivateKey_traditional(bio.get(), key, nullptr, nullptr, 0, nullptr,
                                                 nullptr);
  Check(ok == 1, "key PEM");
  return Drain(bio.get());
}

std::string CertPem(X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  Check(PEM_write_bio_X509(bio.get(), cert) == 1, "cert PEM");
  return Drain(bio.get());
}

void AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  Check(ext != nullptr && X509_add_ext(cert, ext, -1) == 1, "extension");
  X509_EXTENSION_free(ext);
}

Cert NewCert(EVP_PKEY* key, const std::string& cn, long serial, X509* issuer, EVP_PKEY* issuer_key,
             bool ca, const std::string& san) {
  Cert cert(X509_new());
  X509_set_version(cert.get(), X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
  X509_set_pubkey(cert.get(), key);
  X509* signer = issuer ? issuer : cert.get();
  AddExt(cert.get(), signer, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
  if (ca) AddExt(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  if (!san.empty()) {
    AddExt(cert.get(), signer, NID_subject_alt_name, san);
    AddExt(cert.get(), signer, NID_ext_key_usage, "serverAuth");
  }
  Check(X509_sign(cert.get(), issuer_key ? issuer_key : key, EVP_sha256()) != 0, "sign");
  return cert;
}

}  // namespace

TestPki MakeTestPki() {
  Key ca_key = NewKey(KeyAlgo::ec);
  Cert ca = NewCert(ca_key.get(), "Test Root CA", 1, nullptr, nullptr, true, "");
  Key server_key = NewKey(KeyAlgo::ec);
  Cert server = NewCert(server_key.get(), "localhost", 2, ca.get(), ca_key.get(), false,
                        "DNS:localhost,IP:127.0.0.1");
  return TestPki{{CertPem(ca.get()), KeyPem(ca_key.get(), KeyForm::pkcs8)},
                 {CertPem(server.get()), KeyPem(server_key.get(), KeyForm::pkcs8)}};
}

KeyPair MakeClientPair(KeyAlgo algo, KeyForm form) {
  Key key = NewKey(algo);
  Cert cert = NewCert(key.get(), "test-client", 7, nullptr, nullptr, false, "");
  return KeyPair{CertPem(cert.get()), KeyPem(key.get(), form)};
}

TempDir::TempDir() {
  std::string pattern = "/tmp/mps-mp-XXXXXX";
  Check(mkdtemp(pattern.data()) != nullptr, "mkdtemp");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void WriteFile(const std::filesystem::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << text;
  Check(static_cast<bool>(out.flush()), "write file");
}

}  // namespace mps::multipass::testing
