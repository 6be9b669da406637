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
# TINYCABAC_FUZZ_TARGETS (space-separated subset), TINYCABAC_FUZZ_JOBS (how
# many targets build and fuzz at once, default 1: one per core gives each
# target the same SECONDS on a core of its own in a fraction of the wall time).
set -u
SECONDS_EACH=${1:-60}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${TINYCABAC_FUZZ_BUILD:-$HERE/build}
TARGETS=${TINYCABAC_FUZZ_TARGETS:-"fuzz_decode_stream fuzz_streaming fuzz_small_output fuzz_directory fuzz_roundtrip fuzz_tflite_rebuild fuzz_skeleton_unpack"}
PYTHON=${PYTHON:-python3}
JOBS=${TINYCABAC_FUZZ_JOBS:-1}

make -s -j"$JOBS" -C "$HERE" BUILD="$BUILD" CC="${CC:-clang}" || exit 2
rm -rf "$BUILD/corpus"
"$PYTHON" "$HERE/make_seeds.py" "$BUILD/corpus" >/dev/null || exit 2

# Replay and fuzz one target; its row goes to $BUILD/$target.row, and the
# exit status is 1 unless the row ends in "ok".
fuzz_target() {
    target=$1
    regressions="$ROOT/tests/regressions/$target"
    log="$BUILD/$target.log"
    result=ok
    mkdir -p "$regressions"
    if ls "$regressions"/* >/dev/null 2>&1; then
        if ! "$BUILD/$target" "$regressions"/* >"$BUILD/$target.replay.log" 2>&1; then
            result="regression-fails(see $BUILD/$target.replay.log)"
        fi
    fi
    "$BUILD/$target" -max_total_time="$SECONDS_EACH" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$regressions/" "$BUILD/corpus/$target" >"$log" 2>&1
    rc=$?
    if [ $rc -ne 0 ]; then
        result="CRASH(rc=$rc, input in $regressions, log $log)"
    fi
    executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    stats=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1)
    cov=$(echo "$stats" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$stats" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corpus=$(echo "$stats" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
    printf '%-20s %12s %8s %8s %8s  %s\n' "$target" "${executions:-?}" "${cov:-?}" "${ft:-?}" "${corpus:-?}" \
        "$result" >"$BUILD/$target.row"
    [ "$result" = ok ]
}

status=0
batch=""
pids=""
# Wait for the running targets and print their rows in TARGETS order.
finish_batch() {
    for pid in $pids; do
        wait "$pid" || status=1
    done
    for finished in $batch; do
        cat "$BUILD/$finished.row" 2>/dev/null || { echo "$finished: no result"; status=1; }
    done
    batch=""
    pids=""
}

printf '%-20s %12s %8s %8s %8s  %s\n' target executions cov ft corpus result
for target in $TARGETS; do
    rm -f "$BUILD/$target.row"
    fuzz_target "$target" &
    batch="$batch $target"
    pids="$pids $!"
    if [ "$(echo $pids | wc -w)" -ge "$JOBS" ]; then
        finish_batch
    fi
done
finish_batch
exit $status
