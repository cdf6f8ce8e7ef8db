#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <vector>

#include "multipass/client_identity.h"
#include "multipass/daemon_endpoint.h"
#include "multipass/daemon_version.h"
#include "multipass/launch_validation.h"
#include "multipass/multipass_error.h"
#include "test_pki.h"

namespace mps::multipass {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using Kind = MultipassError::Kind;
using namespace mps::multipass::testing;

template <class F>
MultipassError CatchError(F f) {
  try {
    f();
  } catch (const MultipassError& e) {
    return e;
  }
  ADD_FAILURE() << "no MultipassError thrown";
  return MultipassError(Kind::internal, "none");
}

TEST(DaemonEndpoint, ParsesUnixForms) {
  for (const char* text : {"unix:/run/mp.sock", "unix:///run/mp.sock", "/run/mp.sock"}) {
    const auto e = DaemonEndpoint::Parse(text);
    EXPECT_TRUE(e.is_unix) << text;
    EXPECT_EQ(e.socket_path, "/run/mp.sock") << text;
    EXPECT_EQ(e.grpc_target, "unix:/run/mp.sock") << text;
    EXPECT_EQ(e.address, text);
  }
  const auto def = DaemonEndpoint::Parse("");
  EXPECT_EQ(def.socket_path, "/var/snap/multipass/common/multipass_socket");
}

TEST(DaemonEndpoint, ParsesHostPort) {
  const auto e = DaemonEndpoint::Parse("192.168.64.1:50051");
  EXPECT_FALSE(e.is_unix);
  EXPECT_EQ(e.host, "192.168.64.1");
  EXPECT_EQ(e.port, 50051);
  EXPECT_EQ(e.grpc_target, "192.168.64.1:50051");
  const auto v6 = DaemonEndpoint::Parse("[::1]:50051");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(DaemonEndpoint::Parse("mp-host:1").host, "mp-host");
}

TEST(DaemonEndpoint, RejectsInvalidNamingTheValue) {
  for (const char* text : {"tcp://h:1", "justahost", "h:abc", "h:0", "h:70000", ":50051",
                           "unix:relative/sock", "::1:50051"}) {
    const auto e = CatchError([&] { DaemonEndpoint::Parse(text); });
    EXPECT_EQ(e.kind, Kind::invalid_config) << text;
    EXPECT_THAT(e.message, HasSubstr(std::string("'") + text + "'"));
    EXPECT_THAT(e.message, HasSubstr("host:port"));
  }
}

TEST(Size, ParsesBinaryUnitsAndFractions) {
  EXPECT_EQ(ParseSize("1024", "memory"), 1024u);
  EXPECT_EQ(ParseSize("512M", "memory"), 512ull << 20);
  EXPECT_EQ(ParseSize("512m", "memory"), 512ull << 20);
  EXPECT_EQ(ParseSize("1G", "disk"), 1ull << 30);
  EXPECT_EQ(ParseSize("1.5G", "disk"), 3ull << 29);
  EXPECT_EQ(ParseSize("2GiB", "disk"), 2ull << 30);
  EXPECT_EQ(ParseSize("2gb", "disk"), 2ull << 30);
  EXPECT_EQ(ParseSize("10240kb", "disk"), 10240ull << 10);
  EXPECT_EQ(ParseSize("100B", "disk"), 100u);
  EXPECT_EQ(ParseSize("  4K ", "disk"), 4096u);
}

TEST(Size, RejectsBadSyntaxNamingTheField) {
  for (const char* text : {"", "1.5", "1.5B", "12X", "-1G", "G", "1 G", "1TB", "1.G",
                           "99999999999999999999", "17179869184G"}) {
    const auto e = CatchError([&] { ParseSize(text, "disk"); });
    EXPECT_EQ(e.kind, Kind::invalid_argument) << text;
    EXPECT_THAT(e.message, StartsWith(std::string("disk '") + text + "'"));
  }
}

TEST(Size, EnforcesDaemonMinimums) {
  EXPECT_EQ(ValidateMemorySize("512M"), 512ull << 20);
  const auto mem = CatchError([] { ValidateMemorySize("511M"); });
  EXPECT_THAT(mem.message, HasSubstr("at least 512M"));
  EXPECT_THAT(mem.message, HasSubstr("memory"));
  EXPECT_EQ(ValidateDiskSize("1G"), 1ull << 30);
  const auto disk = CatchError([] { ValidateDiskSize("1023M"); });
  EXPECT_THAT(disk.message, HasSubstr("at least 1G"));
}

TEST(InstanceName, FollowsHostnameRule) {
  for (const char* ok : {"a", "nomad-client-1", "A9", "x-y-z"}) {
    EXPECT_NO_THROW(ValidateInstanceName(ok)) << ok;
  }
  EXPECT_NO_THROW(ValidateInstanceName(std::string(63, 'a')));
  for (const std::string& bad :
       std::vector<std::string>{"", "1abc", "abc-", "a_b", "a.b", "-a", std::string(64, 'a')}) {
    const auto e = CatchError([&] { ValidateInstanceName(bad); });
    EXPECT_EQ(e.kind, Kind::invalid_name) << bad;
    if (!bad.empty()) {
      EXPECT_THAT(e.message, HasSubstr(bad));
    }
  }
}

class IdentityFiles : public ::testing::TestWithParam<std::pair<KeyType, KeyForm>> {};

TEST_P(IdentityFiles, LoadsAndNormalizesToPkcs8) {
  TempDir dir;
  const auto pair = MakeClientPair(GetParam().first, GetParam().second);
  if (GetParam().second == KeyForm::traditional) {
    EXPECT_THAT(pair.key_pem, ::testing::AnyOf(HasSubstr("BEGIN EC PRIVATE KEY"),
                                               HasSubstr("BEGIN RSA PRIVATE KEY")));
  }
  WriteFile(dir / "c.pem", pair.cert_pem);
  WriteFile(dir / "k.pem", pair.key_pem);
  const auto id = ClientIdentity::FromFiles(dir / "c.pem", dir / "k.pem");
  EXPECT_EQ(id.cert_pem, pair.cert_pem);
  EXPECT_THAT(id.key_pem, StartsWith("-----BEGIN PRIVATE KEY-----"));
}

INSTANTIATE_TEST_SUITE_P(EcRsaPkcs8Traditional, IdentityFiles,
                         ::testing::Values(std::pair{KeyType::ec_p256, KeyForm::pkcs8},
                                           std::pair{KeyType::ec_p256, KeyForm::traditional},
                                           std::pair{KeyType::rsa_2048, KeyForm::pkcs8},
                                           std::pair{KeyType::rsa_2048, KeyForm::traditional}));

TEST(Identity, MismatchedKeyNamesTheFiles) {
  TempDir dir;
  const auto a = MakeClientPair(KeyType::ec_p256, KeyForm::pkcs8);
  const auto b = MakeClientPair(KeyType::ec_p256, KeyForm::pkcs8);
  WriteFile(dir / "cert.pem", a.cert_pem);
  WriteFile(dir / "other_key.pem", b.key_pem);
  const auto e =
      CatchError([&] { ClientIdentity::FromFiles(dir / "cert.pem", dir / "other_key.pem"); });
  EXPECT_EQ(e.kind, Kind::invalid_config);
  EXPECT_THAT(e.message, HasSubstr("other_key.pem"));
  EXPECT_THAT(e.message, HasSubstr("does not match"));
}

TEST(Identity, UnreadableOrGarbageFilesAreNamed) {
  TempDir dir;
  const auto a = MakeClientPair(KeyType::ec_p256, KeyForm::pkcs8);
  WriteFile(dir / "cert.pem", a.cert_pem);
  WriteFile(dir / "garbage.pem", "not a key");
  auto e = CatchError([&] { ClientIdentity::FromFiles(dir / "cert.pem", dir / "missing.pem"); });
  EXPECT_THAT(e.message, HasSubstr("missing.pem"));
  e = CatchError([&] { ClientIdentity::FromFiles(dir / "cert.pem", dir / "garbage.pem"); });
  EXPECT_THAT(e.message, HasSubstr("garbage.pem"));
  e = CatchError([&] { ClientIdentity::FromFiles(dir / "garbage.pem", dir / "cert.pem"); });
  EXPECT_THAT(e.message, HasSubstr("garbage.pem"));
}

TEST(Identity, GeneratedIdentityIsPersistedAndReused) {
  TempDir dir;
  const auto state = dir / "state";
  const auto first = ClientIdentity::LoadOrCreate(state);
  EXPECT_THAT(first.key_pem, StartsWith("-----BEGIN PRIVATE KEY-----"));
  const auto perms = std::filesystem::status(state / "multipass_client_key.pem").permissions();
  EXPECT_EQ(perms & (std::filesystem::perms::group_all | std::filesystem::perms::others_all),
            std::filesystem::perms::none);
  const auto second = ClientIdentity::LoadOrCreate(state);
  EXPECT_EQ(first.cert_pem, second.cert_pem);
  EXPECT_NE(ClientIdentity::Generate().cert_pem, first.cert_pem);
}

}  // namespace
}  // namespace mps::multipass

namespace {

using mps::multipass::JudgeDaemonVersion;
using mps::multipass::ParseDaemonVersion;

TEST(DaemonVersion, ParsesReleasesAndDevelopmentBuilds) {
  auto v = ParseDaemonVersion("1.16.3");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->major, 1);
  EXPECT_EQ(v->minor, 16);
  EXPECT_EQ(v->patch, 3);
  auto dev = ParseDaemonVersion("1.17.0-dev.2345+g9b0af2ec");
  ASSERT_TRUE(dev);
  EXPECT_EQ(dev->minor, 17);
  EXPECT_TRUE(ParseDaemonVersion("1.15"));
  EXPECT_FALSE(ParseDaemonVersion("multipassd"));
  EXPECT_FALSE(ParseDaemonVersion(""));
}

TEST(DaemonVersion, RefusesBelow113AndWarnsAboveTheNewestTested) {
  auto old = JudgeDaemonVersion("1.12.2", "unix:/sock");
  EXPECT_FALSE(old.supported);
  EXPECT_NE(old.message.find("1.12.2"), std::string::npos) << old.message;
  EXPECT_NE(old.message.find("1.13.0"), std::string::npos) << old.message;
  for (const char* ok : {"1.13.0", "1.14.1", "1.15.0", "1.16.0", "1.16.9"}) {
    auto v = JudgeDaemonVersion(ok, "unix:/sock");
    EXPECT_TRUE(v.supported) << ok;
    EXPECT_FALSE(v.newer_than_tested) << ok;
  }
  auto newer = JudgeDaemonVersion("1.17.0", "unix:/sock");
  EXPECT_TRUE(newer.supported);
  EXPECT_TRUE(newer.newer_than_tested);
  EXPECT_NE(newer.message.find("1.16.3"), std::string::npos) << newer.message;
  EXPECT_TRUE(JudgeDaemonVersion("2.0.0", "x").newer_than_tested);
  EXPECT_TRUE(JudgeDaemonVersion("garbage", "x").supported);
}

}  // namespace
