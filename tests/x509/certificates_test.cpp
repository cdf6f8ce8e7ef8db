// lib/x509 on its own: what the certificates say, and that a CA's
// certificates verify against it.
#include "x509/certificates.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

namespace {

using namespace mps::x509;

std::shared_ptr<X509> Parse(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  return std::shared_ptr<X509>(x, X509_free);
}

std::string Subject(X509* x, int nid) {
  char buf[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(x), nid, buf, sizeof buf);
  return buf;
}

TEST(X509, SelfSignedCertificateSaysWhatItsSpecSays) {
  CertificateSpec spec;
  spec.common_name = "client-1";
  spec.organization = "Example";
  spec.extended_key_usage = "clientAuth";
  PrivateKey key;
  auto cert = Parse(Certificate::SelfSigned(spec, key).Pem());
  ASSERT_TRUE(cert);
  EXPECT_EQ(Subject(cert.get(), NID_commonName), "client-1");
  EXPECT_EQ(Subject(cert.get(), NID_organizationName), "Example");
  EXPECT_EQ(X509_check_ca(cert.get()), 0);
  EXPECT_EQ(X509_check_purpose(cert.get(), X509_PURPOSE_SSL_CLIENT, 0), 1);
  EXPECT_EQ(X509_check_purpose(cert.get(), X509_PURPOSE_SSL_SERVER, 0), 0);
  EXPECT_EQ(X509_verify(cert.get(), key.get()), 1);
  EXPECT_EQ(X509_check_private_key(cert.get(), key.get()), 1);
}

TEST(X509, IssuedServerCertificateVerifiesAgainstItsCa) {
  CertificateSpec ca_spec;
  ca_spec.common_name = "Root";
  ca_spec.ca = true;
  ca_spec.key_usage = "critical,keyCertSign,cRLSign";
  PrivateKey ca_key;
  auto ca = Certificate::SelfSigned(ca_spec, ca_key);
  CertificateSpec spec;
  spec.common_name = "localhost";
  spec.extended_key_usage = "serverAuth";
  spec.dns_names = {"localhost"};
  spec.ip_addresses = {"127.0.0.1"};
  PrivateKey key(KeyType::rsa_2048);
  auto server = Parse(Certificate::Issued(spec, key, ca, ca_key).Pem());
  auto root = Parse(ca.Pem());
  ASSERT_TRUE(server && root);
  EXPECT_EQ(X509_check_ca(root.get()), 1);
  EXPECT_EQ(X509_check_host(server.get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(server.get(), "127.0.0.1", 0), 1);
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), X509_STORE_free);
  X509_STORE_add_cert(store.get(), root.get());
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new(),
                                                                      X509_STORE_CTX_free);
  X509_STORE_CTX_init(ctx.get(), store.get(), server.get(), nullptr);
  EXPECT_EQ(X509_verify_cert(ctx.get()), 1)
      << X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
}

TEST(X509, KeysComeInBothPemForms) {
  for (auto type : {KeyType::ec_p256, KeyType::rsa_2048}) {
    PrivateKey key(type);
    EXPECT_NE(key.Pem().find("-----BEGIN PRIVATE KEY-----"), std::string::npos);
    const std::string traditional = key.Pem(KeyForm::traditional);
    EXPECT_NE(traditional.find(type == KeyType::ec_p256 ? "-----BEGIN EC PRIVATE KEY-----"
                                                        : "-----BEGIN RSA PRIVATE KEY-----"),
              std::string::npos)
        << traditional;
  }
}

}  // namespace
