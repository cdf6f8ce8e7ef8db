// libFuzzer target for the plugin config parser (SetConfig's map): any map is
// either a configuration or a list of problems; nothing else may happen (no
// crash, no exception, no unbounded read). Keys are mostly the known ones so
// the fuzzer reaches every check; path values are mostly fixture files (a
// valid key, a bad key, a directory, a missing file) since the parser reads
// what they name.
#include <fuzzer/FuzzedDataProvider.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "plugin/plugin_config.h"

namespace {

std::vector<std::string> g_keys;
std::vector<std::string> g_paths;
std::string g_dir;

void RemoveFixtures() {
  std::error_code ec;
  std::filesystem::remove_all(g_dir, ec);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_keys = mps::plugin::KnownPluginConfigKeys();
  char tmpl[] = "/tmp/mps-fuzz-config-XXXXXX";
  if (!mkdtemp(tmpl)) std::abort();
  g_dir = tmpl;
  std::atexit(RemoveFixtures);
  std::ofstream(g_dir + "/good.key") << "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\n";
  std::ofstream(g_dir + "/bad.key") << "not a key";
  std::filesystem::create_directories(g_dir + "/state");
  g_paths = {g_dir + "/good.key",
             g_dir + "/bad.key",
             g_dir + "/state",
             g_dir + "/missing",
             "ipc://" + g_dir + "/status.sock",
             "tcp://127.0.0.1:7400",
             "http://127.0.0.1:4646"};
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  std::map<std::string, std::string> raw;
  while (in.remaining_bytes() > 0 && raw.size() < 32) {
    std::string key = in.ConsumeBool()
                          ? g_keys[in.ConsumeIntegralInRange<std::size_t>(0, g_keys.size() - 1)]
                          : in.ConsumeRandomLengthString(32);
    std::string value = in.ConsumeBool()
                            ? g_paths[in.ConsumeIntegralInRange<std::size_t>(0, g_paths.size() - 1)]
                            : in.ConsumeRandomLengthString(256);
    raw[key] = value;
  }
  auto parsed = mps::plugin::ParsePluginConfig(raw);
  if (parsed.config.has_value() == !parsed.problems.empty()) __builtin_trap();
  if (!parsed.problems.empty() && mps::plugin::DescribeProblems(parsed.problems).empty()) {
    __builtin_trap();
  }
  return 0;
}
