"""Write seed corpora for the libFuzzer targets from the golden vectors.

    python decoder_c/fuzz/make_seeds.py OUT_DIR

OUT_DIR/<target>/ receives, per golden stream, inputs in the layout of
fuzz_common.h (8 control bytes, then the stream), with the control bytes
varied so that every target starts from its interesting paths: header CRC
repair on, tensor CRC repair, every tensor, small and odd chunk sizes.
The golden vectors are format 13 streams, dependent-quantized tensors
included (trellis_float, update_delta), factored ones (factored_rows), ones
with channel peaks (channel_peaks), the .tflite ones (digits_*) with
packed skeletons (FORMAT 3.6).  fuzz_roundtrip gets level records
(see fuzz_roundtrip.c) for every mode, without prediction and with each
prediction kind (FORMAT 5.7, 5.8), for the float modes with either quantizer
(FORMAT 6.2), and for every integer dtype with channel peaks (FORMAT 5.9)
along each kind of axis, with and without scale prediction;
fuzz_skeleton_unpack packed skeletons made by hand.
Standard library only, so CI can run it before the package is installed.
"""
from __future__ import annotations

import hashlib
import struct
import sys
from pathlib import Path

GOLDEN = Path(__file__).resolve().parents[2] / "tests" / "golden"


def prefix(flags: int, *params: int) -> bytes:
    return bytes([flags, *params, *([0] * (7 - len(params)))])


def first_name(stream: bytes) -> bytes:
    """The first directory entry's name: u8 length, then the bytes."""
    if stream[6:8] == b"\0\0":
        return b"x"
    return stream[21 : 21 + stream[20]]


def stream_seeds(stream: bytes) -> dict[str, list[bytes]]:
    name = first_name(stream)
    tensor_count = struct.unpack_from("<H", stream, 6)[0]
    # case 3 (a work buffer too short) reaches only tensors coded with
    # prediction or channel peaks: try each of the first dozen, so
    # predicted_rows' scale tensors and channel_peaks' last one are seeded too
    short_history = [prefix(1, i, 7, 0, 3) + stream for i in range(3, min(tensor_count, 12))]
    return {
        "fuzz_decode_stream": [prefix(1) + stream, prefix(3) + stream],
        "fuzz_streaming": [
            prefix(5, 0, 0, 0, 1) + stream,          # every tensor, 1-byte input and output chunks
            prefix(5, 1, 63, 6, 7, 7) + stream,       # odd chunk sizes
            prefix(1, 2, 255, 255, 3) + stream,
        ],
        "fuzz_small_output": [prefix(1, i, 7, 0, case) + stream for i in range(3) for case in range(4)]
        + short_history,
        "fuzz_directory": [
            prefix(1, len(name), 17, 0) + name + stream,
            prefix(1, 3, 5, 0) + b"zzz" + stream,
        ],
        # the digits vectors are .tflite streams (FORMAT 3.5) with packed
        # skeletons (3.6); the rest reach only the "no places" path
        "fuzz_tflite_rebuild": [prefix(1) + stream, prefix(1, 1) + stream, prefix(3) + stream],
    }


# fuzz_roundtrip.c byte 0 bit 4: scale instead of difference prediction.
SCALE = 0x10
# fuzz_roundtrip.c byte 0 bit 5: the dependent quantizer (float modes only).
DEPENDENT = 0x20
# fuzz_roundtrip.c byte 0 bit 6: factor prediction (FORMAT 5.8) when H > 0.
FACTORS = 0x40
# fuzz_roundtrip.c byte 0 bit 7: channel peaks (FORMAT 5.9), mode 0 only.
PEAKS = 0x80


def level_records(levels: list[int], raw: bool = False) -> bytes:
    """Records of fuzz_roundtrip.c; raw: 4-byte records that give the coded value."""
    out = bytearray()
    for level in levels:
        if raw:
            x = level + 2**31
            extra = 1 if x > 0xFFFFFFFF else 0
            out += bytes([0xC2 | extra]) + struct.pack("<I", x - extra)
        elif -64 <= level < 64:
            out.append(level + 64)
        elif -8192 <= level < 8192:
            value = level + 8192
            out += bytes([0x80 | (value >> 8), value & 0xFF])
        else:
            x = level + 2**31
            extra = 1 if x > 0xFFFFFFFF else 0
            out += bytes([0xC0 | extra]) + struct.pack("<I", x - extra)
    return bytes(out)


def roundtrip_seeds() -> list[bytes]:
    small = level_records([0, 1, -1, 3, 0, 0, 7, -20, 63, -64] * 8)
    wide = level_records([5000, -8000, 2**31, -(2**31), 123456789, 0, -1, 2**20])
    zeros = level_records([0] * 300)
    rows = level_records([(c * 7 % 23) - 11 + (r % 2) for r in range(8) for c in range(24)])  # 8 similar rows
    # 8 rows of 24 sharing zero and large columns, signs alternating row to row
    sizes = [0 if c % 4 == 0 else 300 + 37 * c if c % 7 == 3 else c % 3 for c in range(24)]
    pruned = level_records([size * (-1) ** (r + c) for r in range(8) for c, size in enumerate(sizes)])
    seeds = []
    for mode in range(4):
        for dtype_bits in range(4):
            seeds.append(bytes([mode | dtype_bits << 2, 0x10, 0x27, 0xF0, 0, 24, 1, 2]) + small)
        seeds.append(bytes([mode, 0xFF, 0xFF, 0x70, 7, 200, 3, 4]) + wide)   # overflow-prone steps
        seeds.append(bytes([mode, 1, 0, 0x80, 9, 0, 5, 6]) + small + zeros)  # subnormal steps, 5 channels
        for selector in range(1, 8):  # prediction distances (byte 4 bits 5-7), difference, scale, factors
            seeds.append(bytes([mode, 3, 0, 0xFE, selector << 5 | 7, 16, 9, selector]) + rows)
            seeds.append(bytes([mode | SCALE, 3, 0, 0xFE, selector << 5 | 7, 16, 9, selector]) + pruned)
            seeds.append(bytes([mode | FACTORS, 3, 0, 0xFE, selector << 5 | 7, 16, 9, selector]) + rows)
        # difference prediction pushing |level| past 2^31 (rejected) and up to
        # it (decoded); scale prediction codes the levels themselves (decoded)
        for kind in (0, SCALE):
            h1 = bytes([mode | kind, 1, 0, 0, 1 << 5, 0, 0, 0])  # H = 1
            seeds.append(h1 + level_records([127, 2**31], raw=True))
            seeds.append(h1 + level_records([-128, -(2**31) + 128], raw=True))
        # factors pushing a level past int8, and coded values at the 2^30 limit
        seeds.append(bytes([mode | FACTORS, 1, 0, 0, 4 << 5, 0, 24, 0]) + level_records([2**30, -(2**30), 5] * 8, raw=True))
    # channel peaks: int8-like weights that reach +-127 (and wide ones), the
    # channel axis first, in the middle, last and alone (byte 4 bits 0-1),
    # the dim before it 1..8 (bits 2-4), no prediction, or scale at H = 1,
    # 2, a row or a seed-chosen distance (bits 5-7)
    weights = level_records([(i * 37 + i // 7) % 255 - 127 for i in range(240)])
    peaked_rows = level_records([127 if c == r % 24 else ((c * 7 + r) % 9) - 4 for r in range(8) for c in range(24)])
    for dtype_bits in range(4):
        for where in range(4):
            for selector in (0, 1, 2, 4, 5):
                shape = where | ((where * 3 + dtype_bits + selector) % 8) << 2
                seeds.append(bytes([PEAKS | dtype_bits << 2, 0, 0, 0, selector << 5 | shape, 16, 37 * where + selector, 1])
                             + (weights if selector != 4 else peaked_rows))  # fmt: skip
        seeds.append(bytes([PEAKS | dtype_bits << 2, 0, 0, 0, 1 | 2 << 2, 0, 9, 0]) + wide)
    # every float-mode seed again with the dependent quantizer: |level| = 2^31
    # gives |q| = 2^32, overflow-prone steps overflow sooner
    return seeds + [bytes([seed[0] | DEPENDENT]) + seed[1:] for seed in seeds if seed[0] & 1]


def packed_skeleton(size: int, lanes=(b"", b"", b"", b""), literal_lengths=b"\0", match_lengths=b"", codes=b"",
                    low=b"", high=b"") -> bytes:  # fmt: skip
    """A packed skeleton (FORMAT 3.6) from its sections."""
    header = struct.pack("<9I", size, len(codes), len(codes) - len(low), *map(len, lanes), len(literal_lengths),
                         len(match_lengths))  # fmt: skip
    return header + b"".join(lanes) + literal_lengths + match_lengths + codes + low + high


def unpack_seeds() -> list[bytes]:
    """fuzz_skeleton_unpack's inputs: packed skeletons using every section,
    continued lengths, overlapping matches, repeated distances and the
    quotient's high byte."""
    long_lane = bytes(range(0, 256, 4)) + bytes(range(256)) + bytes(range(0, 256, 4))  # 384 literals per lane
    return [
        packed_skeleton(0),
        packed_skeleton(3, (b"a", b"b", b"c", b""), b"\3"),
        packed_skeleton(24, (b"t", b"f", b"l", b""), b"\3\0", b"\x11", b"\3", b"\0", b"\0"),  # a run 3 back
        packed_skeleton(300, (b"\1", b"\2", b"\3", b"\4"), b"\4\0", b"\xff\x25", b"\1", b"\0", b"\0"),  # 296 bytes
        # 4 literals, 4 bytes 1 back, 1 literal, 4 bytes 1 back again (a repeat, code 4)
        packed_skeleton(13, (b"\1\0", b"\2", b"\3", b"\4"), b"\4\1\0", b"\0\0", b"\1\4", b"\0", b"\0"),
        # 1536 literals, 1536 bytes again from 1536 back (quotient 384: high byte 1), then 8 from 4 back
        packed_skeleton(2 * 1536 + 8, (long_lane,) * 4, b"\xff" * 6 + b"\6\0\0", b"\xff" * 6 + b"\2\4", b"\0\0",
                        b"\x80\1", b"\1\0"),  # fmt: skip
    ]


def main(out_dir: Path) -> None:
    corpora: dict[str, list[bytes]] = {"fuzz_roundtrip": roundtrip_seeds(), "fuzz_skeleton_unpack": unpack_seeds()}
    for path in sorted(GOLDEN.glob("*.tcb")):
        for target, seeds in stream_seeds(path.read_bytes()).items():
            corpora.setdefault(target, []).extend(seeds)
    for target, seeds in corpora.items():
        directory = out_dir / target
        directory.mkdir(parents=True, exist_ok=True)
        for seed in seeds:
            (directory / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
        print(f"{target}: {len(seeds)} seeds")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
