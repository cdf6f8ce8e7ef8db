#include "multipass/client_identity.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include <spdlog/spdlog.h>

#include "multipass/multipass_error.h"
#include "x509/certificates.h"
#include "x509/openssl_handles.h"

namespace mps::multipass {
namespace {

namespace fs = std::filesystem;

using x509::BioPtr;
using x509::KeyPtr;
using X509Ptr = x509::CertificatePtr;

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
  x509::CertificateSpec spec;
  spec.common_name = RandomUuid();
  spec.organization = "mps multipass-client";
  spec.valid_days = 365;
  spec.key_usage = "critical,digitalSignature,keyAgreement";
  spec.extended_key_usage = "clientAuth";
  try {
    x509::PrivateKey key;
    return ClientIdentity{x509::Certificate::SelfSigned(spec, key).Pem(), key.Pem()};
  } catch (const x509::X509Error& e) {
    throw MultipassError(MultipassError::Kind::internal,
                         std::string("cannot generate the client certificate: ") + e.what());
  }
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
