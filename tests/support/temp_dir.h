#pragma once
// A fresh directory for one test, removed with everything in it at the end.
#include <filesystem>
#include <string>

namespace mps::testing {

class TempDir {
 public:
  TempDir();  // mps-test-XXXXXX under $TMPDIR (else /tmp); throws when it cannot be made
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path()/name, for `dir / "file"`.
  std::filesystem::path operator/(const std::string& name) const {
    return std::filesystem::path(path_) / name;
  }

 private:
  std::string path_;
};

}  // namespace mps::testing
