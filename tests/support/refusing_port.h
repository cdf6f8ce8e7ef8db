#pragma once
// A loopback TCP port that refuses connections for as long as this object
// lives: bound, never listening. Unlike a port that was just closed, no test
// running in parallel can take it over.
namespace mps::testing {

class RefusingPort {
 public:
  RefusingPort();
  ~RefusingPort();
  RefusingPort(const RefusingPort&) = delete;
  RefusingPort& operator=(const RefusingPort&) = delete;
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace mps::testing
