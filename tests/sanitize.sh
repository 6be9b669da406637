#!/bin/sh
# The encoder's C core and its cffi binding under AddressSanitizer and
# UndefinedBehaviorSanitizer (docs/FUZZING.md): builds tinycabac._native
# with the sanitizers into build/sanitize, leaving the normal install
# alone, and runs the encoder-facing tests and the hostile-input driver
# against it.  `make sanitize` runs this.
set -eu
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=build/sanitize
SAN="-fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=undefined,float-cast-overflow -fno-omit-frame-pointer -g"

rm -rf "$OUT"
# gcc, not clang: Python is not built with ASan, so the runtime is preloaded,
# and gcc links the shared libasan that `gcc -print-file-name` finds.
# float-cast-overflow is not part of gcc's -fsanitize=undefined.
CC=gcc CFLAGS="$SAN" LDFLAGS="$SAN" "$PY" setup.py -q build_ext --build-lib "$OUT" --build-temp "$OUT/temp"
cp host/tinycabac/*.py "$OUT/tinycabac/"
cp -r host/tinycabac/models "$OUT/tinycabac/"

export PYTHONPATH="$OUT" LD_PRELOAD="$(gcc -print-file-name=libasan.so)"
export ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
"$PY" -c "import sys, tinycabac._native as n; sys.exit(0 if '/$OUT/' in n.__file__ else 'not the sanitized build: ' + n.__file__)"
# The deselected test caps the address space (ulimit -v), where ASan cannot
# reserve its shadow memory.
TINYCABAC_HOSTILE_EXAMPLES=${TINYCABAC_HOSTILE_EXAMPLES:-300} "$PY" -m pytest -p no:cacheprovider -q \
    tests/test_hostile_inputs.py tests/test_codec.py tests/test_updates.py tests/test_golden.py \
    tests/test_accuracy.py tests/test_models.py tests/test_cli.py tests/test_tflite_io.py tests/test_export_c.py \
    tests/test_skeleton_pack.py \
    --deselect tests/test_cli.py::test_a_tensor_claiming_more_elements_than_its_payload_holds_is_refused_before_allocation \
    "$@"
