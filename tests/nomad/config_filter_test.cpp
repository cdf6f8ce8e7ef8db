// Connection config from nomad_* keys and NOMAD_* env, the pool filter,
// the node → instance mapping and the drain policy keys.
#include <gtest/gtest.h>

#include "nomad/drain_coordinator.h"
#include "nomad/node_instance_mapper.h"
#include "nomad/node_pool_filter.h"
#include "nomad/nomad_config.h"
#include "nomad/nomad_error.h"

using namespace mps::nomad;
using namespace std::chrono_literals;

namespace {

std::string KeyOfError(const std::map<std::string, std::string>& keys, const EnvLookup& env) {
  try {
    FromConfigMap(keys, env);
  } catch (const NomadConfigError& e) {
    return e.key;
  }
  return "(no error)";
}

NodeStub Stub(std::string id, std::string cls, std::string status = "ready", bool drain = false,
              std::string elig = "eligible") {
  NodeStub n;
  n.id = std::move(id);
  n.node_class = std::move(cls);
  n.datacenter = "dc1";
  n.node_pool = "default";
  n.status = std::move(status);
  n.drain = drain;
  n.scheduling_eligibility = std::move(elig);
  return n;
}

}  // namespace

TEST(NomadConfig, DefaultsWithNothingSet) {
  auto c = FromConfigMap({}, EnvFromMap({}));
  EXPECT_EQ(c.address, "http://127.0.0.1:4646");
  EXPECT_EQ(c.block_query_wait, 5min);
  EXPECT_FALSE(c.skip_verify);
  EXPECT_TRUE(c.token.empty());
}

TEST(NomadConfig, ReadsEveryKey) {
  auto c = FromConfigMap({{"nomad_address", "https://nomad.example:4646/"},
                          {"nomad_region", "eu"},
                          {"nomad_namespace", "*"},
                          {"nomad_token", "s3cret"},
                          {"nomad_http-auth", "alice:pw:with:colons"},
                          {"nomad_ca-cert", "/ca.pem"},
                          {"nomad_ca-path", "/cas"},
                          {"nomad_client-cert", "/c.pem"},
                          {"nomad_client-key", "/k.pem"},
                          {"nomad_tls-server-name", "server.global.nomad"},
                          {"nomad_skip-verify", "true"},
                          {"nomad_block-query-wait-time", "30s"}},
                         EnvFromMap({}));
  EXPECT_EQ(c.address, "https://nomad.example:4646");
  EXPECT_EQ(c.region, "eu");
  EXPECT_EQ(c.namespace_name, "*");
  EXPECT_EQ(c.token, "s3cret");
  EXPECT_EQ(c.http_auth_user, "alice");
  EXPECT_EQ(c.http_auth_password, "pw:with:colons");
  EXPECT_EQ(c.ca_cert, "/ca.pem");
  EXPECT_EQ(c.ca_path, "/cas");
  EXPECT_EQ(c.client_cert, "/c.pem");
  EXPECT_EQ(c.client_key, "/k.pem");
  EXPECT_EQ(c.tls_server_name, "server.global.nomad");
  EXPECT_TRUE(c.skip_verify);
  EXPECT_EQ(c.block_query_wait, 30s);
  EXPECT_EQ(c.Describe().find("s3cret"), std::string::npos);
  EXPECT_EQ(c.Describe().find("pw:with"), std::string::npos);
}

TEST(NomadConfig, EnvironmentIsTheFallbackAndKeysWin) {
  auto env = EnvFromMap({{"NOMAD_ADDR", "http://10.0.0.1:4646"},
                         {"NOMAD_REGION", "us"},
                         {"NOMAD_NAMESPACE", "ops"},
                         {"NOMAD_TOKEN", "envtoken"},
                         {"NOMAD_HTTP_AUTH", "bob"},
                         {"NOMAD_CACERT", "/env-ca.pem"},
                         {"NOMAD_CAPATH", "/env-cas"},
                         {"NOMAD_CLIENT_CERT", "/env-c.pem"},
                         {"NOMAD_CLIENT_KEY", "/env-k.pem"},
                         {"NOMAD_TLS_SERVER_NAME", "env.nomad"},
                         {"NOMAD_SKIP_VERIFY", "1"}});
  auto c = FromConfigMap({{"nomad_region", "eu"}, {"nomad_token", ""}}, env);
  EXPECT_EQ(c.address, "http://10.0.0.1:4646");
  EXPECT_EQ(c.region, "eu");  // the key wins
  EXPECT_EQ(c.namespace_name, "ops");
  EXPECT_EQ(c.token, "envtoken");  // an empty key does not hide the env
  EXPECT_EQ(c.http_auth_user, "bob");
  EXPECT_FALSE(c.http_auth_password);
  EXPECT_EQ(c.ca_cert, "/env-ca.pem");
  EXPECT_EQ(c.ca_path, "/env-cas");
  EXPECT_EQ(c.client_cert, "/env-c.pem");
  EXPECT_EQ(c.client_key, "/env-k.pem");
  EXPECT_EQ(c.tls_server_name, "env.nomad");
  EXPECT_TRUE(c.skip_verify);
}

TEST(NomadConfig, BadValuesNameTheKeyOrVariable) {
  auto none = EnvFromMap({});
  EXPECT_EQ(KeyOfError({{"nomad_skip-verify", "yes"}}, none), "nomad_skip-verify");
  EXPECT_EQ(KeyOfError({}, EnvFromMap({{"NOMAD_SKIP_VERIFY", "maybe"}})), "NOMAD_SKIP_VERIFY");
  EXPECT_EQ(KeyOfError({{"nomad_block-query-wait-time", "5 minutes"}}, none),
            "nomad_block-query-wait-time");
  EXPECT_EQ(KeyOfError({{"nomad_block-query-wait-time", "-1s"}}, none),
            "nomad_block-query-wait-time");
  EXPECT_EQ(KeyOfError({{"nomad_address", "127.0.0.1:4646"}}, none), "nomad_address");
  EXPECT_EQ(KeyOfError({}, EnvFromMap({{"NOMAD_ADDR", "ftp://x"}})), "NOMAD_ADDR");
  EXPECT_EQ(KeyOfError({{"nomad_http-auth", ":pw"}}, none), "nomad_http-auth");
  EXPECT_EQ(KeyOfError({{"nomad_client-cert", "/c.pem"}}, none), "nomad_client-key");
}

TEST(NodePoolFilter, RequiresAnIdentificationMethod) {
  try {
    NodePoolFilter::FromPolicyConfig({{"node_purge", "true"}});
    FAIL();
  } catch (const NomadConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("node pool identification method required"),
              std::string::npos);
  }
  EXPECT_THROW(NodePoolFilter::FromPolicyConfig(
                   {{"node_class", "web"}, {"node_filter_ignore_drain", "sometimes"}}),
               NomadConfigError);
}

TEST(NodePoolFilter, ClassDatacenterAndPoolAreAnded) {
  auto f = NodePoolFilter::FromPolicyConfig({{"node_class", "web"}, {"datacenter", "dc2"}});
  auto a = Stub("a", "web");
  auto b = Stub("b", "web");
  b.datacenter = "dc2";
  auto c = Stub("c", "db");
  c.datacenter = "dc2";
  EXPECT_FALSE(f.InPool(a));
  EXPECT_TRUE(f.InPool(b));
  EXPECT_FALSE(f.InPool(c));
  EXPECT_EQ(f.ServerFilterExpression(), "NodeClass == \"web\" and Datacenter == \"dc2\"");

  auto pool = NodePoolFilter::FromPolicyConfig({{"node_pool", "gpu"}});
  auto g = Stub("g", "");
  g.node_pool = "gpu";
  EXPECT_TRUE(pool.InPool(g));
  EXPECT_FALSE(pool.InPool(a));
}

TEST(NodePoolFilter, DefaultPoolClassMatchesEmptyClass) {
  auto f = NodePoolFilter::FromPolicyConfig({{"node_class", "autoscaler-default-pool"}});
  EXPECT_TRUE(f.InPool(Stub("a", "")));
  EXPECT_FALSE(f.InPool(Stub("b", "web")));
  EXPECT_EQ(f.ServerFilterExpression(),
            "(NodeClass == \"\" or NodeClass == \"autoscaler-default-pool\")");
}

TEST(NodePoolFilter, InitializingAndDrainingNodesAreErrorsDownNodesAreSkipped) {
  auto f = NodePoolFilter::FromPolicyConfig({{"node_class", "web"}});
  std::vector<NodeStub> nodes = {Stub("ready", "web"),
                                 Stub("init", "web", "initializing"),
                                 Stub("draining", "web", "ready", true, "ineligible"),
                                 Stub("down", "web", "down"),
                                 Stub("gone", "web", "disconnected"),
                                 Stub("inelig", "web", "ready", false, "ineligible"),
                                 Stub("other", "db", "initializing"),
                                 Stub("self", "web")};
  auto r = f.Filter(nodes, "self");
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_EQ(r.errors[0], "node init is initializing");
  EXPECT_EQ(r.errors[1], "node draining is draining");
  EXPECT_TRUE(r.kept.empty());  // any error empties the result, as in the SDK

  std::vector<NodeStub> settled = {nodes[0], nodes[3], nodes[4], nodes[5], nodes[6], nodes[7]};
  auto plain = f.Filter(settled, "self");
  ASSERT_EQ(plain.kept.size(), 1u);  // ineligible skipped, own node dropped
  EXPECT_EQ(plain.kept[0].id, "ready");

  auto scale_in = f.ForScaleIn().Filter(settled, "self");
  EXPECT_EQ(scale_in.kept.size(), 2u);  // ineligible kept for scale-in

  auto relaxed = NodePoolFilter::FromPolicyConfig({{"node_class", "web"},
                                                   {"node_filter_ignore_init", "true"},
                                                   {"node_filter_ignore_drain", "true"},
                                                   {"node_filter_ignore_ineligible", "false"}});
  auto rr = relaxed.ForScaleIn().Filter(nodes);
  EXPECT_TRUE(rr.ok());
  EXPECT_EQ(rr.kept.size(), 2u);  // ready + self; the policy's false stays
}

TEST(NodeInstanceMapper, MapsByAttributeAndReportsNodesWithoutIt) {
  Node a;
  a.id = "n-a";
  a.name = "web-1";
  a.attributes = {{"unique.hostname", "web-1"}, {"platform.multipass.name", "mp-web-1"}};
  Node b;
  b.id = "n-b";
  b.name = "lost";
  NodeInstanceMapper mapper;
  EXPECT_EQ(mapper.InstanceOf(a), "web-1");
  EXPECT_FALSE(mapper.InstanceOf(b));
  auto m = mapper.Map({a, b});
  EXPECT_EQ(m.instance_by_node.at("n-a"), "web-1");
  EXPECT_EQ(m.node_by_instance.at("web-1"), "n-a");
  ASSERT_EQ(m.unmapped.size(), 1u);
  EXPECT_NE(m.unmapped[0].find("n-b"), std::string::npos);
  EXPECT_NE(m.unmapped[0].find("unique.hostname"), std::string::npos);

  auto custom =
      NodeInstanceMapper::FromPolicyConfig({{"node_id_attribute", "platform.multipass.name"}});
  EXPECT_EQ(custom.InstanceOf(a), "mp-web-1");
  EXPECT_EQ(NodeInstanceMapper::FromPolicyConfig({}).attribute(), "unique.hostname");
}

TEST(DrainOptions, PolicyKeysAndGuard) {
  auto d = DrainOptions::FromPolicyConfig({});
  EXPECT_EQ(d.deadline, 15min);
  EXPECT_FALSE(d.ignore_system_jobs);
  EXPECT_EQ(d.Spec().deadline_ns, 900'000'000'000);
  d = DrainOptions::FromPolicyConfig(
      {{"node_drain_deadline", "0"}, {"node_drain_ignore_system_jobs", "T"}});
  EXPECT_EQ(d.Spec().deadline_ns, 0);
  EXPECT_TRUE(d.ignore_system_jobs);
  EXPECT_EQ(d.Guard(), d.no_deadline_limit);
  d = DrainOptions::FromPolicyConfig({{"node_drain_deadline", "-1s"}});
  EXPECT_LT(d.Spec().deadline_ns, 0);
  EXPECT_EQ(d.Guard(), d.grace);
  try {
    DrainOptions::FromPolicyConfig({{"node_drain_deadline", "15 min"}});
    FAIL();
  } catch (const NomadConfigError& e) {
    EXPECT_EQ(e.key, "node_drain_deadline");
  }
  try {
    DrainOptions::FromPolicyConfig({{"node_drain_ignore_system_jobs", "yes"}});
    FAIL();
  } catch (const NomadConfigError& e) {
    EXPECT_EQ(e.key, "node_drain_ignore_system_jobs");
  }
}
