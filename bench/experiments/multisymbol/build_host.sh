#!/bin/sh
# Build a host shared library: $1 = output path, $2 = amsx | sim, rest = -D flags.
#   amsx: encoder + decoder (int32 output) + ctypes helpers (amsx_lib.c)
#   sim:  the ideal-code-length simulator (sim.c, used by run.py)
set -e
src=$(cd "$(dirname "$0")" && pwd)
out=$1; kind=$2; shift 2
case $out in /*) ;; *) out=$(pwd)/$out ;; esac
case $kind in
  amsx) files="amsx_lib.c amsx_enc.c amsx_dec.c amsx_model.c amsx_crc.c"; extra="-DOUT_T=int32_t -DHOST_STATS" ;;
  sim)  files="sim.c"; extra="" ;;
  *) echo "build_host.sh: unknown kind $kind" >&2; exit 2 ;;
esac
cd "$src"
gcc -O2 -shared -fPIC -std=c99 -Wall -Wextra $extra "$@" -o "$out" $files -lm
