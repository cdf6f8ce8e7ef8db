#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "fake_multipassd.h"
#include "multipass/multipass_client.h"
#include "test_pki.h"

namespace mps::multipass::testing {

// A fake multipassd on a unix socket in a fresh temp dir, per test.
class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_ = std::make_unique<FakeMultipassd>(pki_.server);
    address_ = fake_->Start(SocketAddress());
  }
  void TearDown() override { fake_->Stop(); }

  std::string SocketAddress() const { return "unix:" + (dir_ / "multipass_socket").string(); }

  MultipassClientOptions Options() const {
    MultipassClientOptions o;
    o.address = address_;
    o.connect_timeout = std::chrono::milliseconds(2000);
    o.call_timeout = std::chrono::milliseconds(5000);
    o.launch_overhead = std::chrono::milliseconds(10000);
    return o;
  }

  template <class F>
  static MultipassError CatchError(F f) {
    try {
      f();
    } catch (const MultipassError& e) {
      return e;
    }
    ADD_FAILURE() << "no MultipassError thrown";
    return MultipassError(MultipassError::Kind::internal, "none");
  }

  TempDir dir_;
  TestPki pki_ = MakeTestPki();
  std::unique_ptr<FakeMultipassd> fake_;
  std::string address_;
};

}  // namespace mps::multipass::testing
