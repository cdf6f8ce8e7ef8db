// The plugin's host list (hosts_file): every problem named by file, entry
// and field; relative key paths taken from the file's directory.
#include "config/hosts_file.h"

#include <sys/stat.h>

#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/temp_dir.h"

namespace fs = std::filesystem;
using mps::config::HostsFileError;
using mps::config::ParseHostsFile;
using mps::config::ReadHostsFile;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

namespace {

class HostsFileTest : public ::testing::Test {
 protected:
  HostsFileTest() {
    fs::create_directories(dir_ / "keys");
    Write("keys/a.pub", std::string(40, 'a') + "\n");
    Write("keys/b.pub", std::string(40, 'b'));
  }
  fs::path Write(const std::string& name, const std::string& content) {
    fs::path p = dir_ / name;
    std::ofstream(p) << content;
    return p;
  }
  // The problems of a file that must be refused.
  std::vector<std::string> Problems(const std::string& text) {
    try {
      ParseHostsFile(text, dir_ / "hosts.json");
    } catch (const HostsFileError& e) {
      return e.problems();
    }
    ADD_FAILURE() << "expected HostsFileError for " << text;
    return {};
  }
  mps::testing::TempDir tmp_;
  fs::path dir_{tmp_.path()};
};

}  // namespace

TEST_F(HostsFileTest, ReadsEveryFieldAndResolvesKeysFromItsDirectory) {
  auto path = Write("hosts.json", R"({"hosts": [
      {"name": "mp-a", "hostd_address": "tcp://10.0.0.11:7400",
       "hostd_server_key_path": "keys/a.pub", "zone": "rack-1", "weight": 2},
      {"name": "mp-b", "hostd_address": "ipc:///run/hostd-b.sock",
       "hostd_server_key_path": ")" + (dir_ / "keys/b.pub").string() +
                                      R"("}]})");
  auto hosts = ReadHostsFile(path);
  ASSERT_THAT(hosts, SizeIs(2));
  EXPECT_EQ(hosts[0].name, "mp-a");
  EXPECT_EQ(hosts[0].hostd_address, "tcp://10.0.0.11:7400");
  EXPECT_EQ(hosts[0].hostd_server_key_path, dir_ / "keys/a.pub");
  EXPECT_EQ(hosts[0].hostd_server_public_key, std::string(40, 'a'));
  EXPECT_EQ(hosts[0].zone, "rack-1");
  EXPECT_EQ(hosts[0].weight, 2);
  EXPECT_EQ(hosts[1].name, "mp-b");
  EXPECT_EQ(hosts[1].hostd_server_public_key, std::string(40, 'b'));
  EXPECT_EQ(hosts[1].zone, "");
  EXPECT_EQ(hosts[1].weight, 1);
}

TEST_F(HostsFileTest, DuplicateNamesAndAddressesNameBothEntries) {
  auto problems = Problems(R"({"hosts": [
      {"name": "mp-a", "hostd_address": "tcp://h:1", "hostd_server_key_path": "keys/a.pub"},
      {"name": "mp-b", "hostd_address": "tcp://h:1", "hostd_server_key_path": "keys/b.pub"},
      {"name": "mp-a", "hostd_address": "tcp://h:3", "hostd_server_key_path": "keys/a.pub"}]})");
  const std::string file = "hosts_file \"" + (dir_ / "hosts.json").string() + "\": ";
  EXPECT_THAT(problems,
              ElementsAre(file + "hosts[1] (\"mp-b\"): hostd_address: \"tcp://h:1\" is already the "
                                 "address of hosts[0]; expected one entry per multipass-hostd",
                          file + "hosts[2] (\"mp-a\"): name: \"mp-a\" is already the name of "
                                 "hosts[0]; expected unique names"));
}

TEST_F(HostsFileTest, EveryBadFieldIsReportedAtOnce) {
  auto problems = Problems(R"({"hosts": [
      {"name": "mp a", "hostd_address": "http://h:1", "hostd_server_key_path": "keys/none.pub",
       "zone": "", "weight": 0, "colour": "red"},
      {"hostd_address": "tcp://h:2"}]})");
  EXPECT_THAT(problems,
              ElementsAre(HasSubstr("hosts[0] (\"mp a\"): unknown field \"colour\""),
                          HasSubstr("hosts[0] (\"mp a\"): name: \"mp a\" is not a host name"),
                          AllOf(HasSubstr("hosts[0] (\"mp a\"): hostd_address: \"http://h:1\""),
                                HasSubstr("expected tcp://host:port or ipc:///path")),
                          AllOf(HasSubstr("hostd_server_key_path: file"),
                                HasSubstr("keys/none.pub\" does not exist")),
                          HasSubstr("zone: expected a non-empty string, got the string \"\""),
                          HasSubstr("weight: expected an integer from 1 to 1000, got the number 0"),
                          HasSubstr("hosts[1]: name: missing"),
                          HasSubstr("hosts[1]: hostd_server_key_path: missing")));
}

TEST_F(HostsFileTest, AKeyFileThatIsNoKeyIsNamedWithoutItsContent) {
  Write("keys/bad.pub", "secret-looking-text");
  auto problems = Problems(R"({"hosts": [{"name": "mp-a", "hostd_address": "tcp://h:1",
      "hostd_server_key_path": "keys/bad.pub"}]})");
  ASSERT_THAT(problems, SizeIs(1));
  EXPECT_THAT(problems[0], HasSubstr("does not hold a z85 key"));
  EXPECT_THAT(problems[0], ::testing::Not(HasSubstr("secret-looking-text")));
}

TEST_F(HostsFileTest, TheFileItselfMustBeASmallJsonHostList) {
  EXPECT_THAT(Problems("{hosts"), ElementsAre(HasSubstr("not valid JSON")));
  EXPECT_THAT(Problems("[]"), ElementsAre(HasSubstr("no \"hosts\" list")));
  EXPECT_THAT(Problems(R"({"hosts": []})"),
              ElementsAre(HasSubstr("hosts: expected a non-empty list of hosts, got a list")));
  EXPECT_THAT(Problems(R"({"hosts": [3], "extra": 1})"),
              ElementsAre(HasSubstr("\"extra\": unknown field"),
                          HasSubstr("hosts[0]: expected an object")));

  auto refused = [](const fs::path& p) -> std::string {
    try {
      ReadHostsFile(p);
    } catch (const HostsFileError& e) {
      return e.what();
    }
    return "accepted";
  };
  EXPECT_THAT(refused(dir_ / "missing.json"), HasSubstr("missing.json\": does not exist"));
  EXPECT_THAT(refused(dir_), HasSubstr("is not a regular file"));
  EXPECT_THAT(refused("/dev/zero"), HasSubstr("is not a regular file"));
  auto big = Write("big.json", std::string(mps::config::kMaxHostsFileBytes + 1, ' '));
  EXPECT_THAT(refused(big), HasSubstr("bytes; at most 262144 are accepted"));
}

TEST(HostNames, LettersDigitsDotsUnderscoresAndDashes) {
  using mps::config::IsHostName;
  EXPECT_TRUE(IsHostName("mp-a"));
  EXPECT_TRUE(IsHostName("rack_1.eu"));
  EXPECT_TRUE(IsHostName("1a"));
  EXPECT_FALSE(IsHostName(""));
  EXPECT_FALSE(IsHostName("-a"));
  EXPECT_FALSE(IsHostName("a,b"));
  EXPECT_FALSE(IsHostName("a b"));
  EXPECT_FALSE(IsHostName(std::string(64, 'a')));
}
