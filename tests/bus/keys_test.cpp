// Key files: read by name, bounded, and refused with what was expected.
#include "bus/keys.h"

#include <gtest/gtest.h>

#include <fstream>

#include "support/temp_dir.h"

namespace {

std::string Refusal(const std::string& path) {
  try {
    mps::bus::ReadKeyFile(path);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "accepted";
}

TEST(KeyFiles, AKeyWrittenByKeygenIsRead) {
  mps::testing::TempDir dir;
  auto pair = mps::bus::GenerateKeyPair();
  std::ofstream(dir.path() + "/k.pub") << pair.public_z85 << "\n";
  EXPECT_EQ(mps::bus::ReadKeyFile(dir.path() + "/k.pub"), pair.public_z85);
}

// A key path pointing at a huge file, or at /dev/zero, is refused after
// reading a few hundred bytes (issue 16: a 1 GB file took 12.9 s).
TEST(KeyFiles, AnEndlessOrHugeFileIsRefusedWithoutReadingIt) {
  auto endless = Refusal("/dev/zero");
  EXPECT_NE(endless.find("larger than a key file can be"), std::string::npos) << endless;
  mps::testing::TempDir dir;
  {
    std::ofstream big(dir.path() + "/big.key");
    big.seekp(64 << 20);  // a 64 MiB sparse file
    big << "x";
  }
  auto big = Refusal(dir.path() + "/big.key");
  EXPECT_NE(big.find("big.key is larger than a key file can be"), std::string::npos) << big;
}

TEST(KeyFiles, NotAKeyIsNamed) {
  mps::testing::TempDir dir;
  std::ofstream(dir.path() + "/x.pub") << "hello\n";
  auto error = Refusal(dir.path() + "/x.pub");
  EXPECT_NE(error.find("does not hold a z85 Curve key"), std::string::npos) << error;
  EXPECT_NE(Refusal(dir.path() + "/missing.pub").find("cannot be read"), std::string::npos);
}

}  // namespace
