#!/bin/sh
# Build every libFuzzer target, replay the saved regression inputs, then fuzz
# each target for SECONDS seconds from seeds made of the golden vectors.
#
#   decoder_c/fuzz/run_fuzzers.sh [SECONDS]     (default 60)
#
# Prints one line per target: executions, edge coverage ("cov:" of
# libFuzzer's final stats), features, corpus size and the verdict.  A crash,
# leak or timeout is written to tests/regressions/<target>/ (commit it: the
# fuzz binaries and tests/test_fuzz_regressions.py replay it from then on)
# and makes the script exit 1, as does a failing regression input.
# Environment: CC (default clang), TINYCABAC_FUZZ_BUILD (build directory),
# TINYCABAC_FUZZ_TARGETS (space-separated subset).
set -u
SECONDS_EACH=${1:-60}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${TINYCABAC_FUZZ_BUILD:-$HERE/build}
TARGETS=${TINYCABAC_FUZZ_TARGETS:-"fuzz_decode_stream fuzz_streaming fuzz_small_output fuzz_directory fuzz_roundtrip fuzz_tflite_rebuild"}
PYTHON=${PYTHON:-python3}

make -s -C "$HERE" BUILD="$BUILD" CC="${CC:-clang}" || exit 2
rm -rf "$BUILD/corpus"
"$PYTHON" "$HERE/make_seeds.py" "$BUILD/corpus" >/dev/null || exit 2

status=0
printf '%-20s %12s %8s %8s %8s  %s\n' target executions cov ft corpus result
for target in $TARGETS; do
    regressions="$ROOT/tests/regressions/$target"
    log="$BUILD/$target.log"
    result=ok
    mkdir -p "$regressions"
    if ls "$regressions"/* >/dev/null 2>&1; then
        if ! "$BUILD/$target" "$regressions"/* >"$BUILD/$target.replay.log" 2>&1; then
            result="regression-fails(see $BUILD/$target.replay.log)"
            status=1
        fi
    fi
    "$BUILD/$target" -max_total_time="$SECONDS_EACH" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$regressions/" "$BUILD/corpus/$target" >"$log" 2>&1
    rc=$?
    if [ $rc -ne 0 ]; then
        result="CRASH(rc=$rc, input in $regressions, log $log)"
        status=1
    fi
    executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    stats=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1)
    cov=$(echo "$stats" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$stats" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corpus=$(echo "$stats" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
    printf '%-20s %12s %8s %8s %8s  %s\n' "$target" "${executions:-?}" "${cov:-?}" "${ft:-?}" "${corpus:-?}" "$result"
done
exit $status
