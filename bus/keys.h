#pragma once
// CurveZMQ keys as z85 text files (what `mpscale keygen` writes):
// NAME.key holds the secret key (mode 0600), NAME.pub the public key.
#include <filesystem>
#include <string>
#include <vector>

namespace mps::bus {

struct CurveServerConfig;  // bus/transport.h

struct CurveKeyPair {
  std::string public_z85;  // 40 characters
  std::string secret_z85;  // 40 characters
};

CurveKeyPair GenerateKeyPair();
std::string PublicKeyFromSecret(const std::string& secret_z85);

// Read one z85 key (40 chars, surrounding whitespace allowed). Throws
// std::runtime_error naming the file and what is wrong with it.
std::string ReadKeyFile(const std::filesystem::path& path);
CurveKeyPair ReadSecretKeyFile(const std::filesystem::path& path);
// Every *.pub file of a directory; throws when the directory is missing or a file is malformed.
std::vector<std::string> ReadAuthorizedKeys(const std::filesystem::path& dir);

// The Curve settings of a server socket: its secret key and every *.pub key
// of `authorized_keys_dir` as the clients it admits. Throws what
// ReadAuthorizedKeys throws; an empty directory gives a server that admits
// nobody, which the caller may refuse.
CurveServerConfig MakeCurveServerConfig(std::string secret_z85,
                                        const std::filesystem::path& authorized_keys_dir);

// Writes DIR/NAME.key (0600) and DIR/NAME.pub (0644); refuses to overwrite.
void WriteKeyPair(const std::filesystem::path& dir, const std::string& name,
                  const CurveKeyPair& keys);

}  // namespace mps::bus
