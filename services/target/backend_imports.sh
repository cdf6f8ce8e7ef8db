#!/bin/sh
# Writes two files for linking multipass-target against its backend module:
# - OUTPUT, the linker options that make multipass-target hold every gRPC,
#   protobuf and absl symbol its backend module imports: one
#   --undefined=SYMBOL per symbol the module leaves undefined and the static
#   archives define. A static link only keeps the archive members the
#   executable itself uses, and the module must find the rest in the
#   executable at dlopen.
# - DYNAMIC_LIST, the linker's --dynamic-list of what the executable exports:
#   every name in the module's dynamic symbol table, defined or not, except
#   the versioned ones (libc, libstdc++, OpenSSL...: the module binds those
#   to its shared libraries). Only these names can ever be looked up in the
#   executable on the module's behalf, so the module binds exactly as if the
#   executable exported everything, and the executable exports ~900
#   definitions instead of ~17 500 (docs/BENCHMARKS.md, start-up).
# Fails if the module would load a shared gRPC/protobuf/absl of its own: the
# process would then hold two copies of each.
#
# usage: backend_imports.sh NM OBJDUMP MODULE OUTPUT DYNAMIC_LIST ARCHIVE...
set -eu
nm=$1 objdump=$2 module=$3 output=$4 dynamic_list=$5
shift 5
if "$objdump" -p "$module" | grep -E 'NEEDED +lib(grpc|gpr|upb|protobuf|absl_|re2|cares|address_sorting)' >&2; then
  echo "backend_imports.sh: $module needs shared gRPC/protobuf/absl (above); it must take them from the executable" >&2
  exit 1
fi
defined=$(mktemp)
trap 'rm -f "$defined"' EXIT
"$nm" -g --defined-only -f posix "$@" 2>/dev/null | awk 'NF >= 2 { print $1 }' >"$defined"
"$nm" -D --undefined-only -f posix "$module" |
  awk 'NR == FNR { archive[$1] = 1; next } ($1 in archive) { print "--undefined=" $1 }' "$defined" - |
  sort -u >"$output.tmp"
"$nm" -D -f posix "$module" |
  awk 'NF >= 2 && $1 !~ /@/ { print "  \"" $1 "\";" }' | sort -u |
  awk 'BEGIN { print "{" } { print } END { print "};" }' >"$dynamic_list.tmp"
mv "$output.tmp" "$output"
mv "$dynamic_list.tmp" "$dynamic_list"
