#include "bus/keys.h"

#include <sys/stat.h>
#include <zmq.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "bus/transport.h"

namespace mps::bus {
namespace fs = std::filesystem;

CurveKeyPair GenerateKeyPair() {
  char pub[41], sec[41];
  if (zmq_curve_keypair(pub, sec) != 0)
    throw std::runtime_error(std::string("cannot generate a Curve key pair: ") +
                             zmq_strerror(zmq_errno()));
  return {pub, sec};
}

std::string PublicKeyFromSecret(const std::string& secret_z85) {
  char pub[41];
  if (secret_z85.size() != 40 || zmq_curve_public(pub, secret_z85.c_str()) != 0)
    throw std::runtime_error("not a valid z85 Curve secret key");
  return pub;
}

namespace {
bool IsZ85(const std::string& s) {
  static const std::string kAlphabet =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
  return s.size() == 40 && std::all_of(s.begin(), s.end(), [](char c) {
           return kAlphabet.find(c) != std::string::npos;
         });
}
}  // namespace

constexpr std::size_t kMaxKeyFileBytes = 256;

std::string ReadKeyFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("key file " + path.string() + " cannot be read");
  // A key file is 40 characters and a newline: read no more than a little
  // over that, so a key path pointing at a huge file (or /dev/zero) is
  // refused at once instead of read whole.
  std::string text(kMaxKeyFileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxKeyFileBytes)
    throw std::runtime_error("key file " + path.string() + " is larger than a key file can be (" +
                             std::to_string(kMaxKeyFileBytes) +
                             " bytes at most; expected 40 z85 characters, as written by "
                             "`mpscale keygen`)");
  auto first = text.find_first_not_of(" \t\r\n");
  auto last = text.find_last_not_of(" \t\r\n");
  std::string key = first == std::string::npos ? "" : text.substr(first, last - first + 1);
  if (!IsZ85(key))
    throw std::runtime_error("key file " + path.string() +
                             " does not hold a z85 Curve key (expected 40 z85 characters, as "
                             "written by `mpscale keygen`)");
  return key;
}

CurveKeyPair ReadSecretKeyFile(const fs::path& path) {
  std::string secret = ReadKeyFile(path);
  return {PublicKeyFromSecret(secret), secret};
}

std::vector<std::string> ReadAuthorizedKeys(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw std::runtime_error("authorized keys directory " + dir.string() + " does not exist");
  std::vector<std::string> keys;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".pub") keys.push_back(ReadKeyFile(entry.path()));
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

CurveServerConfig MakeCurveServerConfig(std::string secret_z85,
                                        const fs::path& authorized_keys_dir) {
  CurveServerConfig config;
  config.secret_z85 = std::move(secret_z85);
  for (auto& key : ReadAuthorizedKeys(authorized_keys_dir))
    config.authorized_public_z85.insert(std::move(key));
  return config;
}

void WriteKeyPair(const fs::path& dir, const std::string& name, const CurveKeyPair& keys) {
  if (name.empty() || name.find('/') != std::string::npos)
    throw std::runtime_error("key name '" + name + "' must be a plain file name");
  fs::create_directories(dir);
  auto sec = dir / (name + ".key");
  auto pub = dir / (name + ".pub");
  for (const auto& p : {sec, pub})
    if (fs::exists(p))
      throw std::runtime_error(p.string() + " already exists; not overwriting a key");
  {
    // Create the secret file 0600 from the start: never world-readable, even briefly.
    mode_t old = umask(077);
    std::ofstream out(sec);
    umask(old);
    if (!out) throw std::runtime_error("cannot write " + sec.string());
    out << keys.secret_z85 << "\n";
  }
  fs::permissions(sec, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
  std::ofstream out(pub);
  if (!out) throw std::runtime_error("cannot write " + pub.string());
  out << keys.public_z85 << "\n";
}

}  // namespace mps::bus
