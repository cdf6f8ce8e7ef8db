// libFuzzer target for the envelope decoder: any input is either decoded or
// rejected with DecodeError; nothing else may happen (no crash, no other
// exception, no unbounded allocation).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "bus/envelope.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    auto e = mps::bus::Decode(std::string_view(reinterpret_cast<const char*>(data), size));
    // A decoded envelope must encode and decode to itself.
    auto again = mps::bus::Decode(mps::bus::Encode(e));
    if (again.type != e.type || again.payload != e.payload) __builtin_trap();
  } catch (const mps::bus::DecodeError&) {
  }
  return 0;
}
