// The README documents every key the parsers read, and nothing else; the
// deploy/ examples use only such keys, with values the parsers accept.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "config/hosts_file.h"
#include "plugin/plugin_config.h"
#include "scaling/pool_policy.h"

namespace {

std::string SourceDir() {
  const char* dir = std::getenv("MPS_SOURCE_DIR");
  return dir != nullptr ? dir : ".";
}

std::vector<std::string> Lines(const std::string& relative) {
  std::ifstream in(SourceDir() + "/" + relative);
  EXPECT_TRUE(in) << "cannot read " << relative << " under " << SourceDir();
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

struct KeyTable {
  bool found = false;
  std::vector<std::string> keys;  // in README order, duplicates kept
};

// Rows "| `key` | default | meaning |" (several `keys` may share a first
// cell) between the heading and the next heading of any level.
KeyTable ReadKeyTable(const std::vector<std::string>& readme, const std::string& heading) {
  static const std::regex kKey("`([^`]+)`");
  KeyTable table;
  bool in_section = false;
  for (const auto& line : readme) {
    if (line.rfind("#", 0) == 0) {
      if (in_section) break;
      in_section = line == heading;
      table.found = table.found || in_section;
      continue;
    }
    if (!in_section || line.rfind("| `", 0) != 0) continue;
    std::string first_cell = line.substr(1, line.find('|', 1) - 1);
    for (std::sregex_iterator it(first_cell.begin(), first_cell.end(), kKey), end; it != end;
         ++it) {
      table.keys.push_back((*it)[1]);
    }
  }
  return table;
}

std::string Describe(const std::set<std::string>& keys) {
  std::string out;
  for (const auto& k : keys) out += (out.empty() ? "" : ", ") + k;
  return out.empty() ? "(none)" : out;
}

// Documented vs known: names the keys missing from the README and the keys
// the README documents that the parser does not know.
void ExpectSameKeys(const KeyTable& table, const std::set<std::string>& known,
                    const std::string& heading) {
  ASSERT_TRUE(table.found) << "README.md has no heading \"" << heading << "\"";
  std::set<std::string> documented;
  std::set<std::string> duplicated;
  for (const auto& k : table.keys) {
    if (!documented.insert(k).second) duplicated.insert(k);
  }
  std::set<std::string> missing;
  std::set<std::string> extra;
  for (const auto& k : known) {
    if (!documented.contains(k)) missing.insert(k);
  }
  for (const auto& k : documented) {
    if (!known.contains(k)) extra.insert(k);
  }
  EXPECT_TRUE(missing.empty()) << heading
                               << ": keys the code reads but README.md does not document: "
                               << Describe(missing);
  EXPECT_TRUE(extra.empty()) << heading << ": keys README.md documents but the code does not know: "
                             << Describe(extra);
  EXPECT_TRUE(duplicated.empty()) << heading << ": keys documented twice: " << Describe(duplicated);
}

// The `key = "value"` attributes directly inside the block that starts at the
// first line matching `opener`, below `after` when given. Template actions
// ({{ ... }}) and comment lines are ignored; braces inside strings are not
// counted.
std::map<std::string, std::string> BlockAttributes(const std::vector<std::string>& lines,
                                                   const std::string& after,
                                                   const std::regex& opener) {
  static const std::regex kAction(R"(\{\{.*?\}\})");
  static const std::regex kAttribute(R"re(^\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*"([^"]*)"\s*$)re");
  std::map<std::string, std::string> attributes;
  bool seen_after = after.empty();
  int depth = 0;
  for (const auto& raw : lines) {
    std::string line = std::regex_replace(raw, kAction, "");
    auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    if (!seen_after) {
      seen_after = line.find(after) != std::string::npos;
      continue;
    }
    if (depth == 0) {
      if (std::regex_search(line, opener)) depth = 1;
      continue;
    }
    std::smatch m;
    if (depth == 1 && std::regex_match(line, m, kAttribute)) attributes[m[1]] = m[2];
    bool quoted = false;
    for (char c : line) {
      if (c == '"') quoted = !quoted;
      if (quoted) continue;
      if (c == '{') ++depth;
      if (c == '}') --depth;
    }
    if (depth == 0) break;
  }
  return attributes;
}

TEST(ReadmeKeys, PluginConfigTableListsExactlyTheKnownKeys) {
  auto known = mps::plugin::KnownPluginConfigKeys();
  ExpectSameKeys(ReadKeyTable(Lines("README.md"), "### Plugin config keys"),
                 std::set<std::string>(known.begin(), known.end()), "### Plugin config keys");
}

TEST(ReadmeKeys, PolicyTargetTableListsExactlyTheKnownKeys) {
  const auto& known = mps::scaling::KnownPolicyKeys();
  ExpectSameKeys(ReadKeyTable(Lines("README.md"), "### Policy target keys"),
                 std::set<std::string>(known.begin(), known.end()), "### Policy target keys");
}

TEST(ReadmeKeys, TableReaderStopsAtTheNextHeadingAndReadsEveryKeyOfACell) {
  std::vector<std::string> readme = {
      "### A",           "| key | default | meaning |",   "| --- | --- | --- |",
      "| `a` | 1 | x |", "| `b`, `c` | — | y, not `z` |", "## B",
      "| `d` | 2 | z |"};
  auto table = ReadKeyTable(readme, "### A");
  EXPECT_TRUE(table.found);
  EXPECT_EQ(table.keys, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_FALSE(ReadKeyTable(readme, "### C").found);
}

TEST(DeployExamples, PolicyTargetUsesKnownKeysWithValuesThePolicyParserAccepts) {
  auto target = BlockAttributes(Lines("deploy/nomad/policy.hcl"), "",
                                std::regex(R"(^\s*target\s+"multipass-target"\s*\{)"));
  ASSERT_GE(target.size(), 5u) << "no target \"multipass-target\" block in deploy/nomad/policy.hcl";
  for (const auto& [key, value] : target) {
    EXPECT_TRUE(mps::scaling::KnownPolicyKeys().contains(key))
        << "deploy/nomad/policy.hcl uses unknown target key " << key;
  }
  try {
    auto policy = mps::scaling::ParsePoolPolicy(target);
    EXPECT_TRUE(policy.warnings.empty());
    EXPECT_FALSE(policy.instance_image_name.empty()) << "the example pool could never scale out";
  } catch (const mps::scaling::PolicyError& e) {
    ADD_FAILURE() << "deploy/nomad/policy.hcl: " << e.what();
  }
}

TEST(DeployExamples, AgentConfigUsesKnownPluginKeysForSplitMode) {
  auto config =
      BlockAttributes(Lines("deploy/nomad/autoscaler.nomad.hcl"), "target \"multipass-target\"",
                      std::regex(R"(^\s*config\s*=\s*\{)"));
  ASSERT_GE(config.size(), 3u)
      << "no config = { ... } under target \"multipass-target\" in the job's agent config";
  auto known = mps::plugin::KnownPluginConfigKeys();
  std::set<std::string> known_set(known.begin(), known.end());
  for (const auto& [key, value] : config) {
    EXPECT_TRUE(known_set.contains(key))
        << "deploy/nomad/autoscaler.nomad.hcl uses unknown plugin config key " << key;
  }
  for (const char* key : {"hostd_address", "hostd_server_key_path", "bus_key_path"}) {
    EXPECT_TRUE(config.contains(key)) << "split mode needs " << key;
  }
}

TEST(DeployExamples, TwoHostHostsFileIsOneThePluginAccepts) {
  // Next to its key files (as the job's rendering or an operator would put
  // them), the example must pass the plugin's own hosts_file check.
  namespace fs = std::filesystem;
  fs::path dir = fs::path(::testing::TempDir()) / "two-hosts";
  fs::create_directories(dir);
  fs::copy_file(SourceDir() + "/deploy/nomad/hosts.two-hosts.json", dir / "hosts.json",
                fs::copy_options::overwrite_existing);
  for (const char* key : {"host-a.pub", "host-b.pub"})
    std::ofstream(dir / key) << std::string(40, 'a') << "\n";
  try {
    auto hosts = mps::config::ReadHostsFile(dir / "hosts.json");
    ASSERT_EQ(hosts.size(), 2u);
    EXPECT_EQ(hosts[0].name, "host-a");
    EXPECT_NE(hosts[0].zone, hosts[1].zone) << "the example shows two zones";
  } catch (const mps::config::HostsFileError& e) {
    ADD_FAILURE() << "deploy/nomad/hosts.two-hosts.json: " << e.what();
  }
  fs::remove_all(dir);
}

}  // namespace
