// KnownNodes: when pool_nodes may use a node's remembered mapping attribute
// and when it must read the node again.
#include "nomad/known_nodes.h"

#include <gtest/gtest.h>

using namespace mps::nomad;

namespace {

constexpr const char* kHostname = "unique.hostname";

NodeStub Listed(std::string id, std::uint64_t create, std::uint64_t modify,
                std::string status = "ready", std::string elig = "eligible", bool drain = false) {
  NodeStub s;
  s.id = std::move(id);
  s.create_index = create;
  s.modify_index = modify;
  s.status = std::move(status);
  s.scheduling_eligibility = std::move(elig);
  s.drain = drain;
  return s;
}

Node Read(const NodeStub& stub, std::map<std::string, std::string> attributes) {
  Node n;
  n.id = stub.id;
  n.create_index = stub.create_index;
  n.modify_index = stub.modify_index;
  n.attributes = std::move(attributes);
  return n;
}

}  // namespace

TEST(KnownNodes, ANodeNeverReadMustBeRead) {
  KnownNodes known;
  EXPECT_EQ(known.Lookup(Listed("n1", 10, 10), kHostname), std::nullopt);
}

TEST(KnownNodes, ANodeReadIsNotReadAgainWhileOnlyItsStatusEligibilityOrDrainChange) {
  KnownNodes known;
  auto stub = Listed("n1", 10, 10);
  known.Remember(stub, Read(stub, {{kHostname, "web-a"}}), kHostname);
  EXPECT_EQ(known.Lookup(stub, kHostname), "web-a");
  // A warm instance's node: down while stopped, back (initializing, ready),
  // made eligible, drained.
  EXPECT_EQ(known.Lookup(Listed("n1", 10, 11, "down"), kHostname), "web-a");
  EXPECT_EQ(known.Lookup(Listed("n1", 10, 12, "initializing"), kHostname), "web-a");
  EXPECT_EQ(known.Lookup(Listed("n1", 10, 13, "ready"), kHostname), "web-a");
  EXPECT_EQ(known.Lookup(Listed("n1", 10, 14, "ready", "ineligible"), kHostname), "web-a");
  EXPECT_EQ(known.Lookup(Listed("n1", 10, 15, "ready", "ineligible", true), kHostname), "web-a");
  // The same listing again (another query at the same index).
  EXPECT_EQ(known.Lookup(Listed("n1", 10, 15, "ready", "ineligible", true), kHostname), "web-a");
}

TEST(KnownNodes, ANodeUpdatedInAWayTheListDoesNotShowIsReadAgain) {
  KnownNodes known;
  auto stub = Listed("n1", 10, 10);
  known.Remember(stub, Read(stub, {{kHostname, "web-a"}}), kHostname);
  // ModifyIndex moved, status/eligibility/drain did not: attributes may have.
  auto updated = Listed("n1", 10, 20);
  EXPECT_EQ(known.Lookup(updated, kHostname), std::nullopt);
  known.Remember(updated, Read(updated, {{kHostname, "web-b"}}), kHostname);
  EXPECT_EQ(known.Lookup(updated, kHostname), "web-b");
}

TEST(KnownNodes, ANodeRegisteredAgainUnderItsOldIdIsReadAgain) {
  KnownNodes known;
  auto stub = Listed("n1", 10, 10);
  known.Remember(stub, Read(stub, {{kHostname, "web-a"}}), kHostname);
  // Purged, then registered again: a new CreateIndex.
  EXPECT_EQ(known.Lookup(Listed("n1", 30, 30, "initializing"), kHostname), std::nullopt);
}

TEST(KnownNodes, ANodeWithoutTheAttributeIsReadEveryTime) {
  KnownNodes known;
  auto stub = Listed("n1", 10, 10);
  known.Remember(stub, Read(stub, {{"os.name", "ubuntu"}}), kHostname);
  EXPECT_EQ(known.Lookup(stub, kHostname), std::nullopt);
  known.Remember(stub, Read(stub, {{kHostname, ""}}), kHostname);
  EXPECT_EQ(known.Lookup(stub, kHostname), std::nullopt);
  EXPECT_EQ(known.size(), 0u);
}

TEST(KnownNodes, AnotherAttributeIsReadOnce) {
  KnownNodes known;
  auto stub = Listed("n1", 10, 10);
  known.Remember(stub, Read(stub, {{kHostname, "web-a"}, {"meta.vm", "vm-a"}}), kHostname);
  EXPECT_EQ(known.Lookup(stub, "meta.vm"), std::nullopt);
  known.Remember(stub, Read(stub, {{kHostname, "web-a"}, {"meta.vm", "vm-a"}}), "meta.vm");
  EXPECT_EQ(known.Lookup(stub, "meta.vm"), "vm-a");
  EXPECT_EQ(known.Lookup(stub, kHostname), "web-a");
}

TEST(KnownNodes, NodesNoLongerListedAreForgotten) {
  KnownNodes known;
  auto a = Listed("n1", 10, 10), b = Listed("n2", 11, 11);
  known.Remember(a, Read(a, {{kHostname, "web-a"}}), kHostname);
  known.Remember(b, Read(b, {{kHostname, "web-b"}}), kHostname);
  known.KeepOnly({b});
  EXPECT_EQ(known.size(), 1u);
  EXPECT_EQ(known.Lookup(a, kHostname), std::nullopt);
  EXPECT_EQ(known.Lookup(b, kHostname), "web-b");
}
