#!/usr/bin/env bash
# Builds Fraunhofer NNCodec 2.1.3 (the MPEG NNC reference) in its own venv,
# bench/.venv-nncodec, so its pins (numpy<2, torch, ...) never touch the
# project's interpreter. Only the C++ deepCABAC extension is used by the bench;
# it is a pybind11 module and imports without torch, so the package is
# installed with --no-deps. Takes ~3 minutes on 2 cores; re-running is a no-op.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv-nncodec"
cache="$here/.cache/nncodec"
python="${PYTHON:-python3}"

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "from nncodec.extensions import deepCABAC" 2>/dev/null; then
    echo "NNCodec deepCABAC already built in $venv"
    exit 0
fi

mkdir -p "$cache"
"$python" -m venv "$venv"
# numpy<2 is what NNCodec declares; pybind11 and setuptools build the extension.
"$venv/bin/pip" install --quiet "numpy<2" "pybind11>=2.10" "setuptools>=61" wheel
"$venv/bin/pip" download --quiet --no-deps --no-binary :all: nncodec==2.1.3 -d "$cache"
MAX_JOBS=2 "$venv/bin/pip" install --no-deps --no-build-isolation "$cache/nncodec-2.1.3.tar.gz"
"$venv/bin/python" -c "from nncodec.extensions import deepCABAC; print('NNCodec deepCABAC built:', deepCABAC.__file__)"
