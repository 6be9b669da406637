"""Experiment: how much of the two smallest models' streams a more compact directory saves.

Format 11's directory entry (FORMAT 3.2) spends fixed-width fields: every dimension, the
lossless offset, the payload offset and the payload size are 4 bytes each. On the
corpus's two smallest models (selfie_segmentation, face_detection_short_range: about
2,000 weights per tensor) the container costs 0.15-0.22 bits per weight, which is what
keeps them above xz -9e (DESIGN_NOTES, "The two smallest models").

This script encodes each model as the lossless bench does, then counts the bytes its
directory would take in two variants, everything else unchanged:
- "LEB128": dimensions, payload offset and payload size as LEB128, the lossless offset
  zigzag LEB128; every field a directory holds today is still there (issue 2 lists the
  payload offset and length);
- "LEB128, implied offsets": as above without the payload offset, which is then the sum
  of the earlier payload sizes (payloads back to back in directory order).
The header (20 bytes), names, the kind bytes and the CRC-32s are kept as they are.

Run from the repository root: .venv/bin/python bench/experiments/compact_directory/directory_bytes.py
(about 10 s; the corpus wheels are fetched into bench/.cache on first use).
"""

import lzma
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # bench/
import tinycabac  # noqa: E402
from bench_lossless import tensor_dict  # noqa: E402
from corpus import load_corpus  # noqa: E402

SMALL_MODELS = ("selfie_segmentation", "face_detection_short_range")
HEADER_BYTES = 20
CRC_BYTES = 4
KIND_BYTES = 4  # dtype, mode, initial activity, prediction
HISTORY_BYTES = 2


def leb128_size(value: int) -> int:
    size = 1
    while value >= 0x80:
        value >>= 7
        size += 1
    return size


def zigzag(value: int) -> int:
    return 2 * value if value >= 0 else -2 * value - 1


def u32_size(value: int) -> int:
    return 4


def entry_bytes(entry, payload_offset: int, field_size, implied_offsets: bool) -> int:
    """Bytes of one lossless entry whose numeric fields take field_size(value) bytes."""
    if entry.mode != "lossless":
        raise ValueError("the corpus codes int8 levels losslessly; quantized entries are not counted here")
    size = 1 + len(entry.name.encode()) + KIND_BYTES + 1 + sum(field_size(d) for d in entry.shape)
    size += HISTORY_BYTES if entry.prediction != "none" else 0
    size += field_size(zigzag(entry.offset))
    size += 0 if implied_offsets else field_size(payload_offset)
    return size + field_size(entry.payload_bytes) + CRC_BYTES


def container_bytes(entries, field_size=leb128_size, implied_offsets: bool = False) -> int:
    total, payload_offset = HEADER_BYTES, 0
    for entry in entries:
        total += entry_bytes(entry, payload_offset, field_size, implied_offsets)
        payload_offset += entry.payload_bytes
    return total


def main() -> None:
    print("bits per weight | stream | container: format 11 | LEB128 | LEB128, implied offsets | xz -9e")
    for model in (m for m in load_corpus() if m.name in SMALL_MODELS):
        tensors = tensor_dict(model, [t.int8_levels() for t in model.tensors])
        stream = tinycabac.encode(tensors)
        entries = tinycabac.info(stream)
        payload = sum(e.payload_bytes for e in entries)
        xz = len(lzma.compress(b"".join(a.tobytes() for a in tensors.values()), preset=9 | lzma.PRESET_EXTREME))
        bits = lambda size: 8 * size / model.num_weights  # noqa: E731
        sizes = [len(stream) - payload, container_bytes(entries), container_bytes(entries, implied_offsets=True)]
        assert container_bytes(entries, u32_size) == sizes[0], "the count of format 11's fields is off"
        print(f"{model.name}: {bits(len(stream)):.3f} | " + " | ".join(
            f"{size} B, stream {bits(payload + size):.3f}" for size in sizes) + f" | {bits(xz):.3f}")


if __name__ == "__main__":
    main()
