#include "target/unwired_backend.h"

#include <filesystem>
#include <fstream>
#include <functional>

#include <gtest/gtest.h>

#include "plugin/plugin_error.h"

namespace fs = std::filesystem;
using mps::plugin::PluginError;
using mps::target::UnwiredBackend;

namespace {

PluginError::Code CodeOf(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const PluginError& e) {
    return e.code;
  }
  ADD_FAILURE() << "no PluginError thrown";
  return PluginError::Code::internal;
}

}  // namespace

TEST(UnwiredBackend, RefusesBeforeAndAfterConfigNeverFakesSuccess) {
  std::string t = (fs::temp_directory_path() / "mps-unwired-XXXXXX").string();
  fs::path dir = mkdtemp(t.data());
  std::ofstream(dir / "c.pem") << "c";
  std::ofstream(dir / "k.pem") << "k";
  UnwiredBackend b;
  mps::plugin::ScaleAction up;
  up.direction = mps::plugin::Direction::up;
  auto forever = std::chrono::steady_clock::time_point::max();
  EXPECT_EQ(CodeOf([&] { b.Status({}, forever); }), PluginError::Code::failed_precondition);
  EXPECT_EQ(CodeOf([&] { b.Scale(up, {}); }), PluginError::Code::failed_precondition);
  EXPECT_EQ(CodeOf([&] {
              b.SetConfig({{"passphrase", "x"}});
            }),
            PluginError::Code::invalid_argument);
  EXPECT_EQ(CodeOf([&] { b.Status({}, forever); }), PluginError::Code::failed_precondition);

  b.SetConfig({{"multipass_address", "127.0.0.1:50051"},
               {"client_cert_path", (dir / "c.pem").string()},
               {"client_key_path", (dir / "k.pem").string()},
               {"passphrase", "pw"}});
  EXPECT_EQ(CodeOf([&] { b.Status({}, forever); }), PluginError::Code::unavailable);
  EXPECT_EQ(CodeOf([&] { b.Scale(up, {}); }), PluginError::Code::unavailable);
  // A bad reload is refused and leaves the last good config in place.
  EXPECT_EQ(CodeOf([&] { b.SetConfig({}); }), PluginError::Code::invalid_argument);
  EXPECT_EQ(CodeOf([&] { b.Status({}, forever); }), PluginError::Code::unavailable);
  fs::remove_all(dir);
}
