#include "scaling/pool_policy.h"

#include <cctype>
#include <charconv>
#include <limits>
#include <set>

#include "config/go_values.h"
#include "scaling/instance_namer.h"

namespace mps::scaling {
namespace {

constexpr std::uint64_t kKiB = 1024;
constexpr std::uint64_t kMiB = kKiB * 1024;
constexpr std::uint64_t kGiB = kMiB * 1024;
constexpr std::uint64_t kMinMemory = 512 * kMiB;
constexpr std::uint64_t kMinDisk = kGiB;

}  // namespace

const std::set<std::string, std::less<>>& KnownPolicyKeys() {
  static const std::set<std::string, std::less<>> keys = {
      "node_class",
      "datacenter",
      "node_pool",
      "instance_name_prefix",
      "instance_image_name",
      "instance_cpus",
      "instance_memory",
      "instance_disk",
      "instance_size",
      "cloud_init_user_data_path",
      "max_instances",
      "max_parallel_launches",
      "startup_timeout",
      "image_download_timeout",
      "node_registration_timeout",
      "node_drain_deadline",
      "node_drain_ignore_system_jobs",
      "node_purge",
      "node_selector_strategy",
      "node_id_attribute",
      "node_filter_ignore_init",
      "node_filter_ignore_drain",
      "node_filter_ignore_ineligible",
      "hosts",
      "zones",
      "placement_strategy",
      "warm_pool_size",
      "warm_pool_max_prepared",
      "warm_pool_reuse_on_scale_in",
      "dry-run",
      "_nomad_autoscaler_grpc_timeout",
  };
  return keys;
}

namespace {

std::string Quoted(std::string_view v) {
  return "\"" + std::string(v) + "\"";
}

std::optional<std::int64_t> ParseDecimal(std::string_view text) {
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::string Join(const std::vector<PolicyProblem>& problems) {
  std::string text = "invalid scaling policy target: ";
  for (std::size_t i = 0; i < problems.size(); ++i) {
    if (i > 0) text += "; ";
    text += problems[i].key + ": " + problems[i].message;
  }
  return text;
}

// Collects problems while reading keys, so every bad key is reported at once.
class TargetReader {
 public:
  explicit TargetReader(const std::map<std::string, std::string>& config) : config_(config) {}

  std::optional<std::string_view> Get(std::string_view key) const {
    auto it = config_.find(std::string(key));
    if (it == config_.end() || it->second.empty()) return std::nullopt;
    return std::string_view(it->second);
  }

  std::string String(std::string_view key) const { return std::string(Get(key).value_or("")); }

  void Problem(std::string_view key, std::string message) {
    problems_.push_back({std::string(key), std::move(message)});
  }

  std::optional<bool> Bool(std::string_view key) {
    auto text = Get(key);
    if (!text) return std::nullopt;
    if (auto v = config::ParseGoBool(*text)) return v;
    Problem(key, "expected a boolean (true/false/1/0/t/f), got " + Quoted(*text));
    return std::nullopt;
  }

  std::optional<std::chrono::nanoseconds> Duration(std::string_view key, bool must_be_positive) {
    auto text = Get(key);
    if (!text) return std::nullopt;
    auto v = config::ParseGoDuration(*text);
    if (!v) {
      Problem(key, "expected a Go duration such as \"90s\" or \"10m\", got " + Quoted(*text));
      return std::nullopt;
    }
    if (must_be_positive && v->count() <= 0) {
      Problem(key, "expected a positive duration, got " + Quoted(*text));
      return std::nullopt;
    }
    return v;
  }

  std::optional<int> PositiveInt(std::string_view key,
                                 std::int64_t maximum = std::numeric_limits<int>::max()) {
    auto text = Get(key);
    if (!text) return std::nullopt;
    auto v = ParseDecimal(*text);
    if (!v || *v < 1) {
      Problem(key, "expected a positive integer, got " + Quoted(*text));
      return std::nullopt;
    }
    if (*v > maximum) {
      Problem(key, "expected at most " + std::to_string(maximum) + ", got " + Quoted(*text));
      return std::nullopt;
    }
    return static_cast<int>(*v);
  }

  std::optional<std::uint64_t> Size(std::string_view key, std::uint64_t minimum,
                                    std::string_view minimum_text) {
    auto text = Get(key);
    if (!text) return std::nullopt;
    auto v = ParseMultipassSize(*text);
    if (!v) {
      Problem(key, "expected a size such as \"512M\", \"4G\" or \"2GiB\", got " + Quoted(*text));
      return std::nullopt;
    }
    if (*v < minimum) {
      Problem(key, "expected at least " + std::string(minimum_text) + ", got " + Quoted(*text));
      return std::nullopt;
    }
    return v;
  }

  // A comma-separated list of host (zone) names; blanks around names ignored.
  std::set<std::string> NameList(std::string_view key, std::string_view what) {
    std::set<std::string> names;
    auto text = Get(key);
    if (!text) return names;
    std::string_view rest = *text;
    while (true) {
      auto comma = rest.find(',');
      std::string_view item = rest.substr(0, comma);
      while (!item.empty() && std::isspace(static_cast<unsigned char>(item.front())))
        item.remove_prefix(1);
      while (!item.empty() && std::isspace(static_cast<unsigned char>(item.back())))
        item.remove_suffix(1);
      if (!config::IsHostName(item)) {
        Problem(key, "expected a comma-separated list of " + std::string(what) + " names, got " +
                         (item.empty() ? std::string("an empty item") : Quoted(item)) + " in " +
                         Quoted(*text));
        return {};
      }
      names.emplace(item);
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
    return names;
  }

  const std::vector<PolicyProblem>& problems() const { return problems_; }

 private:
  const std::map<std::string, std::string>& config_;
  std::vector<PolicyProblem> problems_;
};

// The value an enum's names table (EnumNames) gives `text`.
template <class E>
std::optional<E> FromPolicyName(std::string_view text) {
  for (const auto& [value, name] : EnumNames(E{}))
    if (name == text) return value;
  return std::nullopt;
}

// Fills cpus/memory/disk from instance_size where the explicit keys are unset;
// an explicit key that disagrees with the size is a conflict, not an override.
void ApplyInstanceSize(TargetReader& reader, PoolPolicy& policy) {
  auto text = reader.Get("instance_size");
  if (!text) return;
  auto size = ParseInstanceSize(*text);
  if (!size) {
    reader.Problem("instance_size",
                   "expected a size name c<cpus>-m<GiB memory>[-d<GiB disk>] such as \"c2-m4\" "
                   "or \"c2-m4-d20\", got " +
                       Quoted(*text));
    return;
  }
  auto conflict = [&](std::string_view key, const std::string& explicit_value,
                      const std::string& size_value) {
    reader.Problem(key, std::string(key) + "=" + explicit_value + " conflicts with instance_size " +
                            Quoted(*text) + " (" + size_value + "); set only one of them");
  };
  if (policy.instance_cpus && *policy.instance_cpus != size->cpus) {
    conflict("instance_cpus", std::to_string(*policy.instance_cpus),
             std::to_string(size->cpus) + " CPUs");
  }
  if (policy.instance_memory_bytes && *policy.instance_memory_bytes != size->memory_bytes) {
    conflict("instance_memory", FormatMultipassSize(*policy.instance_memory_bytes),
             FormatMultipassSize(size->memory_bytes) + " memory");
  }
  if (policy.instance_disk_bytes && size->disk_bytes &&
      *policy.instance_disk_bytes != *size->disk_bytes) {
    conflict("instance_disk", FormatMultipassSize(*policy.instance_disk_bytes),
             FormatMultipassSize(*size->disk_bytes) + " disk");
  }
  policy.instance_cpus = size->cpus;
  policy.instance_memory_bytes = size->memory_bytes;
  if (size->disk_bytes) policy.instance_disk_bytes = size->disk_bytes;
}

// warm_pool_*: the warm pool's size is a non-negative integer; warm and
// running instances together never exceed max_instances.
void ParseWarmPool(TargetReader& reader, PoolPolicy& p) {
  if (auto text = reader.Get("warm_pool_size")) {
    auto v = ParseDecimal(*text);
    if (!v || *v < 0) {
      reader.Problem("warm_pool_size",
                     "expected a non-negative integer (0 = no warm pool), got " + Quoted(*text));
    } else if (*v > p.max_instances) {
      reader.Problem("warm_pool_size", "expected at most max_instances (" +
                                           std::to_string(p.max_instances) + "), got " +
                                           Quoted(*text));
    } else {
      p.warm_pool_size = static_cast<int>(*v);
    }
  }
  if (auto v = reader.PositiveInt("warm_pool_max_prepared", kMaxMaxInstances)) {
    if (*v > p.max_instances) {
      reader.Problem("warm_pool_max_prepared",
                     "expected at most max_instances (" + std::to_string(p.max_instances) +
                         "): warm and running instances never exceed it, got \"" +
                         std::to_string(*v) + "\"");
    } else if (*v < p.warm_pool_size) {
      reader.Problem("warm_pool_max_prepared", "expected at least warm_pool_size (" +
                                                   std::to_string(p.warm_pool_size) + "), got \"" +
                                                   std::to_string(*v) + "\"");
    } else {
      p.warm_pool_max_prepared = *v;
    }
  }
  p.warm_pool_reuse_on_scale_in = reader.Bool("warm_pool_reuse_on_scale_in").value_or(false);
}

}  // namespace

std::string_view ToString(NodeSelectorStrategy s) {
  for (const auto& [value, name] : EnumNames(s))
    if (value == s) return name;
  return "unknown";
}

PolicyError::PolicyError(std::vector<PolicyProblem> problems)
    : std::runtime_error(Join(problems)), problems_(std::move(problems)) {}

std::string FormatMultipassSize(std::uint64_t bytes) {
  if (bytes != 0 && bytes % kGiB == 0) return std::to_string(bytes / kGiB) + "G";
  if (bytes != 0 && bytes % kMiB == 0) return std::to_string(bytes / kMiB) + "M";
  if (bytes != 0 && bytes % kKiB == 0) return std::to_string(bytes / kKiB) + "K";
  return std::to_string(bytes);
}

std::vector<PolicyProblem> CheckPlacementScope(const PoolPolicy& policy,
                                               const std::vector<config::HostEntry>& hosts) {
  std::vector<PolicyProblem> problems;
  std::set<std::string> host_names, zone_names;
  for (const auto& h : hosts) {
    host_names.insert(h.name);
    if (!h.zone.empty()) zone_names.insert(h.zone);
  }
  auto join = [](const std::set<std::string>& names) {
    std::string text;
    for (const auto& n : names) text += (text.empty() ? "" : ", ") + n;
    return text.empty() ? std::string("none") : text;
  };
  auto unknown = [&](const char* key, const std::set<std::string>& wanted,
                     const std::set<std::string>& known, const char* what) {
    std::set<std::string> missing;
    for (const auto& n : wanted)
      if (!known.contains(n)) missing.insert(n);
    if (!missing.empty())
      problems.push_back({key, "unknown " + std::string(what) + (missing.size() == 1 ? " " : "s ") +
                                   join(missing) + "; expected names from the plugin's hosts (" +
                                   what + "s: " + join(known) + ")"});
  };
  unknown("hosts", policy.hosts, host_names, "host");
  unknown("zones", policy.zones, zone_names, "zone");
  if (!problems.empty()) return problems;
  bool any = hosts.empty();
  for (const auto& h : hosts)
    any = any || ((policy.hosts.empty() || policy.hosts.contains(h.name)) &&
                  (policy.zones.empty() || policy.zones.contains(h.zone)));
  if (!any)
    problems.push_back({"hosts", "hosts " + join(policy.hosts) + " and zones " +
                                     join(policy.zones) +
                                     " have no host in common; expected at least one host the "
                                     "pool may use"});
  return problems;
}

std::optional<InstanceSize> ParseInstanceSize(std::string_view text) {
  // Reads "<letter><positive integer>" and the '-' that may follow it.
  auto part = [&](char letter) -> std::optional<std::int64_t> {
    if (text.empty() || text.front() != letter) return std::nullopt;
    text.remove_prefix(1);
    std::size_t n = 0;
    while (n < text.size() && text[n] >= '0' && text[n] <= '9') ++n;
    auto value = ParseDecimal(text.substr(0, n));
    if (!value || *value < 1 || *value > 1024 * 1024) return std::nullopt;
    text.remove_prefix(n);
    return value;
  };
  auto dash = [&] {
    if (text.empty() || text.front() != '-') return false;
    text.remove_prefix(1);
    return true;
  };
  InstanceSize size;
  auto cpus = part('c');
  if (!cpus || !dash()) return std::nullopt;
  auto memory = part('m');
  if (!memory) return std::nullopt;
  size.cpus = static_cast<int>(*cpus);
  size.memory_bytes = static_cast<std::uint64_t>(*memory) * kGiB;
  if (text.empty()) return size;
  if (!dash()) return std::nullopt;
  auto disk = part('d');
  if (!disk || !text.empty()) return std::nullopt;
  size.disk_bytes = static_cast<std::uint64_t>(*disk) * kGiB;
  return size;
}

PoolPolicy ParsePoolPolicy(const std::map<std::string, std::string>& target_config) {
  TargetReader reader(target_config);
  PoolPolicy p;

  p.node_class = reader.String("node_class");
  p.datacenter = reader.String("datacenter");
  p.node_pool = reader.String("node_pool");
  // The SDK's node filter tests these keys' presence: set but empty, the key
  // still filters (node_class = "" matches no node), unlike every other key.
  for (const char* key : {"node_class", "datacenter", "node_pool"}) {
    auto it = target_config.find(key);
    if (it == target_config.end() || !it->second.empty()) continue;
    reader.Problem(key, std::string("set but empty: the autoscaler's node filter would still "
                                    "apply it and match ") +
                            (std::string_view(key) == "node_class"
                                 ? "no node (class-less nodes are node_class = "
                                   "\"autoscaler-default-pool\")"
                                 : "only nodes whose value is empty") +
                            "; remove the key or give it a value");
  }
  if (p.node_class.empty() && p.datacenter.empty() && p.node_pool.empty()) {
    reader.Problem("node_class",
                   "node pool identification method required: set at least one of node_class, "
                   "datacenter or node_pool");
  }

  if (auto prefix = reader.Get("instance_name_prefix")) {
    p.instance_name_prefix = std::string(*prefix);
    if (!IsValidNamePrefix(p.instance_name_prefix)) {
      reader.Problem("instance_name_prefix",
                     "expected a hostname prefix (a letter, then letters, digits or '-', not "
                     "ending in '-', at most " +
                         std::to_string(kMaxNamePrefixLength) + " characters), got " +
                         Quoted(*prefix));
    }
  } else if (!p.node_class.empty()) {
    p.instance_name_prefix = p.node_class;
    if (!IsValidNamePrefix(p.instance_name_prefix)) {
      reader.Problem("instance_name_prefix",
                     "not set, and node_class " + Quoted(p.node_class) +
                         " is not a valid hostname prefix to default to; set "
                         "instance_name_prefix explicitly");
    }
  } else {
    reader.Problem("instance_name_prefix",
                   "required when node_class is not set (instance names default to node_class)");
  }

  p.instance_image_name = reader.String("instance_image_name");
  p.instance_cpus = reader.PositiveInt("instance_cpus");
  p.instance_memory_bytes = reader.Size("instance_memory", kMinMemory, "512M");
  p.instance_disk_bytes = reader.Size("instance_disk", kMinDisk, "1G");
  ApplyInstanceSize(reader, p);
  p.cloud_init_user_data_path = reader.String("cloud_init_user_data_path");

  p.max_instances =
      reader.PositiveInt("max_instances", kMaxMaxInstances).value_or(kDefaultMaxInstances);
  p.max_parallel_launches =
      reader.PositiveInt("max_parallel_launches").value_or(kDefaultMaxParallelLaunches);
  if (auto d = reader.Duration("startup_timeout", true)) p.startup_timeout = *d;
  if (auto d = reader.Duration("image_download_timeout", false)) {
    if (d->count() < 0)
      reader.Problem("image_download_timeout", "expected a duration of 0 or more, got " +
                                                   Quoted(config::FormatGoDuration(*d)));
    else
      p.image_download_timeout = *d;
  }
  if (auto d = reader.Duration("node_registration_timeout", true)) {
    p.node_registration_timeout = *d;
  }
  if (auto d = reader.Duration("node_drain_deadline", false)) p.node_drain_deadline = *d;
  p.hosts = reader.NameList("hosts", "host");
  p.zones = reader.NameList("zones", "zone");
  if (auto text = reader.Get("placement_strategy")) {
    if (auto s = FromPolicyName<PlacementStrategy>(*text)) {
      p.placement_strategy = *s;
    } else {
      reader.Problem("placement_strategy",
                     "expected spread (even over hosts and zones) or pack (fill the fullest host "
                     "that fits first), got " +
                         Quoted(*text));
    }
  }
  p.node_drain_ignore_system_jobs = reader.Bool("node_drain_ignore_system_jobs").value_or(false);
  p.node_purge = reader.Bool("node_purge").value_or(false);
  if (auto text = reader.Get("node_selector_strategy")) {
    if (auto s = FromPolicyName<NodeSelectorStrategy>(*text)) {
      p.node_selector_strategy = *s;
    } else {
      reader.Problem("node_selector_strategy",
                     "unsupported node selector strategy " + Quoted(*text) +
                         "; expected one of least_busy, empty, empty_ignore_system, "
                         "newest_create_index, oldest_create_index");
    }
  }
  if (auto attr = reader.Get("node_id_attribute")) p.node_id_attribute = std::string(*attr);
  p.node_filter_ignore_init = reader.Bool("node_filter_ignore_init");
  p.node_filter_ignore_drain = reader.Bool("node_filter_ignore_drain");
  p.node_filter_ignore_ineligible = reader.Bool("node_filter_ignore_ineligible");
  p.dry_run = reader.Bool("dry-run").value_or(false);
  ParseWarmPool(reader, p);
  p.grpc_timeout = reader.Duration("_nomad_autoscaler_grpc_timeout", true);

  for (const auto& [key, value] : target_config) {
    if (!KnownPolicyKeys().contains(key)) {
      p.warnings.push_back("unknown target key \"" + key + "\" ignored");
    }
  }
  if (!reader.problems().empty()) throw PolicyError(reader.problems());
  return p;
}

}  // namespace mps::scaling
