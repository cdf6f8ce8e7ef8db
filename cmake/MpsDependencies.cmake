# Every external library comes from Debian's packages (scripts/install-deps).
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
find_package(Protobuf REQUIRED)
find_package(gRPC CONFIG REQUIRED)
find_package(cppzmq CONFIG REQUIRED)
# Ask for 4.1: with no version the C library's config (msgpackc) could win.
find_package(msgpack 4.1 CONFIG REQUIRED)
find_package(CURL REQUIRED)
find_package(nlohmann_json CONFIG REQUIRED)
find_package(spdlog CONFIG REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(GTest REQUIRED)
find_package(benchmark CONFIG REQUIRED)
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
# Prometheus metrics: prometheus-cpp core (registry) and pull (HTTP exposer).
find_package(prometheus-cpp CONFIG REQUIRED)
find_package(civetweb CONFIG REQUIRED)  # /ready beside the Exposer's /metrics
pkg_check_modules(SYSTEMD REQUIRED IMPORTED_TARGET libsystemd)

# CAF 0.17 ships neither a CMake config nor a .pc file.
find_path(CAF_INCLUDE_DIR caf/all.hpp REQUIRED)
find_library(CAF_CORE_LIBRARY caf_core REQUIRED)
find_library(CAF_IO_LIBRARY caf_io REQUIRED)
add_library(mps_caf INTERFACE)
target_include_directories(mps_caf SYSTEM INTERFACE ${CAF_INCLUDE_DIR})
target_link_libraries(mps_caf INTERFACE ${CAF_CORE_LIBRARY} ${CAF_IO_LIBRARY} Threads::Threads)
add_library(mps::caf ALIAS mps_caf)
