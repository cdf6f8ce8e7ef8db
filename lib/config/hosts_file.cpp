#include "config/hosts_file.h"

#include <map>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "config/bus_values.h"
#include "config/measured_file.h"

namespace mps::config {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

std::string JoinProblems(const std::vector<std::string>& problems) {
  std::string text;
  for (const auto& p : problems) text += (text.empty() ? "" : "; ") + p;
  return text;
}

std::string TypeOf(const json& v) {
  if (v.is_string()) return "the string " + v.dump();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number()) return "the number " + v.dump();
  if (v.is_null()) return "null";
  if (v.is_array()) return "a list";
  return "an object";
}

class EntryChecker {
 public:
  EntryChecker(const fs::path& file, std::vector<std::string>& problems)
      : file_(file), problems_(problems) {}

  void Problem(const std::string& where, const std::string& what) {
    problems_.push_back("hosts_file \"" + file_.string() + "\": " + where + ": " + what);
  }

  // One entry of "hosts"; false when it has a problem.
  bool Check(std::size_t index, const json& entry, HostEntry& out) {
    std::string where = "hosts[" + std::to_string(index) + "]";
    if (!entry.is_object()) {
      Problem(where, "expected an object with name, hostd_address and hostd_server_key_path, got " +
                         TypeOf(entry));
      return false;
    }
    std::size_t before = problems_.size();
    if (auto it = entry.find("name"); it != entry.end() && it->is_string()) {
      where += " (\"" + it->get<std::string>() + "\")";
    }
    static const std::set<std::string> kFields = {"name", "hostd_address", "hostd_server_key_path",
                                                  "zone", "weight"};
    for (const auto& [key, value] : entry.items()) {
      if (!kFields.contains(key))
        Problem(where, "unknown field \"" + key +
                           "\"; expected only name, hostd_address, hostd_server_key_path, zone "
                           "and weight");
    }
    auto text = [&](const char* field, bool required) -> std::optional<std::string> {
      auto it = entry.find(field);
      if (it == entry.end()) {
        if (required) Problem(where, std::string(field) + ": missing");
        return std::nullopt;
      }
      if (!it->is_string() || it->get_ref<const std::string&>().empty()) {
        Problem(where, std::string(field) + ": expected a non-empty string, got " + TypeOf(*it));
        return std::nullopt;
      }
      return it->get<std::string>();
    };
    if (auto name = text("name", true)) {
      if (IsHostName(*name)) {
        out.name = *name;
      } else {
        Problem(where, "name: \"" + *name +
                           "\" is not a host name; expected letters, digits, '.', '_' or '-', "
                           "starting with a letter or digit, at most 63 characters");
      }
    }
    if (auto address = text("hostd_address", true)) {
      if (IsBusEndpoint(*address)) {
        out.hostd_address = *address;
      } else {
        Problem(where, "hostd_address: \"" + *address +
                           "\" is not a bus endpoint; expected tcp://host:port or ipc:///path");
      }
    }
    if (auto key = text("hostd_server_key_path", true)) {
      fs::path p(*key);
      if (p.is_relative()) p = file_.parent_path() / p;
      try {
        out.hostd_server_public_key = ReadZ85KeyFile(p, "this host's hostd public key");
        out.hostd_server_key_path = p;
      } catch (const KeyFileError& e) {
        Problem(where, std::string("hostd_server_key_path: ") + e.what());
      }
    }
    if (auto zone = text("zone", false)) {
      if (IsHostName(*zone)) {
        out.zone = *zone;
      } else {
        Problem(where, "zone: \"" + *zone +
                           "\" is not a zone name; expected letters, digits, '.', '_' or '-', "
                           "starting with a letter or digit, at most 63 characters");
      }
    }
    if (auto it = entry.find("weight"); it != entry.end()) {
      if (it->is_number_integer() && it->get<std::int64_t>() >= 1 &&
          it->get<std::int64_t>() <= kMaxHostWeight) {
        out.weight = static_cast<int>(it->get<std::int64_t>());
      } else {
        Problem(where, "weight: expected an integer from 1 to " + std::to_string(kMaxHostWeight) +
                           ", got " + TypeOf(*it));
      }
    }
    return problems_.size() == before;
  }

 private:
  const fs::path& file_;
  std::vector<std::string>& problems_;
};

}  // namespace

bool IsHostName(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alnum(name.front())) return false;
  for (char c : name)
    if (!alnum(c) && c != '.' && c != '_' && c != '-') return false;
  return true;
}

HostsFileError::HostsFileError(std::vector<std::string> problems)
    : std::runtime_error(JoinProblems(problems)), problems_(std::move(problems)) {}

std::vector<HostEntry> ParseHostsFile(std::string_view text, const fs::path& path) {
  std::vector<std::string> problems;
  EntryChecker checker(path, problems);
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  const std::string shape =
      "expected a JSON object {\"hosts\": [{\"name\": ..., \"hostd_address\": ..., "
      "\"hostd_server_key_path\": ...}, ...]}";
  if (doc.is_discarded()) {
    problems.push_back("hosts_file \"" + path.string() + "\": not valid JSON; " + shape);
    throw HostsFileError(std::move(problems));
  }
  if (!doc.is_object() || !doc.contains("hosts")) {
    problems.push_back("hosts_file \"" + path.string() + "\": no \"hosts\" list; " + shape);
    throw HostsFileError(std::move(problems));
  }
  for (const auto& [key, value] : doc.items()) {
    if (key != "hosts")
      checker.Problem("\"" + key + "\"", "unknown field; expected only \"hosts\"");
  }
  const json& list = doc["hosts"];
  if (!list.is_array() || list.empty()) {
    checker.Problem("hosts", "expected a non-empty list of hosts, got " + TypeOf(list));
    throw HostsFileError(std::move(problems));
  }
  std::vector<HostEntry> hosts;
  std::map<std::string, std::size_t> names, addresses;
  for (std::size_t i = 0; i < list.size(); ++i) {
    HostEntry entry;
    bool ok = checker.Check(i, list[i], entry);
    std::string where = "hosts[" + std::to_string(i) + "]" +
                        (entry.name.empty() ? "" : " (\"" + entry.name + "\")");
    if (!entry.name.empty()) {
      auto [it, fresh] = names.try_emplace(entry.name, i);
      if (!fresh) {
        checker.Problem(where, "name: \"" + entry.name + "\" is already the name of hosts[" +
                                   std::to_string(it->second) + "]; expected unique names");
        ok = false;
      }
    }
    if (!entry.hostd_address.empty()) {
      auto [it, fresh] = addresses.try_emplace(entry.hostd_address, i);
      if (!fresh) {
        checker.Problem(where, "hostd_address: \"" + entry.hostd_address +
                                   "\" is already the address of hosts[" +
                                   std::to_string(it->second) +
                                   "]; expected one entry per multipass-hostd");
        ok = false;
      }
    }
    if (ok) hosts.push_back(std::move(entry));
  }
  if (!problems.empty()) throw HostsFileError(std::move(problems));
  return hosts;
}

std::vector<HostEntry> ReadHostsFile(const fs::path& path) {
  auto refuse = [&](const std::string& why) {
    throw HostsFileError({"hosts_file \"" + path.string() + "\": " + why});
  };
  std::error_code ec;
  auto status = fs::status(path, ec);
  if (!fs::exists(status)) refuse("does not exist; expected the path of a JSON host list");
  if (!fs::is_regular_file(status))
    refuse("is not a regular file; expected the path of a JSON host list");
  auto size = fs::file_size(path, ec);
  if (ec) refuse("cannot be read: " + ec.message());
  if (size > kMaxHostsFileBytes)
    refuse("is " + std::to_string(size) + " bytes; at most " + std::to_string(kMaxHostsFileBytes) +
           " are accepted");
  auto text = ReadMeasuredFile(path, size);
  if (!text) refuse("cannot be opened by this process");
  return ParseHostsFile(*text, path);
}

}  // namespace mps::config
