#pragma once
// The bus messages of the Multipass session actor. Served by
// multipass-hostd (split mode) and in-process by multipass-target (direct
// mode); the plugin side only ever speaks these.
//
// Requests (payload -> reply payload). Errors come back as bus errors with
// kHandlerFailed and app_code = MultipassError kind name (e.g. "name_taken",
// "unreachable", "not_allowed" for a name outside hostd's --allow-prefix).
//   multipass.list    {prefix: str}                  -> {instances: [Instance], in_flight:
//   [InFlight]} multipass.launch  {name, image, cpus?: int, memory?: str, disk?: str,
//                      cloud_init?: str, timeout_s?: int}  (idempotency key required)
//                                                     -> {name}
//   multipass.delete  {names: [str]} (non-empty; idempotency key required) -> {deleted: [str]}
//   multipass.start   {names: [str]} (non-empty; idempotency key required) -> {started: [str]}
//   multipass.info    {names: [str]}                 -> {instances: [Instance]}
//   multipass.version {}                             -> {version: str, address: str}
//   Instance = {name, state: str (InstanceState name), ipv4: [str], release: str}
//   InFlight = {name, image, submitted_ms: int}
//
// Events (topic = type; fields):
//   instance.launching {name, image}      instance.running {name}
//   instance.failed    {name, error, kind, leftover?: str}
//   instance.deleted   {name}
#include <string_view>

namespace mps::multipass::bus_protocol {

inline constexpr std::string_view kList = "multipass.list";
inline constexpr std::string_view kLaunch = "multipass.launch";
inline constexpr std::string_view kDelete = "multipass.delete";
inline constexpr std::string_view kStart = "multipass.start";
inline constexpr std::string_view kInfo = "multipass.info";
inline constexpr std::string_view kVersion = "multipass.version";

inline constexpr std::string_view kInstanceLaunching = "instance.launching";
inline constexpr std::string_view kInstanceRunning = "instance.running";
inline constexpr std::string_view kInstanceFailed = "instance.failed";
inline constexpr std::string_view kInstanceDeleted = "instance.deleted";

}  // namespace mps::multipass::bus_protocol
