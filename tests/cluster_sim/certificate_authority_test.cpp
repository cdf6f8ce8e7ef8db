#include "cluster_sim/certificate_authority.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

namespace {

using mps::sim::CertificateAuthority;

std::shared_ptr<X509> ParseCert(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  return std::shared_ptr<X509>(x, X509_free);
}

std::string CommonName(X509* x) {
  char buf[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, sizeof buf);
  return buf;
}

TEST(CertificateAuthority, RootIsAnEcP256CaNamedMultipassRootCa) {
  CertificateAuthority ca;
  auto root = ParseCert(ca.root_certificate_pem());
  ASSERT_TRUE(root);
  EXPECT_EQ(CommonName(root.get()), "Multipass Root CA");
  EXPECT_EQ(X509_check_ca(root.get()), 1);
  EVP_PKEY* key = X509_get0_pubkey(root.get());
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(EVP_PKEY_get_base_id(key), EVP_PKEY_EC);
  char group[64] = {};
  size_t len = 0;
  ASSERT_EQ(EVP_PKEY_get_group_name(key, group, sizeof group, &len), 1);
  EXPECT_STREQ(group, "prime256v1");
  EXPECT_EQ(X509_verify(root.get(), key), 1);  // self-signed
}

TEST(CertificateAuthority, ServerCertificateIsSignedByRootForLocalhost) {
  CertificateAuthority ca;
  auto pair = ca.IssueServerCertificate("localhost", {"localhost"}, {"127.0.0.1"});
  auto root = ParseCert(ca.root_certificate_pem());
  auto server = ParseCert(pair.certificate_pem);
  ASSERT_TRUE(server);
  EXPECT_EQ(X509_verify(server.get(), X509_get0_pubkey(root.get())), 1);
  EXPECT_EQ(X509_check_host(server.get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(server.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_host(server.get(), "example.com", 0, 0, nullptr), 0);
  EXPECT_EQ(X509_check_ca(server.get()), 0);
  EXPECT_EQ(X509_check_purpose(server.get(), X509_PURPOSE_SSL_SERVER, 0), 1);
  EXPECT_EQ(X509_check_purpose(server.get(), X509_PURPOSE_SSL_CLIENT, 0), 0);

  // The full chain verifies with the root as the only trust anchor.
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, root.get());
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, server.get(), nullptr);
  EXPECT_EQ(X509_verify_cert(ctx), 1)
      << X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);

  EXPECT_NE(pair.private_key_pem.find("BEGIN PRIVATE KEY"), std::string::npos);  // PKCS#8
}

TEST(CertificateAuthority, SelfSignedClientCertificatesAreForClientAuthAndDistinct) {
  auto a = CertificateAuthority::SelfSignedClientCertificate("client-a");
  auto b = CertificateAuthority::SelfSignedClientCertificate("client-b");
  auto self = ParseCert(b.certificate_pem);
  ASSERT_TRUE(self);
  EXPECT_EQ(CommonName(self.get()), "client-b");
  EXPECT_EQ(X509_check_purpose(self.get(), X509_PURPOSE_SSL_CLIENT, 0), 1);
  EXPECT_EQ(X509_verify(self.get(), X509_get0_pubkey(self.get())), 1);
  EXPECT_NE(a.certificate_pem, b.certificate_pem);
}

}  // namespace
