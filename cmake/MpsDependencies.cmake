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
find_package(ZLIB REQUIRED)
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

# gRPC and protobuf as our code links them: every library links mps_grpc,
# and the target being linked picks the form with its MPS_GRPC_LINKAGE
# property:
#   (unset)     Debian's shared libraries;
#   static      Debian's static archives, linked in (multipass-target: the
#               dynamic loader's work on ~60 shared gRPC/protobuf/absl
#               libraries was most of its start-up, docs/BENCHMARKS.md);
#   executable  nothing: a module whose gRPC and protobuf are the ones of the
#               executable that loads it, so the process holds one copy.
add_library(mps_grpc INTERFACE)
set(_mps_grpc_linkage "$<TARGET_PROPERTY:MPS_GRPC_LINKAGE>")
target_link_libraries(mps_grpc INTERFACE
  "$<$<STREQUAL:${_mps_grpc_linkage},>:gRPC::grpc++;protobuf::libprotobuf>")
if(MPS_STATIC_GRPC_FRONT)
  set(MPS_GRPC_ARCHIVES)
  foreach(name grpc++ grpc gpr upb re2 cares address_sorting protobuf)
    find_library(MPS_ARCHIVE_${name} NAMES lib${name}.a NO_CACHE)
    if(NOT MPS_ARCHIVE_${name})
      message(FATAL_ERROR "MPS_STATIC_GRPC_FRONT: lib${name}.a not found (Debian's "
                          "libgrpc++-dev, libprotobuf-dev, libre2-dev, libc-ares-dev ship it); "
                          "configure with -DMPS_STATIC_GRPC_FRONT=OFF to link it shared")
    endif()
    list(APPEND MPS_GRPC_ARCHIVES ${MPS_ARCHIVE_${name}})
  endforeach()
  get_filename_component(_mps_archive_dir ${MPS_ARCHIVE_grpc} DIRECTORY)
  file(GLOB _mps_absl_archives ${_mps_archive_dir}/libabsl_*.a)
  if(NOT _mps_absl_archives)
    message(FATAL_ERROR "MPS_STATIC_GRPC_FRONT: no libabsl_*.a in ${_mps_archive_dir} "
                        "(Debian's libabsl-dev ships them)")
  endif()
  list(APPEND MPS_GRPC_ARCHIVES ${_mps_absl_archives})
  # gRPC's TLS (OpenSSL) and compression (zlib) are linked in too: as shared
  # libraries they were a third of the dynamic loader's symbol lookups at
  # exec (docs/BENCHMARKS.md). A module loaded by such an executable keeps
  # its own shared OpenSSL: the executable does not export these symbols
  # (services/target/backend_imports.sh), and our code hands gRPC PEM text,
  # never OpenSSL objects.
  set(MPS_GRPC_TLS_ARCHIVES)
  foreach(name ssl crypto z)
    find_library(MPS_ARCHIVE_${name} NAMES lib${name}.a NO_CACHE)
    if(NOT MPS_ARCHIVE_${name})
      message(FATAL_ERROR "MPS_STATIC_GRPC_FRONT: lib${name}.a not found (Debian's libssl-dev "
                          "and zlib1g-dev ship it)")
    endif()
    list(APPEND MPS_GRPC_TLS_ARCHIVES ${MPS_ARCHIVE_${name}})
  endforeach()
  # The archives depend on each other in cycles (absl's especially): one group.
  target_link_libraries(mps_grpc INTERFACE
    "$<$<STREQUAL:${_mps_grpc_linkage},static>:-Wl,--start-group;${MPS_GRPC_ARCHIVES};-Wl,--end-group;${MPS_GRPC_TLS_ARCHIVES};${CMAKE_DL_LIBS};Threads::Threads>")
endif()
