# Generated protobuf/gRPC code is built from proto/ into the build tree and
# never committed. Outputs only change when a .proto changes, so unchanged
# generated code is not rebuilt.
set(MPS_PROTO_GEN_DIR ${CMAKE_BINARY_DIR}/generated)
file(MAKE_DIRECTORY ${MPS_PROTO_GEN_DIR})

# mps_proto_library(<target> <file.proto relative to proto/>...)
function(mps_proto_library target)
  set(srcs)
  foreach(rel ${ARGN})
    get_filename_component(dir ${rel} DIRECTORY)
    get_filename_component(stem ${rel} NAME_WE)
    if(dir)
      set(base ${MPS_PROTO_GEN_DIR}/${dir}/${stem})
    else()
      set(base ${MPS_PROTO_GEN_DIR}/${stem})
    endif()
    set(outs ${base}.pb.cc ${base}.pb.h ${base}.grpc.pb.cc ${base}.grpc.pb.h)
    add_custom_command(
      OUTPUT ${outs}
      COMMAND protobuf::protoc --proto_path=${CMAKE_SOURCE_DIR}/proto
              --cpp_out=${MPS_PROTO_GEN_DIR} --grpc_out=${MPS_PROTO_GEN_DIR}
              --plugin=protoc-gen-grpc=$<TARGET_FILE:gRPC::grpc_cpp_plugin>
              ${CMAKE_SOURCE_DIR}/proto/${rel}
      DEPENDS ${CMAKE_SOURCE_DIR}/proto/${rel} protobuf::protoc gRPC::grpc_cpp_plugin
      COMMENT "protoc ${rel}")
    list(APPEND srcs ${base}.pb.cc ${base}.grpc.pb.cc)
  endforeach()
  add_library(${target} STATIC ${srcs})
  target_include_directories(${target} SYSTEM PUBLIC ${MPS_PROTO_GEN_DIR})
  target_link_libraries(${target} PUBLIC mps_grpc)
endfunction()
