#pragma once
// CAF messages whose types are described by the contract codec
// (contracts/codec.h): `MPS_CAF_INSPECT_BY_CONTRACT(T)` in T's namespace gives
// T an inspect() overload, so CAF accepts it as an ordinary, serializable
// message type instead of an unsafe one. Actors in one process never
// serialize, so this costs nothing on the local path; should a message ever
// cross a process through CAF, it travels as its contract's JSON text.
#include <string>

#include <caf/all.hpp>

#include "contracts/codec.h"

namespace mps::bus {

template <class Inspector, class T>
typename Inspector::result_type InspectByContract(Inspector& f, T& x) {
  if constexpr (Inspector::reads_state) {
    std::string text = contracts::Encode(x).dump();
    return f(text);
  } else {
    std::string text;
    return f(text, caf::meta::load_callback([&]() -> caf::error {
               auto parsed = nlohmann::json::parse(text, nullptr, false);
               if (parsed.is_discarded()) return caf::make_error(caf::sec::invalid_argument);
               try {
                 x = contracts::Decode<T>(parsed, "CAF message");
               } catch (const contracts::ContractError&) {
                 return caf::make_error(caf::sec::invalid_argument);
               }
               return caf::none;
             }));
  }
}

}  // namespace mps::bus

#define MPS_CAF_INSPECT_BY_CONTRACT(T)                          \
  template <class Inspector>                                    \
  typename Inspector::result_type inspect(Inspector& f, T& x) { \
    return ::mps::bus::InspectByContract(f, x);                 \
  }
