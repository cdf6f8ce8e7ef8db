#include "multipass/client_identity.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include <spdlog/spdlog.h>

#include "multipass/multipass_error.h"

namespace mps::multipass {
namespace {

namespace fs = std::filesystem;

template <auto Fn>
struct Deleter {
  template <class T>
  void operator()(T* p) const {
    Fn(p);
  }
};
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION_free>>;

constexpr const char* kCertFileName = "multipass_client_cert.pem";
constexpr const char* kKeyFileName = "multipass_client_key.pem";

[[noreturn]] void Fail(const fs::path& file, const std::string& what) {
  throw MultipassError(MultipassError::Kind::invalid_config, file.string() + ": " + what);
}

std::string OpenSslError() {
  std::string out;
  while (const unsigned long code = ERR_get_error()) {
    std::array<char, 256> buf{};
    ERR_error_string_n(code, buf.data(), buf.size());
    if (!out.empty()) out += "; ";
    out += buf.data();
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

std::string ReadFile(const fs::path& file, std::string_view what) {
  std::ifstream in(file, std::ios::binary);
  if (!in) Fail(file, "cannot read " + std::string(what));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Refuses encrypted keys instead of prompting on the terminal.
int NoPassword(char*, int, int, void*) {
  return -1;
}

std::string ToPkcs8Pem(EVP_PKEY* key) {
  BioPtr out(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PrivateKey(out.get(), key, nullptr, nullptr, 0, nullptr, nullptr)) {
    throw MultipassError(MultipassError::Kind::internal,
                         "cannot encode private key: " + OpenSslError());
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

std::string ToPem(X509* cert) {
  BioPtr out(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509(out.get(), cert)) {
    throw MultipassError(MultipassError::Kind::internal,
                         "cannot encode certificate: " + OpenSslError());
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

std::string RandomUuid() {
  std::array<unsigned char, 16> b{};
  if (RAND_bytes(b.data(), static_cast<int>(b.size())) != 1) {
    throw MultipassError(MultipassError::Kind::internal, "no randomness: " + OpenSslError());
  }
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  char out[37];
  std::snprintf(out, sizeof out,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return out;
}

void AddExtension(X509* cert, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  if (!ext || !X509_add_ext(cert, ext.get(), -1)) {
    throw MultipassError(MultipassError::Kind::internal,
                         "cannot build client certificate: " + OpenSslError());
  }
}

void WriteFile(const fs::path& file, const std::string& text, fs::perms perms) {
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    if (!out) Fail(file, "cannot write");
    out << text;
    if (!out.flush()) Fail(file, "cannot write");
  }
  std::error_code ec;
  fs::permissions(file, perms, ec);
  if (ec) Fail(file, "cannot set permissions: " + ec.message());
}

}  // namespace

ClientIdentity ClientIdentity::FromFiles(const fs::path& cert_file, const fs::path& key_file) {
  ERR_clear_error();
  const std::string cert_text = ReadFile(cert_file, "client certificate");
  BioPtr cert_bio(BIO_new_mem_buf(cert_text.data(), static_cast<int>(cert_text.size())));
  X509Ptr cert(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  if (!cert) Fail(cert_file, "not a PEM certificate (" + OpenSslError() + ")");

  const std::string key_text = ReadFile(key_file, "client key");
  BioPtr key_bio(BIO_new_mem_buf(key_text.data(), static_cast<int>(key_text.size())));
  // Decodes PKCS#8 as well as the traditional "EC/RSA PRIVATE KEY" forms.
  KeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, NoPassword, nullptr));
  if (!key) {
    Fail(key_file, "not an unencrypted PEM private key, EC or RSA, PKCS#8 or traditional (" +
                       OpenSslError() + ")");
  }
  const int type = EVP_PKEY_get_base_id(key.get());
  if (type != EVP_PKEY_EC && type != EVP_PKEY_RSA) {
    Fail(key_file, "unsupported key type (expected EC or RSA)");
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    Fail(key_file, "private key does not match the certificate " + cert_file.string());
  }
  return ClientIdentity{cert_text, ToPkcs8Pem(key.get())};
}

ClientIdentity ClientIdentity::Generate() {
  ERR_clear_error();
  KeyPtr key(EVP_EC_gen("P-256"));
  X509Ptr cert(X509_new());
  if (!key || !cert) {
    throw MultipassError(MultipassError::Kind::internal,
                         "cannot generate client key: " + OpenSslError());
  }
  std::array<unsigned char, 16> serial{};
  RAND_bytes(serial.data(), static_cast<int>(serial.size()));
  serial[0] &= 0x7f;  // positive
  BnPtr bn(BN_bin2bn(serial.data(), static_cast<int>(serial.size()), nullptr));
  const std::string cn = RandomUuid();
  X509_NAME* name = X509_get_subject_name(cert.get());
  bool ok =
      X509_set_version(cert.get(), X509_VERSION_3) == 1 && bn &&
      BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get())) != nullptr &&
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0) != nullptr &&
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 24 * 3600) != nullptr &&
      X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>("mps multipass-client"), -1,
                                 -1, 0) == 1 &&
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                 0) == 1 &&
      X509_set_issuer_name(cert.get(), name) == 1 && X509_set_pubkey(cert.get(), key.get()) == 1;
  if (!ok) {
    throw MultipassError(MultipassError::Kind::internal,
                         "cannot build client certificate: " + OpenSslError());
  }
  AddExtension(cert.get(), NID_basic_constraints, "critical,CA:FALSE");
  AddExtension(cert.get(), NID_key_usage, "critical,digitalSignature,keyAgreement");
  AddExtension(cert.get(), NID_ext_key_usage, "clientAuth");
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) {
    throw MultipassError(MultipassError::Kind::internal,
                         "cannot sign client certificate: " + OpenSslError());
  }
  return ClientIdentity{ToPem(cert.get()), ToPkcs8Pem(key.get())};
}

ClientIdentity ClientIdentity::LoadOrCreate(const fs::path& state_dir) {
  const fs::path cert_file = state_dir / kCertFileName;
  const fs::path key_file = state_dir / kKeyFileName;
  std::error_code ec;
  if (fs::exists(cert_file, ec) && fs::exists(key_file, ec)) {
    return FromFiles(cert_file, key_file);
  }
  fs::create_directories(state_dir, ec);
  if (ec) Fail(state_dir, "cannot create state directory: " + ec.message());
  ClientIdentity identity = Generate();
  // Key first and private, so a crash never leaves a cert without its key readable.
  WriteFile(key_file, identity.key_pem, fs::perms::owner_read | fs::perms::owner_write);
  WriteFile(cert_file, identity.cert_pem,
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                fs::perms::others_read);
  spdlog::info("generated multipass client certificate in {}", state_dir.string());
  return identity;
}

}  // namespace mps::multipass
