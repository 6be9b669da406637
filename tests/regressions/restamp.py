"""Stamp the current format version on the saved stream inputs of the fuzz
targets (run after a format change, with the golden vectors).

A saved input of an older version would stop at the version check and test
nothing more.  Where its header CRC held, it is recomputed, so the input
reaches the same checks as when it was found; where it did not, it is left
wrong, as the fuzzer made it.  Run from the repository root:

    .venv/bin/python tests/regressions/restamp.py
"""
from __future__ import annotations

import sys
import zlib
from pathlib import Path

REGRESSIONS = Path(__file__).resolve().parent
sys.path.insert(0, str(REGRESSIONS.parent.parent / "host"))
from tinycabac.container import FORMAT_VERSION  # noqa: E402

STREAM_TARGETS = ["fuzz_decode_stream", "fuzz_streaming", "fuzz_small_output", "fuzz_directory"]
CONTROL_BYTES = 8  # decoder_c/fuzz/fuzz_common.h


def stream_start(path: Path, data: bytes) -> int:
    """Where the stream begins: after the control bytes, and for
    fuzz_directory after the queried name too."""
    return CONTROL_BYTES + (data[1] if path.parent.name == "fuzz_directory" else 0)


def header_crc(stream: bytes | bytearray) -> int | None:
    """The CRC-32 the header should hold (FORMAT 3.1), None if the
    directory runs past the stream."""
    directory_size = int.from_bytes(stream[8:12], "little")
    if len(stream) < 20 or len(stream) - 20 < directory_size:
        return None
    return zlib.crc32(bytes(stream[20 : 20 + directory_size]), zlib.crc32(bytes(stream[:16])))


def restamped(path: Path) -> bytes:
    data = bytearray(path.read_bytes())
    stream = memoryview(data)[stream_start(path, data) :]
    if len(stream) < 20 or stream[:4] != b"TCAB" or stream[4] == FORMAT_VERSION:
        return bytes(data)
    crc_held = header_crc(stream) == int.from_bytes(stream[16:20], "little")
    stream[4] = FORMAT_VERSION
    if crc_held:
        stream[16:20] = header_crc(stream).to_bytes(4, "little")
    return bytes(data)


def main() -> None:
    for target in STREAM_TARGETS:
        for path in sorted((REGRESSIONS / target).glob("*")):
            data = restamped(path)
            if data != path.read_bytes():
                path.write_bytes(data)
                print(f"restamped {path.relative_to(REGRESSIONS)}")


if __name__ == "__main__":
    main()
