// libFuzzer target for the policy parser (a Scale's and a Status's target
// block): any map is either a policy or a PolicyError naming problems;
// nothing else may happen (no crash, no other exception). Keys are mostly
// the known ones so the fuzzer reaches every check.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "scaling/pool_policy.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::vector<std::string> keys(mps::scaling::KnownPolicyKeys().begin(),
                                             mps::scaling::KnownPolicyKeys().end());
  FuzzedDataProvider in(data, size);
  std::map<std::string, std::string> raw;
  while (in.remaining_bytes() > 0 && raw.size() < 40) {
    std::string key = in.ConsumeBool()
                          ? keys[in.ConsumeIntegralInRange<std::size_t>(0, keys.size() - 1)]
                          : in.ConsumeRandomLengthString(32);
    raw[key] = in.ConsumeRandomLengthString(128);
  }
  try {
    auto policy = mps::scaling::ParsePoolPolicy(raw);
    // What was accepted must hold the documented bounds.
    if (policy.max_instances < 1 || policy.max_instances > mps::scaling::kMaxMaxInstances ||
        policy.max_parallel_launches < 1) {
      __builtin_trap();
    }
    if (policy.instance_name_prefix.empty()) __builtin_trap();
  } catch (const mps::scaling::PolicyError& e) {
    if (e.problems().empty()) __builtin_trap();
  }
  // The size syntax on its own, with whatever is left.
  (void)mps::scaling::ParseInstanceSize(in.ConsumeRemainingBytesAsString());
  return 0;
}
