"""Train the contexts' starting probabilities (tc_context_init, FORMAT 5.2).

Every tensor starts its 166 contexts afresh, so that any tensor decodes on its own. From
p = 1/2 a small tensor spends a good part of its bits learning; HEVC's CABAC starts each
context from a table instead, and so does tinycabac since format 13.

The table is trained on models that are NOT in the bench corpus (bench/corpus.py), so that
the benches measure it on data it has not seen: mediapipe 0.10.14's pose_detection and
hand_recrop. Their conv / fully-connected weights are coded as the two regimes tinycabac
meets: TFLite-style int8 levels (per output channel, [-127, 127]) and float weights
quantized by nearest rounding at the step std * 2^-3. A context's entry is
p0 = (zeros + 1) / (bins + 2) over the first 64 bins it codes in each tensor (the encoder
built with TCE_CONTEXT_STATS counts them), as 1/256ths clamped to 2..254.

Measured on the corpus (real encoder, levels coded alone), against every context at 1/2:
int8 levels -0.10%, quantized levels at std * 2^-2, -3, -4: -0.08%, -0.06%, -0.02%; the
two smallest models, whose ~2,000-weight tensors learn the most, -0.5%. Training on the
steps 2^-2..2^-4 as well, or on the first 16 or 32 bins, gives up some of the int8 gain
for none on the quantized levels.

Run from the repository root:
    .venv/bin/python bench/train_context_init.py           # print the table
    .venv/bin/python bench/train_context_init.py --write   # and rewrite every copy of it
--write rewrites the table in decoder_c/tc_model.h (the C decoder and the encoder),
docs/FORMAT.md, tests/spec/specdec.py and both MicroPython modules. Changing the table
changes the format: see README, "Format changes".
"""

from __future__ import annotations

import argparse
import ctypes
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from corpus import _mediapipe, load_model

REPO = Path(__file__).resolve().parents[1]
MODEL_HEADER = REPO / "decoder_c" / "tc_model.h"
CONTEXTS = 166  # 16 x 4 prefix + 15 x 2 x 3 suffix + 12 sign (FORMAT 5.3)
WINDOW = 64
QUANTIZED_STEPS = (3,)  # std * 2^-k
TRAINING_MODELS = (("pose_detection", "pose_detection"), ("hand_recrop", "holistic_landmark"))


def build_counting_encoder(work: Path) -> ctypes.CDLL:
    library = work / "libcounting.so"
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-std=c99", "-DTCE_CONTEXT_STATS", "-I", str(REPO / "decoder_c"),
                    str(REPO / "host/tinycabac/csrc/encoder.c"), "-o", str(library), "-lm"], check=True)
    lib = ctypes.CDLL(str(library))
    lib.tce_estimate_bits.restype = ctypes.c_double
    lib.tce_estimate_bits.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint]
    ctypes.c_uint.in_dll(lib, "tce_stats_window").value = WINDOW
    return lib


def training_tensors() -> list[np.ndarray]:
    """The training levels: every weight tensor of the training models, int8 and quantized."""
    arrays = []
    for name, module in TRAINING_MODELS:
        for tensor in load_model(_mediapipe(name, module)).tensors:
            arrays.append(tensor.int8_levels())
            for k in QUANTIZED_STEPS:
                arrays.append(np.round(tensor.weights / (tensor.weights.std() * 2.0**-k)))
    return [np.ascontiguousarray(a.ravel().astype(np.int64)) for a in arrays]


def trained_table(lib: ctypes.CDLL, tensors: list[np.ndarray]) -> list[int]:
    from tinycabac.native import initial_activity

    for levels in tensors:
        lib.tce_estimate_bits(levels.ctypes.data, None, levels.size, initial_activity(levels))
    zeros = np.array((ctypes.c_double * CONTEXTS).in_dll(lib, "tce_stats_zeros"))
    ones = np.array((ctypes.c_double * CONTEXTS).in_dll(lib, "tce_stats_ones"))
    p0 = (zeros + 1) / (zeros + ones + 2)
    return [int(v) for v in np.clip(np.round(p0 * 256), 2, 254)]


def c_rows(table: list[int]) -> str:
    rows = [table[i:i + 16] for i in range(0, len(table), 16)]
    return "\n".join("    " + ", ".join(f"{v:3d}" for v in row) + "," for row in rows)


def python_bytes(table: list[int]) -> str:
    rows = [table[i:i + 16] for i in range(0, len(table), 16)]
    return "\n".join('    b"' + "".join(f"\\x{v:02x}" for v in row) + '"' for row in rows)


# Every copy of the table: file, the text just before it, the text just after, its form.
COPIES = (
    (MODEL_HEADER, "static const uint8_t tc_context_init[TC_CONTEXT_COUNT] = {\n", "\n};", c_rows),
    (REPO / "docs/FORMAT.md", "INIT = [\n", "\n]", c_rows),
    (REPO / "tests/spec/specdec.py", "INIT = [\n", "\n]", c_rows),
    (REPO / "firmware/micropython/tcdec.py", "_CONTEXT_INIT = (\n", "\n)", python_bytes),
    (REPO / "firmware/micropython/tcdec_viper.py", "_CONTEXT_INIT = (\n", "\n)", python_bytes),
)


def write_table(table: list[int]) -> None:
    for path, before, after, form in COPIES:
        text = path.read_text()
        pattern = re.compile(re.escape(before) + ".*?" + re.escape(after), re.S)
        if len(pattern.findall(text)) != 1:
            raise SystemExit(f"{path}: not exactly one table to rewrite")
        path.write_text(pattern.sub(lambda _: before + form(table) + after, text))
        print(f"written to {path.relative_to(REPO)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite the table in decoder_c/tc_model.h")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        table = trained_table(build_counting_encoder(Path(work)), training_tensors())
    print(c_rows(table))
    if args.write:
        write_table(table)


if __name__ == "__main__":
    main()
