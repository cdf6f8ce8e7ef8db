// main() of every gtest binary. Test binaries get their environment here
// rather than from ctest properties, so that running a test binary by hand
// behaves exactly as under ctest.
#include <gtest/gtest.h>
#include <csignal>

#include <cstdlib>

// Sanitizer options live in the binary: CAF 0.17 has a known benign UBSan
// report (see tests/ubsan.supp), and leak checking is not what these tests test.
extern "C" const char* __ubsan_default_options() {
  return "print_stacktrace=1:suppressions=" MPS_SOURCE_DIR "/tests/ubsan.supp";
}
extern "C" const char* __asan_default_options() {
  return "detect_leaks=0";
}

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // a child that exits must not kill the test writing to it
  setenv("GRPC_VERBOSITY", "NONE", 0);
  setenv("MPS_BIN_DIR", MPS_BIN_DIR, 0);
  setenv("MPS_SOURCE_DIR", MPS_SOURCE_DIR, 0);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
