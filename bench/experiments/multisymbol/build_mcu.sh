#!/bin/sh
# Build an ARM ELF of a decoder for the unicorn instruction count (bench/firmware_report.py's ThumbMachine)
# and its disassembly: $1 = -mcpu, $2 = -O level, $3 = output path (.elf), $4 = amsx, rest = -D flags.
set -e
src=$(cd "$(dirname "$0")" && pwd)
cpu=$1; opt=$2; out=$3; kind=$4; shift 4
case $out in /*) ;; *) out=$(pwd)/$out ;; esac
[ "$kind" = amsx ] || { echo "build_mcu.sh: unknown kind $kind" >&2; exit 2; }
files="m4x_harness.c amsx_dec.c amsx_model.c amsx_crc.c m4_libc.c"
cd "$src"
arm-none-eabi-gcc -mcpu=$cpu -mthumb $opt -mfloat-abi=soft -std=c99 -fno-tree-loop-distribute-patterns -ffunction-sections -fdata-sections -Wall -Wextra \
  "$@" -nostdlib -nostartfiles -T ../../firmware/bench.ld -Wl,--gc-sections -Wl,-e,bench -o "$out" $files -lgcc
arm-none-eabi-objdump -d "$out" > "${out%.elf}.dis"
